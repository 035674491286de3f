"""DataLink 1.1 ``{links}`` endpoint: ``/datalink?ID=<did>`` (ID may repeat).

One row per file of the dataset (``#this`` first, then ``#calibration``,
``#progenitor``, ``#provenance`` ... as recorded in ``ctanb.files``). Links to
data the caller may not read yet are still listed, with their ``access_url``,
``link_auth="true"`` and ``link_authorized=F`` (DataLink 1.1), and a description
that says why; following such a link answers 403. An unknown ID gives a row
with ``error_message`` ("NotFoundFault: ...") as DataLink requires.
"""

from __future__ import annotations

import sqlite3

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from .coverage_api import collection_links
from .files import dataset_files, file_url
from .params import ServiceFault, read_params
from .product_links import product_links
from .state import ArchiveState, bearer_token
from .votable import VotableColumn, rows_to_votable

__all__ = ["LINK_COLUMNS", "datalink_endpoint", "links_rows"]

MAX_IDS = 1000
_DATALINK_MIME = "application/x-votable+xml;content=datalink"

LINK_COLUMNS = (
    VotableColumn("ID", "char", ucd="meta.id;meta.main", arraysize="*",
                  description="Input identifier (obs_publisher_did)"),
    VotableColumn("access_url", "char", ucd="meta.ref.url", arraysize="*",
                  description="Link to the file"),
    VotableColumn("service_def", "char", ucd="meta.ref", arraysize="*",
                  description="Reference to a service descriptor"),
    VotableColumn("error_message", "char", ucd="meta.code.error", arraysize="*",
                  description="Why this link could not be made"),
    VotableColumn("semantics", "char", ucd="meta.code", arraysize="*",
                  description="What the linked file is for this dataset"),
    VotableColumn("description", "char", ucd="meta.note", arraysize="*",
                  description="Human-readable description of the link"),
    VotableColumn("content_type", "char", ucd="meta.code.mime", arraysize="*",
                  description="MIME type of the linked file"),
    VotableColumn("content_length", "long", unit="byte", ucd="phys.size;meta.file",
                  description="Size of the linked file"),
    VotableColumn("content_qualifier", "char", ucd="meta.code.class", arraysize="*",
                  description="Kind of product the link leads to"),
    VotableColumn("local_semantics", "char", ucd="meta.code", arraysize="*",
                  description="Archive-specific semantics"),
    VotableColumn("link_auth", "char", ucd="meta.code", arraysize="*",
                  description="Authentication: false, optional or true"),
    VotableColumn("link_authorized", "boolean", ucd="meta.code",
                  description="Whether this request may follow the link"),
)  # fmt: skip

_SEMANTIC_DESCRIPTION = {
    "#this": "The dataset (DL3 event list)",
    "#calibration": "Instrument response functions used with the dataset",
    "#progenitor": "Data the dataset was made from",
    "#provenance": "Provenance record of the dataset",
}


def links_rows(state: ArchiveState, ids: list[str], base: str, token: str | None) -> list[tuple]:
    """The DataLink rows for *ids* (blocking)."""
    rows: list[tuple] = []
    for did in ids:
        dataset = state.dataset(did)
        if dataset is None and (coverage := collection_links(state, did, base)) is not None:
            rows += coverage  # a collection: its coverage MOCs (issue 18)
            continue
        if dataset is None:
            rows.append((did, None, None, f"NotFoundFault: no dataset {did!r} in this archive",
                         None, None, None, None, None, None, None, None))  # fmt: skip
            continue
        refusal = state.refusal(did, dataset, token)
        auth = state.link_auth(dataset)
        files = dataset_files(state, did)
        if not files:
            rows.append((did, None, None, f"NotFoundFault: dataset {did!r} has no files",
                         None, None, None, None, None, None, auth, refusal is None))  # fmt: skip
        for f in files:
            desc = f.description or _SEMANTIC_DESCRIPTION.get(f.semantics, f.semantics)
            if refusal is not None:
                desc = f"{desc} (refused: {refusal})"
            # a published product (issue 14) is no event list
            qualifier = (
                "#event-list" if f.semantics == "#this" and "/products?" not in did else None
            )
            if f.semantics == "#calibration":
                # High-Energy ObsCore note, section 5.2: IRFs are #calibration links whose
                # content_qualifier is a response-function term (the file holds them all).
                qualifier = "#response-function"
            rows.append((did, file_url(base, did, f, files), None, None, f.semantics, desc,
                         f.content_type, f.size or None, qualifier, None, auth,
                         refusal is None))  # fmt: skip
        # Published products (issue 14): progenitors, provenance, derivations, coderived.
        rows += _readable_lineage(product_links(state, did, base, token), refusal)
    return rows


#: Links that name another dataset or product by lineage.
_LINEAGE = ("#progenitor", "#derivation", "#coderived")


def _readable_lineage(rows: list[tuple], refusal: str | None) -> list[tuple]:
    """The product links a caller may see: lineage stays as secret as ProvTAP/ProvSAP keep it.

    The lineage of a product the caller may not read (its ``#progenitor`` and
    ``#coderived`` rows) is left out, and so is every ``#derivation``/``#coderived`` row
    naming a product the caller may not read: such a row would tell which runs a
    proprietary analysis used. The DataLink spec lets a service list only the links it
    offers; ``#this`` and ``#provenance`` rows of a refused product stay, refused with
    ``link_authorized=F`` and the reason, as for DL3 data.
    """
    out = []
    for row in rows:
        semantics, authorized = row[4], row[11]
        if semantics in _LINEAGE and (refusal is not None or (
                semantics != "#progenitor" and authorized is False)):  # fmt: skip
            continue
        out.append(row)
    return out


async def datalink_endpoint(request: Request) -> Response:
    """DataLink ``{links}``: GET or POST with one or more ID parameters."""
    state: ArchiveState = request.app.state.archive
    params = await read_params(request)
    ids = [i.strip() for i in params.getall("ID") if i.strip()]
    if not ids:
        raise ServiceFault("UsageFault: ID is missing: send ID=<obs_publisher_did>")
    if len(ids) > MAX_IDS:
        raise ServiceFault(f"UsageFault: at most {MAX_IDS} ID values per request")
    fmt = (params.get("RESPONSEFORMAT") or "").strip().lower()
    if fmt and not fmt.startswith(("application/x-votable+xml", "votable", "text/xml")):
        raise ServiceFault(f"UsageFault: RESPONSEFORMAT={fmt!r} is not supported: use votable")
    base = state.public_base(str(request.base_url))
    token = bearer_token(request.headers)
    try:
        rows = await run_in_threadpool(links_rows, state, ids, base, token)
    except sqlite3.DatabaseError as exc:
        raise ServiceFault(f"the archive database cannot be read: {exc}", 503) from None
    body = rows_to_votable(LINK_COLUMNS, rows)
    return Response(body, media_type=_DATALINK_MIME)
