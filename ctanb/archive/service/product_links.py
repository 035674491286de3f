"""DataLink rows of published products, both ways (DataLink core vocabulary terms).

- a product: ``#progenitor`` to each DL3 dataset it was made from, ``#provenance`` to
  its provenance document as PROV-JSON, PROV-XML and SVG (ProvSAP, ``DEPTH=ALL``), and
  ``#coderived`` to the other products of the same analysis by the same publisher
  (same ``analysis`` curation field, or sharing an activity of their lineage; an
  analysis name belongs to its first publisher, :func:`~ctanb.archive.publish.publish_file`);
- a DL3 dataset: ``#derivation`` to each product published from it.

Links to what the caller may not read are listed with ``link_authorized=F`` and the
reason, as for DL3 files; following them answers 403.
"""

from __future__ import annotations

import sqlite3
from urllib.parse import quote, urlencode

from ..publish import CURATION_TABLE, PRODUCT_INPUTS_TABLE
from .state import ArchiveState

__all__ = ["DESCRIPTIONS", "DOCUMENTS", "linked_dids", "product_links"]

#: The provenance documents of a product: (ProvSAP RESPONSEFORMAT, media type, description).
DOCUMENTS = (
    ("PROV-JSON", "application/json", "Provenance of the product (W3C PROV-JSON)"),
    ("PROV-XML", "application/xml", "Provenance of the product (W3C PROV-XML)"),
    ("SVG", "image/svg+xml", "Provenance graph of the product (SVG picture)"),
)


def _link(state: ArchiveState, did: str, target: str, base: str, token: str | None,
          semantics: str, description: str) -> tuple:  # fmt: skip
    dataset = state.dataset(target)
    refusal = state.refusal(target, dataset, token) if dataset else None
    auth = state.link_auth(dataset)
    if refusal is not None:
        description = f"{description} (refused: {refusal})"
    return (did, f"{base}/files/{quote(target, safe='')}", None, None, semantics, description,
            "application/fits", None, None, None, auth, refusal is None)  # fmt: skip


def linked_dids(conn: sqlite3.Connection, did: str) -> list[tuple[str, str]]:
    """(semantics, DID) of the datasets and products *did* links to (see the module docstring).

    Empty for an archive without publications. Both archives (this service and DaCHS,
    :mod:`ctanb.archive.dachs_prov`) link from these.
    """
    try:
        product = conn.execute(
            f"SELECT analysis, json_extract(curation, '$.publisher') FROM \"{CURATION_TABLE}\" "
            "WHERE did = ?",
            (did,),
        ).fetchone()
        if product is None:
            return [("#derivation", pdid) for (pdid,) in conn.execute(
                f'SELECT product_did FROM "{PRODUCT_INPUTS_TABLE}" WHERE input_did = ? '
                "ORDER BY product_did", (did,))]  # fmt: skip
        out = [("#progenitor", idid) for (idid,) in conn.execute(
            f'SELECT input_did FROM "{PRODUCT_INPUTS_TABLE}" WHERE product_did = ? '
            "ORDER BY input_did", (did,))]  # fmt: skip
        analysis, publisher = product
        # Only products of the same publisher are coderived: an analysis name (or an
        # activity id) another publisher reuses never links their products to these.
        others = conn.execute(
            f'SELECT did FROM "{CURATION_TABLE}" WHERE did != ? AND '
            "json_extract(curation, '$.publisher') IS ? AND ((? IS NOT NULL AND "
            'analysis = ?) OR did IN (SELECT product_did FROM "ctanb.prov_activity" '
            'WHERE id IN (SELECT id FROM "ctanb.prov_activity" WHERE product_did = ?))) '
            "ORDER BY did",
            (did, publisher, analysis, analysis, did),
        ).fetchall()
        return out + [("#coderived", other) for (other,) in others]
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []  # an archive without publications
        raise


#: DataLink description of each kind of link between datasets and products.
DESCRIPTIONS = {
    "#derivation": "A product published from this dataset",
    "#progenitor": "A DL3 dataset this product was made from",
    "#coderived": "Another product of the same analysis",
}


def product_links(state: ArchiveState, did: str, base: str, token: str | None) -> list[tuple]:
    """The extra DataLink rows of *did* (a product or a DL3 dataset); blocking."""
    conn = state.connection()
    linked = linked_dids(conn, did)
    rows = [_link(state, did, target, base, token, sem, DESCRIPTIONS[sem])
            for sem, target in linked if sem != "#coderived"]  # fmt: skip
    if not any(sem == "#derivation" for sem, _ in linked) and _is_product(conn, did):
        dataset = state.dataset(did)
        refusal = state.refusal(did, dataset, token) if dataset else None
        auth = state.link_auth(dataset)
        for fmt, mime, desc in DOCUMENTS:
            query = urlencode({"ID": did, "DEPTH": "ALL", "RESPONSEFORMAT": fmt})
            text = desc if refusal is None else f"{desc} (refused: {refusal})"
            rows.append((did, f"{base}/provsap?{query}", None, None, "#provenance", text, mime,
                         None, None, None, auth, refusal is None))  # fmt: skip
    rows += [_link(state, did, target, base, token, sem, DESCRIPTIONS[sem])
             for sem, target in linked if sem == "#coderived"]  # fmt: skip
    return rows


def _is_product(conn: sqlite3.Connection, did: str) -> bool:
    try:
        found = conn.execute(f'SELECT 1 FROM "{CURATION_TABLE}" WHERE did = ?', (did,))
        return found.fetchone() is not None
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return False
        raise
