"""Who may read which data: the access policy of the embedded archive.

A policy is a YAML file (the demo one is ``ctanb/archive/demo_policy.yaml``)::

    groups:
      vela-team: {tokens: [secret-token], description: "PI team"}
      consortium: {tokens: [other-token], includes: [vela-team]}
    rules:
      - match: {obs_collection: CTAO-SIM, proposal_id: CTAO-2026A-001}
        group: vela-team
        release_date: "2028-03-31"

Rules match rows by glob patterns on ``obs_collection``, ``proposal_id``,
``obs_id`` and ``target_name`` (all given fields must match; the first matching
rule wins). Rows no rule matches are public.

Decisions (shared with the service):

- Searchable metadata is never hidden: a matched row keeps
  ``data_rights='proprietary'``, its ``obs_release_date`` and its group in the
  private column ``_access_group``, until the release date.
- :meth:`AccessPolicy.apply` runs at ingestion. When the release date has
  already passed it writes ``data_rights='public'`` and ``_access_group=NULL``
  (the date is kept in ``obs_release_date``).
- The service re-checks the date at request time, so a row ingested before its
  release date becomes readable once the date passes even if nobody re-ingests:
  a file is served when ``_access_group`` is NULL, or the request's token maps to
  that group (:meth:`~AccessPolicy.groups_for_token`), or
  :meth:`~AccessPolicy.is_released` is true for ``obs_release_date``.
- ``is_released(None)`` is False: a proprietary row without a date stays closed.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import hmac
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .._errors import ConfigError
from .._validation import describe_errors

__all__ = ["DEMO_POLICY_PATH", "AccessGroup", "AccessPolicy", "AccessRule"]

#: The bundled demo policy (demo tokens only; they protect nothing).
DEMO_POLICY_PATH = Path(__file__).with_name("demo_policy.yaml")

_MATCH_FIELDS = ("obs_collection", "proposal_id", "obs_id", "target_name")


def _parse_date(value: str | dt.date | dt.datetime) -> dt.datetime:
    """A UTC datetime from ``YYYY-MM-DD`` or an ISO timestamp (naive means UTC)."""
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, dt.date):
        parsed = dt.datetime(value.year, value.month, value.day)
    else:
        text = str(value).strip().replace("Z", "+00:00")
        try:
            parsed = dt.datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"not an ISO date: {value!r} (expected YYYY-MM-DD)") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


class AccessGroup(BaseModel):
    """A group of users; any of its tokens authenticates as the group."""

    model_config = ConfigDict(extra="forbid")

    description: str = ""
    tokens: list[str] = Field(default_factory=list)
    includes: list[str] = Field(default_factory=list)


class AccessRule(BaseModel):
    """Observations matching ``match`` belong to ``group`` until ``release_date``."""

    model_config = ConfigDict(extra="forbid")

    match: dict[str, str]
    group: str
    release_date: str | None = None

    @field_validator("match")
    @classmethod
    def _known_fields(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(_MATCH_FIELDS))
        if unknown:
            raise ValueError(f"cannot match on {unknown}; allowed: {list(_MATCH_FIELDS)}")
        if not value:
            raise ValueError("match must name at least one field")
        return {k: str(v) for k, v in value.items()}

    @field_validator("release_date", mode="before")
    @classmethod
    def _iso_date(cls, value: Any) -> str | None:
        if value is None:
            return None
        return _parse_date(value).strftime("%Y-%m-%dT%H:%M:%S")

    def matches(self, row: dict) -> bool:
        """True when every pattern matches the row's value (case-sensitive glob)."""
        for name, pattern in self.match.items():
            value = row.get(name)
            if value is None or not fnmatch.fnmatchcase(str(value), pattern):
                return False
        return True


class AccessPolicy(BaseModel):
    """Groups with tokens, and rules that keep observations proprietary until a date.

    Examples
    --------
    >>> policy = AccessPolicy.demo()
    >>> policy.apply({"obs_collection": "CTAO-SIM", "proposal_id": "CTAO-2026A-001"})["data_rights"]
    'proprietary'
    """

    model_config = ConfigDict(extra="forbid")

    groups: dict[str, AccessGroup] = Field(default_factory=dict)
    rules: list[AccessRule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _groups_exist(self) -> AccessPolicy:
        for rule in self.rules:
            if rule.group not in self.groups:
                raise ValueError(f"rule {rule.match} names unknown group {rule.group!r}")
        for name, group in self.groups.items():
            for inc in group.includes:
                if inc not in self.groups:
                    raise ValueError(f"group {name!r} includes unknown group {inc!r}")
        return self

    @classmethod
    def load(cls, path: str | Path) -> AccessPolicy:
        """Read a policy YAML file; a bad file raises :class:`~ctanb.ConfigError` naming it."""
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except OSError as exc:
            raise ConfigError(f"cannot read access policy {path}: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"access policy {path} is not valid YAML: {exc}") from None
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = describe_errors(exc)
            raise ConfigError(f"access policy {path} is invalid: {problems}") from None

    @classmethod
    def demo(cls) -> AccessPolicy:
        """The bundled demo policy (``demo_policy.yaml``; its tokens are public)."""
        return cls.load(DEMO_POLICY_PATH)

    def save(self, path: str | Path) -> Path:
        """Write the policy as YAML; returns the path."""
        path = Path(path)
        path.write_text(yaml.safe_dump(self.model_dump(exclude_defaults=True), sort_keys=False))
        return path

    def rule_for(self, row: dict) -> AccessRule | None:
        """The first rule matching *row*, or None."""
        return next((rule for rule in self.rules if rule.matches(row)), None)

    def apply(self, row: dict, *, now: dt.datetime | None = None) -> dict:
        """The access columns for one ObsCore row.

        Returns
        -------
        dict
            ``data_rights`` (``public``/``proprietary``), ``obs_release_date``
            (ISO timestamp or the row's own value) and ``_access_group`` (None
            when public). A rule whose release date has passed gives ``public``.
        """
        rule = self.rule_for(row)
        if rule is None:
            return {
                "data_rights": row.get("data_rights") or "public",
                "obs_release_date": row.get("obs_release_date"),
                "_access_group": None,
            }
        if self.is_released(rule.release_date, now=now):
            return {"data_rights": "public", "obs_release_date": rule.release_date,
                    "_access_group": None}  # fmt: skip
        return {"data_rights": "proprietary", "obs_release_date": rule.release_date,
                "_access_group": rule.group}  # fmt: skip

    def groups_for_token(self, token: str | None) -> set[str]:
        """The groups a bearer token acts for (with included groups); empty if unknown."""
        if not token:
            return set()
        found: set[str] = set()
        for name, group in self.groups.items():
            # Compare every token in constant time so timing does not leak a prefix.
            if any(hmac.compare_digest(token.encode(), t.encode()) for t in group.tokens):
                found.add(name)
        todo = list(found)
        while todo:
            for inc in self.groups[todo.pop()].includes:
                if inc not in found:
                    found.add(inc)
                    todo.append(inc)
        return found

    def identity_for_token(self, token: str | None) -> str | None:
        """Who a token authenticates: the group(s) naming it directly, or None if unknown.

        Used as the owner of UWS jobs; groups reached through ``includes`` do not
        change who someone is, only what they may read.
        """
        if not token:
            return None
        direct = sorted(
            name
            for name, group in self.groups.items()
            if any(hmac.compare_digest(token.encode(), t.encode()) for t in group.tokens)
        )
        return "+".join(direct) or None

    def is_released(
        self, release_date: str | dt.date | dt.datetime | None, now: dt.datetime | None = None
    ) -> bool:
        """True when *release_date* is not after *now* (default: the current UTC time).

        None (no known release date) gives False; an unreadable date raises
        :class:`~ctanb.ConfigError`.
        """
        if release_date is None or release_date == "":
            return False
        try:
            when = _parse_date(release_date)
        except ValueError as exc:
            raise ConfigError(f"bad release date: {exc}") from None
        current = _parse_date(now) if now is not None else dt.datetime.now(dt.UTC)
        return when <= current
