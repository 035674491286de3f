"""What ctanb's SQL stores share (provenance, jobs): URLs, engines, locked writes.

Each store is SQLite per user by default and any SQLAlchemy URL (PostgreSQL on a
hub) when configured. On SQLite several processes write at once (a kernel, job
runners, Dask workers), so:

- WAL journal and a long busy timeout let readers and one writer work together;
- writers take the write lock at ``BEGIN IMMEDIATE`` (execution option
  ``ctanb_write``), so they wait in SQLite's busy handler instead of failing on a
  read-to-write lock upgrade, and a read-check-write is atomic;
- :func:`write_with_retry` retries the rare "database is locked" that still
  escapes, with jittered exponential back-off.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from ._errors import CtanbError

__all__ = ["engine_for", "normalise_url", "safe_url", "write_with_retry"]

T = TypeVar("T")
_ENGINES: dict[str, sa.Engine] = {}


def normalise_url(url: str | Path) -> str:
    """A SQLAlchemy URL; a plain path becomes ``sqlite:///<absolute path>`` (folder created)."""
    text = str(url)
    if "://" not in text:
        text = f"sqlite:///{Path(text).expanduser().resolve()}"
    if text.startswith("sqlite:///"):
        Path(text.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return text


def safe_url(url: str) -> str:
    """The URL with any password hidden, for messages."""
    return sa.make_url(url).render_as_string(hide_password=True)


def engine_for(url: str) -> sa.Engine:
    """The process-wide engine of *url* (one connection pool per database)."""
    if url not in _ENGINES:
        _ENGINES[url] = (
            _sqlite_engine(url)
            if url.startswith("sqlite")
            else sa.create_engine(url, pool_pre_ping=True)
        )
    return _ENGINES[url]


def _sqlite_engine(url: str) -> sa.Engine:
    engine = sa.create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # BEGIN is issued in _on_begin
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA busy_timeout = 60000")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        write = conn.get_execution_options().get("ctanb_write")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def write_with_retry(
    engine: sa.Engine,
    work: Callable[[sa.Connection], T],
    *,
    error: type[CtanbError],
    label: str,
    attempts: int = 60,
) -> T | None:
    """Run *work* in one write transaction, retrying while the database is locked.

    Any other database error, or a lock that outlasts *attempts*, raises *error*
    with *label* (the store and its safe URL) and the database's message.
    """
    delay = 0.01
    for attempt in range(attempts):
        try:
            with engine.connect().execution_options(ctanb_write=True) as conn, conn.begin():
                return work(conn)
        except OperationalError as exc:
            text = str(exc).lower()
            if ("locked" not in text and "busy" not in text) or attempt == attempts - 1:
                raise error(f"{label}: {exc.orig}") from None
            time.sleep(delay * (1 + random.random()))
            delay = min(delay * 2, 1.0)
    return None
