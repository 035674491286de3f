"""Queries of the provenance store, following the IVOA ProvSAP parameters.

:meth:`StoreQueries.provsap` takes the ProvSAP parameters ``ID`` (one or more
entity or activity ids), ``DEPTH`` (number of relations to follow, or ``ALL``),
``DIRECTION`` (``BACK`` towards the progenitors, ``FORTH`` towards the
descendants), ``AGENTS`` (include agents), ``MODEL`` (``IVOA`` or ``W3C``) and
``RESPONSEFORMAT`` (``PROV-JSON``, ``PROV-XML``, ``PROV-N``, ``PROV-O``/Turtle).
The other methods answer the everyday questions: products of a pipeline
version, everything derived from a run, activities with a parameter value, by
agent.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .._errors import ProvenanceError
from ._values import display_value, encode_value
from .records import ActivityRecord, EntityRecord, ProvenanceGraph

if TYPE_CHECKING:  # pragma: no cover
    from .store import ProvenanceStore

__all__ = ["StoreQueries"]

_CHUNK = 500


def _chunks(items: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


class StoreQueries:
    """Query methods of :class:`~ctanb.provenance.ProvenanceStore`."""

    def _tables(self: ProvenanceStore) -> Any:  # type: ignore[misc]
        from . import store

        return store

    def _activity_ids(
        self,
        *,
        name: str | None,
        version: str | None,
        status: str | None,
        agent: str | None,
        parameters: Mapping[str, Any] | None,
    ) -> Any:
        """A narrow SELECT (id, start_time) of matching activities; the wide ``record``
        column is not touched, so sorting and limiting stay on the indexes."""
        t = self._tables()
        act = t.activity_table
        if agent is not None:
            ag, assoc = t.agent_table, t.association_table
            found = [
                row[0]
                for row in self._read(
                    sa.select(ag.c.id).where(
                        sa.or_(
                            ag.c.id == agent,
                            ag.c.name == agent,
                            (ag.c.name + "-" + ag.c.version) == agent,
                        )
                    )
                )
            ]
            # One agent id (the usual case) lets the (agent_id, start_time) index deliver
            # rows already in time order.
            match = assoc.c.agent_id == found[0] if len(found) == 1 else assoc.c.agent_id.in_(found)
            stmt = sa.select(assoc.c.activity_id.label("id"), assoc.c.start_time).where(match)
            key = assoc.c.activity_id
            if name is not None or version is not None or status is not None:
                stmt = stmt.join(act, act.c.id == assoc.c.activity_id)
        else:
            stmt = sa.select(act.c.id, act.c.start_time)
            key = act.c.id
        if name is not None:
            stmt = stmt.where(act.c.name == name)
        if version is not None:
            stmt = stmt.where(act.c.version == str(version))
        if status == "incomplete":
            stmt = stmt.where(act.c.status.in_(["running", "incomplete"]))
        elif status is not None:
            stmt = stmt.where(act.c.status == status)
        for pname, value in (parameters or {}).items():
            par = t.parameter_table
            text = display_value(encode_value(value))
            stmt = stmt.where(
                key.in_(
                    sa.select(par.c.activity_id).where(par.c.name == pname, par.c.value == text)
                )
            )
        return stmt

    def activities(
        self,
        *,
        name: str | None = None,
        version: str | None = None,
        status: str | None = None,
        agent: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        limit: int | None = 1000,
    ) -> list[ActivityRecord]:
        """Activities matching every criterion given, oldest first.

        Parameters
        ----------
        name, version : str, optional
            The ActivityDescription name and version.
        status : str, optional
            ``running``, ``completed``, ``failed`` or ``incomplete`` (a
            ``running`` activity whose process is gone).
        agent : str, optional
            An agent id or name: a user name, a host or a software name
            (``gammapy``) or ``name-version`` (``gammapy-2.1``).
        parameters : mapping, optional
            Parameter (or configuration field) values that must all match,
            compared as recorded text.
        limit : int or None
            At most this many activities.

        Returns
        -------
        list of ActivityRecord
            Oldest first.

        Raises
        ------
        ProvenanceError
            *parameters* is not a mapping of parameter values.
        """
        if parameters is not None and not isinstance(parameters, Mapping):
            raise ProvenanceError(
                f"parameters: give a dict of parameter values, e.g. {{'radius_deg': 0.1}}, "
                f"not {parameters!r}"
            )
        t = self._tables()
        act = t.activity_table
        ids = self._activity_ids(
            name=name, version=version, status=status, agent=agent, parameters=parameters
        )
        ids = ids.order_by(ids.selected_columns.start_time)
        if limit is not None:
            ids = ids.limit(limit)
        # Two steps: the narrow id query uses the indexes, then the wide rows are read by key.
        wanted = [row[0] for row in self._read(ids)]
        rows = []
        for chunk in _chunks(wanted):
            rows += self._read(sa.select(act).where(act.c.id.in_(chunk)))
        order = {key: index for index, key in enumerate(wanted)}
        rows.sort(key=lambda row: order[row.id])
        records = [self._activity_from_row(row) for row in rows]
        if status is not None:
            records = [r for r in records if r.status == status]
        return records

    def products(
        self,
        *,
        name: str | None = None,
        version: str | None = None,
        agent: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        limit: int | None = 1000,
    ) -> list[EntityRecord]:
        """Entities generated by completed activities matching the criteria of :meth:`activities`.

        ``store.products(name="counts-map", version="1.0")`` answers "all products
        made with pipeline version 1.0".

        Parameters
        ----------
        name, version : str, optional
            The ActivityDescription name and version.
        agent : str, optional
            An agent id or name (see :meth:`activities`).
        parameters : mapping, optional
            Parameter values that must all match.
        limit : int or None
            At most this many activities are looked at.

        Returns
        -------
        list of EntityRecord
            The products.
        """
        t = self._tables()
        ids = self._activity_ids(
            name=name, version=version, status="completed", agent=agent, parameters=parameters
        ).subquery()
        gen, ent = t.generated_table, t.entity_table
        stmt = (
            sa.select(ent.c.record)
            .join(gen, gen.c.entity_id == ent.c.id)
            .join(ids, ids.c.id == gen.c.activity_id)
        )
        if limit is not None:
            stmt = stmt.limit(limit)
        return [EntityRecord.from_dict(json.loads(row.record)) for row in self._read(stmt)]

    def derived_from(
        self, *, obs_id: str | int | None = None, publisher_did: str | None = None
    ) -> list[EntityRecord]:
        """Every entity derived, at any depth, from the datasets of a run.

        Parameters
        ----------
        obs_id : str or int, optional
            The run.
        publisher_did : str, optional
            Or the dataset's ObsCore ``obs_publisher_did``.

        Returns
        -------
        list of EntityRecord
            The derived entities (the datasets themselves left out).

        Raises
        ------
        ProvenanceError
            Neither *obs_id* nor *publisher_did* is given.
        """
        if obs_id is None and publisher_did is None:
            raise ProvenanceError("derived_from needs an obs_id or a publisher_did")
        column, value = (
            ("obs_id", str(obs_id)) if obs_id is not None else ("publisher_did", publisher_did)
        )
        # Portable recursive CTE (SQLite and PostgreSQL) over wasDerivedFrom, so a product
        # computed from other runs of the same activity is not listed.
        sql = sa.text(f"""
            WITH RECURSIVE derived(entity_id) AS (
                SELECT id FROM prov_entity WHERE {column} = :value
                UNION
                SELECT dv.entity_id FROM derived d
                JOIN prov_derivation dv ON dv.source_id = d.entity_id
            )
            SELECT e.record FROM prov_entity e JOIN derived d ON d.entity_id = e.id
            WHERE e.{column} IS NULL OR e.{column} <> :value
        """)
        return [
            EntityRecord.from_dict(json.loads(row.record))
            for row in self._read(sql, {"value": value})
        ]

    def find_entities(
        self, *, location: str | None = None, sha256: str | None = None
    ) -> list[EntityRecord]:
        """Entities recorded at a file location or with a sha256.

        Parameters
        ----------
        location : str, optional
            A file path or URL, as recorded.
        sha256 : str, optional
            A file's sha256 (or an object's content hash).

        Returns
        -------
        list of EntityRecord
            The matching entities.
        """
        t = self._tables()
        stmt = sa.select(t.entity_table.c.record)
        if location is not None:
            stmt = stmt.where(t.entity_table.c.location == location)
        if sha256 is not None:
            stmt = stmt.where(t.entity_table.c.sha256 == sha256)
        return [EntityRecord.from_dict(json.loads(row.record)) for row in self._read(stmt)]

    def _kind_of(self, node_id: str) -> str:
        t = self._tables()
        if self._read(sa.select(t.activity_table.c.id).where(t.activity_table.c.id == node_id)):
            return "activity"
        if self._read(sa.select(t.entity_table.c.id).where(t.entity_table.c.id == node_id)):
            return "entity"
        raise ProvenanceError(f"ID {node_id!r} is neither an activity nor an entity of the store")

    def lineage(
        self, ids: str | Iterable[str], *, depth: int | None = 1, direction: str = "BACK"
    ) -> ProvenanceGraph:
        """The provenance around *ids*.

        Parameters
        ----------
        ids : str or iterable of str
            Activity or entity ids.
        depth : int or None
            How many relations deep (None: all).
        direction : {"BACK", "FORTH"}
            Towards the inputs or towards the products.

        Returns
        -------
        ProvenanceGraph
            The activities and entities reached.

        Raises
        ------
        ProvenanceError
            A bad *direction* or *depth*, or an id the store does not hold.
        """
        direction = direction.upper()
        if direction not in ("BACK", "FORTH", "BOTH"):
            raise ProvenanceError(f"DIRECTION must be BACK or FORTH, not {direction!r}")
        if depth is not None and depth < 0:
            raise ProvenanceError(f"DEPTH must be a non-negative integer or ALL, not {depth}")
        t = self._tables()
        ids = [ids] if isinstance(ids, str) else list(ids)
        seen = {i: self._kind_of(i) for i in ids}
        frontier = dict(seen)
        steps = 0
        while frontier and (depth is None or steps < depth):
            ents = [i for i, k in frontier.items() if k == "entity"]
            acts = [i for i, k in frontier.items() if k == "activity"]
            found: dict[str, str] = {}
            for chunk in _chunks(ents):
                if direction in ("BACK", "BOTH"):
                    stmt = sa.select(t.generated_table.c.activity_id).where(
                        t.generated_table.c.entity_id.in_(chunk)
                    )
                    found.update({r[0]: "activity" for r in self._read(stmt)})
                if direction in ("FORTH", "BOTH"):
                    stmt = sa.select(t.used_table.c.activity_id).where(
                        t.used_table.c.entity_id.in_(chunk)
                    )
                    found.update({r[0]: "activity" for r in self._read(stmt)})
            for chunk in _chunks(acts):
                if direction in ("BACK", "BOTH"):
                    stmt = sa.select(t.used_table.c.entity_id).where(
                        t.used_table.c.activity_id.in_(chunk)
                    )
                    found.update({r[0]: "entity" for r in self._read(stmt)})
                    stmt = sa.select(t.informed_table.c.informant_id).where(
                        t.informed_table.c.activity_id.in_(chunk)
                    )
                    found.update({r[0]: "activity" for r in self._read(stmt)})
                if direction in ("FORTH", "BOTH"):
                    stmt = sa.select(t.generated_table.c.entity_id).where(
                        t.generated_table.c.activity_id.in_(chunk)
                    )
                    found.update({r[0]: "entity" for r in self._read(stmt)})
                    stmt = sa.select(t.informed_table.c.activity_id).where(
                        t.informed_table.c.informant_id.in_(chunk)
                    )
                    found.update({r[0]: "activity" for r in self._read(stmt)})
            frontier = {i: k for i, k in found.items() if i not in seen}
            seen.update(frontier)
            steps += 1
        return self._graph_of(seen)

    def _graph_of(self, nodes: Mapping[str, str]) -> ProvenanceGraph:
        t = self._tables()
        graph = ProvenanceGraph()
        acts = [i for i, k in nodes.items() if k == "activity"]
        ents = [i for i, k in nodes.items() if k == "entity"]
        for chunk in _chunks(acts):
            for row in self._read(
                sa.select(t.activity_table).where(t.activity_table.c.id.in_(chunk))
            ):
                graph.activities[row.id] = self._activity_from_row(row)
        for chunk in _chunks(ents):
            stmt = sa.select(t.entity_table.c.id, t.entity_table.c.record).where(
                t.entity_table.c.id.in_(chunk)
            )
            for row in self._read(stmt):
                graph.entities[row.id] = EntityRecord.from_dict(json.loads(row.record))
        return graph

    def provsap(
        self,
        ID: str | Iterable[str],
        *,
        DEPTH: int | str = 1,
        DIRECTION: str = "BACK",
        AGENTS: bool | str = True,
        MODEL: str = "IVOA",
        RESPONSEFORMAT: str = "PROV-JSON",
    ) -> str:
        """Answer a ProvSAP query (parameter names as in the IVOA ProvSAP draft).

        Parameters
        ----------
        ID : str or iterable of str
            Activity or entity ids.
        DEPTH : int or str
            Relations to follow, or ``ALL``.
        DIRECTION : {"BACK", "FORTH"}
            Towards the inputs or towards the products.
        AGENTS : bool or str
            Include the agents.
        MODEL : {"IVOA", "W3C"}
            IVOA ProvenanceDM or plain W3C PROV.
        RESPONSEFORMAT : str
            ``PROV-JSON``, ``PROV-XML``, ``PROV-N`` or ``PROV-O``.

        Returns
        -------
        str
            The provenance document in ``RESPONSEFORMAT``.

        Raises
        ------
        ProvenanceError
            A bad parameter value or an unknown id.
        """
        if isinstance(DEPTH, str):
            if DEPTH.upper() == "ALL":
                depth: int | None = None
            elif DEPTH.isdigit():
                depth = int(DEPTH)
            else:
                raise ProvenanceError(f"DEPTH must be an integer or ALL, not {DEPTH!r}")
        else:
            depth = DEPTH
        agents = AGENTS if isinstance(AGENTS, bool) else str(AGENTS).lower() in ("true", "1", "yes")
        graph = self.lineage(ID, depth=depth, direction=DIRECTION)
        return graph.serialize(RESPONSEFORMAT, model=MODEL, agents=agents)
