"""Types and schema of the ADQL translator: columns, TAP_SCHEMA, translated values.

The bottom layer of the translator; the other ``adql_*`` modules import from it and
it imports none of them::

    adql_check (tokens, limits, messages)    adql_types (types, schema, SQL quoting)
              \\                               /
               adql_syntax / adql_spatial / adql_tmoc   (expression parts)
                                |
                         adql_translate   (the Translator composing the parts)
                                |
                              adql        (parse + translate: the public entry points)

The expression parts get the translator they work for as a :class:`Translating`
(the few methods they call back), never by importing the translator's module.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from sqlglot import exp

from .._errors import AdqlError
from ..datamodel import REGION_XTYPE
from .geometry import Circle, Point, Polygon, Shape

__all__ = [
    "BOOLEAN",
    "CHAR",
    "DOUBLE",
    "GEOMETRY_XTYPES",
    "INT",
    "INT64_MAX",
    "LONG",
    "REGION_XTYPE",
    "STCS_POLYGON_PREFIX",
    "STORED_GEOMETRY_KINDS",
    "Geom",
    "OutputColumn",
    "Scope",
    "Source",
    "TapSchema",
    "TapTable",
    "TranslatedQuery",
    "Translating",
    "Val",
    "function_args",
    "function_name",
    "geometry_meta",
    "load_schema",
    "quote_ident",
    "quote_string",
    "sql_literal",
]

#: xtypes whose values are DALI geometry text in query results.
GEOMETRY_XTYPES = ("point", "circle", "polygon")

#: The geometry kind of a stored column by xtype: a region column holds polygon text.
STORED_GEOMETRY_KINDS = {"point": "point", "circle": "circle", "polygon": "polygon",
                         REGION_XTYPE: "polygon"}  # fmt: skip

#: SQL prefix turning the stored vertex list into ObsCore's STC-S (as DaCHS writes it).
STCS_POLYGON_PREFIX = "POLYGON ICRS "

#: The largest integer SQLite (and VOTable ``long``) holds.
INT64_MAX = 2**63 - 1


@dataclass(frozen=True)
class OutputColumn:
    """Metadata of one result column, for the VOTable FIELD.

    Geometry columns (``xtype`` in :data:`GEOMETRY_XTYPES`) hold DALI text
    ``"v1 v2 ..."`` in the result rows, to be written as a double array; a
    :data:`REGION_XTYPE` column holds an STC-S string.
    """

    name: str
    datatype: str
    unit: str = ""
    ucd: str = ""
    arraysize: str | None = None
    xtype: str | None = None
    description: str = ""
    utype: str = ""


#: Types of translated expressions (the name is given where a column is made).
DOUBLE = OutputColumn("", "double")
LONG = OutputColumn("", "long")
INT = OutputColumn("", "int")
CHAR = OutputColumn("", "char", arraysize="*")
BOOLEAN = OutputColumn("", "boolean")
_ARRAYSIZE = {"point": "2", "circle": "3", "polygon": "*"}


def geometry_meta(kind: str) -> OutputColumn:
    """The type of a computed geometry of *kind* (``point``, ``circle``, ``polygon``)."""
    return OutputColumn("", "double", "deg", "", _ARRAYSIZE[kind], kind)


@dataclass(frozen=True)
class TranslatedQuery:
    """An ADQL query translated to SQLite.

    Attributes
    ----------
    sql : str
        SQLite SQL; call :func:`~ctanb.archive.sqlfunctions.register_functions` on
        the connection first.
    params : tuple
        Values of the ``?`` placeholders of ``sql`` (currently always empty:
        constants are written into the SQL as exact literals).
    columns : list of OutputColumn
        One per result column, in order.
    top : int or None
        The ADQL ``TOP n`` of the outermost query.
    """

    sql: str
    params: tuple
    columns: list[OutputColumn]
    top: int | None


@dataclass(frozen=True)
class TapTable:
    """One table of TAP_SCHEMA with its columns (in ``column_index`` order)."""

    name: str
    columns: tuple[OutputColumn, ...]
    description: str = ""
    point_index: str | None = None  # R-tree of (s_ra, s_dec) unit vectors
    region_index: str | None = None  # R-tree of caps enclosing s_region


@dataclass
class TapSchema:
    """The tables a query may use, keyed by lower-case qualified name."""

    tables: dict[str, TapTable] = field(default_factory=dict)

    def find(self, name: str) -> TapTable | None:
        """The table called *name* (case-insensitive), or None."""
        return self.tables.get(name.lower())


def load_schema(conn: sqlite3.Connection) -> TapSchema:
    """Read ``"tap_schema.tables"`` and ``"tap_schema.columns"`` into a :class:`TapSchema`.

    Parameters
    ----------
    conn : sqlite3.Connection
        The archive database.

    Returns
    -------
    TapSchema

    Raises
    ------
    ctanb.AdqlError
        When the database has no readable TAP_SCHEMA.
    """
    try:
        tables = conn.execute('SELECT table_name, description FROM "tap_schema.tables"').fetchall()
        cols = conn.execute(
            "SELECT table_name, column_name, datatype, arraysize, xtype, unit, ucd, "
            'description, utype FROM "tap_schema.columns" ORDER BY table_name, column_index'
        ).fetchall()
        existing = {
            name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
    except sqlite3.Error as err:
        raise AdqlError(f"cannot read TAP_SCHEMA from the archive database: {err}") from err
    by_table: dict[str, list[OutputColumn]] = {}
    for table, name, datatype, arraysize, xtype, unit, ucd, desc, utype in cols:
        # A name TAP_SCHEMA lists delimited (TAP 1.1: '"size"') is the plain SQL column.
        if len(name) > 2 and name[0] == name[-1] == '"':
            name = name[1:-1]
        by_table.setdefault(table, []).append(
            OutputColumn(name, datatype or "char", unit or "", ucd or "", arraysize or None,
                         xtype or None, desc or "", utype or "")
        )  # fmt: skip
    schema = TapSchema()
    for name, desc in tables:
        point, region = f"{name}#point", f"{name}#region"
        schema.tables[name.lower()] = TapTable(
            name,
            tuple(by_table.get(name, ())),
            desc or "",
            point_index=point if point in existing else None,
            region_index=region if region in existing else None,
        )
    return schema


# --- SQL text ---------------------------------------------------------------------------
def quote_ident(name: str) -> str:
    """Double-quote an SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def quote_string(text: str) -> str:
    """Single-quote an SQL string literal (a NUL, which no SQL text may hold, as char(0))."""
    if "\x00" in text:
        return "(" + " || char(0) || ".join(quote_string(p) for p in text.split("\x00")) + ")"
    return "'" + text.replace("'", "''") + "'"


def sql_literal(value: float) -> str:
    """A float as an exact SQL literal (repr round-trips)."""
    return repr(float(value))


def function_name(node: exp.Expression) -> str:
    """Upper-case ADQL function name of a call node ('' if not a call)."""
    if isinstance(node, exp.Anonymous):
        return str(node.name).upper()
    if isinstance(node, exp.Contains):
        return "CONTAINS"
    return ""


def function_args(node: exp.Expression) -> list[exp.Expression]:
    """The argument nodes of a function call node."""
    if isinstance(node, exp.Contains):
        return [node.this, node.expression]
    return list(node.expressions)


# --- translated values ----------------------------------------------------------------
@dataclass
class Geom:
    """A compiled geometry value.

    Its kind and either the SQL of its numbers (``POINT(s_ra, s_dec)``, constant
    shapes) or the SQL of a DALI text (``s_region``).
    """

    kind: str  # point | circle | polygon
    values: list[str] | None = None  # SQL of the numbers (numeric form)
    text: str | None = None  # SQL of a DALI text (text form)
    consts: list[float] | None = None  # the numbers, when all are constants
    rowid: str | None = None  # rowid SQL of the indexed table row this geometry belongs to
    index: str | None = None  # R-tree table answering for this geometry
    index_kind: str = ""  # "point" (stored points) or "region" (stored caps)

    def tagged(self) -> str:
        """Arguments for the ``adql_*`` user functions."""
        if self.text is not None:
            return f"'{self.kind}:text', {self.text}"
        tag = self.kind if self.kind != "polygon" else f"polygon:{len(self.values or [])}"
        return f"'{tag}', " + ", ".join(self.values or [])

    def shape(self) -> Shape | None:
        """The shape, when all its numbers are constants."""
        if self.consts is None:
            return None
        if self.kind == "point":
            return Point(*self.consts)
        if self.kind == "circle":
            return Circle(*self.consts)
        return Polygon.from_flat(self.consts)

    def coord_sql(self, k: int) -> str:
        """SQL of coordinate *k* (1: RA, 2: Dec) of a point."""
        if self.values is not None:
            return self.values[k - 1]
        return f"adql_coord({k}, {self.tagged()})"


@dataclass
class Source:
    """A FROM item: a TAP_SCHEMA table or a subquery, under an internal alias."""

    alias: str
    names: list[tuple[str, ...]]  # qualifiers that designate it (``o``; ``obscore``, ...)
    alias_quoted: bool
    columns: list[OutputColumn]
    table: TapTable | None = None
    label: str = ""  # for messages
    _by_lower: dict[str, list[OutputColumn]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for c in self.columns:
            self._by_lower.setdefault(c.name.lower(), []).append(c)

    def column(self, ident: exp.Identifier) -> OutputColumn | None:
        """The column *ident* names: delimited names match exactly, regular ones ignore case."""
        name = str(ident.this)
        candidates = self._by_lower.get(name.lower(), ())
        if ident.quoted:
            return next((c for c in candidates if c.name == name), None)
        return candidates[0] if candidates else None

    def designated_by(self, qualifiers: list[exp.Identifier]) -> bool:
        """Whether a column qualifier (``o`` in ``o.s_ra``, ``ivoa.obscore``) names this."""
        return any(
            len(names) == len(qualifiers)
            and all(
                _same_name(q, n, self.alias_quoted) for q, n in zip(qualifiers, names, strict=True)
            )
            for names in self.names
        )


def _same_name(ident: exp.Identifier, name: str, name_quoted: bool) -> bool:
    """ADQL identifier equality: exact when delimited, case-insensitive otherwise."""
    text = str(ident.this)
    return text == name or (not ident.quoted and not name_quoted and text.lower() == name.lower())


@dataclass
class Scope:
    """The sources visible in one SELECT, with the enclosing SELECT's scope."""

    sources: list[Source] = field(default_factory=list)
    parent: Scope | None = None
    merged: set[str] = field(default_factory=set)  # USING / NATURAL join columns

    def source_of(self, col: exp.Column) -> Source | None:
        """The source of this level that the qualifier of *col* names, or None."""
        quals = col.parts[:-1]
        return next((s for s in self.sources if s.designated_by(quals)), None)

    def levels(self) -> Iterator[Scope]:
        """This scope, then the enclosing ones outwards."""
        scope: Scope | None = self
        while scope is not None:
            yield scope
            scope = scope.parent


@dataclass
class Val:
    """A translated expression: its SQL and type (an :class:`OutputColumn` without name)."""

    sql: str
    meta: OutputColumn
    geom: Geom | None = None
    const: float | int | None = None  # value, when a numeric constant
    column: tuple[Source, str] | None = None  # (source, column) for a plain column reference


class Translating(Protocol):
    """What the expression parts call back on the translator that composes them.

    The parts (:mod:`~ctanb.archive.adql_syntax`, :mod:`~ctanb.archive.adql_spatial`,
    :mod:`~ctanb.archive.adql_tmoc`) translate their own node types and hand every
    sub-expression back to :meth:`expr`, which dispatches on the node type.
    """

    #: Where aggregates may not appear ("WHERE", "GROUP BY", ...), None where they may.
    no_aggregate: str | None
    #: Whether the current SELECT has an aggregate function.
    saw_aggregate: bool

    def expr(self, node: exp.Expression, scope: Scope) -> Val:
        """Translate one expression node."""
        ...

    def query(self, node: exp.Expression, parent: Scope) -> tuple[str, list, int | None]:
        """SQL, output columns and TOP of a subquery inside *parent*."""
        ...

    def check_args(self, node: exp.Expression, allowed: set[str]) -> None:
        """Refuse a node that has arguments outside *allowed* (constructs that are not ADQL)."""
        ...

    def error(self, message: str, node: exp.Expression | None = None) -> AdqlError:
        """An :class:`~ctanb.AdqlError` at *node*'s position in the query."""
        ...

    def source_text(self, node: exp.Expression | None) -> str:
        """The ADQL text of *node* as the user wrote it (shortened, for messages)."""
        ...
