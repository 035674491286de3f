"""Published products on DaCHS: the ``provenance`` and ``products`` schemas and DataLink.

Generated, like :mod:`ctanb.archive.dachs_rd`, from an embedded archive database, so
both archives answer the same ADQL from the same rows:

``ctanb/prov.rd``
    Schema ``provenance``: the ProvTAP tables of :mod:`ctanb.archive.provtap`, same
    table and column names (``value`` is a delimited identifier on DaCHS: write
    ``p."value"``, which both archives accept), plus ctanb's ``product_progenitor`` and
    ``product_activity`` (the lineage closures the product searches join).
``ctanb/curation.rd``
    Schema ``products``: table ``curation`` (curation and analysis context of the
    published products; joins ``ivoa.obscore`` on ``obs_publisher_did``).
``data/prov_<table>.copy``, ``data/curation.copy``, ``data/links.csv``
    Their rows, and the DataLink rows between datasets and products (``#progenitor``,
    ``#derivation``, ``#coderived``, from :func:`~.service.product_links.linked_dids`).
    The provenance documents of each product (PROV-JSON, PROV-XML, SVG: the ProvSAP
    ``DEPTH=ALL`` answers of the embedded archive, :func:`~.service.provsap.product_document`)
    are written as files served by DaCHS's products service under DataLink
    ``#provenance``. Their input locations, like the ``location`` of ``provenance.entity``,
    are DaCHS's own file URLs (``<serverURL>/getproduct/<accref>``, what its DataLink
    ``#this`` gives), where the embedded archive serves its ``/files/<DID>``: the stored
    ``$BASE/files/<DID>`` is filled in at export (:func:`dachs_document`). The documents
    are not signed (the signature is the product file's, whose bytes DaCHS serves as they
    are), so this changes nothing that ``ctanb prov verify`` checks.

Rights, as faithfully as DaCHS allows. The embedded archive shows each request the
provenance rows its token may read (a view per table, :mod:`~.provtap`); DaCHS's TAP
service has no per-user rows. So DaCHS publishes in the ``provenance`` tables exactly
the rows an anonymous user sees on the embedded archive, i.e. only the provenance of
public products and of products whose release date has passed at export time (``up``
exports again, and re-imports, when that changes the rows). A group member reads the
provenance of its proprietary product on DaCHS through the product's ``#provenance``
documents, which DaCHS serves, like the product's file, to that group's credentials
only (owner and embargo of ``//products``). The ObsCore row itself is searchable, as
on the embedded archive. ProvSAP itself (``DEPTH``, ``DIRECTION`` ...) is not on DaCHS:
DaCHS 2.7 has no ProvSAP core; the ``DEPTH=ALL`` documents are what its DataLink
carries.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
import sqlite3
import sys
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

from .db import ACCESS_URL_BASE, q
from .provtap import _EXTENSION, PROVTAP_TABLES, SCHEMA
from .publish import CURATION_COLUMNS, CURATION_TABLE

__all__ = [
    "LINKS_TABLE",
    "LINKS_TABLE_XML",
    "LINKS_UNION",
    "dachs_document",
    "dachs_locator",
    "did_access",
    "export_products",
    "render_curation_rd",
    "render_prov_rd",
]

#: DaCHS table of the DataLink rows between datasets and products.
LINKS_TABLE = "ctanb.links"
#: DaCHS's DataLink metadata endpoint of the ctanb resource (below the server's URL).
RESDIR_DL = "ctanb/q/dl/dlmeta"
_RESERVED = frozenset({"value"})  # ADQL reserved: a delimited identifier on DaCHS
#: Indexed columns of the provenance tables on DaCHS (the use cases join on these).
_INDEXED = {
    "activity": ("id", "name", "activity_description_id"),
    "activity_description": ("id", "name"),
    "entity": ("id", "obs_id", "obs_publisher_did"),
    "used": ("activity_id", "entity_id"),
    "wasgeneratedby": ("entity_id", "activity_id"),
    "wasderivedfrom": ("generated_entity_id", "used_entity_id"),
    "agent": ("id", "name"),
    "wasassociatedwith": ("activity_id", "agent_id"),
    "parameter": ("activity_id", "name"),
    "product_progenitor": ("product_did", "obs_id", "progenitor_did"),
    "product_activity": ("product_did", "activity_id"),
}


def _tables() -> dict[str, tuple[str, tuple]]:
    return {**PROVTAP_TABLES, **_EXTENSION}


def _table_xml(schema: str, table: str, desc: str, cols: list[tuple[str, str, str]],
               indexed: tuple[str, ...] = ()) -> str:  # fmt: skip
    lines = [f'\t<table id="{table}" onDisk="True" adql="True">',
             f"\t\t<meta name=\"description\">{desc}</meta>"]  # fmt: skip
    for name, ucd, text in cols:
        dachs_name = f"quoted/{name}" if name in _RESERVED else name
        lines.append(f'\t\t<column name="{dachs_name}" type="text" ucd={quoteattr(ucd)} '
                     f"description={quoteattr(text)}/>")  # fmt: skip
    for name in indexed:
        lines.append(f'\t\t<index columns="{name}"/>')
    lines.append("\t</table>")
    names = ", ".join(f'"{n}"' if n in _RESERVED else n for n, _, _ in cols)
    lines.append(f"""	<data id="import_{table}">
		<make table="{table}">
			<script type="preIndex" lang="python" name="load {table} (COPY)">
				import os
				src = os.path.join(table.tableDef.rd.resdir, "data", "{_copy_name(table)}")
				with open(src, encoding="utf-8") as f:
					cursor = table.connection.cursor()
					cursor.copy_expert('COPY {schema}.{table} ({names}) FROM STDIN', f)
					cursor.close()
			</script>
			<script type="postCreation" lang="SQL" name="analyze">
				ANALYZE {schema}.{table}
			</script>
		</make>
	</data>""")
    return "\n".join(lines)


def _copy_name(table: str) -> str:
    return "curation.copy" if table == "curation" else f"prov_{table}.copy"


def _rd(schema: str, title: str, body: str) -> str:
    return f"""<?xml version="1.0" encoding="utf-8"?>
<!-- Generated by ctanb.archive.dachs_prov from an embedded archive; do not edit. -->
<resource schema="{schema}" resdir="ctanb">
	<meta name="title">{title}</meta>
	<meta name="description">{title}, as on the embedded ctanb archive.</meta>
	<meta name="creationDate">2026-01-01T00:00:00</meta>
	<meta name="subject">gamma-ray-astronomy</meta>
	<meta name="creator.name">ctanb</meta>
{body}
</resource>
"""


def render_prov_rd() -> str:
    """``ctanb/prov.rd``: the ProvTAP tables in schema ``provenance``."""
    body = "\n".join(
        _table_xml(SCHEMA, table, desc, [(c[0], c[2], c[3]) for c in cols], _INDEXED[table])
        for table, (desc, cols) in _tables().items()
    )
    return _rd(SCHEMA, "Provenance of published products (IVOA ProvTAP)", body)


def render_curation_rd() -> str:
    """``ctanb/curation.rd``: table ``products.curation``."""
    body = _table_xml("products", "curation",
                      "Curation and analysis context of published products (join "
                      "ivoa.obscore on obs_publisher_did)",
                      [(n, u, d) for n, u, d in CURATION_COLUMNS], ("obs_publisher_did",))  # fmt: skip
    return _rd("products", "Curation of products published into this archive", body)


#: The DaCHS table of links and the lines the DataLink metaMaker adds (see dachs_rd).
LINKS_TABLE_XML = """
	<table id="links" onDisk="True" adql="hidden">
		<meta name="description">DataLink rows between datasets and products.</meta>
		<index columns="did"/>
		<column name="did" type="text" ucd="meta.id;meta.main" description="From"/>
		<column name="semantics" type="text" ucd="meta.code" description="DataLink semantics"/>
		<column name="accref" type="text" ucd="meta.ref" description="The #this file linked"/>
		<column name="description" type="text" ucd="meta.note" description="What it is"/>
	</table>

	<data id="import_links">
		<sources>data/links.csv</sources>
		<csvGrammar/>
		<make table="links">
			<rowmaker idmaps="did,semantics,accref,description"/>
		</make>
	</data>
"""
#: SQL (in the metaMaker's query) adding the linked datasets and products after the files.
LINKS_UNION = (
    " UNION ALL SELECT l.semantics, l.accref, f.mime, f.accsize, l.description,"
    f" f.owner, f.embargo FROM {LINKS_TABLE} AS l JOIN ctanb.files AS f"
    " ON f.accref = l.accref AND f.semantics = '#this' WHERE l.did=%(did)s"
)


def did_access(conn: sqlite3.Connection, dids: set[str]) -> dict[str, tuple[str, str]]:
    """Owner group and embargo of the files of proprietary datasets among *dids*."""
    out = {}
    for did, group, release in conn.execute(
        f'SELECT obs_publisher_did, "_access_group", obs_release_date '
        f'FROM {q("ivoa.obscore")} WHERE "_access_group" IS NOT NULL'
    ):
        if did in dids:
            out[did] = (group, str(release)[:10] if release else "9999-12-31")
    return out


# --- rows -------------------------------------------------------------------------------------
def _public_rows(conn: sqlite3.Connection, table: str, names: list[str], policy: Any) -> list:
    """Distinct rows of ``provenance.<table>`` an anonymous request sees (see module doc)."""
    cols = ", ".join(q(n) for n in names)
    rows: dict[tuple, None] = {}
    for *values, group, release in conn.execute(
        f'SELECT {cols}, "_access_group", "_release" FROM {q("ctanb.prov_" + table)} ORDER BY rowid'
    ):
        if not group or policy.is_released(release):
            rows.setdefault(tuple(values))
    return list(rows)


#: An archive-neutral location of the embedded archive: ``$BASE/files/<quoted DID>`` (in
#: the SVG documents graphviz writes each ``-`` of it as ``&#45;``).
_PLACEHOLDER = re.compile(re.escape(ACCESS_URL_BASE) + r"files/((?:[A-Za-z0-9%._~-]|&#45;)+)")


def dachs_locator(conn: sqlite3.Connection, accref: Any, server_url: str | None) -> Any:
    """A function: quoted DID -> where DaCHS serves that dataset's file.

    The embedded archive stores locations as ``$BASE/files/<DID>`` and fills its own URL in
    when it serves them; on DaCHS the file is ``<server_url>/getproduct/<accref>`` (what its
    DataLink ``#this`` gives), or, for a DID without a file, its DataLink document. Without
    *server_url* (not known to the caller) the accref itself, as ObsCore's ``access_url``.
    """
    from urllib.parse import quote, unquote

    this = dict(conn.execute("SELECT did, path FROM \"ctanb.files\" WHERE semantics = '#this'"))
    base = server_url.rstrip("/") if server_url else None

    def locate(quoted: str) -> str | None:
        did = unquote(quoted)
        path = this.get(did)
        if base is None:
            return accref(path) if path else None
        if path:
            return f"{base}/getproduct/{accref(path)}"
        return f"{base}/{RESDIR_DL}?ID={quote(did, safe='')}"

    return locate


def dachs_document(text: str, locate: Any) -> str:
    """*text* (a provenance document) with every ``$BASE/files/<DID>`` as DaCHS's URL."""
    return _PLACEHOLDER.sub(lambda m: locate(m.group(1).replace("&#45;", "-")) or m.group(0), text)


def _dachs_locations(rows: list, at: int, locate: Any) -> list:
    """Entity locations ``$BASE/files/<DID>`` as DaCHS's URL of that dataset's file."""
    out = []
    for row in rows:
        location = row[at]
        if isinstance(location, str):
            match = _PLACEHOLDER.fullmatch(location)
            if match:
                row = (*row[:at], locate(match.group(1)), *row[at + 1 :])
        out.append(row)
    return out


def _progenitor_rows(conn: sqlite3.Connection, policy: Any) -> list:
    rows = conn.execute(
        'SELECT i.product_did, i.input_did, o.obs_id, o.obs_collection, p."_access_group", '
        'p.obs_release_date FROM "ctanb.product_inputs" AS i '
        'JOIN "ivoa.obscore" AS o ON o.obs_publisher_did = i.input_did '
        'JOIN "ivoa.obscore" AS p ON p.obs_publisher_did = i.product_did ORDER BY i.rowid'
    )
    return [r[:4] for r in rows if not r[4] or policy.is_released(r[5])]


def _lineage_activity_rows(conn: sqlite3.Connection, policy: Any) -> list:
    """``provenance.product_activity``: the rows an anonymous user sees (public products)."""
    rows = conn.execute(
        'SELECT l.product_did, l.activity_id, p."_access_group", p.obs_release_date '
        'FROM "ctanb.product_activities" AS l '
        'JOIN "ivoa.obscore" AS p ON p.obs_publisher_did = l.product_did ORDER BY l.rowid'
    )
    return [r[:2] for r in rows if not r[2] or policy.is_released(r[3])]


def _curation_rows(conn: sqlite3.Connection) -> list:
    names = ", ".join(n for n, _, _ in CURATION_COLUMNS)
    return conn.execute(f'SELECT {names} FROM "products.curation" ORDER BY 1').fetchall()


def _has_publications(conn: sqlite3.Connection) -> bool:
    found = conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (CURATION_TABLE,)).fetchone()
    return found is not None


def _write_copy(path: Path, rows: list, digest: Any) -> None:
    from .dachs_rd import _copy_value

    with open(path, "w", encoding="utf-8", newline="\n") as out:
        for row in rows:
            line = "\t".join(_copy_value(v, None) for v in row) + "\n"
            digest.update(line.encode())
            out.write(line)


def export_products(
    conn: sqlite3.Connection,
    out_dir: Path,
    *,
    policy: Any,
    docs_dir: Path,
    accref: Any,
    digest: Any,
    documents: bool = True,
    server_url: str | None = None,
) -> list[list[Any]]:
    """Write the provenance, curation and link rows for DaCHS into *out_dir*.

    Parameters
    ----------
    conn : sqlite3.Connection
        The embedded archive (read).
    out_dir : Path
        The RD's ``data`` folder.
    policy : AccessPolicy
        Release dates (which provenance rows are public now).
    docs_dir : Path
        Where the provenance documents are written (readable by DaCHS's server).
    accref : callable
        Path of a file -> its DaCHS accref (:mod:`ctanb.archive.dachs_rd`).
    digest : hashlib hash
        Updated with everything written (``up`` re-imports when it changes).
    documents : bool
        Write the provenance documents (benchmarks at 1,000 products leave them out).
    server_url : str, optional
        DaCHS's ``[web]serverURL``: entity locations and the documents' locations become
        its file URLs (:func:`dachs_locator`); without it, accrefs and ``$BASE/files/<DID>``.

    Returns
    -------
    list of list
        The ``files.csv`` rows of the provenance documents, without owner and embargo
        (the product's; the caller adds them).
    """
    published = _has_publications(conn)
    locate = dachs_locator(conn, accref, server_url)
    counts = {}
    for table, (_desc, cols) in _tables().items():
        names = [c[0] for c in cols]
        if not published:
            rows: list = []
        elif table == "product_progenitor":
            rows = _progenitor_rows(conn, policy)
        elif table == "product_activity":
            rows = _lineage_activity_rows(conn, policy)
        else:
            rows = _public_rows(conn, table, names, policy)
            if table == "entity":
                rows = _dachs_locations(rows, names.index("location"), locate)
        _write_copy(out_dir / _copy_name(table), rows, digest)
        counts[table] = len(rows)
    _write_copy(out_dir / "curation.copy", _curation_rows(conn) if published else [], digest)
    files: list[list[Any]] = []
    with open(out_dir / "links.csv", "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["did", "semantics", "accref", "description"])
        if not published:
            return files
        from .service.product_links import DESCRIPTIONS, linked_dids

        this = dict(conn.execute("SELECT did, path FROM \"ctanb.files\" WHERE semantics = '#this'"))
        dids = {r[0] for r in conn.execute('SELECT product_did FROM "ctanb.product_inputs"')}
        dids |= {r[0] for r in conn.execute('SELECT input_did FROM "ctanb.product_inputs"')}
        for did in sorted(dids):
            for semantics, target in linked_dids(conn, did):
                if target in this:
                    row = [did, semantics, accref(this[target]), DESCRIPTIONS[semantics]]
                    digest.update(repr(row).encode())
                    writer.writerow(row)
    if documents:
        files = _documents(conn, docs_dir, locate, server_url)
    return files


def _documents(conn: sqlite3.Connection, docs_dir: Path, locate: Any,
               server_url: str | None) -> list[list[Any]]:  # fmt: skip
    """The ``#provenance`` documents of every product, written once per record and server
    URL (records never change), with DaCHS's URLs as locations (:func:`dachs_document`)."""
    from .service.product_links import DOCUMENTS
    from .service.provsap import product_document

    suffix = {"PROV-JSON": "json", "PROV-XML": "xml", "SVG": "svg"}
    rows = []
    for did, entity_id, prov_json in conn.execute(
        f"SELECT did, entity_id, prov_json FROM {q(CURATION_TABLE)} ORDER BY did"
    ):
        key = hashlib.sha256(f"{did}\n{server_url}\n{prov_json}".encode()).hexdigest()[:16]
        for fmt, mime, description in DOCUMENTS:
            path = docs_dir / key / f"provenance.{suffix[fmt]}"
            if not path.is_file():
                path.parent.mkdir(parents=True, exist_ok=True)
                try:
                    text = dachs_document(
                        product_document(conn, did, entity_id, prov_json, fmt), locate
                    )
                except Exception as exc:  # e.g. graphviz giving up on a huge graph
                    # One missing document must not keep the archive from publishing.
                    print(f"dachs_prov: no {fmt} provenance document for {did}: {exc}",
                          file=sys.stderr)  # fmt: skip
                    continue
                part = path.with_name(path.name + ".part")
                part.write_text(text, encoding="utf-8")
                os.chmod(part, 0o644)
                os.replace(part, path)
            rows.append([did, "#provenance", str(path), mime, path.stat().st_size, "",
                         description])  # fmt: skip
    os.chmod(docs_dir, 0o755) if docs_dir.exists() else None
    return rows
