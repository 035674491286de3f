"""Helpers for running ctanb on JupyterHub next to the archive (``deploy/hub``).

The hub gives each spawned server the environment ctanb reads:

``CTANB_TAP_URL``
    The archive (DaCHS or the embedded service).
``CTANB_TOKEN``, ``CTANB_ARCHIVE_GROUP``
    The user's archive credentials, chosen from the user's hub groups through the
    access policy (:func:`archive_credentials`). ``CTANB_TOKEN`` is
    ``<group>:<token>``: :func:`ctanb.connect` sends it as HTTP Basic, which DaCHS
    needs (each policy group is a DaCHS user, see :mod:`ctanb.archive.dachs_rd`) and
    the embedded service accepts as well.
``CTANB_PROV_URL``
    The provenance store every user shares (PostgreSQL on the archive's server).
``DASK_GATEWAY__*``
    Where the Dask Gateway is, read by ``dask_gateway.Gateway()``.

Group mapping rule: a user sees *exactly* the proprietary data of their groups.
Hub groups (from the identity provider, or set by an admin) are mapped to policy
groups (same name, or through ``group_map``); the groups they grant are the union
of each group and the groups it ``includes``. One token is sent per request, so
the user gets the token of a policy group granting exactly that union. When no
single group does (a user in two unrelated teams), the spawn is refused with a
message telling the administrator which ``includes`` group to add: never a token
that grants more than the user's groups.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ._errors import ConfigError
from .archive.policy import AccessPolicy

__all__ = [
    "AUTHENTICATORS",
    "ArchiveAccess",
    "ArchiveCredentials",
    "DaskGatewaySettings",
    "archive_credentials",
    "authenticator_config",
    "make_pre_spawn_hook",
]

#: Values of ``CTANB_HUB_AUTH``: JupyterHub's built-in test authenticators, or OIDC.
AUTHENTICATORS = ("dummy", "shared-password", "oidc")

#: Environment variables a spawn sets from the user's groups; cleared first, so a
#: value from the hub's configuration can never leak into another user's server.
_CREDENTIAL_VARS = ("CTANB_TOKEN", "CTANB_ARCHIVE_GROUP")


@dataclass(frozen=True)
class ArchiveCredentials:
    """The token a user's server gets, and what it grants.

    Attributes
    ----------
    group : str
        Policy group the token belongs to (the DaCHS user name).
    token : str
        The secret.
    grants : frozenset of str
        Every group whose proprietary data the token opens.
    """

    group: str
    token: str
    grants: frozenset[str]

    def __repr__(self) -> str:  # never print the secret
        return f"ArchiveCredentials(group={self.group!r}, grants={sorted(self.grants)})"


def _closure(policy: AccessPolicy, name: str) -> frozenset[str]:
    """*name* and every group it includes, transitively."""
    found = {name}
    todo = [name]
    while todo:
        for inc in policy.groups[todo.pop()].includes:
            if inc not in found:
                found.add(inc)
                todo.append(inc)
    return frozenset(found)


def archive_credentials(
    groups: Iterable[str], policy: AccessPolicy, group_map: Mapping[str, str] | None = None
) -> ArchiveCredentials | None:
    """The archive token for a user in hub *groups*, or None (public data only).

    Parameters
    ----------
    groups : iterable of str
        The user's hub group names.
    policy : AccessPolicy
        The archive's access policy (with the real tokens).
    group_map : mapping, optional
        Hub group name to policy group name (e.g. an eduPersonEntitlement URN to
        ``vela-team``); unmapped names are used as they are.

    Returns
    -------
    ArchiveCredentials or None
        None when none of the groups is a policy group.

    Raises
    ------
    ConfigError
        When no single policy group grants exactly the user's groups (the message
        names the ``includes`` group to add), or the matching group has no token.
    """
    group_map = group_map or {}
    mine = {group_map.get(g, g) for g in groups} & set(policy.groups)
    if not mine:
        return None
    wanted = frozenset().union(*(_closure(policy, g) for g in mine))
    exact = [name for name in policy.groups if _closure(policy, name) == wanted]
    # The user's own group first (stable choice), then any other exact one by name.
    exact.sort(key=lambda name: (name not in mine, name))
    for name in exact:
        if policy.groups[name].tokens:
            return ArchiveCredentials(name, policy.groups[name].tokens[0], wanted)
    if exact:
        raise ConfigError(f"access-policy group {exact[0]!r} has no token to hand out")
    raise ConfigError(
        f"no single token of the access policy grants exactly the groups {sorted(mine)}: "
        "add a group to the policy, e.g.\n"
        f"  {'+'.join(sorted(mine))}: {{tokens: [<secret>], includes: {sorted(mine)}}}"
    )


class DaskGatewaySettings(BaseModel):
    """Where the spawned servers find the Dask Gateway.

    The variables are the ``dask.config`` names ``gateway.address``,
    ``gateway.proxy-address``, ``gateway.public-address`` and ``gateway.auth.type``;
    with ``auth="jupyterhub"`` the client authenticates with the server's
    ``JUPYTERHUB_API_TOKEN``.
    """

    model_config = ConfigDict(extra="forbid", strict=True)

    address: str
    proxy_address: str | None = None
    public_address: str | None = None
    auth: Literal["jupyterhub", "simple", "kerberos"] = "jupyterhub"

    def environment(self) -> dict[str, str]:
        """The ``DASK_GATEWAY__*`` variables for the spawner."""
        env = {"DASK_GATEWAY__ADDRESS": self.address, "DASK_GATEWAY__AUTH__TYPE": self.auth}
        if self.proxy_address:
            env["DASK_GATEWAY__PROXY_ADDRESS"] = self.proxy_address
        if self.public_address:
            env["DASK_GATEWAY__PUBLIC_ADDRESS"] = self.public_address
        return env


class ArchiveAccess(BaseModel):
    """What a spawned server gets: archive URL, credentials, provenance store, Dask.

    Parameters
    ----------
    tap_url : str
        TAP root of the archive.
    policy_path : Path, optional
        The archive's access policy (default: ctanb's demo policy).
    group_map : dict, optional
        Hub group name to policy group name.
    prov_url : str, optional
        Shared provenance store (``postgresql+psycopg://...``).
    dask_gateway : DaskGatewaySettings, optional
        The Dask Gateway, when one runs.
    """

    model_config = ConfigDict(extra="forbid")

    tap_url: str
    policy_path: Path | None = None
    group_map: dict[str, str] = Field(default_factory=dict)
    prov_url: str | None = None
    dask_gateway: DaskGatewaySettings | None = None

    def policy(self) -> AccessPolicy:
        """The access policy (read on every call, so edits apply to the next spawn)."""
        return AccessPolicy.load(self.policy_path) if self.policy_path else AccessPolicy.demo()

    def environment(self, groups: Iterable[str]) -> dict[str, str]:
        """The variables for a user in hub *groups* (credentials only when granted)."""
        env = {"CTANB_TAP_URL": self.tap_url}
        creds = archive_credentials(groups, self.policy(), self.group_map)
        if creds is not None:
            # group:token works with both archives: ctanb.connect sends it as HTTP
            # Basic, which DaCHS needs and the embedded service accepts.
            env |= {
                "CTANB_TOKEN": f"{creds.group}:{creds.token}",
                "CTANB_ARCHIVE_GROUP": creds.group,
            }
        if self.prov_url:
            env["CTANB_PROV_URL"] = self.prov_url
        if self.dask_gateway is not None:
            env |= self.dask_gateway.environment()
        return env


def make_pre_spawn_hook(access: ArchiveAccess):
    """A ``Spawner.pre_spawn_hook`` giving each server the user's environment.

    The spawner's ``environment`` is replaced by a new dict (the configured one is
    shared by every spawner, so it is never changed in place), without any
    credential from the configuration, plus :meth:`ArchiveAccess.environment`.
    """

    def pre_spawn_hook(spawner: Any) -> None:
        groups = [group.name for group in spawner.user.groups]
        env = {k: v for k, v in dict(spawner.environment).items() if k not in _CREDENTIAL_VARS}
        try:
            env |= access.environment(groups)
        except ConfigError as exc:
            spawner.log.error("ctanb: refusing to spawn %s: %s", spawner.user.name, exc)
            raise
        spawner.environment = env
        granted = env.get("CTANB_ARCHIVE_GROUP", "public data only")
        spawner.log.info("ctanb: %s (groups %s) -> %s", spawner.user.name, groups, granted)

    return pre_spawn_hook


# --- single sign-on ---------------------------------------------------------------------


def _require(env: Mapping[str, str], names: Iterable[str]) -> dict[str, str]:
    missing = [n for n in names if not env.get(n)]
    if missing:
        raise ConfigError(f"CTANB_HUB_AUTH=oidc needs the environment variables {missing}")
    return {n: env[n] for n in names}


def authenticator_config(env: Mapping[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """Traitlets configuration of the authenticator selected by ``CTANB_HUB_AUTH``.

    ``dummy`` and ``shared-password`` are JupyterHub's built-in authenticators (tests,
    demos on loopback; ``CTANB_HUB_PASSWORD`` sets the password). ``oidc`` is
    oauthenticator's ``GenericOAuthenticator`` against an OpenID Connect provider
    (Keycloak, an eduGAIN/SAML-to-OIDC proxy such as EGI Check-in or SATOSA):

    - required: ``CTANB_OIDC_CLIENT_ID``, ``CTANB_OIDC_CLIENT_SECRET``,
      ``CTANB_OIDC_AUTHORIZE_URL``, ``CTANB_OIDC_TOKEN_URL``, ``CTANB_OIDC_USERDATA_URL``,
      ``CTANB_OIDC_CALLBACK_URL`` (``https://<hub>/hub/oauth_callback``);
    - optional: ``CTANB_OIDC_USERNAME_CLAIM`` (default ``preferred_username``),
      ``CTANB_OIDC_GROUPS_CLAIM`` (default ``groups``; eduGAIN proxies often use
      ``eduperson_entitlement``), ``CTANB_OIDC_SCOPES`` (space separated),
      ``CTANB_OIDC_ALLOWED_GROUPS`` and ``CTANB_HUB_ADMIN_USERS`` (comma separated).

    With ``oidc`` the hub's groups follow the provider's claim at every login
    (``manage_groups``), so the archive token follows group membership.

    Returns
    -------
    dict
        ``{class name: {trait: value}}`` to merge into the hub's ``c``.
    """
    env = os.environ if env is None else env
    kind = env.get("CTANB_HUB_AUTH", "dummy")
    admins = {u for u in env.get("CTANB_HUB_ADMIN_USERS", "").split(",") if u}
    if kind == "dummy":
        return {"JupyterHub": {"authenticator_class": "dummy"},
                "Authenticator": {"allow_all": True, "admin_users": admins}}  # fmt: skip
    if kind == "shared-password":
        password = env.get("CTANB_HUB_PASSWORD", "")
        if len(password) < 8:
            raise ConfigError(
                "CTANB_HUB_AUTH=shared-password needs CTANB_HUB_PASSWORD (>= 8 chars)"
            )
        return {
            "JupyterHub": {"authenticator_class": "shared-password"},
            "SharedPasswordAuthenticator": {"user_password": password},
            "Authenticator": {"allow_all": True, "admin_users": admins},
        }
    if kind != "oidc":
        raise ConfigError(f"CTANB_HUB_AUTH={kind!r} is not one of {list(AUTHENTICATORS)}")
    names = ["CLIENT_ID", "CLIENT_SECRET", "AUTHORIZE_URL", "TOKEN_URL", "USERDATA_URL",
             "CALLBACK_URL"]  # fmt: skip
    given = _require(env, [f"CTANB_OIDC_{n}" for n in names])
    groups_claim = env.get("CTANB_OIDC_GROUPS_CLAIM", "groups")
    scopes = env.get("CTANB_OIDC_SCOPES", "openid profile email").split()
    allowed = {g for g in env.get("CTANB_OIDC_ALLOWED_GROUPS", "").split(",") if g}
    generic: dict[str, Any] = {
        "client_id": given["CTANB_OIDC_CLIENT_ID"],
        "client_secret": given["CTANB_OIDC_CLIENT_SECRET"],
        "authorize_url": given["CTANB_OIDC_AUTHORIZE_URL"],
        "token_url": given["CTANB_OIDC_TOKEN_URL"],
        "userdata_url": given["CTANB_OIDC_USERDATA_URL"],
        "oauth_callback_url": given["CTANB_OIDC_CALLBACK_URL"],
        "login_service": env.get("CTANB_OIDC_LOGIN_SERVICE", "institutional login"),
        "username_claim": env.get("CTANB_OIDC_USERNAME_CLAIM", "preferred_username"),
        "scope": scopes,
        "manage_groups": True,
        "auth_state_groups_key": f"oauth_user.{groups_claim}",
        "admin_users": admins,
    }
    if allowed:
        generic["allowed_groups"] = allowed
    else:
        generic["allow_all"] = True
    return {
        "JupyterHub": {"authenticator_class": "generic-oauth"},
        "GenericOAuthenticator": generic,
    }
