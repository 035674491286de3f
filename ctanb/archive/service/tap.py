"""TAP 1.1 query execution shared by ``/sync`` and the UWS jobs of ``/async``.

A query is validated (LANG, REQUEST, QUERY, MAXREC, RESPONSEFORMAT), translated
to SQLite, run with a deadline (a progress handler interrupts it), and written
as VOTable or CSV with ``$BASE/`` in access URLs replaced by the service URL.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ..._errors import AdqlError
from ..adql_check import describe_text, line_col
from ..db import ACCESS_URL_BASE
from ..sqlfunctions import query_deadline, row_error
from .params import Params, ServiceFault, read_params
from .state import ArchiveState
from .votable import (
    VOTABLE_MIME,
    MixedColumnTypes,
    ServiceDescriptor,
    VotableColumn,
    rows_to_csv,
    rows_to_votable,
)

__all__ = ["QueryResult", "execute_query", "sync_endpoint", "validate_query_params"]

log = logging.getLogger("ctanb.archive.service")

_LANGS = {"ADQL", "ADQL-2.0", "ADQL-2.1"}
_VOTABLE_FORMATS = {
    "votable",
    "votable/td",
    "application/x-votable+xml",
    "application/x-votable+xml;serialization=tabledata",
    "text/xml",
    "application/xml",
}
_CSV_FORMATS = {"csv", "text/csv", "text/csv;header=present"}


@dataclass(frozen=True)
class QueryRequest:
    """A validated TAP query."""

    adql: str
    maxrec: int
    fmt: str  # "votable" or "csv"


@dataclass(frozen=True)
class QueryResult:
    """A serialised answer."""

    body: bytes
    media_type: str
    rows: int
    overflow: bool


def validate_query_params(params: Params, state: ArchiveState) -> QueryRequest:
    """Check the TAP parameters; raises :class:`ServiceFault` (400) naming the problem."""
    request = params.get("REQUEST")
    if request is not None and request.strip().lower() != "doquery":
        raise ServiceFault(f"REQUEST={request!r} is not supported: use REQUEST=doQuery")
    lang = params.get("LANG")
    if lang is not None and lang.strip().upper() not in _LANGS:
        raise ServiceFault(f"LANG={lang!r} is not supported: use LANG=ADQL (2.0 or 2.1)")
    if "UPLOAD" in params:
        raise ServiceFault("UPLOAD is not supported by this service")
    adql = params.get("QUERY")
    if adql is None or not adql.strip():
        raise ServiceFault("QUERY is missing or empty: send an ADQL query in QUERY")
    maxrec_text = params.get("MAXREC")
    maxrec = state.settings.maxrec_default
    if maxrec_text is not None and maxrec_text.strip():
        try:
            maxrec = int(maxrec_text)
        except ValueError:
            raise ServiceFault(f"MAXREC={maxrec_text!r} is not an integer") from None
        if maxrec < 0:
            raise ServiceFault(f"MAXREC={maxrec} is negative")
    maxrec = min(maxrec, state.settings.maxrec_hard)
    fmt_text = params.get("RESPONSEFORMAT") or params.get("FORMAT") or "votable"
    fmt_key = fmt_text.strip().lower().replace(" ", "")
    if fmt_key in _VOTABLE_FORMATS:
        fmt = "votable"
    elif fmt_key in _CSV_FORMATS:
        fmt = "csv"
    else:
        raise ServiceFault(
            f"RESPONSEFORMAT={fmt_text!r} is not supported: use votable "
            f"({VOTABLE_MIME}) or csv (text/csv)"
        )
    return QueryRequest(adql, maxrec, fmt)


def _columns(tq: Any) -> list[VotableColumn]:
    return [
        VotableColumn(
            name=c.name,
            datatype=c.datatype or "char",
            unit=c.unit,
            ucd=c.ucd,
            arraysize=c.arraysize,
            xtype=c.xtype,
            description=c.description,
            utype=c.utype,
        )
        for c in tq.columns
    ]


def _url_rewriter(base: str) -> Callable[[object], object]:
    prefix, n = ACCESS_URL_BASE, len(ACCESS_URL_BASE)
    root = base.rstrip("/") + "/"

    def rewrite(value: object) -> object:
        if isinstance(value, str) and value.startswith(prefix):
            return root + value[n:]
        return value

    return rewrite


def _adql_message(exc: AdqlError) -> str:
    msg = exc.message
    if exc.position and "line" not in msg.lower():
        line, col = exc.position
        msg = f"{msg} (at line {line}, column {col})"
    return msg


def execute_query(
    state: ArchiveState,
    req: QueryRequest,
    base_url: str,
    *,
    conn: sqlite3.Connection | None = None,
    timeout_s: float | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> QueryResult:
    """Translate, run and serialise one query (blocking; run it in a worker thread)."""
    try:
        tq = state.translate(req.adql, req.maxrec + 1)
    except AdqlError as exc:
        raise ServiceFault(_adql_message(exc), 400) from None
    conn = conn or state.connection()
    deadline = time.monotonic() + (timeout_s or state.settings.sync_timeout_s)
    stop = {"why": None}

    def progress() -> int:
        if cancelled is not None and cancelled():
            stop["why"] = "aborted"
            return 1
        if time.monotonic() > deadline:
            stop["why"] = "timeout"
            return 1
        return 0

    conn.set_progress_handler(progress, 20_000)
    try:
        # The SQL functions written in Python (geometry, LIKE) check the deadline too: one
        # call on a huge polygon must not outlast it between two progress callbacks.
        with query_deadline(deadline, cancelled):
            cur = conn.execute(tq.sql, tq.params)
            rows = cur.fetchmany(req.maxrec + 1)
    except sqlite3.DatabaseError as exc:
        if stop["why"] is None and time.monotonic() > deadline:
            stop["why"] = "timeout"
        if stop["why"] is None and cancelled is not None and cancelled():
            stop["why"] = "aborted"
        if stop["why"] == "timeout":
            raise ServiceFault(
                f"the query ran longer than the limit of {timeout_s or state.settings.sync_timeout_s:g} s;"
                " narrow it or run it with /async",
                400,
            ) from None
        if stop["why"] == "aborted" or "interrupt" in str(exc):
            raise ServiceFault("the query was aborted", 400) from None
        bad_value = row_error()  # a function refused a row's value: say which, as for a constant
        if bad_value:
            raise ServiceFault(bad_value, 400) from None
        _raise_db_fault(exc, req.adql)
    finally:
        conn.set_progress_handler(None, 0)
    overflow = len(rows) > req.maxrec
    if overflow:
        rows = rows[: req.maxrec]
    columns = _columns(tq)
    rewrite = _url_rewriter(base_url)
    transforms = {
        i: rewrite
        for i, c in enumerate(columns)
        if c.name.lower() == "access_url" or (c.ucd or "").startswith("meta.ref.url")
    }
    if req.fmt == "csv":
        body = rows_to_csv(columns, rows, transforms=transforms)
        return QueryResult(body, "text/csv; charset=utf-8", len(rows), overflow)
    descriptor = None
    if any(c.name == "obs_publisher_did" for c in columns):
        descriptor = ServiceDescriptor(base_url.rstrip("/") + "/datalink", "obs_publisher_did")
    try:
        body = rows_to_votable(
            columns,
            rows,
            overflow=overflow,
            descriptor=descriptor,
            transforms=transforms,
            infos=[("QUERY", req.adql, ""), ("REQUEST", "doQuery", "")],
        )
    except MixedColumnTypes as exc:
        raise ServiceFault(str(exc)) from None
    return QueryResult(body, VOTABLE_MIME, len(rows), overflow)


_BROKEN = ("not a database", "malformed", "unable to open", "disk i/o", "no such table: tap")
# What the database may still refuse in a translated query, said in ADQL terms.
_DB_REASONS = (
    ("null character", "the query holds a NUL character (U+0000) where none can be"),
    ("parser stack overflow", "the query is nested too deeply for this service; simplify it"),
    (
        "expression tree is too large",
        "the query is nested too deeply for this service; simplify it",
    ),
    ("integer overflow", "an integer calculation overflowed; use floating point (e.g. 1.0 * x)"),
    ("too big", "a value of the result is too large"),
    ("pattern too complex", "a LIKE pattern is too long or complex"),
    ("too many", "the query is too large for this service (too many terms, tables or columns)"),
    ("at most", "the query is too large for this service (too many tables or columns)"),
    (
        "misuse of aggregate",
        "an aggregate function (COUNT, SUM, ...) is used where it is not allowed",
    ),
    (
        "aggregate functions are not allowed",
        "an aggregate function (COUNT, SUM, ...) is used where it is not allowed",
    ),
    ("out of range", "a number in ORDER BY or GROUP BY is not a column position"),
)


def _raise_db_fault(exc: sqlite3.DatabaseError, adql: str = "") -> None:
    text = str(exc)
    if any(word in text.lower() for word in _BROKEN):
        log.error("archive database unreadable: %s", text)
        raise ServiceFault("the archive database cannot be read; try again later", 503) from None
    log.warning("query refused by SQLite (%s): %r", text, adql[:200])
    reason = next((r for key, r in _DB_REASONS if key in text.lower()),
                  "the query cannot be evaluated by this service")  # fmt: skip
    first = len(adql) - len(adql.lstrip())
    line, col = line_col(adql, first)
    raise ServiceFault(
        f"{reason} (at line {line}, column {col} near '{describe_text(adql[first:], 30)}')", 400
    ) from None


async def sync_endpoint(request: Request) -> Response:
    """``/sync``: run a query and answer its result directly."""
    state: ArchiveState = request.app.state.archive
    params = await read_params(request)
    req = validate_query_params(params, state)
    base = state.public_base(str(request.base_url))
    result = await run_in_threadpool(execute_query, state, req, base)
    return Response(result.body, media_type=result.media_type)
