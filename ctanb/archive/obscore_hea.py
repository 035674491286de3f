"""``ivoa.obscore_hea`` in the embedded archive: the IVOA High-Energy ObsCore extension.

One row per ``ivoa.obscore`` row, joined on ``obs_publisher_did``; the columns are
:data:`~ctanb.datamodel.OBSCORE_HEA_COLUMNS`. :func:`hea_row` makes a row at
ingestion from the ObsCore row, the dataset's files and the run's good-time
intervals (:mod:`ctanb.archive.gti`). The rules, where the note leaves a choice:

``dataproduct_type``
    ``hea-event-bundle`` when the instrument response functions are HDUs of the
    event file itself (H.E.S.S. DR1, MAGIC), ``hea-event-list`` when they are a
    separate file linked as DataLink ``#calibration`` (CTA 1DC's CALDB).
``t_intervals``
    The GTIs as a time MOC at order 61 (1 us, MOC 2.0 ASCII); a file without a GTI
    table gets ``[t_min, t_max]``.
``energy_min``/``energy_max``
    The ObsCore row's event energies, in eV.
``obs_mode``, ``pointing_mode``, ``analysis_mode``
    The CTA extension's ``obs_mode``, ``pointing_mode`` and ``applied_cuts``.
``scan_mode``
    From ``obs_mode``: wobble -> ``on-the-fly-cross-map`` (the note's IACT wobble
    example), on -> ``on-source``, off -> ``on-off``, scan -> ``raster-map``.
``tracking_mode``
    ``sidereal`` (IACT runs track a celestial position).
``s_ref_energy``/``em_ref_energy``
    1 TeV (10^12 eV), where the typical resolutions of ``ivoa.obscore`` are quoted.
``messenger``
    ``photon`` (PDG ID ``+22``).

Physically the table carries two private columns that TAP_SCHEMA does not list:
``_t_mjd`` (the intervals as MJD (TT) pairs, for exact overlap durations without
parsing MOCs) and the R-tree ``"ivoa.obscore_hea#time"`` of each row's time span,
which answers ``ivo_tmoc_overlap(t_intervals, ...) > 0`` without a full scan.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence

import numpy as np

from ..datamodel import OBSCORE_HEA_COLUMNS, OBSCORE_HEA_TABLE
from . import gti

__all__ = [
    "HEA_TIME_INDEX",
    "create_hea_schema",
    "delete_hea",
    "hea_row",
    "intervals_text",
    "parse_intervals_text",
    "product_hea_row",
    "upsert_hea",
]

#: R-tree of ``(first start, last stop)`` MJD of each row (id = obscore_hea rowid).
HEA_TIME_INDEX = f"{OBSCORE_HEA_TABLE}#time"

#: eV per TeV.
_EV_PER_TEV = 1e12

_SCAN_MODE = {"wobble": "on-the-fly-cross-map", "on": "on-source", "off": "on-off",
              "scan": "raster-map"}  # fmt: skip


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def create_hea_schema(conn: sqlite3.Connection) -> None:
    """Create ``ivoa.obscore_hea``, its time index and TAP_SCHEMA rows (idempotent)."""
    cols = ", ".join(f"{_q(c.name)} {c.sql_type}" for c in OBSCORE_HEA_COLUMNS)
    conn.executescript(
        f"""
        CREATE TABLE IF NOT EXISTS {_q(OBSCORE_HEA_TABLE)} (
            {cols}, "_t_mjd" TEXT, UNIQUE ("obs_publisher_did"));
        CREATE VIRTUAL TABLE IF NOT EXISTS {_q(HEA_TIME_INDEX)} USING rtree(id, tmin, tmax);
        """
    )
    for c in OBSCORE_HEA_COLUMNS:
        if c.indexed and c.name not in ("obs_publisher_did", "t_intervals"):
            conn.execute(
                f"CREATE INDEX IF NOT EXISTS {_q(OBSCORE_HEA_TABLE + '#' + c.name)} "
                f"ON {_q(OBSCORE_HEA_TABLE)} ({_q(c.name)})"
            )
    conn.execute(
        'INSERT OR REPLACE INTO "tap_schema.tables" VALUES (?, ?, ?, NULL, ?, ?)',
        ("ivoa", OBSCORE_HEA_TABLE, "table",
         "IVOA High-Energy ObsCore extension: good-time intervals (t_intervals, a time MOC), "
         "energies in eV, modes, messenger; one row per ivoa.obscore row, join USING "
         "(obs_publisher_did)", 1),
    )  # fmt: skip
    conn.execute(
        'INSERT OR REPLACE INTO "tap_schema.keys" VALUES (?, ?, ?, NULL, ?)',
        ("obscore_hea_did", OBSCORE_HEA_TABLE, "ivoa.obscore",
         "Each High-Energy extension row extends the ivoa.obscore row of its dataset"),
    )  # fmt: skip
    conn.execute('DELETE FROM "tap_schema.key_columns" WHERE key_id = ?', ("obscore_hea_did",))
    conn.execute(
        'INSERT INTO "tap_schema.key_columns" VALUES (?, ?, ?)',
        ("obscore_hea_did", "obs_publisher_did", "obs_publisher_did"),
    )
    conn.executemany(
        'INSERT OR REPLACE INTO "tap_schema.columns" '
        "VALUES (?, ?, ?, ?, ?, NULL, ?, NULL, ?, ?, ?, ?, 0, ?)",
        [(OBSCORE_HEA_TABLE, c.name, c.datatype, c.arraysize, c.xtype, c.description,
          c.unit or None, c.ucd, int(c.indexed), int(c.principal), i)
         for i, c in enumerate(OBSCORE_HEA_COLUMNS)],
    )  # fmt: skip


def intervals_text(intervals: np.ndarray) -> str:
    """``(n, 2)`` MJD intervals as the private ``_t_mjd`` text ``"a1 b1 a2 b2 ..."``."""
    return " ".join(repr(float(v)) for v in np.asarray(intervals, dtype=float).ravel())


def parse_intervals_text(text: str) -> np.ndarray:
    """Inverse of :func:`intervals_text`."""
    return np.array([float(v) for v in str(text).split()], dtype=float).reshape(-1, 2)


def hea_row(
    row: Mapping[str, object],
    files: Sequence[object] = (),
    intervals: np.ndarray | None = None,
) -> dict[str, object]:
    """The ``ivoa.obscore_hea`` row of a dataset.

    Parameters
    ----------
    row : mapping
        Its ``ivoa.obscore`` row.
    files : sequence of FileRecord
        Its files (``semantics``, ``path``): decides event bundle or event list.
    intervals : (n, 2) array, optional
        The good-time intervals in MJD (TT), from :func:`ctanb.archive.gti.gti_mjd`;
        default ``[[t_min, t_max]]``.
    """
    if intervals is None or len(intervals) == 0:
        intervals = np.array([[float(row["t_min"]), float(row["t_max"])]])
    intervals = gti.merge_intervals(intervals)
    paths = {getattr(f, "semantics", None): getattr(f, "path", None) for f in files}
    bundled = paths.get("#calibration") is not None and paths.get("#calibration") == paths.get(
        "#this"
    )
    e_min, e_max = row.get("energy_min"), row.get("energy_max")
    obs_mode = row.get("obs_mode")
    typical = row.get("s_resolution") is not None
    return {
        "obs_publisher_did": row["obs_publisher_did"],
        "dataproduct_type": "hea-event-bundle" if bundled else "hea-event-list",
        "ev_xel": row.get("ev_xel"),
        "s_ref_energy": _EV_PER_TEV if typical else None,
        "em_ref_energy": _EV_PER_TEV if row.get("em_res_power") is not None else None,
        "s_ref_oaa": None,
        "em_ref_oaa": None,
        "t_intervals": gti.tmoc_to_string(gti.intervals_to_tmoc(intervals)),
        "energy_min": float(e_min) * _EV_PER_TEV if e_min is not None else None,
        "energy_max": float(e_max) * _EV_PER_TEV if e_max is not None else None,
        "obs_mode": obs_mode,
        "tracking_mode": "sidereal",
        "scan_mode": _SCAN_MODE.get(str(obs_mode)) if obs_mode else None,
        "pointing_mode": row.get("pointing_mode"),
        "analysis_mode": row.get("applied_cuts"),
        "event_type": None,
        "messenger": "photon",
        "messenger_pdgid": "+22",
        "_t_mjd": intervals_text(intervals),
    }


def upsert_hea(conn: sqlite3.Connection, hea: Mapping[str, object]) -> int:
    """Insert or replace one ``ivoa.obscore_hea`` row and its time index; no commit."""
    delete_hea(conn, str(hea["obs_publisher_did"]))
    names = [c.name for c in OBSCORE_HEA_COLUMNS] + ["_t_mjd"]
    cur = conn.execute(
        f"INSERT INTO {_q(OBSCORE_HEA_TABLE)} ({', '.join(map(_q, names))}) "
        f"VALUES ({', '.join('?' * len(names))})",
        [hea.get(n) for n in names],
    )
    iv = parse_intervals_text(str(hea["_t_mjd"]))
    conn.execute(
        f"INSERT INTO {_q(HEA_TIME_INDEX)} VALUES (?, ?, ?)",
        (cur.lastrowid, float(iv[0, 0]), float(iv[-1, 1])),
    )
    return int(cur.lastrowid)


def delete_hea(conn: sqlite3.Connection, did: str) -> None:
    """Remove the ``ivoa.obscore_hea`` row of *did* (if any) and its index entry."""
    found = conn.execute(
        f'SELECT rowid FROM {_q(OBSCORE_HEA_TABLE)} WHERE "obs_publisher_did" = ?', (did,)
    ).fetchone()
    if found is not None:
        conn.execute(f"DELETE FROM {_q(OBSCORE_HEA_TABLE)} WHERE rowid = ?", found)
        conn.execute(f"DELETE FROM {_q(HEA_TIME_INDEX)} WHERE id = ?", found)


def product_hea_row(
    conn: sqlite3.Connection, row: Mapping[str, object], input_dids: Sequence[str]
) -> dict[str, object] | None:
    """The ``ivoa.obscore_hea`` row of a published product (issue 14's products).

    Its ``t_intervals`` is the union of the good-time intervals of the runs it was
    made from (the note's case of advanced products spanning many observations);
    ``dataproduct_type`` is the product's own ObsCore type. None when neither the
    inputs nor the row say when the data were taken.
    """
    found = []
    for did in dict.fromkeys(input_dids):
        got = conn.execute(
            f'SELECT "_t_mjd" FROM {_q(OBSCORE_HEA_TABLE)} WHERE obs_publisher_did = ?', (did,)
        ).fetchone()
        if got and got[0]:
            found.append(parse_intervals_text(got[0]))
    if not found and (row.get("t_min") is None or row.get("t_max") is None):
        return None
    intervals = gti.merge_intervals(np.vstack(found)) if found else None
    hea = hea_row(row, (), intervals)
    hea["dataproduct_type"] = row.get("dataproduct_type")
    return hea
