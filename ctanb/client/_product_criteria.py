"""Product searches: the kind of a published product and its provenance, as ADQL conditions.

Published products (DL4/DL5) have ObsCore rows like datasets, and their provenance is
in the ProvTAP tables of the ``provenance`` schema (:mod:`ctanb.archive.provtap`). Each
criterion here becomes one condition on ``ivoa.obscore``: the product kind is an exact
``dataproduct_subtype`` (``<level>-<kind>``), and every provenance criterion an
``obs_publisher_did IN (SELECT ... FROM provenance.... JOIN ...)`` subquery, so they
combine with AND with every other criterion and the query stays one plain ADQL text.

Criterion -> condition
----------------------
=====================  ============================================================
``product_kind``       ``dataproduct_subtype IN ('DL4-counts', 'DL5-counts')`` (or
                       only the ``data_level`` given)
``derived_from_run``   a DL3 run of its whole lineage (``provenance.product_progenitor``)
``software``           an agent (software) of an activity of its whole lineage
(``software_version``) (``provenance.product_activity``), with ``provenance.agent.version``
``step``               a step (``provenance.activity_description.name``) of an activity
(``step_version``)     of its whole lineage, and its version
``parameter``          ``{name: value}``: a parameter of an activity of its whole lineage
                       (``provenance.parameter``; the value compared as text)
=====================  ============================================================

Every provenance criterion covers the product's whole lineage: flux points whose
dataset-making step used ``correlation_radius = 0.1 deg`` are found by that parameter,
and a smoothed map by the ``counts-map`` step that made its input. ADQL has no recursive
query to walk the chain, so the archive keeps the closures when it publishes a product
(``provenance.product_progenitor``: its DL3 runs; ``provenance.product_activity``: its
activities, itself included) and each criterion is one plain join with them, answered
alike by the embedded archive and DaCHS. Criteria combine with AND product by product:
``step`` and ``parameter`` may be met by two different activities of one lineage.
"""

from __future__ import annotations

import re
from typing import Any

from .._errors import CriteriaError

__all__ = ["PRODUCT_CRITERIA", "parse_parameter", "product_conditions"]

#: The criteria of this module (Criteria field names).
PRODUCT_CRITERIA = (
    "product_kind",
    "derived_from_run",
    "software",
    "software_version",
    "step",
    "step_version",
    "parameter",
)

#: Data levels a published product has.
PRODUCT_LEVELS = ("DL4", "DL5")

#: Parameters one search may ask for (each is a subquery of two tables: the archive
#: allows 32 tables in one query).
MAX_PARAMETERS = 5

_KIND = re.compile(r"^[A-Za-z0-9_]{1,40}$")
_PARAMETER = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.]{0,63})\s*=\s*(\S.*?)\s*$")

# Subqueries name their tables in full, with no correlation names (AS e): DaCHS 2.7
# looks every name of a FROM clause up as a table, and each correlation name it cannot
# find costs it a new PostgreSQL connection (~10 ms of CPU per name and request, see
# deploy/dachs/README.md); both archives read the full names alike.
_PROV = "provenance."
_ASSOCIATION, _AGENT = _PROV + "wasassociatedwith", _PROV + "agent"
_ACTIVITY, _DESCRIPTION = _PROV + "activity", _PROV + "activity_description"
_PARAMETER_TABLE, _PROGENITOR = _PROV + "parameter", _PROV + "product_progenitor"
_CHAIN = _PROV + "product_activity"

# Every activity of the whole lineage of each published product (ctanb.archive.publish).
_LINEAGE = f"SELECT {_CHAIN}.product_did FROM {_CHAIN}"


def parse_parameter(value: Any) -> dict[str, str] | None:
    """``{name: value}`` from ``"radius_deg = 0.1"`` (``;`` between several) or a dict."""
    if value is None or value == "" or value == {}:
        return None
    if isinstance(value, dict):
        out = {}
        for name, item in value.items():
            if not isinstance(name, str) or not _PARAMETER.match(f"{name}=x"):
                raise CriteriaError(
                    f"parameter: {name!r} is not a parameter name (letters, digits, _ and .)",
                    field="parameter",
                )
            out[name] = item if isinstance(item, str) else _number_text(item)
        return out
    if not isinstance(value, str):
        raise CriteriaError(
            f"parameter: give it as 'name = value' (e.g. radius_deg = 0.1), got {value!r}",
            field="parameter",
        )
    out = {}
    for part in value.split(";"):
        if not part.strip():
            continue
        found = _PARAMETER.match(part)
        if not found:
            raise CriteriaError(
                f"parameter: {part.strip()!r} is not 'name = value' (e.g. radius_deg = 0.1)",
                field="parameter",
            )
        out[found.group(1)] = found.group(2)
    return out or None


def _number_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


#: What users call a kind -> the kinds it finds (``flux_points``: SpectrumStep's ``flux``).
KIND_ALIASES = {
    "flux_points": ("flux_points", "flux"),
    "light_curve": ("light_curve", "lightcurve"),
}


def check_product_criteria(values: dict[str, Any]) -> None:
    """Refuse product criteria that cannot be right (called by Criteria's validation)."""
    for kind in _as_list(values.get("product_kind")):
        if not _KIND.match(kind):
            raise CriteriaError(
                f"product_kind: {kind!r} is not a product kind (letters, digits and _, "
                "e.g. counts, flux, spectrum, lightcurve)",
                field="product_kind",
            )
    for name, needs in (("software_version", "software"), ("step_version", "step")):
        if values.get(name) is not None and values.get(needs) is None:
            raise CriteriaError(f"{name}: give the {needs} as well", field=name)
    for name in ("software", "software_version", "step", "step_version"):
        text = values.get(name)
        if text is not None and not str(text).strip():
            raise CriteriaError(f"{name}: the value is empty", field=name)
    if len(values.get("parameter") or {}) > MAX_PARAMETERS:
        raise CriteriaError(
            f"parameter: give at most {MAX_PARAMETERS} 'name = value' pairs in one search",
            field="parameter",
        )
    level = values.get("data_level")
    if values.get("product_kind") and level is not None and level not in PRODUCT_LEVELS:
        raise CriteriaError(
            f"product_kind: published products are {' or '.join(PRODUCT_LEVELS)}, not {level}",
            field="data_level",
        )


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def product_conditions(criteria: Any, literal: Any) -> list[str]:
    """The WHERE conditions of the product criteria of *criteria*.

    Parameters
    ----------
    criteria : Criteria
        Validated criteria.
    literal : callable
        Quotes a string as an ADQL literal (:func:`~ctanb.client.criteria.adql_string`).

    Returns
    -------
    list of str
        Conditions on ``ivoa.obscore`` (empty when no product criterion is set).
    """
    where: list[str] = []
    # Common names of a kind find what the analysis steps publish (DL5-flux).
    kinds = [k for kind in _as_list(criteria.product_kind) for k in KIND_ALIASES.get(kind, (kind,))]
    if kinds:
        levels = [criteria.data_level] if criteria.data_level else list(PRODUCT_LEVELS)
        subtypes = [literal(f"{level}-{kind}") for kind in kinds for level in levels]
        where.append(
            f"dataproduct_subtype = {subtypes[0]}"
            if len(subtypes) == 1
            else f"dataproduct_subtype IN ({', '.join(subtypes)})"
        )
    runs = _as_list(criteria.derived_from_run)
    if runs:
        ids = ", ".join(literal(str(r)) for r in runs)
        where.append(
            f"obs_publisher_did IN (SELECT {_PROGENITOR}.product_did FROM {_PROGENITOR} "
            f"WHERE {_PROGENITOR}.obs_id IN ({ids}))"
        )
    if criteria.software is not None:
        test = f"{_AGENT}.name = {literal(criteria.software)}"
        if criteria.software_version is not None:
            test += f" AND {_AGENT}.version = {literal(criteria.software_version)}"
        where.append(
            f"obs_publisher_did IN ({_LINEAGE} "
            f"JOIN {_ASSOCIATION} ON {_ASSOCIATION}.activity_id = {_CHAIN}.activity_id "
            f"JOIN {_AGENT} ON {_AGENT}.id = {_ASSOCIATION}.agent_id WHERE {test})"
        )
    if criteria.step is not None:
        test = f"{_DESCRIPTION}.name = {literal(criteria.step)}"
        if criteria.step_version is not None:
            test += f" AND {_DESCRIPTION}.version = {literal(criteria.step_version)}"
        where.append(
            f"obs_publisher_did IN ({_LINEAGE} "
            f"JOIN {_ACTIVITY} ON {_ACTIVITY}.id = {_CHAIN}.activity_id "
            f"JOIN {_DESCRIPTION} ON {_DESCRIPTION}.id = {_ACTIVITY}.activity_description_id "
            f"WHERE {test})"
        )
    for name, value in (criteria.parameter or {}).items():
        where.append(
            f"obs_publisher_did IN ({_LINEAGE} "
            f"JOIN {_PARAMETER_TABLE} ON {_PARAMETER_TABLE}.activity_id = {_CHAIN}.activity_id "
            f"WHERE {_PARAMETER_TABLE}.name = {literal(name)} "
            f'AND {_PARAMETER_TABLE}."value" = {literal(value)})'
        )
    return where
