"""Shared state of one service instance: settings, per-thread connections, rights.

SQLite connections are opened read-only, one per worker thread (``threading.local``),
so that twenty concurrent requests never share a cursor. The ADQL schema is read
from TAP_SCHEMA once; translations are cached (a cone search repeated with other
numbers is a new text, but pyvo/taplint repeat identical metadata queries).
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
import sqlite3
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..._errors import AdqlError, ConfigError
from ..._validation import describe_errors
from ...datamodel import OBSCORE_TABLE
from .. import db as archive_db
from .params import ServiceFault

__all__ = ["ArchiveState", "ServiceSettings"]

log = logging.getLogger("ctanb.archive.service")


class ServiceSettings(BaseModel):
    """Limits and tunables of the TAP service (all optional keyword arguments of ``create_app``)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    maxrec_default: int = Field(10_000, ge=0)
    maxrec_hard: int = Field(1_000_000, ge=1)
    sync_timeout_s: float = Field(60.0, gt=0)
    async_workers: int = Field(4, ge=1, le=64)
    execution_duration_s: int = Field(3600, ge=1)
    retention_s: int = Field(86_400, ge=1)
    max_wait_s: float = Field(60.0, ge=0)
    translation_cache: int = Field(512, ge=0)
    #: SQLite file of the UWS jobs (default: in CTANB_HOME, see ``uws_store``).
    jobs_db: str | None = None
    #: Unfinished jobs one owner (anonymous: one address) may have.
    max_active_jobs: int = Field(20, ge=1)
    #: New jobs one owner (anonymous: one address) may create per minute.
    jobs_per_minute: int = Field(60, ge=1)


class _OpenPolicy:
    """Used when no policy is given: released data are public, no token grants anything."""

    def groups_for_token(self, token: str | None) -> set[str]:
        return set()

    def identity_for_token(self, token: str | None) -> str | None:
        return None

    def is_released(self, release_date: object) -> bool:
        if not release_date:
            return False
        try:
            day = dt.date.fromisoformat(str(release_date)[:10])
        except ValueError:
            return False
        return day <= dt.date.today()


def _default_policy() -> Any:
    try:
        from ..policy import AccessPolicy
    except ImportError:
        return _OpenPolicy()
    return AccessPolicy()


class ArchiveState:
    """Everything the request handlers share; safe to use from many threads."""

    def __init__(self, db: str | Path, *, policy: Any = None, base_url: str | None = None,
                 **settings: Any):  # fmt: skip
        try:
            self.settings = ServiceSettings(**settings)
        except ValidationError as exc:
            problems = describe_errors(exc)
            raise ConfigError(f"invalid archive service setting: {problems}") from None
        self.db_path = Path(db)
        if not self.db_path.is_file():
            raise ConfigError(f"archive database {self.db_path} does not exist")
        self.policy = policy if policy is not None else _default_policy()
        self.base_url = base_url.rstrip("/") if base_url else None
        self._local = threading.local()
        self._lock = threading.Lock()
        self._schema: Any = None
        self._cache: OrderedDict[tuple[str, int], Any] = OrderedDict()
        self.jobs: Any = None  # the UWS job manager, set by the app

    # -- connections -------------------------------------------------------------------
    def open_connection(self) -> sqlite3.Connection:
        """A new read-only connection with the ADQL functions registered."""
        try:
            conn = archive_db.connect(self.db_path, readonly=True)
            conn.execute("PRAGMA cache_size=-65536")
            conn.execute("PRAGMA mmap_size=1073741824")
            from ..adql import register_functions

            register_functions(conn)
        except sqlite3.Error as exc:
            raise ServiceFault(f"the archive database cannot be opened: {exc}", 503) from None
        return conn

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (opened on first use)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self.open_connection()
        return conn

    def schema(self) -> Any:
        """The translator's schema, loaded from TAP_SCHEMA on first use."""
        if self._schema is None:
            from ..adql import load_schema

            with self._lock:
                if self._schema is None:
                    try:
                        self._schema = load_schema(self.connection())
                    except (sqlite3.DatabaseError, AdqlError) as exc:
                        raise ServiceFault(
                            f"the archive database cannot be read: {exc}", 503
                        ) from None
        return self._schema

    def translate(self, adql: str, row_limit: int) -> Any:
        """Translate ADQL (cached); raises :class:`~ctanb.AdqlError`."""
        from ..adql import translate

        key = (adql, row_limit)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        tq = translate(adql, self.schema(), row_limit=row_limit)
        if self.settings.translation_cache:
            with self._lock:
                self._cache[key] = tq
                while len(self._cache) > self.settings.translation_cache:
                    self._cache.popitem(last=False)
        return tq

    # -- base URL ------------------------------------------------------------------------
    def public_base(self, request_base: str) -> str:
        """The base URL to advertise: the configured one, else the one the client used."""
        return self.base_url or request_base.rstrip("/")

    # -- rights --------------------------------------------------------------------------
    def dataset(self, did: str) -> dict[str, Any] | None:
        """The rights-relevant columns of dataset *did*, or None when unknown."""
        cur = self.connection().execute(
            'SELECT obs_id, obs_collection, data_rights, obs_release_date, "_access_group" '
            f'FROM "{OBSCORE_TABLE}" WHERE obs_publisher_did = ?',
            (did,),
        )
        row = cur.fetchone()
        if row is None:
            return None
        keys = ("obs_id", "obs_collection", "data_rights", "obs_release_date", "access_group")
        return dict(zip(keys, row, strict=True))

    def link_auth(self, dataset: dict[str, Any] | None) -> str:
        """DataLink ``link_auth`` of *dataset*: "true" only while it is proprietary.

        Public rows (no access group, or released) need no authentication, whatever
        their release date column says (unknown release dates of public data included).
        """
        if dataset is None or not dataset["access_group"]:
            return "false"
        return "false" if self.policy.is_released(dataset["obs_release_date"]) else "true"

    def refusal(self, did: str, dataset: dict[str, Any], token: str | None) -> str | None:
        """Why the data of *dataset* are refused to *token*, or None when allowed.

        Served when the row has no access group, when its release date has passed
        (re-checked now, not only at ingestion), or when the token maps to its group.
        """
        group = dataset["access_group"]
        release = dataset["obs_release_date"]
        if not group or self.policy.is_released(release):
            return None
        if token and group in self.policy.groups_for_token(token):
            return None
        when = str(release)[:10] if release else "an unknown date"
        owner = f"group {group}"
        # "TOKEN", not "<token>": HTML and XML views drop the latter and leave "Bearer ' with".
        how = f"send 'Authorization: Bearer TOKEN' with a token of group {group}"
        if token:
            how = f"the token sent does not belong to group {group}"
        return f"obs {dataset['obs_id']} ({did}) is proprietary to {owner} until {when}; {how}"


def identity(state: ArchiveState, headers: Any) -> str | None:
    """Who sends a request: the policy's identity behind its token, or None (anonymous)."""
    find = getattr(state.policy, "identity_for_token", None)  # a policy of one's own may lack it
    return find(bearer_token(headers)) if find is not None else None


def bearer_token(headers: Any) -> str | None:
    """The archive token of a request, if any.

    ``Authorization: Bearer <token>``, or HTTP Basic ``<group>:<token>`` — the form
    DaCHS needs — so that one credential string works with both archives.
    """
    auth = headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return value
    if scheme.lower() == "basic" and value:
        try:
            decoded = base64.b64decode(value, validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            return None
        token = decoded.partition(":")[2]
        return token or None
    return None
