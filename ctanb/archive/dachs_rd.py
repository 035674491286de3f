"""Publish the embedded archive's rows through DaCHS (GAVO Data Center Helper Suite).

Everything DaCHS needs is *generated* here from :mod:`ctanb.datamodel` and from an
embedded archive database (:mod:`ctanb.archive.db`), so both archives answer from
the same rows by construction:

``userconfig.rd``
    The ``obscore-extracolumns`` / ``-extrapars`` / ``-extraevents`` streams that add
    the CTA extension columns (every data-model column DaCHS's own
    ``ivoa.obscore`` lacks) to ``ivoa.obscore``.
``ctanb/q.rd``
    The resource descriptor: table ``ctanb.obs`` (every data-model column plus the
    private ``access_group``; ``//obscore#publish``, ``//scs#q3cindex``, a GIST
    index on the ``spoly`` ``s_region``), table ``ctanb.files`` (``//products#table``:
    the files, with owner/embargo for proprietary data) and the DataLink service
    ``ctanb/q/dl`` (``#this``, ``#calibration`` ... from ``ctanb.files``).
``ctanb/prov.rd``, ``ctanb/curation.rd``, ``ctanb.links``
    Published products: their provenance (schema ``provenance``), curation and
    DataLink rows, from :mod:`ctanb.archive.dachs_prov`.
``data/obs.copy``, ``data/files.csv``, ``data/users.tsv``
    The rows: ObsCore rows in PostgreSQL COPY text format (loaded by a ``preIndex``
    script of the RD, so indexes are built after loading), the files with their
    owner group and embargo date, and the DaCHS users made from the access policy.

Access policy mapping (:class:`~ctanb.archive.policy.AccessPolicy` to DaCHS):
each policy group becomes a DaCHS user (and so a group) of the same name whose
password is the group's first token; further tokens become users
``<group>.<n>`` in that group. A group that ``includes`` others has its users
added to those groups. A file is owned by the ``access_group`` of the datasets
using it, embargoed until their ``obs_release_date`` (a proprietary dataset
without a date gets 9999-12-31); a file also used by a public dataset is public.
Clients send HTTP basic credentials ``<group>:<token>`` to DaCHS where they send
``Authorization: Bearer <token>`` to the embedded service.

DaCHS runs Debian's ``/usr/bin/python3``, so nothing here is imported by DaCHS:
the RD carries only DaCHS code; this module runs in the project's environment.
"""

from __future__ import annotations

import csv
import hashlib
import os
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from .._errors import ConfigError
from ..datamodel import OBSCORE_COLUMNS, Column
from . import db as archive_db
from .dachs_coverage import DATALINK_DESCRIPTOR_XML as COVERAGE_DESCRIPTOR
from .dachs_coverage import DATALINK_LINKS_CODE as COVERAGE_LINKS
from .dachs_prov import (
    LINKS_TABLE_XML,
    LINKS_UNION,
    did_access,
    export_products,
    render_curation_rd,
    render_prov_rd,
)
from .policy import AccessPolicy

__all__ = [
    "DACHS_OBSCORE_COLUMNS",
    "FILES_TABLE",
    "OBS_TABLE",
    "RESDIR",
    "ExportReport",
    "export_rows",
    "extension_columns",
    "render_rd",
    "render_userconfig",
    "write_resource",
]

#: The resource directory under DaCHS's inputs and the schema of its tables.
RESDIR = "ctanb"
OBS_TABLE = "ctanb.obs"
FILES_TABLE = "ctanb.files"

#: Columns that DaCHS 2.7's own ``ivoa.obscore`` defines (``//obscore#obscore-columns``).
DACHS_OBSCORE_COLUMNS = frozenset(
    "dataproduct_type dataproduct_subtype calib_level obs_collection obs_id obs_title "
    "obs_publisher_did obs_creator_did access_url access_format access_estsize target_name "
    "target_class s_ra s_dec s_fov s_region s_resolution t_min t_max t_exptime t_resolution "
    "em_min em_max em_res_power o_ucd pol_states facility_name instrument_name s_xel1 s_xel2 "
    "t_xel em_xel pol_xel s_pixel_scale em_ucd preview source_table".split()
)

#: Embargo for a proprietary dataset without a release date (closed until changed).
NO_RELEASE_EMBARGO = "9999-12-31"


def extension_columns() -> tuple[Column, ...]:
    """The data-model columns DaCHS's ``ivoa.obscore`` lacks (the CTA extension)."""
    return tuple(c for c in OBSCORE_COLUMNS if c.name not in DACHS_OBSCORE_COLUMNS)


def _column_xml(c: Column, *, ucd: str | None = None, indent: str = "\t\t") -> str:
    attrs = {
        "name": c.name,
        "type": c.pg_type,
        "unit": c.unit,
        "ucd": ucd if ucd is not None else c.ucd,
        "utype": c.utype,
        "description": c.description,
        "verbLevel": "1" if c.principal else "20",
    }
    text = " ".join(f"{k}={quoteattr(v)}" for k, v in attrs.items() if v)
    if c.choices:
        options = "".join(f"<option>{escape(v)}</option>" for v in c.choices)
        return f"{indent}<column {text}><values>{options}</values></column>"
    return f"{indent}<column {text}/>"


def render_userconfig() -> str:
    """``/var/gavo/etc/userconfig.rd`` adding the CTA extension columns to ``ivoa.obscore``."""
    ext = extension_columns()
    pars = "\n".join(f'\t\t<mixinPar name="{c.name}">NULL</mixinPar>' for c in ext)
    # Two backslashes: the stream is replayed once before the macro is expanded.
    clause = ",\n".join(f"\t\t\tCAST(\\\\{c.name} AS {c.pg_type}) AS {c.name}" for c in ext)
    columns = "\n".join(_column_xml(c) for c in ext)
    return f"""<!-- Generated by ctanb.archive.dachs_rd from ctanb.datamodel; do not edit. -->
<resource schema="__system">
	<STREAM id="obscore-extraevents">
		<property name="obscoreClause" cumulate="True">
			,
{clause}
		</property>
	</STREAM>

	<STREAM id="obscore-extrapars">
{pars}
	</STREAM>

	<STREAM id="obscore-extracolumns">
{columns}
	</STREAM>
</resource>
"""


def _copy_columns() -> list[str]:
    return [c.name for c in OBSCORE_COLUMNS] + ["access_group"]


def render_rd(*, region_index: bool = True) -> str:
    """The resource descriptor ``ctanb/q.rd``.

    Parameters
    ----------
    region_index : bool
        Build the GIST index on ``s_region`` (INTERSECTS/CONTAINS on footprints).
        It costs about 0.5 ms per row, so benchmarks of cone searches on
        ``(s_ra, s_dec)`` at a million rows leave it out.
    """
    main_ucd = {"s_ra": "pos.eq.ra;meta.main", "s_dec": "pos.eq.dec;meta.main"}
    columns = "\n".join(_column_xml(c, ucd=main_ucd.get(c.name)) for c in OBSCORE_COLUMNS)
    publish = {c.name: c.name for c in OBSCORE_COLUMNS}
    # DaCHS columns the CTA model does not have: NULL, not DaCHS's product defaults.
    publish.update(preview="NULL", obs_creator_did="NULL", s_pixel_scale="NULL", em_ucd="NULL")
    mixin_attrs = "\n\t\t\t".join(f'{k}="{v}"' for k, v in publish.items())
    gist = '\t\t<index columns="s_region" method="GIST">s_region</index>\n' if region_index else ""
    copy_cols = ", ".join(_copy_columns())
    return f"""<?xml version="1.0" encoding="utf-8"?>
<!-- Generated by ctanb.archive.dachs_rd from ctanb.datamodel; do not edit. -->
<resource schema="ctanb" resdir="{RESDIR}">
	<meta name="title">ctanb: Cherenkov-telescope observations (ObsCore + CTA extension)</meta>
	<meta name="description">DL3 observations of H.E.S.S., MAGIC, CTA 1DC and simulated
		CTAO data, published with the CTA ObsCore extension (ObsConfig, provenance,
		energy).  Proprietary observations are searchable; their files are embargoed.</meta>
	<meta name="creationDate">2026-01-01T00:00:00</meta>
	<meta name="subject">gamma-ray-astronomy</meta>
	<meta name="creator.name">ctanb</meta>

	<table id="obs" onDisk="True" adql="hidden" primary="obs_publisher_did">
		<meta name="description">One row per dataset; published in ivoa.obscore.</meta>
		<meta name="_associatedDatalinkService">
			<meta name="serviceId">dl</meta>
			<meta name="idColumn">obs_publisher_did</meta>
		</meta>
		<mixin>//scs#q3cindex</mixin>
		<mixin
			{mixin_attrs}
			>//obscore#publish</mixin>
{gist}{columns}
		<column name="access_group" type="text"
			description="Group that may read the files before obs_release_date (NULL: public)"/>
	</table>

	<table id="files" onDisk="True" adql="hidden">
		<meta name="description">The files behind each dataset, by DataLink semantics.</meta>
		<mixin>//products#table</mixin>
		<index columns="did"/>
		<column name="did" type="text" ucd="meta.id;meta.main" description="obs_publisher_did"/>
		<column name="semantics" type="text" ucd="meta.code" description="DataLink semantics"/>
		<column name="description" type="text" ucd="meta.note" description="What the file is"/>
		<column name="sha256" type="text" ucd="meta.checksum" description="SHA-256 of the file"/>
	</table>

	<data id="import_files">
		<sources>data/files.csv</sources>
		<csvGrammar>
			<rowfilter procDef="//products#define">
				<bind key="table">"{FILES_TABLE}"</bind>
				<bind key="accref">@accref</bind>
				<bind key="path">@path</bind>
				<bind key="fsize">int(@size)</bind>
				<bind key="mime">@content_type</bind>
				<bind key="owner">@owner or None</bind>
				<bind key="embargo">(datetime.date.fromisoformat(@embargo)
					if @embargo else None)</bind>
				<bind key="preview">None</bind>
			</rowfilter>
		</csvGrammar>
		<make table="files">
			<rowmaker idmaps="did,semantics,description,sha256"/>
		</make>
	</data>

{LINKS_TABLE_XML}
	<data id="import">
		<make table="obs">
			<script type="preIndex" lang="python" name="load ObsCore rows (COPY)">
				import os
				src = os.path.join(table.tableDef.rd.resdir, "data", "obs.copy")
				with open(src, encoding="utf-8") as f:
					cursor = table.connection.cursor()
					cursor.copy_expert(
						"COPY {OBS_TABLE} ({copy_cols}) FROM STDIN", f)
					cursor.close()
			</script>
			<script type="postCreation" lang="SQL" name="analyze">
				ANALYZE {OBS_TABLE}
			</script>
		</make>
	</data>

	<service id="dl" allowed="dlget,dlmeta">
		<meta name="title">ctanb DataLink</meta>
		<meta name="description">Links to the event list (#this) and the instrument
			response (#calibration) of each observation, to the products published from
			it (#derivation); of a product to its file, its DL3 progenitors, its
			provenance documents and the other products of its analysis.</meta>
		<datalinkCore>
			<descriptorGenerator procDef="//datalink#fromtable">
				<bind key="tableName">"{OBS_TABLE}"</bind>
				<bind key="idColumn">"obs_publisher_did"</bind>
{COVERAGE_DESCRIPTOR}
			</descriptorGenerator>
			<metaMaker>
				<setup imports="datetime, urllib.parse, gavo.protocols.products"/>
				<code>
					with base.getTableConn() as conn:
						files = list(conn.queryToDicts(
							"SELECT * FROM (SELECT semantics, accref, mime, accsize,"
							" description, owner, embargo FROM {FILES_TABLE} WHERE did=%(did)s"
							"{LINKS_UNION}) AS x"
							" ORDER BY semantics != '#this', semantics, accref",
							{{"did": descriptor.pubDID}}))
					for f in files:
						closed = (f["embargo"] is not None
							and f["embargo"] >= datetime.date.today())
						yield descriptor.makeLink(
							products.makeProductLink(f["accref"]),
							semantics=f["semantics"],
							description=f["description"] + (
								" (proprietary until %s: HTTP basic credentials"
								" of group %s needed)"%(f["embargo"], f["owner"])
								if closed else ""),
							contentType=f["mime"],
							contentLength=f["accsize"])
{COVERAGE_LINKS}
				</code>
			</metaMaker>
		</datalinkCore>
	</service>
</resource>
"""


# --- rows -----------------------------------------------------------------------------


def _copy_value(value: object, c: Column | None) -> str:
    """One field in PostgreSQL COPY text format."""
    if value is None or (value == "" and c is not None and c.pg_type != "text"):
        return r"\N"
    if c is not None and c.pg_type == "spoly":
        nums = [float(x) for x in str(value).replace(",", " ").split()]
        return (
            "{"
            + ",".join(f"({ra!r}d,{dec!r}d)" for ra, dec in zip(nums[::2], nums[1::2], strict=True))
            + "}"
        )
    if c is not None and c.pg_type == "boolean":
        return "t" if value else "f"
    if isinstance(value, float):
        return repr(value)
    text = str(value)
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


@dataclass(frozen=True)
class ExportReport:
    """What :func:`export_rows` wrote."""

    rows: int
    files: int
    mirrored: int
    users: int
    digest: str


def _world_readable(path: Path) -> bool:
    """True when an unprivileged user (DaCHS's server runs as ``gavo``) can read *path*."""
    try:
        if not path.stat().st_mode & 0o004:
            return False
        return all(p.stat().st_mode & 0o001 for p in path.resolve().parents)
    except OSError:
        return False


def _accref(path: str) -> str:
    """The DaCHS accref of a file: URL-safe, unique per path, ends with the file name."""
    key = hashlib.sha1(str(path).encode()).hexdigest()[:12]
    return f"{RESDIR}/{key}/{Path(path).name}"


def _file_access(conn: sqlite3.Connection) -> dict[str, tuple[str | None, str | None]]:
    """Owner group and embargo date of every file path (see the module docstring)."""
    rows = conn.execute(
        f'SELECT f.path, o."_access_group", o."obs_release_date" '
        f"FROM {archive_db.q(archive_db.FILES_TABLE)} f "
        f'JOIN {archive_db.q(archive_db.OBSCORE_TABLE)} o ON o."obs_publisher_did" = f.did'
    ).fetchall()
    access: dict[str, tuple[str | None, str | None]] = {}
    public: set[str] = set()
    for path, group, release in rows:
        if group is None:
            public.add(path)
            continue
        embargo = str(release)[:10] if release else NO_RELEASE_EMBARGO
        old = access.get(path)
        # Several proprietary datasets share a file: keep the latest embargo.
        if old is None or embargo > (old[1] or ""):
            access[path] = (group, embargo)
    # A file any public dataset uses is public.
    return access | {p: (None, None) for p in public}


def _users(policy: AccessPolicy) -> list[tuple[str, str, list[str]]]:
    """(user, password, extra groups) per token, as documented in the module docstring."""
    out = []
    for name, group in policy.groups.items():
        for i, token in enumerate(group.tokens):
            user = name if i == 0 else f"{name}.{i + 1}"
            extra = ([name] if i else []) + list(group.includes)
            out.append((user, token, extra))
    return out


def export_rows(
    db_path: str | Path,
    out_dir: str | Path,
    *,
    policy: AccessPolicy | None = None,
    mirror_dir: str | Path | None = None,
    documents: bool = True,
    server_url: str | None = None,
) -> ExportReport:
    """Write ``obs.copy``, ``files.csv`` and ``users.tsv`` for the RD into *out_dir*.

    The rows of published products' provenance, curation and links too, and (with
    *documents*) their provenance documents (:mod:`ctanb.archive.dachs_prov`).

    Files an unprivileged user cannot read (e.g. under pytest's private temporary
    directory) are copied to *mirror_dir* (default ``out_dir/mirror``) so that
    DaCHS's server, which runs as user ``gavo``, can serve them.

    Raises
    ------
    ConfigError
        When *db_path* is not an embedded archive.
    """
    db_path, out_dir = Path(db_path), Path(out_dir)
    if not db_path.is_file():
        raise ConfigError(f"no embedded archive at {db_path}")
    out_dir.mkdir(parents=True, exist_ok=True)
    conn = archive_db.connect(db_path, readonly=True)
    digest = hashlib.sha256()
    try:
        names = [c.name for c in OBSCORE_COLUMNS] + ["_access_group"]
        cols = [*OBSCORE_COLUMNS, None]
        try:
            cursor = conn.execute(
                f"SELECT {', '.join(map(archive_db.q, names))} "
                f"FROM {archive_db.q(archive_db.OBSCORE_TABLE)} ORDER BY rowid"
            )
        except sqlite3.DatabaseError as exc:
            raise ConfigError(f"{db_path} is not an embedded ctanb archive: {exc}") from None
        access = _file_access(conn)
        docs = export_products(conn, out_dir, policy=policy or AccessPolicy.demo(),
                               docs_dir=Path(mirror_dir or out_dir / "mirror") / "provenance",
                               accref=_accref, digest=digest, documents=documents,
                               server_url=server_url)  # fmt: skip
        doc_access = did_access(conn, {d[0] for d in docs})
        files = conn.execute(
            f"SELECT did, semantics, path, content_type, size, sha256, description "
            f"FROM {archive_db.q(archive_db.FILES_TABLE)} ORDER BY did, semantics, path"
        ).fetchall()
        # DaCHS serves the #this file as access_url: its accref, not the embedded URL.
        this_accref = {did: _accref(path) for did, sem, path, *_ in files if sem == "#this"}
        url_at = names.index("access_url")
        did_at = names.index("obs_publisher_did")
        n_rows = 0
        with open(out_dir / "obs.copy", "w", encoding="utf-8", newline="\n") as out:
            while batch := cursor.fetchmany(20_000):
                lines = []
                for row in batch:
                    values = list(row)
                    values[url_at] = this_accref.get(values[did_at])
                    lines.append("\t".join(map(_copy_value, values, cols)) + "\n")
                text = "".join(lines)
                digest.update(text.encode())
                out.write(text)
                n_rows += len(batch)
    finally:
        conn.close()
    mirrored = 0
    with open(out_dir / "files.csv", "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["did", "semantics", "accref", "path", "content_type", "size",
                         "sha256", "description", "owner", "embargo"])  # fmt: skip
        for did, semantics, path, ctype, size, sha, desc in files:
            src = Path(path)
            key = _accref(path).split("/")[1]
            served = src
            if not _world_readable(src) and src.is_file():
                served = Path(mirror_dir or out_dir / "mirror") / key / src.name
                if not served.exists() or served.stat().st_size != src.stat().st_size:
                    served.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(src, served)
                    os.chmod(served, 0o644)
                mirrored += 1
            owner, embargo = access.get(path, (None, None))
            row = [did, semantics, _accref(path), str(served),
                   ctype or "application/octet-stream", size or 0, sha or "", desc or "",
                   owner or "", embargo or ""]  # fmt: skip
            digest.update(repr(row).encode())
            writer.writerow(row)
        for did, semantics, path, ctype, size, sha, desc in docs:
            owner, embargo = doc_access.get(did, (None, None))
            row = [did, semantics, _accref(path), path, ctype, size, sha, desc,
                   owner or "", embargo or ""]  # fmt: skip
            digest.update(repr(row).encode())
            writer.writerow(row)
    users = _users(policy or AccessPolicy.demo())
    with open(out_dir / "users.tsv", "w", encoding="utf-8") as out:
        for user, password, groups in users:
            line = "\t".join([user, password, ",".join(groups)])
            digest.update(line.encode())
            out.write(line + "\n")
    return ExportReport(n_rows, len(files), mirrored, len(users), digest.hexdigest())


def write_resource(
    db_path: str | Path,
    resdir: str | Path,
    userconfig: str | Path | None = None,
    *,
    policy: AccessPolicy | None = None,
    region_index: bool = True,
    mirror_dir: str | Path | None = None,
    documents: bool = True,
    server_url: str | None = None,
) -> ExportReport:
    """Write ``q.rd``, ``prov.rd``, ``curation.rd`` and ``data/*`` into *resdir*
    (and ``userconfig.rd`` if given)."""
    resdir = Path(resdir)
    resdir.mkdir(parents=True, exist_ok=True)
    (resdir / "q.rd").write_text(render_rd(region_index=region_index))
    (resdir / "prov.rd").write_text(render_prov_rd())
    (resdir / "curation.rd").write_text(render_curation_rd())
    if userconfig is not None:
        Path(userconfig).write_text(render_userconfig())
    from .dachs_hea import write_hea_resource  # ivoa.obscore_hea (issue 18)

    write_hea_resource(db_path, resdir, policy=policy)
    from .dachs_coverage import write_coverage  # coverage MOCs (issue 18)

    write_coverage(db_path, resdir, policy=policy)
    return export_rows(db_path, resdir / "data", policy=policy, mirror_dir=mirror_dir,
                       documents=documents, server_url=server_url)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """``python -m ctanb.archive.dachs_rd``: write the DaCHS resource (used by deploy/dachs/up)."""
    from .dachs_cli import main as run

    return run(argv)


if __name__ == "__main__":
    raise SystemExit(main())
