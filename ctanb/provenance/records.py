"""The in-process provenance records and the graph that holds them.

These plain dataclasses are what the capture layer fills, the store writes and
reads, and :mod:`ctanb.provenance.document` maps to and from W3C PROV. Every
value in them is JSON-compatible (parameters are encoded by
:func:`ctanb.provenance._values.encode_value`).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from ._agents import AgentRecord

__all__ = [
    "OBSCORE_PROVENANCE_KEYS",
    "ActivityRecord",
    "EntityRecord",
    "ProvenanceGraph",
    "Relation",
    "safe_local",
]

#: ObsCore provenance keywords that propagate from inputs to products.
OBSCORE_PROVENANCE_KEYS = ("calib_version", "reco_version", "reco_method", "applied_cuts")

#: Sentinel for "use :func:`~ctanb.provenance.default_store`" in ``store=`` arguments.
DEFAULT_STORE: Any = type("DefaultStore", (), {"__repr__": lambda self: "<default store>"})()

#: Activity statuses; ``running`` rows whose process is gone are reported ``incomplete``.
STATUSES = ("running", "completed", "failed", "incomplete")


def safe_local(text: str) -> str:
    """*text* reduced to characters that are safe in a PROV qualified name's local part."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(text)) or "_"


@dataclass
class EntityRecord:
    """A thing used or generated: a file, an in-memory object or a configuration.

    Attributes
    ----------
    id : str
        The entity's id (``ctanb:entity-...``).
    kind : str
        ``file``, ``memory`` or ``config``.
    location : str or None
        Where a file was (path or URL).
    sha256 : str or None
        The file's sha256 (for ``file``) or the content hash (``memory``/``config``).
    size : int or None
        The file's size in bytes.
    data_sha256 : str or None
        The hash of a FITS product's data without its provenance HDU.
    data_level, obs_id, publisher_did, product_type : str or None
        ObsCore-like description: data level, observation, publisher DID, type.
    label : str or None
        A short name for graphs.
    attributes : dict
        The ObsCore keywords and anything else given.
    """

    id: str
    kind: str
    location: str | None = None
    sha256: str | None = None
    size: int | None = None
    data_sha256: str | None = None
    data_level: str | None = None
    obs_id: str | None = None
    publisher_did: str | None = None
    product_type: str | None = None
    label: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (as stored).

        Returns
        -------
        dict
            Every field by name.
        """
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EntityRecord:
        """The inverse of :meth:`to_dict`.

        Parameters
        ----------
        data : dict
            What :meth:`to_dict` returned.

        Returns
        -------
        EntityRecord
            The record.
        """
        return cls(**data)


@dataclass(frozen=True)
class Relation:
    """One ``used`` or ``wasGeneratedBy`` link between an activity and an entity."""

    entity_id: str
    role: str = ""


@dataclass
class ActivityRecord:
    """One run of a piece of code, with its IVOA ActivityDescription (name, version).

    Attributes
    ----------
    id, name, version, description : str
        The activity's id and its ActivityDescription.
    callable : str or None
        ``module:qualname`` of the code to call again on redo.
    status : str
        ``running``, ``completed``, ``failed`` or ``incomplete``.
    start_time, end_time : str
        ISO times (UTC); ``end_time`` is None while running.
    message : str
        Why it failed, when it did.
    parameters, config : dict
        Encoded JSON values.
    used, generated : list of Relation
        The entities the activity used and generated, with their roles.
    informed_by : list of str
        Activities whose products this one used.
    agents : list of AgentRecord
        Who and what ran it (user, host, software versions).
    pid : int or None
        The process that ran it.
    derivations : dict of str to list of str
        Generated entity id -> the used entity ids it was computed from.
    """

    id: str
    name: str
    version: str = ""
    description: str = ""
    callable: str | None = None
    status: str = "running"
    start_time: str = ""
    end_time: str | None = None
    message: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    used: list[Relation] = field(default_factory=list)
    generated: list[Relation] = field(default_factory=list)
    informed_by: list[str] = field(default_factory=list)
    agents: list[AgentRecord] = field(default_factory=list)
    pid: int | None = None
    #: generated entity id -> the used entity ids it was computed from; a product not
    #: listed derives from every used file and in-memory input (wasDerivedFrom).
    derivations: dict[str, list[str]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (as stored).

        Returns
        -------
        dict
            Every field by name, relations and agents as dicts.
        """
        data = asdict(self)
        data["agents"] = [agent.to_dict() for agent in self.agents]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ActivityRecord:
        """The inverse of :meth:`to_dict`.

        Parameters
        ----------
        data : dict
            What :meth:`to_dict` returned.

        Returns
        -------
        ActivityRecord
            The record.
        """
        data = dict(data)
        data["used"] = [Relation(**r) for r in data.get("used", [])]
        data["generated"] = [Relation(**r) for r in data.get("generated", [])]
        data["agents"] = [AgentRecord(**a) for a in data.get("agents", [])]
        return cls(**data)

    def sources_of(self, entity_id: str, entities: dict[str, EntityRecord]) -> list[str]:
        """The used entities *entity_id* was derived from (configurations excluded).

        Parameters
        ----------
        entity_id : str
            A generated entity of this activity.
        entities : dict of str to EntityRecord
            The entities of the graph, to tell configurations apart.

        Returns
        -------
        list of str
            Entity ids.
        """
        if entity_id in self.derivations:
            return list(self.derivations[entity_id])
        return [
            r.entity_id
            for r in self.used
            if r.entity_id in entities and entities[r.entity_id].kind != "config"
        ]

    @property
    def software(self) -> dict[str, str]:
        """Versions of the software agents, ``{name: version}``."""
        return {a.name: a.version for a in self.agents if a.kind == "software"}


@dataclass
class ProvenanceGraph:
    """Activities, entities and agents: the provenance of one or more products.

    Build one with the capture API, :func:`~ctanb.provenance.read_provenance`
    or a store query; turn it into W3C PROV with :meth:`to_document` and into
    text or a picture with :meth:`serialize` and :meth:`to_svg`.

    Attributes
    ----------
    activities : dict of str to ActivityRecord
        By id.
    entities : dict of str to EntityRecord
        By id.
    """

    activities: dict[str, ActivityRecord] = field(default_factory=dict)
    entities: dict[str, EntityRecord] = field(default_factory=dict)

    def merge(self, other: ProvenanceGraph) -> ProvenanceGraph:
        """Add the records of *other* (in place; the newer record wins).

        Parameters
        ----------
        other : ProvenanceGraph
            The graph to add.

        Returns
        -------
        ProvenanceGraph
            This graph.
        """
        self.activities.update(other.activities)
        for key, entity in other.entities.items():
            if key not in self.entities or entity.sha256:
                self.entities[key] = entity
        return self

    @property
    def agents(self) -> dict[str, AgentRecord]:
        """All agents of all activities, by id."""
        return {a.id: a for act in self.activities.values() for a in act.agents}

    def generator_of(self, entity_id: str) -> ActivityRecord | None:
        """The activity that generated *entity_id*, if it is in the graph.

        Parameters
        ----------
        entity_id : str
            The entity.

        Returns
        -------
        ActivityRecord or None
            None when no activity of the graph generated it.
        """
        for activity in self.activities.values():
            if any(rel.entity_id == entity_id for rel in activity.generated):
                return activity
        return None

    def products(self) -> list[EntityRecord]:
        """Entities generated by some activity of the graph.

        Returns
        -------
        list of EntityRecord
            The products.
        """
        ids = {rel.entity_id for a in self.activities.values() for rel in a.generated}
        return [self.entities[i] for i in ids if i in self.entities]

    def to_document(self, *, model: str = "IVOA", agents: bool = True) -> Any:
        """This graph as a :class:`prov.model.ProvDocument`.

        Parameters
        ----------
        model : {"IVOA", "W3C"}
            IVOA ProvenanceDM (with its attributes) or plain W3C PROV.
        agents : bool
            Include the agents (user, host, software).

        Returns
        -------
        prov.model.ProvDocument
            The document.
        """
        from .document import graph_to_document

        return graph_to_document(self, model=model, agents=agents)

    def serialize(self, format: str = "json", **kwargs: Any) -> str:
        """The graph as text.

        Parameters
        ----------
        format : {"json", "xml", "provn", "turtle"}
            PROV-JSON, PROV-XML, PROV-N or PROV-O.
        **kwargs
            ``model``, ``agents``, ``indent`` of :func:`ctanb.provenance.serialize`.

        Returns
        -------
        str
            The document.

        Raises
        ------
        ProvenanceError
            Unknown format.
        """
        from .document import serialize

        return serialize(self, format, **kwargs)

    def to_svg(self, path: str | None = None) -> str:
        """An SVG picture of the graph (graphviz ``dot``).

        Parameters
        ----------
        path : str, optional
            Also write the picture to this file.

        Returns
        -------
        str
            The SVG text.
        """
        from .graph import graph_to_svg

        return graph_to_svg(self, path)
