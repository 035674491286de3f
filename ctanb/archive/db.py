"""SQLite storage of the embedded archive, generated from :mod:`ctanb.datamodel`.

Physical layout (one SQLite file):

``"ivoa.obscore"``
    One row per dataset, the columns of :data:`~ctanb.datamodel.OBSCORE_COLUMNS`,
    plus the private column ``_access_group`` (NULL: public once released).
``"ivoa.obscore#point"`` / ``"ivoa.obscore#region"``
    R*Tree indexes (rowid = obscore rowid) of the 3-D boxes of ``(s_ra, s_dec)``
    and of a cap enclosing ``s_region``. ADQL spatial predicates are answered
    from these, with the exact test run on the candidates only.
``"ivoa.obscore_hea"`` / ``"ivoa.obscore_hea#time"``
    The IVOA High-Energy ObsCore extension (one row per dataset, with its
    good-time intervals) and its time R-tree: see :mod:`ctanb.archive.obscore_hea`.
``"ctanb.files"``
    The files behind each dataset, by DataLink semantics (``#this``,
    ``#calibration``, ``#progenitor``, ``#provenance``): path, size, sha256.
``"tap_schema.*"``
    TAP_SCHEMA 1.1 tables describing ``ivoa.obscore`` and themselves.

Table names contain a dot and must be double-quoted in SQL; the ADQL translator
maps ``ivoa.obscore`` etc. to these names.

``access_url`` is stored with the prefix :data:`ACCESS_URL_BASE`; the service
replaces it with its own base URL in every answer, so one database can be served
at any host and port.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..datamodel import OBSCORE_COLUMNS, OBSCORE_TABLE
from .geometry import cap_bbox, unit_vector

__all__ = [
    "ACCESS_URL_BASE",
    "FILES_TABLE",
    "POINT_INDEX",
    "PUBLISHER_AUTHORITY",
    "REGION_INDEX",
    "TAP_SCHEMA_TABLES",
    "FileRecord",
    "connect",
    "create_schema",
    "delete_dataset",
    "polygon_cap",
    "publisher_did",
    "upsert_dataset",
]

ACCESS_URL_BASE = "$BASE/"
PUBLISHER_AUTHORITY = "ivo://ctanb.archive"
FILES_TABLE = "ctanb.files"
POINT_INDEX = f"{OBSCORE_TABLE}#point"
REGION_INDEX = f"{OBSCORE_TABLE}#region"
TAP_SCHEMA_TABLES = (
    "tap_schema.schemas",
    "tap_schema.tables",
    "tap_schema.columns",
    "tap_schema.keys",
    "tap_schema.key_columns",
)


def publisher_did(collection: str, obs_id: str | int) -> str:
    """The ``obs_publisher_did`` of a dataset; both archives use this rule."""
    return f"{PUBLISHER_AUTHORITY}/{collection.lower()}?{obs_id}"


@dataclass(frozen=True)
class FileRecord:
    """A file behind a dataset, served through ``access_url`` or DataLink."""

    semantics: str  # "#this", "#calibration", "#progenitor", "#provenance"
    path: str
    content_type: str = "application/fits"
    size: int = 0
    sha256: str = ""
    description: str = ""


def connect(path: str | Path, *, readonly: bool = False) -> sqlite3.Connection:
    """Open the archive database with the settings every user of it needs."""
    if readonly:
        conn = sqlite3.connect(
            f"file:{Path(path).resolve()}?mode=ro", uri=True, check_same_thread=False
        )
    else:
        conn = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
        # WAL lets the service read while an ingestion writes.
        conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def q(name: str) -> str:
    """Double-quote an SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def create_schema(conn: sqlite3.Connection) -> None:
    """Create every table and index if missing (idempotent)."""
    cols = ", ".join(f"{q(c.name)} {c.sql_type}" for c in OBSCORE_COLUMNS)
    conn.executescript(
        f"""
        CREATE TABLE IF NOT EXISTS {q(OBSCORE_TABLE)} (
            {cols}, "_access_group" TEXT,
            UNIQUE ("obs_publisher_did"));
        CREATE VIRTUAL TABLE IF NOT EXISTS {q(POINT_INDEX)}
            USING rtree(id, xmin, xmax, ymin, ymax, zmin, zmax);
        CREATE VIRTUAL TABLE IF NOT EXISTS {q(REGION_INDEX)}
            USING rtree(id, xmin, xmax, ymin, ymax, zmin, zmax);
        CREATE TABLE IF NOT EXISTS {q(FILES_TABLE)} (
            did TEXT NOT NULL, semantics TEXT NOT NULL, path TEXT NOT NULL,
            content_type TEXT, size INTEGER, sha256 TEXT, description TEXT);
        CREATE INDEX IF NOT EXISTS "ctanb.files#did" ON {q(FILES_TABLE)} (did);
        """
    )
    for c in OBSCORE_COLUMNS:
        if c.indexed and c.name not in ("s_ra", "s_dec", "s_region"):
            conn.execute(
                f"CREATE INDEX IF NOT EXISTS {q(OBSCORE_TABLE + '#' + c.name)} "
                f"ON {q(OBSCORE_TABLE)} ({q(c.name)})"
            )
    _create_tap_schema(conn)
    from .obscore_hea import create_hea_schema  # ivoa.obscore_hea (issue 18)

    create_hea_schema(conn)
    # Published products and their provenance tables (issue 14).
    from .publish import create_publish_schema

    create_publish_schema(conn)
    # Coverage MOCs of the archive (issue 18).
    from .coverage import create_coverage_schema

    create_coverage_schema(conn)
    conn.commit()


def _create_tap_schema(conn: sqlite3.Connection) -> None:
    conn.executescript(
        """
        CREATE TABLE IF NOT EXISTS "tap_schema.schemas" (
            schema_name TEXT PRIMARY KEY, utype TEXT, description TEXT, schema_index INTEGER);
        CREATE TABLE IF NOT EXISTS "tap_schema.tables" (
            schema_name TEXT, table_name TEXT PRIMARY KEY, table_type TEXT, utype TEXT,
            description TEXT, table_index INTEGER);
        CREATE TABLE IF NOT EXISTS "tap_schema.columns" (
            table_name TEXT, column_name TEXT, datatype TEXT, arraysize TEXT, xtype TEXT,
            "size" INTEGER, description TEXT, utype TEXT, unit TEXT, ucd TEXT,
            indexed INTEGER, principal INTEGER, std INTEGER, column_index INTEGER,
            PRIMARY KEY (table_name, column_name));
        CREATE TABLE IF NOT EXISTS "tap_schema.keys" (
            key_id TEXT PRIMARY KEY, from_table TEXT, target_table TEXT, utype TEXT,
            description TEXT);
        CREATE TABLE IF NOT EXISTS "tap_schema.key_columns" (
            key_id TEXT, from_column TEXT, target_column TEXT);
        DELETE FROM "tap_schema.schemas";
        DELETE FROM "tap_schema.tables";
        DELETE FROM "tap_schema.columns";
        DELETE FROM "tap_schema.keys";
        DELETE FROM "tap_schema.key_columns";
        """
    )
    conn.executemany(
        'INSERT INTO "tap_schema.schemas" VALUES (?, ?, ?, ?)',
        [
            ("ivoa", None, "IVOA standard tables (ObsCore 1.1 with the CTA extension)", 0),
            ("tap_schema", None, "Description of the tables of this service (TAP 1.1)", 1),
        ],
    )
    tables = [
        ("ivoa", OBSCORE_TABLE, "table", "ivo://ivoa.net/std/obscore#table-1.1",
         "ObsCore 1.1 with the CTA extension: one row per dataset", 0),
        ("tap_schema", "tap_schema.schemas", "table", None, "Schemas of this service", 1),
        ("tap_schema", "tap_schema.tables", "table", None, "Tables of this service", 2),
        ("tap_schema", "tap_schema.columns", "table", None, "Columns of this service", 3),
        ("tap_schema", "tap_schema.keys", "table", None, "Foreign keys", 4),
        ("tap_schema", "tap_schema.key_columns", "table", None, "Columns of foreign keys", 5),
    ]  # fmt: skip
    conn.executemany('INSERT INTO "tap_schema.tables" VALUES (?, ?, ?, ?, ?, ?)', tables)
    rows = [
        (OBSCORE_TABLE, c.name, c.datatype, c.arraysize, c.xtype, None, c.description,
         c.utype or None, c.unit or None, c.ucd, int(c.indexed), int(c.principal),
         int(bool(c.utype)), i)
        for i, c in enumerate(OBSCORE_COLUMNS)
    ]  # fmt: skip
    rows += _tap_schema_self_columns()
    conn.executemany(
        'INSERT INTO "tap_schema.columns" VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
        rows,
    )
    # The foreign keys TAP 1.1 (section 4) defines between the TAP_SCHEMA tables.
    keys = [
        ("tap_schema_tables_schema", "tap_schema.tables", "tap_schema.schemas", "schema_name", "schema_name"),
        ("tap_schema_columns_table", "tap_schema.columns", "tap_schema.tables", "table_name", "table_name"),
        ("tap_schema_keys_from", "tap_schema.keys", "tap_schema.tables", "from_table", "table_name"),
        ("tap_schema_keys_target", "tap_schema.keys", "tap_schema.tables", "target_table", "table_name"),
        ("tap_schema_key_columns_key", "tap_schema.key_columns", "tap_schema.keys", "key_id", "key_id"),
    ]  # fmt: skip
    conn.executemany(
        'INSERT INTO "tap_schema.keys" VALUES (?, ?, ?, NULL, ?)',
        [(k, f, t, f"{f} -> {t}") for k, f, t, _, _ in keys],
    )
    conn.executemany(
        'INSERT INTO "tap_schema.key_columns" VALUES (?, ?, ?)',
        [(k, fc, tc) for k, _, _, fc, tc in keys],
    )


def _tap_schema_self_columns() -> list[tuple]:
    spec = {
        "tap_schema.schemas": [("schema_name", "char"), ("utype", "char"),
                               ("description", "char"), ("schema_index", "int")],
        "tap_schema.tables": [("schema_name", "char"), ("table_name", "char"),
                              ("table_type", "char"), ("utype", "char"),
                              ("description", "char"), ("table_index", "int")],
        "tap_schema.columns": [("table_name", "char"), ("column_name", "char"),
                               ("datatype", "char"), ("arraysize", "char"), ("xtype", "char"),
                               # TAP 1.1 sec. 4.3: "size" is an ADQL reserved word, so
                               # TAP_SCHEMA lists it delimited, quotes included.
                               ('"size"', "int"), ("description", "char"), ("utype", "char"),
                               ("unit", "char"), ("ucd", "char"), ("indexed", "int"),
                               ("principal", "int"), ("std", "int"), ("column_index", "int")],
        "tap_schema.keys": [("key_id", "char"), ("from_table", "char"),
                            ("target_table", "char"), ("utype", "char"), ("description", "char")],
        "tap_schema.key_columns": [("key_id", "char"), ("from_column", "char"),
                                   ("target_column", "char")],
    }  # fmt: skip
    out = []
    for table, cols in spec.items():
        for i, (name, datatype) in enumerate(cols):
            arraysize = "*" if datatype == "char" else None
            out.append(
                (table, name, datatype, arraysize, None, None, f"TAP_SCHEMA {name}", None,
                 None, None, 0, 1, 1, i)
            )  # fmt: skip
    return out


def polygon_cap(vertices: list[tuple[float, float]]) -> tuple[float, float, float]:
    """A cap ``(ra, dec, radius)`` in degrees that contains a (convex, < hemisphere) polygon."""
    vs = [unit_vector(ra, dec) for ra, dec in vertices]
    sx, sy, sz = (sum(v[i] for v in vs) for i in range(3))
    norm = math.sqrt(sx * sx + sy * sy + sz * sz)
    cx, cy, cz = sx / norm, sy / norm, sz / norm
    ra = math.degrees(math.atan2(cy, cx)) % 360.0
    dec = math.degrees(math.asin(max(-1.0, min(1.0, cz))))
    # The edges of a convex polygon lie inside the cap through its farthest vertex
    # as long as the cap is smaller than a hemisphere; pad for arc bulge anyway.
    r = max(math.degrees(math.acos(max(-1.0, min(1.0, cx * v[0] + cy * v[1] + cz * v[2]))))
            for v in vs)  # fmt: skip
    return ra, dec, r * 1.001 + 1e-9


def _parse_polygon(s_region: str) -> list[tuple[float, float]]:
    nums = [float(x) for x in s_region.replace(",", " ").split()]
    return list(zip(nums[0::2], nums[1::2], strict=True))


def upsert_dataset(
    conn: sqlite3.Connection,
    row: Mapping[str, object],
    files: Iterable[FileRecord] = (),
    *,
    access_group: str | None = None,
) -> int:
    """Insert or replace one dataset (keyed by ``obs_publisher_did``) with its files.

    ``row`` holds ObsCore column values; missing columns are NULL. ``s_region`` is
    the DALI polygon string ``"ra1 dec1 ra2 dec2 ..."``. Returns the rowid. Does not
    commit: callers batch many datasets in one transaction.
    """
    did = row["obs_publisher_did"]
    delete_dataset(conn, str(did))
    names = [c.name for c in OBSCORE_COLUMNS]
    values = [row.get(n) for n in names] + [access_group]
    placeholders = ", ".join("?" * len(values))
    cur = conn.execute(
        f'INSERT INTO {q(OBSCORE_TABLE)} ({", ".join(map(q, names))}, "_access_group") '
        f"VALUES ({placeholders})",
        values,
    )
    rowid = cur.lastrowid
    ra, dec = row.get("s_ra"), row.get("s_dec")
    if ra is not None and dec is not None:
        x, y, z = unit_vector(float(ra), float(dec))
        conn.execute(
            f"INSERT INTO {q(POINT_INDEX)} VALUES (?, ?, ?, ?, ?, ?, ?)",
            (rowid, x, x, y, y, z, z),
        )
    if row.get("s_region"):
        cap = polygon_cap(_parse_polygon(str(row["s_region"])))
        conn.execute(
            f"INSERT INTO {q(REGION_INDEX)} VALUES (?, ?, ?, ?, ?, ?, ?)",
            (rowid, *cap_bbox(*cap)),
        )
    conn.executemany(
        f"INSERT INTO {q(FILES_TABLE)} VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(did, f.semantics, f.path, f.content_type, f.size, f.sha256, f.description)
         for f in files],
    )  # fmt: skip
    return rowid


def delete_dataset(conn: sqlite3.Connection, did: str) -> bool:
    """Remove a dataset, its index entries and its files; True if it existed."""
    found = conn.execute(
        f'SELECT rowid FROM {q(OBSCORE_TABLE)} WHERE "obs_publisher_did" = ?', (did,)
    ).fetchone()
    conn.execute(f"DELETE FROM {q(FILES_TABLE)} WHERE did = ?", (did,))
    if found is None:
        return False
    (rowid,) = found
    from .obscore_hea import delete_hea

    delete_hea(conn, did)
    conn.execute(f"DELETE FROM {q(OBSCORE_TABLE)} WHERE rowid = ?", (rowid,))
    conn.execute(f"DELETE FROM {q(POINT_INDEX)} WHERE id = ?", (rowid,))
    conn.execute(f"DELETE FROM {q(REGION_INDEX)} WHERE id = ?", (rowid,))
    return True
