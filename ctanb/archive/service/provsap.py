"""ProvSAP on the embedded archive: ``/provsap?ID=...`` from the published records.

Parameters (IVOA ProvSAP draft): ``ID`` (a product's DID, a DL3 dataset's DID or an
entity/activity id of a published record; may repeat), ``DEPTH`` (an integer or
``ALL``; one step goes from an entity to the activity that made it (BACK) or used it
(FORTH) and on to that activity's entities), ``DIRECTION`` (``BACK`` or ``FORTH``),
``AGENTS`` (``true``/``false``), ``RESPONSEFORMAT`` (``PROV-JSON``, ``PROV-XML``,
``PROV-N`` or ``SVG``).

Rights: an ``ID`` the request may not read -- a proprietary product or DL3 dataset, an
activity or generated entity of a proprietary product's record, or the entity id of a
proprietary dataset's file -- answers 403 with the same message as its DataLink and files
(:meth:`ArchiveState.refusal`); products found by walking FORTH from a readable dataset,
or from a readable input file given by its entity id, are left out when the request may
not read them, without being named. An ID no published record knows answers 404 naming it.
"""

from __future__ import annotations

import dataclasses
import functools
import sqlite3
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ..db import ACCESS_URL_BASE
from ..publish import CURATION_TABLE, PRODUCT_INPUTS_TABLE, _recorded_did
from .params import ServiceFault, read_params
from .state import ArchiveState, bearer_token

__all__ = ["FORMATS", "product_document", "provenance_answer", "provsap_endpoint"]

#: RESPONSEFORMAT -> (serialization, media type)
FORMATS = {
    "PROV-JSON": ("json", "application/json"),
    "PROV-XML": ("xml", "application/xml"),
    "PROV-N": ("provn", "text/provenance-notation; charset=utf-8"),
    "SVG": ("svg", "image/svg+xml"),
}


def _products_of(conn: sqlite3.Connection, ident: str) -> tuple[list[tuple], str]:
    """Published products an ID leads to, and what the ID is (product/dataset/record)."""
    cols = f'SELECT did, entity_id, prov_json FROM "{CURATION_TABLE}"'
    rows = conn.execute(f"{cols} WHERE did = ?", (ident,)).fetchall()
    if rows:
        return rows, "product"
    rows = conn.execute(
        f'{cols} WHERE did IN (SELECT product_did FROM "{PRODUCT_INPUTS_TABLE}" '
        "WHERE input_did = ?)",
        (ident,),
    ).fetchall()
    if rows:
        return rows, "dataset"
    rows = conn.execute(
        f'{cols} WHERE did IN (SELECT product_did FROM "ctanb.prov_entity" WHERE id = ? '
        'UNION SELECT product_did FROM "ctanb.prov_activity" WHERE id = ?)',
        (ident, ident),
    ).fetchall()
    return rows, "record"


#: The published product's whole lineage is reached walking BACK from it, when the
#: activities reached are all its record's activities and the entities reached all its
#: entities: then the answer is its stored PROV-JSON record, word for word. One
#: recursive query over the ProvTAP rows of that product (indexed by product and id).
_COVERS_ALL = """
WITH RECURSIVE acts(id) AS (
    SELECT activity_id FROM "ctanb.prov_wasgeneratedby" WHERE product_did = :did
        AND entity_id = :ent
    UNION
    SELECT g.activity_id FROM acts
    JOIN "ctanb.prov_used" AS u ON u.product_did = :did AND u.activity_id = acts.id
    JOIN "ctanb.prov_wasgeneratedby" AS g ON g.product_did = :did AND g.entity_id = u.entity_id
), ents(id) AS (
    SELECT :ent UNION
    SELECT u.entity_id FROM acts
    JOIN "ctanb.prov_used" AS u ON u.product_did = :did AND u.activity_id = acts.id
)
SELECT (SELECT COUNT(*) FROM acts) = (SELECT COUNT(DISTINCT id) FROM "ctanb.prov_activity"
        WHERE product_did = :did)
   AND (SELECT COUNT(*) FROM ents) = (SELECT COUNT(DISTINCT id) FROM "ctanb.prov_entity"
        WHERE product_did = :did)
"""


def _whole_record(conn: sqlite3.Connection, did: str, entity_id: str) -> bool:
    """True when ``BACK`` ``DEPTH=ALL`` from product *did* reaches its whole record."""
    (covers,) = conn.execute(_COVERS_ALL, {"did": did, "ent": entity_id}).fetchone()
    return bool(covers)


@functools.lru_cache(maxsize=256)
def _parsed(prov_json: str) -> Any:
    """The graph of a published record (never changes; read, never modified, here)."""
    from ...provenance.document import parse

    return parse(prov_json, "json")


def _walk(graph: Any, starts: set[str], depth: int | None, direction: str) -> Any:
    from ...provenance.records import ProvenanceGraph

    ents, acts = set(starts & set(graph.entities)), set(starts & set(graph.activities))
    frontier, step = set(ents), 0
    for act_id in acts:
        act = graph.activities[act_id]
        rels = act.used if direction == "BACK" else act.generated
        frontier |= {r.entity_id for r in rels}
        ents |= {r.entity_id for r in rels}
    while frontier and (depth is None or step < depth):
        step += 1
        nxt: set[str] = set()
        for act in graph.activities.values():
            near = act.generated if direction == "BACK" else act.used
            if act.id in acts or not any(r.entity_id in frontier for r in near):
                continue
            acts.add(act.id)
            far = act.used if direction == "BACK" else act.generated
            nxt |= {r.entity_id for r in far} - ents
            ents |= {r.entity_id for r in far}
        frontier = nxt
    out = ProvenanceGraph()
    # In the record's order, not a set's: the same request gives the same document
    # in every process (DaCHS serves these documents written by another process).
    for act_id in (a for a in graph.activities if a in acts):
        act = graph.activities[act_id]
        out.activities[act_id] = dataclasses.replace(
            act,
            used=[r for r in act.used if r.entity_id in ents],
            generated=[r for r in act.generated if r.entity_id in ents],
        )
    out.entities = {e: ent for e, ent in graph.entities.items() if e in ents}
    return out


def product_document(
    conn: sqlite3.Connection, did: str, entity_id: str, prov_json: str, fmt: str
) -> str:
    """The answer to ``ID=<did>&DEPTH=ALL&DIRECTION=BACK`` in *fmt* (a ``#provenance`` link).

    Rights are not checked here: callers check them (the service per request, the DaCHS
    export by serving the document with the product's owner and embargo).
    """
    if fmt == "PROV-JSON" and _whole_record(conn, did, entity_id):
        # The product's whole record: building and serializing a PROV document of
        # 100 activities with the prov library takes ~100 ms; the stored one is it.
        return prov_json
    sub = _walk(_parsed(prov_json), {entity_id}, None, "BACK")
    kind = FORMATS[fmt][0]
    return sub.to_svg() if kind == "svg" else sub.serialize(kind, agents=True)


def _only_used(prov_json: str, ident: str) -> bool:
    """True when *ident* is, in this record, an input no activity of it generated."""
    from ...provenance.fits import parse_cached

    graph = parse_cached(prov_json)
    return ident in graph.entities and graph.generator_of(ident) is None


def _refuse_unreadable(state: ArchiveState, did: str, ident: str, token: str | None) -> None:
    """403, in DataLink's and the files' words, when dataset or product *did* (what *ident*
    names) is one the request may not read: its provenance is as closed as its bytes."""
    dataset = state.dataset(did)
    reason = state.refusal(did, dataset, token) if dataset else None
    if reason is not None:
        raise ServiceFault(reason, 403, plain=True)


def provenance_answer(
    state: ArchiveState, ids: list[str], *, depth: int | None, direction: str, agents: bool,
    fmt: str, token: str | None,
) -> tuple[str, str]:  # fmt: skip
    """(document text, media type) of a ProvSAP request (blocking)."""
    from ...provenance.records import ProvenanceGraph

    conn = state.connection()
    graph = ProvenanceGraph()
    starts: set[str] = set()
    for ident in ids:
        _refuse_unreadable(state, ident, ident, token)
        rows, what = _products_of(conn, ident)
        if not rows:
            raise ServiceFault(
                f"NotFoundFault: no published product or provenance record has ID {ident!r}", 404
            )
        readable = []
        for did, entity_id, prov_json in rows:
            dataset = state.dataset(did)
            reason = state.refusal(did, dataset, token) if dataset else "withdrawn"
            if reason is None:
                readable.append((did, entity_id, prov_json))
            elif what == "product" or (what == "record" and not _only_used(prov_json, ident)):
                raise ServiceFault(reason, 403, plain=True)
            if what == "record":
                # The file of a dataset, named by its entity id: refused as its DID is.
                entity = _parsed(prov_json).entities.get(ident)
                recorded = _recorded_did(entity) if entity is not None else None
                if recorded:
                    _refuse_unreadable(state, recorded, ident, token)
            # else: a dataset, or an input file, that a proprietary analysis used: that
            # analysis is left out (as walking FORTH from the dataset leaves it out),
            # without naming it.
        if what == "product" and len(ids) == 1 and depth is None and direction == "BACK" and agents:
            return product_document(conn, *readable[0], fmt), FORMATS[fmt][1]
        for _did, entity_id, prov_json in readable:
            # A published record never changes: its parsed graph is cached (parsing is
            # most of the time of an answer); merged into a new graph, never modified.
            part = _parsed(prov_json)
            graph.merge(part)
            if what == "product":
                starts.add(entity_id)
            elif what == "record":
                starts.add(ident)
            else:
                starts |= {e.id for e in part.entities.values() if _recorded_did(e) == ident}
    sub = _walk(graph, starts, depth, direction)
    kind, media = FORMATS[fmt]
    if kind == "svg":
        return sub.to_svg(), media
    return sub.serialize(kind, agents=agents), media


async def provsap_endpoint(request: Request) -> Response:
    """ProvSAP: the provenance of published products, with rights applied."""
    state: ArchiveState = request.app.state.archive
    params = await read_params(request)
    ids = [i.strip() for i in params.getall("ID") if i.strip()]
    if not ids:
        raise ServiceFault("UsageFault: ID is missing: send ID=<product or dataset DID>")
    depth_text = (params.get("DEPTH") or "1").strip().upper()
    if depth_text == "ALL":
        depth = None
    elif depth_text.isdigit():
        depth = int(depth_text)
    else:
        raise ServiceFault(f"UsageFault: DEPTH must be a whole number or ALL, not {depth_text!r}")
    direction = (params.get("DIRECTION") or "BACK").strip().upper()
    if direction not in ("BACK", "FORTH"):
        raise ServiceFault(f"UsageFault: DIRECTION must be BACK or FORTH, not {direction!r}")
    agents = (params.get("AGENTS") or "true").strip().lower() in ("true", "1", "yes")
    fmt = (params.get("RESPONSEFORMAT") or "PROV-JSON").strip().upper()
    if fmt not in FORMATS:
        raise ServiceFault(
            f"UsageFault: RESPONSEFORMAT={fmt!r} is not supported: use one of {', '.join(FORMATS)}"
        )
    try:
        text, media = await run_in_threadpool(
            provenance_answer, state, ids, depth=depth, direction=direction, agents=agents,
            fmt=fmt, token=bearer_token(request.headers),
        )  # fmt: skip
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            raise ServiceFault(
                f"NotFoundFault: this archive has no published products (ID {ids[0]!r})", 404
            ) from None
        raise ServiceFault(f"the archive database cannot be read: {exc}", 503) from None
    # Archive locations are stored base-free (as ObsCore access_url): served with ours.
    text = text.replace(ACCESS_URL_BASE, state.public_base(str(request.base_url)) + "/")
    return Response(text, media_type=media)
