"""The IVOA ProvenanceDM records of one activity, written into a W3C PROV document.

Each description is a ``prov:Entity`` whose ``prov:type`` is the qualified name of its
ProvenanceDM class in the ``voprov`` namespace, identified by what it describes (so
two runs of the same step share their descriptions):

- ``voprov:ActivityDescription`` (name, version, description), linked from the
  activity by ``wasInfluencedBy`` of type ``voprov:isDescribedBy``;
- ``voprov:UsageDescription`` / ``voprov:GenerationDescription`` per role (role,
  multiplicity, the entity description it expects), named by the ``voprov:description``
  attribute of each ``used`` / ``wasGeneratedBy``;
- ``voprov:EntityDescription`` per product type or data level (name, data level);
- ``voprov:ParameterDescription`` per parameter name (name, value type), described
  by each ``voprov:Parameter`` value;
- ``voprov:Parameter`` and ``voprov:ConfigFile`` values, used by the activity with
  type ``voprov:wasConfiguredBy`` (the ProvenanceDM relation, as ProvTAP maps it).

The W3C model keeps parameters and the configuration as plain entities
(``ctanb:Parameter``, ``ctanb:Configuration``) used with their role, so no value is
lost without the IVOA vocabulary.
"""

from __future__ import annotations

import json
from typing import Any

from prov.model import PROV_ROLE, PROV_TYPE, ProvDocument

from ._values import display_value
from .records import ActivityRecord, EntityRecord, ProvenanceGraph, safe_local

__all__ = ["add_configuration", "add_descriptions", "qualified", "usage_attributes"]


def qualified(doc: ProvDocument, name: str) -> Any:
    """*name* (``prefix:local``) as a PROV qualified name, so ``prov:type`` values are
    written as ``prov:QUALIFIED_NAME`` rather than plain strings."""
    return doc.valid_qualified_name(name)


def _description_id(act: ActivityRecord) -> str:
    return f"ctanb:desc-{safe_local(act.name)}-{safe_local(act.version or 'unversioned')}"


def _entity_description(doc: ProvDocument, entity: EntityRecord | None) -> str | None:
    if entity is None or entity.kind == "config":
        return None
    name = entity.product_type or entity.data_level or entity.kind
    desc_id = f"ctanb:entitydesc-{safe_local(name)}"
    doc.entity(
        desc_id,
        {
            PROV_TYPE: qualified(doc, "voprov:EntityDescription"),
            "voprov:name": name,
            "voprov:type": entity.data_level or entity.kind,
        },
    )
    return desc_id


def usage_attributes(
    doc: ProvDocument,
    act: ActivityRecord,
    role: str,
    entity: EntityRecord | None,
    kind: str,
    multiplicity: int,
) -> dict[str, Any]:
    """Attributes of a ``used`` (kind ``Usage``) or ``wasGeneratedBy`` (``Generation``)
    with its ``voprov:UsageDescription``/``voprov:GenerationDescription`` written."""
    desc_id = f"{_description_id(act)}-{kind.lower()}-{safe_local(role or 'default')}"
    attrs: dict[str, Any] = {
        PROV_TYPE: qualified(doc, f"voprov:{kind}Description"),
        "voprov:role": role,
        "voprov:multiplicity": multiplicity,
    }
    entity_desc = _entity_description(doc, entity)
    if entity_desc:
        attrs["voprov:entityDescription"] = qualified(doc, entity_desc)
    doc.entity(desc_id, attrs)
    return {PROV_ROLE: role, "voprov:description": qualified(doc, desc_id)}


def _value_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "long"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return "char"
    if isinstance(value, dict) and "__quantity__" in value:
        return "double"
    return "json"


def add_descriptions(doc: ProvDocument, act: ActivityRecord, graph: ProvenanceGraph) -> None:
    """The ActivityDescription, Parameters with their ParameterDescriptions and the
    ConfigFile of *act* (IVOA model)."""
    local = safe_local(act.id.split(":", 1)[-1])
    desc_id = _description_id(act)
    doc.entity(
        desc_id,
        {
            PROV_TYPE: qualified(doc, "voprov:ActivityDescription"),
            "voprov:name": act.name,
            "voprov:version": act.version,
            "voprov:description": act.description,
        },
    )
    doc.wasInfluencedBy(
        act.id, desc_id, other_attributes={PROV_TYPE: qualified(doc, "voprov:isDescribedBy")}
    )
    for name, value in act.parameters.items():
        param_desc = f"{desc_id}-param-{safe_local(name)}"
        doc.entity(
            param_desc,
            {
                PROV_TYPE: qualified(doc, "voprov:ParameterDescription"),
                "voprov:name": name,
                "voprov:valueType": _value_type(value),
            },
        )
        pid = f"ctanb:param-{local}-{safe_local(name)}"
        doc.entity(
            pid,
            {
                PROV_TYPE: qualified(doc, "voprov:Parameter"),
                "voprov:name": name,
                "voprov:value": display_value(value),
                "ctanb:encoded": json.dumps(value),
            },
        )
        doc.wasInfluencedBy(
            pid, param_desc, other_attributes={PROV_TYPE: qualified(doc, "voprov:isDescribedBy")}
        )
        doc.used(
            act.id,
            pid,
            other_attributes={
                PROV_TYPE: qualified(doc, "voprov:wasConfiguredBy"),
                PROV_ROLE: "parameter",
            },
        )
    add_configuration(doc, act, ivoa=True)


def add_configuration(doc: ProvDocument, act: ActivityRecord, *, ivoa: bool) -> None:
    """The activity's configuration (and, W3C model, its parameters) as used entities."""
    local = safe_local(act.id.split(":", 1)[-1])
    if not ivoa:
        for name, value in act.parameters.items():
            pid = f"ctanb:param-{local}-{safe_local(name)}"
            doc.entity(
                pid,
                {
                    PROV_TYPE: qualified(doc, "ctanb:Parameter"),
                    "ctanb:name": name,
                    "prov:value": display_value(value),
                    "ctanb:encoded": json.dumps(value),
                },
            )
            doc.used(act.id, pid, other_attributes={PROV_ROLE: "parameter"})
    if act.config:
        cid = f"ctanb:config-{local}"
        doc.entity(
            cid,
            {
                PROV_TYPE: qualified(doc, "voprov:ConfigFile" if ivoa else "ctanb:Configuration"),
                "voprov:name" if ivoa else "ctanb:name": "configuration",
                "ctanb:encoded": json.dumps(act.config, sort_keys=True),
            },
        )
        attrs: dict[str, Any] = {PROV_ROLE: "configuration"}
        if ivoa:
            attrs[PROV_TYPE] = qualified(doc, "voprov:wasConfiguredBy")
        doc.used(act.id, cid, other_attributes=attrs)
