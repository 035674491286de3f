"""The provenance store: SQLite per user, PostgreSQL by URL (SQLAlchemy 2 Core).

Layout (prefix ``prov_``): ``activity`` (one row per activity, written with status
``running`` when it starts and completed when it ends), ``entity``, ``used``,
``generated``, ``informed`` (wasInformedBy), ``parameter`` (name, value text),
``agent`` and ``association`` (wasAssociatedWith). Every column a query selects
on is indexed, so queries stay fast at 100k activities. Each activity row also
keeps its full record as JSON, so a graph is rebuilt without joins.

SQLite runs in WAL mode with a busy timeout; writes take the lock up front
(``BEGIN IMMEDIATE``) and are retried on ``database is locked``, so several
processes can record into one file. A process killed in the middle of an
activity leaves its ``running`` row behind; readers report it ``incomplete``.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from .._errors import ProvenanceError
from .._sqlstore import engine_for, normalise_url, safe_url, write_with_retry
from . import _writebehind
from ._values import display_value
from .query import StoreQueries
from .records import DEFAULT_STORE, ActivityRecord, EntityRecord, ProvenanceGraph

__all__ = ["ProvenanceStore", "default_store", "resolve_store"]

metadata = sa.MetaData()
_S = sa.String(255)
activity_table = sa.Table(
    "prov_activity",
    metadata,
    sa.Column("id", _S, primary_key=True),
    sa.Column("name", _S, nullable=False),
    sa.Column("version", _S),
    sa.Column("description", sa.Text),
    sa.Column("callable", sa.Text),
    sa.Column("status", sa.String(16)),
    sa.Column("start_time", sa.String(40)),
    sa.Column("end_time", sa.String(40)),
    sa.Column("message", sa.Text),
    sa.Column("pid", sa.Integer),
    sa.Column("host", _S),
    sa.Column("user_name", _S),
    sa.Column("record", sa.Text),
    sa.Index("ix_prov_activity_name_version", "name", "version"),
    sa.Index("ix_prov_activity_status", "status"),
    sa.Index("ix_prov_activity_user", "user_name"),
    sa.Index("ix_prov_activity_start", "start_time"),
)
entity_table = sa.Table(
    "prov_entity",
    metadata,
    sa.Column("id", _S, primary_key=True),
    sa.Column("kind", sa.String(16)),
    sa.Column("location", sa.Text),
    sa.Column("sha256", sa.String(64)),
    sa.Column("data_sha256", sa.String(64)),
    sa.Column("size", sa.BigInteger),
    sa.Column("data_level", sa.String(16)),
    sa.Column("obs_id", _S),
    sa.Column("publisher_did", _S),
    sa.Column("product_type", _S),
    sa.Column("record", sa.Text),
    sa.Index("ix_prov_entity_obs_id", "obs_id"),
    sa.Index("ix_prov_entity_did", "publisher_did"),
    sa.Index("ix_prov_entity_sha256", "sha256"),
)
used_table = sa.Table(
    "prov_used",
    metadata,
    sa.Column("activity_id", _S, primary_key=True),
    sa.Column("entity_id", _S, primary_key=True),
    sa.Column("role", _S, primary_key=True),
    sa.Index("ix_prov_used_entity", "entity_id"),
)
generated_table = sa.Table(
    "prov_generated",
    metadata,
    sa.Column("activity_id", _S, primary_key=True),
    sa.Column("entity_id", _S, primary_key=True),
    sa.Column("role", _S, primary_key=True),
    sa.Index("ix_prov_generated_entity", "entity_id"),
)
informed_table = sa.Table(
    "prov_informed",
    metadata,
    sa.Column("activity_id", _S, primary_key=True),
    sa.Column("informant_id", _S, primary_key=True),
    sa.Index("ix_prov_informed_informant", "informant_id"),
)
#: wasDerivedFrom: which used entity each generated one was computed from (exact lineage:
#: a per-run dataset derives from its own run only).
derivation_table = sa.Table(
    "prov_derivation",
    metadata,
    sa.Column("entity_id", _S, primary_key=True),
    sa.Column("source_id", _S, primary_key=True),
    sa.Column("activity_id", _S, primary_key=True),
    sa.Index("ix_prov_derivation_source", "source_id"),
)

parameter_table = sa.Table(
    "prov_parameter",
    metadata,
    sa.Column("activity_id", _S, primary_key=True),
    sa.Column("name", _S, primary_key=True),
    sa.Column("value", sa.Text),
    sa.Index("ix_prov_parameter_name_value", "name", "value"),
)
agent_table = sa.Table(
    "prov_agent",
    metadata,
    sa.Column("id", _S, primary_key=True),
    sa.Column("kind", sa.String(16)),
    sa.Column("name", _S),
    sa.Column("version", _S),
    sa.Index("ix_prov_agent_name", "name"),
)
association_table = sa.Table(
    "prov_association",
    metadata,
    sa.Column("activity_id", _S, primary_key=True),
    sa.Column("agent_id", _S, primary_key=True),
    sa.Column("role", sa.String(16)),
    # start_time repeated here so "latest activities of an agent" is one index range scan
    sa.Column("start_time", sa.String(40)),
    sa.Index("ix_prov_association_agent_time", "agent_id", "start_time"),
)

_STORES: dict[str, ProvenanceStore] = {}


class ProvenanceStore(StoreQueries):
    """A provenance database.

    Parameters
    ----------
    url : str or path
        A SQLAlchemy URL (``sqlite:///path``, ``postgresql+psycopg://user@host/db``)
        or a path to a SQLite file.
    write_behind : bool
        Commit the records of :meth:`begin` and :meth:`finish` in a writer thread, so
        a step does not wait for the database (reads wait for pending writes).
    """

    def __init__(self, url: str | Path, *, write_behind: bool = True) -> None:
        self.url = normalise_url(url)
        self.write_behind = write_behind
        try:
            self.engine = engine_for(self.url)
            self._retry(lambda conn: metadata.create_all(conn))
        except ProvenanceError:
            raise
        except Exception as exc:
            raise ProvenanceError(
                f"cannot open the provenance store {self._safe_url()}: {exc}"
            ) from None
        self.dialect = self.engine.dialect.name

    def _safe_url(self) -> str:
        return safe_url(self.url)

    def __repr__(self) -> str:
        return f"ProvenanceStore({self._safe_url()!r})"

    # -- writing ---------------------------------------------------------------------------
    def _retry(self, work: Any) -> Any:
        return write_with_retry(
            self.engine, work, error=ProvenanceError, label=f"provenance store {self._safe_url()}"
        )

    def _insert(
        self, table: sa.Table, rows: list[dict[str, Any]], update: Iterable[str] = ()
    ) -> Any:
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        stmt = insert(table)
        keys = [c.name for c in table.primary_key.columns]
        update = list(update)
        if update and table is entity_table:
            # An entity seen again (a DL3 file used by many activities) keeps what was
            # recorded first; only fields still unknown are filled in.
            merged = {
                k: sa.func.coalesce(table.c[k], stmt.excluded[k]) for k in update if k != "record"
            }
            return stmt.on_conflict_do_update(index_elements=keys, set_=merged)
        if update:
            return stmt.on_conflict_do_update(
                index_elements=keys, set_={k: stmt.excluded[k] for k in update}
            )
        return stmt.on_conflict_do_nothing(index_elements=keys)

    @staticmethod
    def _activity_row(record: ActivityRecord) -> dict[str, Any]:
        user = next((a.name for a in record.agents if a.kind == "person"), None)
        host = next((a.name for a in record.agents if a.kind == "host"), None)
        return {
            "id": record.id,
            "name": record.name,
            "version": record.version,
            "description": record.description,
            "callable": record.callable,
            "status": record.status,
            "start_time": record.start_time,
            "end_time": record.end_time,
            "message": record.message,
            "pid": record.pid,
            "host": host,
            "user_name": user,
            "record": json.dumps(record.to_dict()),
        }

    @staticmethod
    def _entity_row(entity: EntityRecord) -> dict[str, Any]:
        return {
            "id": entity.id,
            "kind": entity.kind,
            "location": entity.location,
            "sha256": entity.sha256,
            "data_sha256": entity.data_sha256,
            "size": entity.size,
            "data_level": entity.data_level,
            "obs_id": entity.obs_id,
            "publisher_did": entity.publisher_did,
            "product_type": entity.product_type,
            "record": json.dumps(entity.to_dict()),
        }

    def begin(self, record: ActivityRecord) -> None:
        """Write the activity's row with status ``running`` (called when it starts).

        Committed behind, see :mod:`ctanb.provenance._writebehind`.

        Parameters
        ----------
        record : ActivityRecord
            The activity.
        """
        row = self._activity_row(record)

        def work() -> None:
            self._retry(lambda conn: conn.execute(self._insert(activity_table, [row]), [row]))

        self._write(f"start of activity {record.name} ({record.id})", work)

    def finish(self, record: ActivityRecord, graph: ProvenanceGraph | None = None) -> None:
        """Write everything the activity recorded and its final status, in one transaction.

        Committed behind: the next read of any store in this process waits for it.

        Parameters
        ----------
        record : ActivityRecord
            The activity, ended.
        graph : ProvenanceGraph, optional
            Its entities and the provenance its inputs brought along.
        """
        graph = graph or ProvenanceGraph(activities={record.id: record})
        work = self._graph_writer([graph], overwrite={record.id})
        self._write(f"activity {record.name} ({record.id})", work)

    def flush(self) -> None:
        """Wait until this process's pending writes are committed (reads do it themselves).

        Raises
        ------
        ProvenanceError
            If a write behind failed since the last flush.
        """
        _writebehind.flush()

    def _write(self, label: str, work: Any) -> None:
        if self.write_behind:
            _writebehind.submit(f"{label} in {self._safe_url()}", work)
        else:
            work()

    def write_graphs(
        self, graphs: Iterable[ProvenanceGraph], *, overwrite: Iterable[str] = ()
    ) -> None:
        """Store the records of *graphs* in one transaction.

        Parameters
        ----------
        graphs : iterable of ProvenanceGraph
            The records to store; rows already in the store are kept.
        overwrite : iterable of str
            Ids of activities whose rows are updated instead.
        """
        _writebehind.flush()  # after the activities written behind, in order
        self._graph_writer(graphs, overwrite=overwrite)()

    def _graph_writer(
        self, graphs: Iterable[ProvenanceGraph], *, overwrite: Iterable[str] = ()
    ) -> Any:
        # The rows are built now, in the caller's thread; the returned callable commits them.
        overwrite = set(overwrite)
        rows: dict[str, list[dict[str, Any]]] = {
            k: []
            for k in ("new", "update", "ent", "used", "gen", "der", "inf", "par", "agt", "ass")
        }
        for graph in graphs:
            for record in graph.activities.values():
                row = self._activity_row(record)
                rows["update" if record.id in overwrite else "new"].append(row)
                rows["used"] += [
                    {"activity_id": record.id, "entity_id": r.entity_id, "role": r.role}
                    for r in record.used
                ]
                rows["gen"] += [
                    {"activity_id": record.id, "entity_id": r.entity_id, "role": r.role}
                    for r in record.generated
                ]
                rows["der"] += [
                    {"entity_id": r.entity_id, "source_id": source, "activity_id": record.id}
                    for r in record.generated
                    for source in record.sources_of(r.entity_id, graph.entities)
                ]
                rows["inf"] += [
                    {"activity_id": record.id, "informant_id": i} for i in record.informed_by
                ]
                flat = {**_flatten(record.config), **record.parameters}
                rows["par"] += [
                    {"activity_id": record.id, "name": k, "value": display_value(v)}
                    for k, v in flat.items()
                ]
                rows["agt"] += [
                    {"id": a.id, "kind": a.kind, "name": a.name, "version": a.version}
                    for a in record.agents
                ]
                rows["ass"] += [
                    {
                        "activity_id": record.id,
                        "agent_id": a.id,
                        "role": a.kind,
                        "start_time": record.start_time,
                    }
                    for a in record.agents
                ]
            rows["ent"] += [self._entity_row(e) for e in graph.entities.values()]
        plan = [
            (activity_table, "new", ()),
            (
                activity_table,
                "update",
                [c.name for c in activity_table.columns if c.name != "id"],
            ),
            (
                entity_table,
                "ent",
                [c.name for c in entity_table.columns if c.name != "id"],
            ),
            (used_table, "used", ()),
            (generated_table, "gen", ()),
            (derivation_table, "der", ()),
            (informed_table, "inf", ()),
            (parameter_table, "par", ()),
            (agent_table, "agt", ()),
            (association_table, "ass", ()),
        ]

        def work(conn: sa.Connection) -> None:
            for table, key, update in plan:
                if rows[key]:
                    deduped = list(
                        {
                            tuple(r[c.name] for c in table.primary_key.columns): r
                            for r in rows[key]
                        }.values()
                    )
                    conn.execute(self._insert(table, deduped, update), deduped)

        return lambda: self._retry(work)

    # -- reading ---------------------------------------------------------------------------
    def _read(self, stmt: Any, params: dict[str, Any] | None = None) -> list[Any]:
        _writebehind.flush()  # a process reads what it wrote
        try:
            with self.engine.connect() as conn:
                return list(conn.execute(stmt, params or {}))
        except OperationalError as exc:
            raise ProvenanceError(f"provenance store {self._safe_url()}: {exc.orig}") from None

    def _activity_from_row(self, row: Any) -> ActivityRecord:
        record = ActivityRecord.from_dict(json.loads(row.record))
        record.status = _effective_status(row.status, row.host, row.pid)
        return record

    def get_activity(self, activity_id: str) -> ActivityRecord:
        """The activity *activity_id* (status ``incomplete`` if its process died).

        Parameters
        ----------
        activity_id : str
            The activity's id.

        Returns
        -------
        ActivityRecord
            The activity.

        Raises
        ------
        ProvenanceError
            The store has no such activity.
        """
        rows = self._read(sa.select(activity_table).where(activity_table.c.id == activity_id))
        if not rows:
            raise ProvenanceError(
                f"no activity {activity_id!r} in the provenance store {self._safe_url()}"
            )
        return self._activity_from_row(rows[0])

    def get_entity(self, entity_id: str) -> EntityRecord:
        """The entity *entity_id*.

        Parameters
        ----------
        entity_id : str
            The entity's id.

        Returns
        -------
        EntityRecord
            The entity.

        Raises
        ------
        ProvenanceError
            The store has no such entity.
        """
        rows = self._read(sa.select(entity_table.c.record).where(entity_table.c.id == entity_id))
        if not rows:
            raise ProvenanceError(
                f"no entity {entity_id!r} in the provenance store {self._safe_url()}"
            )
        return EntityRecord.from_dict(json.loads(rows[0].record))

    def count_activities(self) -> int:
        """How many activities the store holds.

        Returns
        -------
        int
            The count.
        """
        return int(self._read(sa.select(sa.func.count()).select_from(activity_table))[0][0])


def _flatten(config: Any, prefix: str = "") -> dict[str, Any]:
    """Configuration values as ``{"a.b": value}`` so that parameter queries also find them."""
    if isinstance(config, dict) and set(config) == {"__model__"}:
        config = config["__model__"][1]
    out: dict[str, Any] = {}
    if not isinstance(config, dict):
        return out
    for key, value in config.items():
        tagged = isinstance(value, dict) and len(value) == 1 and next(iter(value)).startswith("__")
        if isinstance(value, dict) and not tagged:
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _effective_status(status: str, host: str | None, pid: int | None) -> str:
    """``running`` rows whose process no longer exists on this host are ``incomplete``."""
    if status != "running" or pid is None or host != socket.gethostname():
        return status
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return "incomplete"
    except PermissionError:
        return status
    try:  # a zombie (killed, not yet reaped) is gone too
        with open(f"/proc/{pid}/stat") as handle:
            if handle.read().split(") ", 1)[1].startswith("Z"):
                return "incomplete"
    except (OSError, IndexError):
        pass
    return status


def default_store() -> ProvenanceStore:
    """The store used when none is given: ``CTANB_PROV_URL`` or ``<home_dir>/provenance.db``.

    Returns
    -------
    ProvenanceStore
        The default store.
    """
    from .._settings import home_dir

    url = os.environ.get("CTANB_PROV_URL") or str(home_dir() / "provenance.db")
    if url not in _STORES:
        _STORES[url] = ProvenanceStore(url)
    return _STORES[url]


def resolve_store(store: Any) -> ProvenanceStore | None:
    """Turn an ``Activity(store=...)`` argument into a store (None: no store)."""
    if store is DEFAULT_STORE or store is True:
        return default_store()
    if store is None or store is False:
        return None
    if isinstance(store, ProvenanceStore):
        return store
    if isinstance(store, str | Path):
        key = str(store)
        if key not in _STORES:
            _STORES[key] = ProvenanceStore(key)
        return _STORES[key]
    raise ProvenanceError(
        f"store must be a ProvenanceStore, a URL or a path, not {type(store).__name__}"
    )
