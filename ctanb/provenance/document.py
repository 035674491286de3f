"""Mapping between :class:`ProvenanceGraph` and W3C PROV (the ``prov`` package).

IVOA ProvenanceDM is mapped onto plain W3C PROV with the IVOA ``voprov``
namespace (see the package docstring for why):

==========================  ================================================
ProvenanceDM                PROV record
==========================  ================================================
Activity                    ``prov:Activity`` (``voprov:name``, ``ctanb:status``,
                            ``ctanb:callable``)
ActivityDescription         ``prov:Entity`` of ``prov:type voprov:ActivityDescription``
                            (``voprov:name``, ``voprov:version``,
                            ``voprov:description``), linked by ``wasInfluencedBy``
                            with ``prov:type voprov:isDescribedBy``
Parameter                   ``prov:Entity`` of ``prov:type voprov:Parameter``
                            (``voprov:name``, ``voprov:value``, ``ctanb:encoded``),
                            ``used`` with ``prov:type voprov:wasConfiguredBy``
ConfigFile                  ``prov:Entity`` of ``prov:type voprov:ConfigFile``,
                            ``used`` the same way
UsageDescription            ``prov:role`` on ``used`` (+ ``voprov:type``)
GenerationDescription       ``prov:role`` on ``wasGeneratedBy``
Entity (dataset)            ``prov:Entity`` (``prov:location``, ``ctanb:sha256``,
                            ObsCore keywords as ``ctanb:<column>``)
Agent                       ``prov:Person`` / ``prov:SoftwareAgent`` / ``prov:Agent``
==========================  ================================================
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from prov.model import (
    PROV_ROLE,
    PROV_TYPE,
    ProvActivity,
    ProvAgent,
    ProvAssociation,
    ProvCommunication,
    ProvDerivation,
    ProvDocument,
    ProvEntity,
    ProvGeneration,
    ProvInfluence,
    ProvUsage,
    QualifiedName,
)

from .._errors import ProvenanceError
from ._agents import AgentRecord
from ._provdm import add_configuration, add_descriptions, qualified, usage_attributes
from .records import ActivityRecord, EntityRecord, ProvenanceGraph, Relation, safe_local

__all__ = [
    "CTANB_NS",
    "FORMATS",
    "VOPROV_NS",
    "document_to_graph",
    "graph_to_document",
    "parse",
    "serialize",
]

VOPROV_NS = "http://www.ivoa.net/documents/ProvenanceDM/ns/voprov/"
CTANB_NS = "https://ctanb.readthedocs.io/ns/provenance#"

#: Serialization names accepted by :func:`serialize` -> (prov format, extra kwargs).
FORMATS: dict[str, tuple[str, dict[str, str]]] = {
    "json": ("json", {}),
    "xml": ("xml", {}),
    "provn": ("provn", {}),
    "turtle": ("rdf", {"rdf_format": "turtle"}),
}

_ENTITY_FIELDS = (
    "location",
    "sha256",
    "size",
    "data_sha256",
    "data_level",
    "obs_id",
    "publisher_did",
    "product_type",
    "label",
)
_AGENT_TYPES = {"person": "prov:Person", "software": "prov:SoftwareAgent", "host": "prov:Agent"}


def _new_document() -> ProvDocument:
    doc = ProvDocument()
    doc.add_namespace("voprov", VOPROV_NS)
    doc.add_namespace("ctanb", CTANB_NS)
    return doc


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def graph_to_document(
    graph: ProvenanceGraph, *, model: str = "IVOA", agents: bool = True
) -> ProvDocument:
    """The W3C PROV document of *graph*.

    Parameters
    ----------
    model : {"IVOA", "W3C"}
        ``IVOA`` includes the ProvenanceDM records (descriptions, parameters,
        configuration); ``W3C`` keeps only plain PROV records and attributes.
    agents : bool
        Include agents and ``wasAssociatedWith`` relations.
    """
    model = model.upper()
    if model not in ("IVOA", "W3C"):
        raise ProvenanceError(f"unknown provenance MODEL {model!r}; use IVOA or W3C")
    ivoa = model == "IVOA"
    doc = _new_document()
    written_agents: set[str] = set()
    for entity in graph.entities.values():
        attrs: dict[str, Any] = {PROV_TYPE: qualified(doc, f"ctanb:{entity.kind.capitalize()}")}
        for name in _ENTITY_FIELDS:
            value = getattr(entity, name)
            if value is not None:
                key = (
                    "prov:location"
                    if name == "location"
                    else "prov:label"
                    if name == "label"
                    else f"ctanb:{name}"
                )
                attrs[key] = value
        for key, value in entity.attributes.items():
            attrs[f"ctanb:{safe_local(key)}"] = (
                value if isinstance(value, str | int | float) else json.dumps(value)
            )
        doc.entity(entity.id, attrs)
        if entity.attributes.get("was_revision_of"):  # made again by ``redo``
            doc.wasDerivedFrom(
                entity.id,
                str(entity.attributes["was_revision_of"]),
                other_attributes={PROV_TYPE: qualified(doc, "prov:Revision")},
            )
    for act in graph.activities.values():
        attrs = {"prov:label": act.name, "ctanb:status": act.status, "ctanb:version": act.version}
        if ivoa:
            attrs["voprov:name"] = act.name
        if act.message:
            attrs["voprov:comment" if ivoa else "ctanb:message"] = act.message
        if act.pid is not None:
            attrs["ctanb:pid"] = act.pid
        doc.activity(act.id, _time(act.start_time), _time(act.end_time), attrs)
        for kind, relations in (("Usage", act.used), ("Generation", act.generated)):
            counts: dict[str, int] = {}
            for rel in relations:
                counts[rel.role] = counts.get(rel.role, 0) + 1
            for rel in relations:
                entity = graph.entities.get(rel.entity_id)
                if entity is None:
                    continue
                attrs = (
                    usage_attributes(doc, act, rel.role, entity, kind, counts[rel.role])
                    if ivoa
                    else {PROV_ROLE: rel.role}
                )
                if kind == "Usage":
                    doc.used(act.id, rel.entity_id, _time(act.start_time), other_attributes=attrs)
                else:
                    doc.wasGeneratedBy(
                        rel.entity_id, act.id, _time(act.end_time), other_attributes=attrs
                    )
        for out in act.generated:
            if out.entity_id in graph.entities:
                for source in act.sources_of(out.entity_id, graph.entities):
                    doc.wasDerivedFrom(out.entity_id, source, act.id)
        for informant in act.informed_by:
            doc.wasInformedBy(act.id, informant)
        if ivoa:
            add_descriptions(doc, act, graph)
        else:
            add_configuration(doc, act, ivoa=False)
        if agents:
            for agent in act.agents:
                if agent.id not in written_agents:  # one agent record per identity
                    written_agents.add(agent.id)
                    doc.agent(
                        agent.id,
                        {
                            PROV_TYPE: qualified(doc, _AGENT_TYPES.get(agent.kind, "prov:Agent")),
                            "prov:label": agent.name,
                            "ctanb:kind": agent.kind,
                            "ctanb:version": agent.version,
                        },
                    )
                doc.wasAssociatedWith(act.id, agent.id, other_attributes={PROV_ROLE: agent.kind})
    return doc


def _structured(value: Any) -> Any:
    """An attribute written as JSON text (lists, mappings) read back as what it was."""
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _display(value: Any) -> str:
    from ._values import display_value

    return display_value(value)


def _local(qn: Any) -> str:
    return str(qn) if qn is not None else ""


def _attrs(record: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in record.extra_attributes:
        name = key.localpart if isinstance(key, QualifiedName) else str(key)
        prefix = key.namespace.prefix if isinstance(key, QualifiedName) else ""
        out[f"{prefix}:{name}"] = (
            str(value) if isinstance(value, QualifiedName) else getattr(value, "value", value)
        )
    return out


def document_to_graph(doc: ProvDocument) -> ProvenanceGraph:
    """Rebuild a :class:`ProvenanceGraph` from a document written by :func:`graph_to_document`."""
    graph = ProvenanceGraph()
    doc = doc.flattened() if doc.has_bundles() else doc
    params: dict[str, tuple[str, Any]] = {}
    configs: dict[str, Any] = {}
    agents: dict[str, AgentRecord] = {}
    for rec in doc.get_records(ProvEntity):
        attrs = _attrs(rec)
        kind = str(attrs.get("prov:type", "")).split(":")[-1]
        if kind == "Parameter":
            params[_local(rec.identifier)] = (
                attrs.get("voprov:name", attrs.get("ctanb:name")),
                json.loads(attrs["ctanb:encoded"]),
            )
        elif kind in ("ConfigFile", "Configuration"):
            configs[_local(rec.identifier)] = json.loads(attrs["ctanb:encoded"])
        elif kind in ("File", "Memory", "Config"):
            fields = {
                name: attrs.pop(
                    "prov:location"
                    if name == "location"
                    else "prov:label"
                    if name == "label"
                    else f"ctanb:{name}",
                    None,
                )
                for name in _ENTITY_FIELDS
            }
            if fields["size"] is not None:
                fields["size"] = int(fields["size"])
            extra = {
                k.split(":", 1)[1]: _structured(v)
                for k, v in attrs.items()
                if k.startswith("ctanb:")
            }
            graph.entities[_local(rec.identifier)] = EntityRecord(
                id=_local(rec.identifier), kind=kind.lower(), attributes=extra, **fields
            )
    for rec in doc.get_records(ProvAgent):
        attrs = _attrs(rec)
        agents[_local(rec.identifier)] = AgentRecord(
            _local(rec.identifier),
            str(attrs.get("ctanb:kind", "agent")),
            str(attrs.get("prov:label", "")),
            str(attrs.get("ctanb:version", "")),
        )
    for rec in doc.get_records(ProvActivity):
        attrs = _attrs(rec)
        start, end = rec.get_startTime(), rec.get_endTime()
        graph.activities[_local(rec.identifier)] = ActivityRecord(
            id=_local(rec.identifier),
            name=str(attrs.get("prov:label", "")),
            version=str(attrs.get("ctanb:version", "")),
            callable=attrs.get("ctanb:callable"),
            status=str(attrs.get("ctanb:status", "completed")),
            message=str(attrs.get("voprov:comment", attrs.get("ctanb:message", ""))),
            start_time=start.isoformat() if start else "",
            end_time=end.isoformat() if end else None,
            pid=int(attrs["ctanb:pid"]) if "ctanb:pid" in attrs else None,
        )
    descriptions = {}
    for rec in doc.get_records(ProvEntity):
        attrs = _attrs(rec)
        if str(attrs.get("prov:type", "")).endswith("ActivityDescription"):
            descriptions[_local(rec.identifier)] = str(attrs.get("voprov:description", ""))
    for rec in doc.get_records():
        args = dict(rec.formal_attributes)
        attrs = _attrs(rec)
        values = list(args.values())
        if isinstance(rec, ProvUsage):
            act, ent = graph.activities.get(_local(values[0])), _local(values[1])
            if act is None:
                continue
            if ent in params:
                act.parameters[params[ent][0]] = params[ent][1]
            elif ent in configs:
                act.config = configs[ent]
            else:
                act.used.append(Relation(ent, str(attrs.get("prov:role", ""))))
        elif isinstance(rec, ProvGeneration):
            act = graph.activities.get(_local(values[1]))
            if act is not None:
                act.generated.append(Relation(_local(values[0]), str(attrs.get("prov:role", ""))))
        elif isinstance(rec, ProvDerivation):
            act = graph.activities.get(_local(values[2])) if len(values) > 2 else None
            if act is not None and values[2] is not None:
                act.derivations.setdefault(_local(values[0]), []).append(_local(values[1]))
        elif isinstance(rec, ProvCommunication):
            act = graph.activities.get(_local(values[0]))
            if act is not None:
                act.informed_by.append(_local(values[1]))
        elif isinstance(rec, ProvAssociation):
            act = graph.activities.get(_local(values[0]))
            if act is not None and _local(values[1]) in agents:
                act.agents.append(agents[_local(values[1])])
        elif isinstance(rec, ProvInfluence) and not isinstance(rec, ProvCommunication):
            act = graph.activities.get(_local(values[0]))
            if act is not None and _local(values[1]) in descriptions:
                act.description = descriptions[_local(values[1])]
    return graph


def serialize(
    graph: ProvenanceGraph | ProvDocument,
    format: str = "json",
    *,
    model: str = "IVOA",
    agents: bool = True,
    indent: int | None = None,
) -> str:
    """Serialize to PROV-JSON (``json``), PROV-XML (``xml``), PROV-N (``provn``) or PROV-O (``turtle``).

    Parameters
    ----------
    graph : ProvenanceGraph or prov.model.ProvDocument
        The provenance.
    format : str
        ``json``, ``xml``, ``provn`` or ``turtle`` (``prov-`` prefixes accepted).
    model : {"IVOA", "W3C"}
        IVOA ProvenanceDM or plain W3C PROV (for a graph).
    agents : bool
        Include the agents (for a graph).
    indent : int, optional
        Indentation of JSON output.

    Returns
    -------
    str
        The document.

    Raises
    ------
    ProvenanceError
        Unknown format.
    """
    key = format.lower().replace("prov-", "").replace("-", "")
    key = {"n": "provn", "o": "turtle", "ttl": "turtle", "rdf": "turtle"}.get(key, key)
    if key not in FORMATS:
        raise ProvenanceError(
            f"unknown provenance format {format!r}; use one of {', '.join(FORMATS)}"
        )
    doc = (
        graph
        if isinstance(graph, ProvDocument)
        else graph_to_document(graph, model=model, agents=agents)
    )
    prov_format, extra = FORMATS[key]
    if key == "provn":
        return doc.get_provn()
    try:
        kwargs: dict[str, Any] = dict(extra)
        if key == "json":
            from prov.serializers.provjson import ProvJSONEncoder

            # What doc.serialize("json") writes, through json.dumps: its one-shot C
            # encoder is several times faster than the stream encoder json.dump uses.
            return json.dumps(doc, cls=ProvJSONEncoder, indent=indent)
        return doc.serialize(format=prov_format, **kwargs)
    except Exception as exc:  # prov raises DoNotExist when an optional extra is missing
        raise ProvenanceError(f"cannot write {format}: {exc}") from None


def parse(text: str | bytes, format: str = "json") -> ProvenanceGraph:
    """Read PROV-JSON (or ``xml``) text written by ctanb back into a graph.

    Parameters
    ----------
    text : str or bytes
        The document.
    format : {"json", "xml"}
        Its format.

    Returns
    -------
    ProvenanceGraph
        The records.

    Raises
    ------
    ProvenanceError
        The text is not valid PROV, or not a record ctanb can read.
    """
    try:
        doc = ProvDocument.deserialize(content=text, format=format)
    except Exception:  # the prov library's own words name its internals
        raise ProvenanceError(
            f"the provenance document is not valid PROV-{format.upper()}"
        ) from None
    try:
        return document_to_graph(doc)
    except Exception:
        raise ProvenanceError(
            "the provenance document is not a record ctanb can read (damaged or edited)"
        ) from None
