"""Synthetic ObsCore rows for benchmarks and tests of the embedded archive.

:func:`make_synthetic_db` fills a new archive with *n_rows* plausible CTAO-like
observations spread uniformly over the sky, using bulk inserts (the obscore rows
and both R-tree indexes) rather than :func:`~ctanb.archive.db.upsert_dataset`,
so that a million rows take seconds, not minutes. No files are attached: the
rows are for query benchmarks, their ``access_url`` leads nowhere.
"""

from __future__ import annotations

import math
from pathlib import Path
from urllib.parse import quote

import numpy as np

from ..datamodel import OBSCORE_COLUMNS, OBSCORE_TABLE, energy_tev_to_wavelength_m
from . import db as archive_db

__all__ = ["SYNTHETIC_COLLECTION", "make_synthetic_db"]

SYNTHETIC_COLLECTION = "synthetic"
_FOV_DEG = 5.0
_BATCH = 50_000


def _destination(ra: np.ndarray, dec: np.ndarray, dist: float, bearing: float):
    """Points at angular distance *dist* (deg) along *bearing* (deg) from (ra, dec)."""
    r1, d1 = np.radians(ra), np.radians(dec)
    dd, b = math.radians(dist), math.radians(bearing)
    d2 = np.arcsin(np.sin(d1) * math.cos(dd) + np.cos(d1) * math.sin(dd) * math.cos(b))
    r2 = r1 + np.arctan2(
        math.sin(b) * math.sin(dd) * np.cos(d1), math.cos(dd) - np.sin(d1) * np.sin(d2)
    )
    return np.degrees(r2) % 360.0, np.degrees(d2)


def _cap_boxes(ra: np.ndarray, dec: np.ndarray, radius: float) -> list[np.ndarray]:
    """Vectorised :func:`~ctanb.archive.geometry.cap_bbox` (same margins)."""
    r_, d_ = np.radians(ra), np.radians(dec)
    centre = (np.cos(d_) * np.cos(r_), np.cos(d_) * np.sin(r_), np.sin(d_))
    r = math.radians(radius)
    out = []
    for c in centre:
        a = np.arccos(np.clip(c, -1.0, 1.0))
        out += [np.cos(np.minimum(np.pi, a + r)) - 1e-12, np.cos(np.maximum(0.0, a - r)) + 1e-12]
    return out


def _batch_rows(start: int, n: int, rng: np.random.Generator) -> tuple[list, list, list]:
    ids = np.arange(start, start + n)
    ra = rng.uniform(0.0, 360.0, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, n)))
    t_min = rng.uniform(60000.0, 62000.0, n)
    live = rng.uniform(600.0, 1800.0, n)
    e_min = 10 ** rng.uniform(-1.7, -0.5, n)
    e_max = 10 ** rng.uniform(1.5, 2.3, n)
    zen = rng.uniform(0.0, 60.0, n)
    n_ev = rng.integers(1000, 200_000, n)
    south = rng.random(n) < 0.6
    verts = [_destination(ra, dec, _FOV_DEG / 2 * math.sqrt(2), b) for b in (45, 135, 225, 315)]
    released = rng.random(n) < 0.8
    values = {
        "dataproduct_type": lambda i: "event",
        "calib_level": lambda i: 2,
        "obs_collection": lambda i: SYNTHETIC_COLLECTION,
        "obs_id": lambda i: str(ids[i]),
        "access_format": lambda i: "application/fits",
        "access_estsize": lambda i: int(n_ev[i] // 20),
        "target_name": lambda i: f"field-{ids[i] % 5000}",
        "s_ra": lambda i: float(ra[i]),
        "s_dec": lambda i: float(dec[i]),
        "s_fov": lambda i: _FOV_DEG,
        "s_region": lambda i: " ".join(f"{v[0][i]:.6f} {v[1][i]:.6f}" for v in verts),
        "s_resolution": lambda i: 180.0,
        "s_xel1": lambda i: -1,
        "s_xel2": lambda i: -1,
        "t_min": lambda i: float(t_min[i]),
        "t_max": lambda i: float(t_min[i] + live[i] / 86400.0),
        "t_exptime": lambda i: float(live[i]),
        "t_resolution": lambda i: 1e-6,
        "t_xel": lambda i: -1,
        "em_min": lambda i: energy_tev_to_wavelength_m(float(e_max[i])),
        "em_max": lambda i: energy_tev_to_wavelength_m(float(e_min[i])),
        "em_res_power": lambda i: 10.0,
        "em_xel": lambda i: -1,
        "o_ucd": lambda i: "phot.count",
        "pol_states": lambda i: "",
        "pol_xel": lambda i: 0,
        "facility_name": lambda i: "CTAO-South" if south[i] else "CTAO-North",
        "instrument_name": lambda i: "14MSTs37SSTs" if south[i] else "4LSTs09MSTs",
        "dataproduct_subtype": lambda i: "DL3-events",
        "obs_release_date": lambda i: "2020-01-01" if released[i] else "2099-01-01",
        "data_rights": lambda i: "public" if released[i] else "proprietary",
        "site": lambda i: "CTAO-South" if south[i] else "CTAO-North",
        "sub_array_name": lambda i: "14MSTs37SSTs" if south[i] else "4LSTs09MSTs",
        "obs_mode": lambda i: "wobble",
        "obs_type": lambda i: "simulation",
        "zen_pnt": lambda i: float(zen[i]),
        "data_quality": lambda i: "good",
        "energy_min": lambda i: float(e_min[i]),
        "energy_max": lambda i: float(e_max[i]),
        "ev_xel": lambda i: int(n_ev[i]),
    }
    getters = []
    for c in OBSCORE_COLUMNS:
        if c.name == "obs_publisher_did":
            getters.append(lambda i: archive_db.publisher_did(SYNTHETIC_COLLECTION, ids[i]))
        elif c.name == "access_url":
            getters.append(
                lambda i: (
                    archive_db.ACCESS_URL_BASE
                    + "files/"
                    + quote(archive_db.publisher_did(SYNTHETIC_COLLECTION, ids[i]), safe="")
                )
            )
        else:
            getters.append(values.get(c.name, lambda i: None))
    rowid = ids + 1
    obscore = [
        (int(rowid[i]), *(g(i) for g in getters), None if released[i] else "ctao-consortium")
        for i in range(n)
    ]
    cd = np.cos(np.radians(dec))
    x, y, z = cd * np.cos(np.radians(ra)), cd * np.sin(np.radians(ra)), np.sin(np.radians(dec))
    points = list(zip(rowid.tolist(), x.tolist(), x.tolist(), y.tolist(), y.tolist(),
                      z.tolist(), z.tolist(), strict=True))  # fmt: skip
    boxes = _cap_boxes(ra, dec, _FOV_DEG / 2 * math.sqrt(2) * 1.001 + 1e-9)
    regions = list(zip(rowid.tolist(), *(b.tolist() for b in boxes), strict=True))
    return obscore, points, regions


def make_synthetic_db(path: str | Path, n_rows: int, seed: int = 0) -> Path:
    """Create (or replace) an archive at *path* with *n_rows* synthetic datasets.

    Parameters
    ----------
    path : str or Path
        The SQLite file to write (replaced if it exists).
    n_rows : int
        Number of ObsCore rows.
    seed : int
        Random seed; the same seed gives the same rows.

    Returns
    -------
    Path
        *path*.
    """
    path = Path(path)
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = archive_db.connect(path)
    try:
        # Bulk load: no journal, a big page cache, and the ~25 column indexes built
        # once at the end (updating them row by row is disk-bound at 1M rows).
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-262144")
        archive_db.create_schema(conn)
        indexes = [
            name
            for (name,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
                "AND sql IS NOT NULL",
                (OBSCORE_TABLE,),
            )
        ]
        for name in indexes:
            conn.execute(f"DROP INDEX {archive_db.q(name)}")
        names = ", ".join(archive_db.q(c.name) for c in OBSCORE_COLUMNS)
        marks = ", ".join("?" * (len(OBSCORE_COLUMNS) + 2))
        insert = (
            f'INSERT INTO {archive_db.q(OBSCORE_TABLE)} (rowid, {names}, "_access_group") '
            f"VALUES ({marks})"
        )
        rng = np.random.default_rng(seed)
        for start in range(0, n_rows, _BATCH):
            obscore, points, regions = _batch_rows(start, min(_BATCH, n_rows - start), rng)
            conn.executemany(insert, obscore)
            conn.executemany(
                f"INSERT INTO {archive_db.q(archive_db.POINT_INDEX)} VALUES (?,?,?,?,?,?,?)",
                points,
            )
            conn.executemany(
                f"INSERT INTO {archive_db.q(archive_db.REGION_INDEX)} VALUES (?,?,?,?,?,?,?)",
                regions,
            )
            conn.commit()
        archive_db.create_schema(conn)  # recreates the indexes dropped above
        conn.execute("ANALYZE")
        conn.commit()
        conn.execute("PRAGMA journal_mode=WAL")
    finally:
        conn.close()
    return path
