"""``/coverage``: the archive's coverage as MOCs (MOC 2.0), with rights applied.

``GET /coverage?kind=space&collection=HESS-DL3-DR1&level=DL3&order=6&format=fits``

``kind``
    ``space`` (default), ``time``, ``space-time`` or ``space-energy``
    (:mod:`ctanb.archive.coverage`).
``collection``, ``level``
    Optional: one collection (case-insensitive) and one data level (``DL3``,
    ``DL4`` ...); default all.
``order``
    Optional: a coarser order for ``space`` (0-8) or ``time`` (0-41) coverage.
``format`` (or ``RESPONSEFORMAT``)
    ``fits`` (default, ``application/fits``, the MOC 2.0 FITS serialisation) or
    ``ascii`` (``text/plain``, the MOC 2.0 ASCII serialisation).

The answer is the union of the coverage the request may see: public data,
data whose release date has passed, and data of the groups its token acts for
(``Authorization: Bearer <token>``). Coverage is read as stored at ingestion and
publication, never rebuilt per request. Bad parameters answer 400 with a
message naming the parameter; so does a parameter the endpoint does not know
(a misspelt ``colection=`` would otherwise answer the whole archive's coverage).

DataLink: ``/datalink?ID=ivo://ctanb.archive/<collection>`` (the collection's
identifier: a dataset DID without ``?<obs_id>``) lists one ``#coverage`` link
per kind.
"""

from __future__ import annotations

import io
import sqlite3
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ..._errors import CoverageError
from ..coverage import KINDS, shown
from ..coverage_read import partitions, visible_coverage
from ..db import PUBLISHER_AUTHORITY
from .params import ServiceFault, read_params
from .state import ArchiveState, bearer_token

__all__ = ["collection_links", "coverage_endpoint"]

_FORMATS = {"fits": "application/fits", "ascii": "text/plain"}
#: The parameters /coverage reads (case-insensitive); any other is refused. RUNID is
#: DALI's request label for logs, which generic VO clients may add.
PARAMETERS = ("kind", "collection", "level", "order", "format", "RESPONSEFORMAT", "RUNID")
_KIND_WORDS = {
    "space": "sky coverage (footprints)",
    "time": "time coverage (good-time intervals)",
    "space-time": "space-time coverage (per night)",
    "space-energy": "space-energy coverage (energy band as photon frequency)",
}


def _format(params: Any) -> str:
    raw = (params.get("format") or params.get("RESPONSEFORMAT") or "fits").strip().lower()
    aliases = {"application/fits": "fits", "text/plain": "ascii", "txt": "ascii", "text": "ascii"}
    fmt = aliases.get(raw, raw)
    if fmt not in _FORMATS:
        raise ServiceFault(f"format {shown(raw)} is not supported for coverage: use fits or ascii")
    return fmt


def _check_names(params: Any) -> None:
    """Refuse a parameter /coverage does not know (a misspelt ``colection=`` would answer the
    whole archive) and one given twice (which value counts would be a guess)."""
    known = {name.upper() for name in PARAMETERS}
    unknown = sorted(name for name, _ in params.items() if name.upper() not in known)
    if unknown:
        names = ", ".join(shown(n.lower()) for n in unknown)
        raise ServiceFault(
            f"unknown parameter{'s' if len(unknown) > 1 else ''} {names} for /coverage: "
            f"the accepted parameters are {', '.join(PARAMETERS)}"
        )
    for name, _ in params.items():
        if len(params.getall(name)) > 1:
            word = next(p for p in PARAMETERS if p.upper() == name)
            raise ServiceFault(
                f"parameter {word} is given {len(params.getall(name))} times for /coverage: "
                f"give {word} once"
            )


def _answer(state: ArchiveState, params: Any, token: str | None) -> tuple[bytes, str]:
    _check_names(params)
    cache = state.__dict__.setdefault("_coverage_cache", {})
    fmt = _format(params)
    conn = state.connection()
    try:
        moc = visible_coverage(
            conn, state.policy, token,
            kind=params.get("kind") or "space",
            collection=params.get("collection") or None,
            level=params.get("level") or None,
            order=params.get("order"),
            cache=cache,
        )  # fmt: skip
    except CoverageError as exc:
        raise ServiceFault(str(exc)) from None
    if fmt == "ascii":
        return (moc.to_string(format="ascii").strip() + "\n").encode(), _FORMATS[fmt]
    buf = io.BytesIO()
    moc.serialize(format="fits").writeto(buf)
    return buf.getvalue(), _FORMATS[fmt]


async def coverage_endpoint(request: Request) -> Response:
    """GET the coverage MOC of the archive (see the module documentation)."""
    state: ArchiveState = request.app.state.archive
    params = await read_params(request)
    token = bearer_token(request.headers)
    try:
        body, mime = await run_in_threadpool(_answer, state, params, token)
    except sqlite3.DatabaseError as exc:
        raise ServiceFault(f"the archive database cannot be read: {exc}", 503) from None
    # Private: what a token may see differs between requesters.
    return Response(body, media_type=mime, headers={"Cache-Control": "private, no-transform"})


def collection_links(state: ArchiveState, did: str, base: str) -> list[tuple] | None:
    """DataLink rows of a collection identifier (one ``#coverage`` link per kind), or None.

    The rows follow :data:`~ctanb.archive.service.datalink.LINK_COLUMNS`. Coverage
    links are open to all (what they answer depends on the requester's token).
    """
    prefix = PUBLISHER_AUTHORITY + "/"
    if not did.startswith(prefix) or "?" in did:
        return None
    wanted = did[len(prefix) :].strip().lower()
    names = {p.collection for p, _ in partitions(state.connection())}
    collection = next((n for n in sorted(names) if n.lower() == wanted), None)
    if collection is None:
        return None
    rows = []
    for kind in KINDS:
        url = f"{base.rstrip('/')}/coverage?" + urlencode({"collection": collection, "kind": kind})
        rows.append((did, url, None, None, "#coverage",
                     f"{_KIND_WORDS[kind]} of collection {collection} (MOC 2.0, FITS)",
                     "application/fits", None, None, kind, "optional", True))  # fmt: skip
    return rows
