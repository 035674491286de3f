"""The ADQL user-defined function ``ivo_tmoc_overlap``: time-MOC intersection.

The High-Energy ObsCore note (``t_intervals``) mentions a prototype UDF that
intersects ``t_intervals`` with a second time MOC or an MJD pair without giving its
name; ctanb calls it ``ivo_tmoc_overlap`` (DaCHS accepts only ``ivo_``/``gavo_``
UDF names, and the same query must run on both archives)::

    ivo_tmoc_overlap(t_intervals, 't35/1-4 36/11')        -- a time MOC (MOC 2.0 ASCII)
    ivo_tmoc_overlap(t_intervals, 60310.5, 60310.75)      -- an MJD (TT) interval

returns the duration in seconds covered by both (0 when disjoint, NULL for a NULL
or malformed row value). ``WHERE ivo_tmoc_overlap(t_intervals, ...) > 0`` on
``ivoa.obscore_hea`` is answered from the table's time R-tree, then checked exactly
on the candidates from the GTIs in MJD, so it does not scan the table.

A constant MOC or interval that is wrong (not a MOC, order beyond 61, a stop before
its start, a number that is no MJD) is an :class:`~ctanb._errors.AdqlError` naming
it, i.e. an HTTP 400 of the TAP service.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlglot import exp

from .._errors import TimeCoverageError
from ..datamodel import OBSCORE_HEA_TABLE
from . import gti
from .adql_types import (
    OutputColumn,
    Scope,
    Translating,
    Val,
    function_args,
    function_name,
    quote_ident,
    quote_string,
)
from .obscore_hea import HEA_TIME_INDEX

__all__ = ["TMOC_FUNCTIONS", "TMOC_UDF_FORMS", "TmocMixin", "TmocPart", "column_sql", "rights_sql"]

TMOC_FUNCTIONS = frozenset({"IVO_TMOC_OVERLAP"})

#: TAPRegExt ``<form>`` of each signature (declared in /capabilities).
TMOC_UDF_FORMS = (
    (
        "ivo_tmoc_overlap(tmoc1 TEXT, tmoc2 TEXT) -> DOUBLE",
        "Seconds covered by both time MOCs (MOC 2.0 ASCII, e.g. t_intervals of "
        "ivoa.obscore_hea); 0 when they do not overlap.",
    ),
    (
        "ivo_tmoc_overlap(tmoc TEXT, mjd_start DOUBLE, mjd_stop DOUBLE) -> DOUBLE",
        "Seconds of the time MOC within the interval from mjd_start to mjd_stop (MJD, TT).",
    ),
)

_SECONDS = OutputColumn("", "double", unit="s", ucd="time.duration;obs.exposure")
#: The R-tree prefilter ORs one box per query interval; beyond this many, neighbours
#: are merged into hulls (a superset: the exact test follows).
_MAX_BOXES = 32


def _hulls(iv: np.ndarray, n: int = _MAX_BOXES) -> np.ndarray:
    if len(iv) <= n:
        return iv
    groups = np.array_split(np.arange(len(iv)), n)
    return np.array([[iv[g[0], 0], iv[g[-1], 1]] for g in groups])


class TmocPart:
    """``ivo_tmoc_overlap`` calls and conditions, for the translator *tr*."""

    def __init__(self, tr: Translating):
        self.tr = tr

    def _tmoc_constant(self, node: exp.Expression) -> np.ndarray | None:
        """Intervals (MJD) of a constant MOC string argument; None if not constant."""
        if not (isinstance(node, exp.Literal) and node.is_string):
            return None
        try:
            iv = gti.tmoc_intervals(gti.tmoc_from_string(str(node.this)))
        except TimeCoverageError as exc:
            raise self.tr.error(exc.message, node) from None
        return iv

    def _tmoc_operand(self, node: exp.Expression, scope: Scope) -> tuple[str, Val | None]:
        """SQL of a MOC operand: the private MJD column for t_intervals, else the text."""
        iv = self._tmoc_constant(node)
        if iv is not None:
            return quote_string("mjd:" + " ".join(repr(float(v)) for v in iv.ravel())), None
        val = self.tr.expr(node, scope)
        if val.meta.datatype not in ("char", "unicodeChar") and val.meta.datatype != "":
            raise self.tr.error(
                f"ivo_tmoc_overlap needs a time MOC (text), not a {val.meta.datatype}", node
            )
        if val.column is not None:
            source, name = val.column
            if source.table is not None and source.table.name == OBSCORE_HEA_TABLE:
                if name == "t_intervals":  # the same rights as the column itself
                    return rights_sql(source, f'{source.alias}."_t_mjd"'), val
        return val.sql, val

    def _tmoc_args(self, node: exp.Expression, scope: Scope):
        args = function_args(node)
        if len(args) not in (2, 3):
            raise self.tr.error(
                "ivo_tmoc_overlap takes a time MOC and either a second time MOC or "
                "an MJD start and stop: ivo_tmoc_overlap(t_intervals, 't35/1-4') or "
                "ivo_tmoc_overlap(t_intervals, 60310.5, 60310.75)",
                node,
            )
        first_sql, first = self._tmoc_operand(args[0], scope)
        query: np.ndarray | None = None
        if len(args) == 2:
            second_sql, _ = self._tmoc_operand(args[1], scope)
            query = self._tmoc_constant(args[1])
            sql = f"adql_tmoc_overlap({first_sql}, {second_sql})"
        else:
            lo, hi = (self.tr.expr(a, scope) for a in args[1:])
            for v, a in ((lo, args[1]), (hi, args[2])):
                if v.meta.datatype in ("char", "unicodeChar", "boolean") or v.meta.arraysize:
                    raise self.tr.error("the MJD start and stop must be numbers", a)
            if lo.const is not None and hi.const is not None:
                try:
                    query = gti.check_intervals([float(lo.const)], [float(hi.const)])
                except TimeCoverageError as exc:
                    raise self.tr.error(exc.message, node) from None
            sql = f"adql_tmoc_overlap({first_sql}, {lo.sql}, {hi.sql})"
        return sql, first, query

    def call(self, node: exp.Expression, scope: Scope) -> Val:
        """SQL of an ``ivo_tmoc_overlap`` call (seconds of overlap)."""
        sql, _, _ = self._tmoc_args(node, scope)
        return Val(sql, _SECONDS)

    def condition(self, node: exp.Expression, scope: Scope) -> str | None:
        """``ivo_tmoc_overlap(t_intervals, const) > c`` (c >= 0) answered from the R-tree."""
        if not isinstance(node, (exp.GT, exp.GTE, exp.LT, exp.LTE)):
            return None
        call, limit, op = node.this, node.expression, node.key
        if isinstance(node, (exp.LT, exp.LTE)):  # c < f(...)  is  f(...) > c
            call, limit, op = limit, call, {"lt": "gt", "lte": "gte"}[node.key]
        if function_name(call) not in TMOC_FUNCTIONS:
            return None
        bound = self.tr.expr(limit, scope)
        sql, first, query = self._tmoc_args(call, scope)
        exact = f"({sql} {'>' if op == 'gt' else '>='} {bound.sql})"
        if bound.const is None or query is None or first is None or first.column is None:
            return exact
        positive = float(bound.const) >= 0 if op == "gt" else float(bound.const) > 0
        source = first.column[0]
        if not positive or source.table is None or source.table.name != OBSCORE_HEA_TABLE:
            return exact
        if len(query) == 0:
            return "(0 = 1)"
        boxes = " OR ".join(
            f"(tmin <= {float(b):.17g} AND tmax >= {float(a):.17g})" for a, b in _hulls(query)
        )
        index = '"' + HEA_TIME_INDEX + '"'
        return f"({source.alias}.rowid IN (SELECT id FROM {index} WHERE {boxes}) AND {exact})"


#: Former name (the part was a mixin of the translator); kept, as names are a contract.
TmocMixin = TmocPart

#: Columns derived from a dataset's data (not its ObsCore description): NULL to callers
#: outside the group of a proprietary dataset, as its files are.
_DATA_DERIVED = {(OBSCORE_HEA_TABLE, "t_intervals")}


def column_sql(source: Any, col: Any) -> str:
    """SQL of a column of *source*; rights applied to data-derived columns.

    The exact good-time intervals of a proprietary run are data (they come from its
    GTI table): like its files, they are only for its group until its release date,
    whereas its ObsCore row (t_min/t_max included) stays searchable by everyone.
    ``ctanb_prov_visible`` is the provenance tables' per-request rights function.
    """
    sql = f"{source.alias}.{quote_ident(col.name)}"
    table = getattr(source, "table", None)
    if table is None or (table.name, col.name) not in _DATA_DERIVED:
        return sql
    return rights_sql(source, sql)


def rights_sql(source: Any, sql: str) -> str:
    """*sql* (a value of a row of *source*), or NULL when the caller may not read its data."""
    return (
        f'(SELECT CASE WHEN ctanb_prov_visible(r."_access_group", r.obs_release_date) '
        f'THEN {sql} END FROM "ivoa.obscore" AS r '
        f"WHERE r.obs_publisher_did = {source.alias}.obs_publisher_did)"
    )
