"""ADQL 2.1 to SQLite translation for the embedded archive's TAP service.

The query is parsed by sqlglot into a syntax tree; the translator walks that tree
node by node and writes SQLite SQL itself, so only constructs it knows (ADQL's
grammar and function list) can reach the database: anything else, including
SQLite-specific functions, PRAGMA or ATTACH, is an :class:`~ctanb.AdqlError`.
Table names resolve only to tables listed in TAP_SCHEMA.

Spatial predicates against a constant shape, such as::

    CONTAINS(POINT('ICRS', s_ra, s_dec), CIRCLE('ICRS', 83.6, 22.0, 3)) = 1
    INTERSECTS(s_region, POLYGON('ICRS', ...)) = 1
    DISTANCE(POINT(s_ra, s_dec), POINT(83.6, 22.0)) < 3

become a lookup in the R-tree indexes ``"<table>#point"``/``"<table>#region"``
followed by the exact spherical test (:mod:`ctanb.archive.geometry`) on the
candidates only. Other geometry expressions run the exact test on every row.

Geometry values in results
--------------------------
A computed geometry (``POINT(...)``, ``CIRCLE(...)``, ``POLYGON(...)``, ``BOX(...)``)
comes out of SQLite as DALI *text*: the numbers separated by single spaces, in
degrees, RA in [0, 360):

============  ====================  ========  =========  ==========
ADQL          text                  datatype  arraysize  xtype
============  ====================  ========  =========  ==========
POINT         ``"ra dec"``          double    ``2``      ``point``
CIRCLE        ``"ra dec radius"``   double    ``3``      ``circle``
POLYGON, BOX  ``"ra1 dec1 ra2 ..."``  double  ``*``      ``polygon``
============  ====================  ========  =========  ==========

The serialiser turns such a text into the float array of the VOTable cell
whenever :attr:`OutputColumn.xtype` is ``point``, ``circle`` or ``polygon``.

``s_region`` follows ObsCore 1.1 instead: ``char`` with ``xtype="adql:REGION"``
(:data:`REGION_XTYPE`), an STC-S string ``"POLYGON ICRS ra1 dec1 ..."``. SQLite
stores the bare DALI vertex list, which the translator treats as a polygon inside
the query; only the outermost SELECT adds the ``POLYGON ICRS`` prefix.

This module parses and holds the entry points; the types and TAP_SCHEMA are in
:mod:`~ctanb.archive.adql_types` (re-exported here), the translation in
:mod:`~ctanb.archive.adql_translate`.
"""

from __future__ import annotations

import logging
from typing import ClassVar

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError
from sqlglot.tokens import Tokenizer, TokenType

from .._errors import AdqlError
from .adql_check import check_tokens, check_tree, query_error, tokenize
from .adql_translate import Translator
from .adql_types import (
    GEOMETRY_XTYPES,
    REGION_XTYPE,
    STCS_POLYGON_PREFIX,
    STORED_GEOMETRY_KINDS,
    OutputColumn,
    TapSchema,
    TapTable,
    TranslatedQuery,
    load_schema,
)
from .sqlfunctions import register_functions

__all__ = [
    "GEOMETRY_XTYPES",
    "REGION_XTYPE",
    "STCS_POLYGON_PREFIX",
    "STORED_GEOMETRY_KINDS",
    "OutputColumn",
    "TapSchema",
    "TapTable",
    "TranslatedQuery",
    "load_schema",
    "register_functions",
    "translate",
]

log = logging.getLogger("ctanb.archive.adql")


class _AdqlDialect(Dialect):
    """sqlglot's ANSI grammar plus ADQL's ``SELECT TOP n``."""

    class Tokenizer(Tokenizer):
        KEYWORDS: ClassVar[dict] = {**Tokenizer.KEYWORDS, "TOP": TokenType.TOP}


_PARSER_HINTS = (
    ("Expecting )", "a ')' is missing"),
    ("Expecting (", "a '(' is missing"),
    ("Required keyword", "something is missing here"),
    ("number of provided arguments", "wrong number of arguments"),
    ("Expected table name", "a table name is expected here"),
)


def _syntax_error(adql: str, tokens: list, err: ParseError) -> AdqlError:
    """A sqlglot error in ADQL terms: position, offending text, never parser internals."""
    info = err.errors[0] if err.errors else {}
    line, col = info.get("line"), info.get("col")
    highlight = info.get("highlight") or ""
    desc = str(info.get("description") or "")
    reason = next((r for key, r in _PARSER_HINTS if key in desc), "unexpected text")
    # sqlglot reports the token it stopped on by its line and last column.
    tok = next((t for t in tokens if t.line == line and t.col == col), None)
    if tok is not None:
        offset, highlight = tok.start, tok.text
    elif tokens:
        offset, highlight = tokens[-1].start, tokens[-1].text
        reason = "the query ends too early" if reason == "something is missing here" else reason
    else:
        offset, highlight = 0, adql[:20]
    return query_error(adql, offset, highlight, f"ADQL syntax error: {reason}")


def _parse(adql: str) -> exp.Expression:
    dialect = _AdqlDialect()
    tokens = tokenize(adql, dialect.tokenizer())
    check_tokens(adql, tokens)
    if not tokens:
        raise AdqlError("empty ADQL query", query=adql, position=(1, 1))
    try:
        statements = [s for s in dialect.parser().parse(tokens, adql) if s is not None]
    except ParseError as err:
        raise _syntax_error(adql, tokens, err) from None
    if not statements:
        raise AdqlError("empty ADQL query", query=adql, position=(1, 1))
    if len(statements) > 1:  # check_tokens refuses ';', so this is a safety net
        raise query_error(adql, 0, adql[:20], "only one ADQL statement per query is allowed")
    check_tree(adql, statements[0])
    return statements[0]


def translate(adql: str, schema: TapSchema, *, row_limit: int | None = None) -> TranslatedQuery:
    """Translate one ADQL 2.1 ``SELECT`` into SQLite SQL.

    Parameters
    ----------
    adql : str
        The query.
    schema : TapSchema
        The tables it may use (from :func:`load_schema`).
    row_limit : int, optional
        Cap on the number of rows (the service passes MAXREC + 1); the SQL gets
        ``LIMIT min(TOP, row_limit)`` after ``ORDER BY`` and with any ``OFFSET``.

    Returns
    -------
    TranslatedQuery

    Raises
    ------
    ctanb.AdqlError
        Syntax error (with its line and column), an unknown table, column or
        function (named in the message), or a construct that is not ADQL.
    """
    if not isinstance(adql, str) or not adql.strip():
        raise AdqlError("empty ADQL query", query=adql if isinstance(adql, str) else None)
    if row_limit is not None and row_limit < 0:
        raise AdqlError(f"row limit must be >= 0, got {row_limit}", query=adql)
    try:
        tree = _parse(adql)
        sql, columns, top = Translator(adql, schema).translate_statement(tree, row_limit)
    except (RecursionError, ArithmeticError, ValueError, TypeError) as exc:
        if isinstance(exc, AdqlError):
            raise
        # A bug or a limit missed: answer in the user's terms, keep the details in the log.
        log.exception("ADQL translation failed unexpectedly for %r", adql[:200])
        raise query_error(
            adql,
            0,
            adql[:30],
            "this query cannot be translated (a value out of range or a "
            "construct too complex for this service); simplify it",
        ) from None
    return TranslatedQuery(sql=sql, params=(), columns=columns, top=top)
