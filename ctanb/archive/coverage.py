"""Coverage of the archive as Multi-Order Coverage maps (MOC 2.0, built with mocpy).

Four kinds per collection and data level, built when data enter the archive
(:func:`ctanb.archive.ingest.ingest`, :func:`ctanb.archive.publish.publish_file`)
and stored in the table ``"ctanb.coverage"`` so that requests only read them:

``space``
    HEALPix MOC of every footprint (``s_region``; a cone of ``s_fov`` when there
    is none), order :attr:`CoverageOrders.space` (order 8: 13.7 arcmin cells).
    Thousands of rows are built with the cell rule of
    :mod:`ctanb.archive.coverage_cells` (seconds for a million footprints), fewer
    with mocpy footprint by footprint; both hold every footprint.
``time``
    Time MOC of the good-time intervals (``t_intervals`` of ``ivoa.obscore_hea``
    when that table exists, else ``[t_min, t_max]``), order
    :attr:`CoverageOrders.time` (41: 1.05 s cells). Times are MJD TT in the
    archive, TCB in the MOC (the MOC 2.0 time axis).
``space-time``
    ST-MOC at night resolution (time order 26: 9.5 h; space order 5: 1.8 deg,
    a third of a Cherenkov field of view): "where was observed on which night".
    Order 6 doubled its size (43 MB at 300k synthetic rows) for little gain: the
    exact footprints are in the space MOC.
``space-energy``
    Space-frequency SF-MOC: the band ``energy_min``..``energy_max`` as photon
    frequencies E/h (1 TeV = 2.4e26 Hz, inside mocpy's 1e-18..1e38 Hz), frequency
    order 13 (1 % relative precision), space order 5.

Rights: rows are split in *partitions* ``(collection, level, access group,
release date)``; public rows form the partition of group ``''``. A request gets
the union of the partitions it may see (:func:`visible_coverage`): public ones,
those whose release date has passed (re-checked at request time, as for files)
and those of the groups its token acts for. Proprietary coverage is never merged
into a public MOC. Reading is in :mod:`ctanb.archive.coverage_read`.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from .._errors import CoverageError
from ..datamodel import OBSCORE_HEA_TABLE as _HEA_TABLE
from ..datamodel import OBSCORE_TABLE
from . import coverage_axes as axes
from . import coverage_cells as cells
from .db import polygon_cap, q

__all__ = [
    "COVERAGE_TABLE",
    "KINDS",
    "CoverageOrders",
    "Partition",
    "add_to_coverage",
    "build_mocs",
    "check_kind",
    "check_order",
    "create_coverage_schema",
    "empty_moc",
    "footprint_moc",
    "moc_class",
    "refresh_coverage",
    "shown",
]

COVERAGE_TABLE = "ctanb.coverage"
log = logging.getLogger("ctanb.archive.coverage")
#: The kinds of coverage, in the words of the endpoint and of ``Archive.coverage``.
KINDS = ("space", "time", "space-time", "space-energy")
_CHUNK = 50_000  # rows per building step: bounds memory at a million rows
# mocpy makes a new thread pool per call when n_threads is None: with one call per
# night group that left a thousand threads running. One thread is ingestion's share.
_THREADS = 1


class CoverageOrders(BaseModel):
    """The MOC orders coverage is built at (the finest a request may ask for)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    space: int = Field(8, ge=0, le=29)
    time: int = Field(41, ge=0, le=61)
    st_time: int = Field(26, ge=0, le=61)
    st_space: int = Field(5, ge=0, le=29)
    sf_frequency: int = Field(13, ge=0, le=59)
    sf_space: int = Field(5, ge=0, le=29)


ORDERS = CoverageOrders()


@dataclass(frozen=True)
class Partition:
    """Rows of one collection and data level sharing their access rights."""

    collection: str
    level: str
    access_group: str  # '' for public rows
    release_date: str  # '' when public or unknown


def moc_class(kind: str) -> Any:
    """The mocpy class of a coverage *kind*."""
    from mocpy import MOC, SFMOC, STMOC, TimeMOC

    return {"space": MOC, "time": TimeMOC, "space-time": STMOC, "space-energy": SFMOC}[
        check_kind(kind)
    ]


def shown(value: Any, limit: int = 80) -> str:
    """*value* as an error message echoes it: its repr, text cut to *limit* characters
    (a 100,000-character parameter is not sent back in full)."""
    if isinstance(value, str) and len(value) > limit:
        return repr(value[: limit - 3] + "...") + f" ({len(value)} characters)"
    return repr(value)


def check_kind(kind: Any) -> str:
    """*kind* if it is one of :data:`KINDS`, else a :class:`~ctanb.CoverageError` naming them."""
    if not isinstance(kind, str) or kind.strip().lower() not in KINDS:
        raise CoverageError(
            f"unknown coverage kind {shown(kind)}: use one of {', '.join(KINDS)}", field="kind"
        )
    return kind.strip().lower()


def check_order(kind: str, order: Any, orders: CoverageOrders = ORDERS) -> int | None:
    """A MOC order a request may ask for (None: as stored); clear errors otherwise.

    Only ``space`` and ``time`` coverage can be degraded; the order must lie
    between 0 and the order the coverage was built at.
    """
    if order is None or order == "":
        return None
    try:
        value = int(str(order).strip())
    except ValueError:
        raise CoverageError(
            f"MOC order {shown(order)} is not a whole number", field="order"
        ) from None
    kind = check_kind(kind)
    if kind not in ("space", "time"):
        raise CoverageError(
            f"a MOC order can be given for space or time coverage only, not {kind}", field="order"
        )
    top = orders.space if kind == "space" else orders.time
    if not 0 <= value <= top:
        raise CoverageError(
            f"MOC order {value} is out of range for {kind} coverage: use 0 to {top} "
            f"(the archive stores {kind} coverage at order {top})",
            field="order",
        )
    return value


def empty_moc(kind: str, orders: CoverageOrders = ORDERS) -> Any:
    """An empty MOC of *kind* at the stored orders."""
    cls = moc_class(kind)
    if kind == "space":
        return cls.new_empty(orders.space)
    if kind == "time":
        return cls.new_empty(orders.time)
    if kind == "space-time":
        return cls.new_empty(orders.st_time, orders.st_space)
    return cls.new_empty(orders.sf_frequency, orders.sf_space)


def create_coverage_schema(conn: sqlite3.Connection) -> None:
    """Create the coverage table if missing (idempotent)."""
    conn.execute(
        f"""CREATE TABLE IF NOT EXISTS {q(COVERAGE_TABLE)} (
            collection TEXT NOT NULL, level TEXT NOT NULL,
            access_group TEXT NOT NULL, release_date TEXT NOT NULL,
            kind TEXT NOT NULL, n_rows INTEGER NOT NULL, moc TEXT NOT NULL,
            built TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f', 'now')),
            PRIMARY KEY (collection, level, access_group, release_date, kind))"""
    )


# -- building -----------------------------------------------------------------------------
def _level_sql() -> str:
    # The CTA data level leads dataproduct_subtype ("DL3-events", "DL4-map").
    return (
        "CASE WHEN upper(substr(dataproduct_subtype, 1, 2)) = 'DL' "
        "THEN upper(substr(dataproduct_subtype, 1, 3)) "
        "ELSE 'calib' || coalesce(calib_level, '') END"
    )


def _has_hea(conn: sqlite3.Connection) -> bool:
    found = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE name = ? AND type IN ('table', 'view')", (_HEA_TABLE,)
    ).fetchone()
    if not found:
        return False
    cols = {r[1] for r in conn.execute(f"PRAGMA table_info({q(_HEA_TABLE)})")}
    return {"obs_publisher_did", "t_intervals"} <= cols


def _footprints(rows: list[tuple]) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Parse ``(s_ra, s_dec, s_fov, s_region)`` rows once.

    Returns the few-vertex polygons as mocpy's flat ``[lon, lat, lon, lat, ...]``
    list, whether each row is such a polygon, and one enclosing cap ``(ra, dec,
    radius)`` per row (NaN when the row has no position).
    """
    polys: list[np.ndarray] = []
    is_poly = np.zeros(len(rows), dtype=bool)
    caps = np.full((len(rows), 3), np.nan)
    for i, (ra, dec, fov, region) in enumerate(rows):
        if region:
            v = np.asarray(str(region).replace(",", " ").split(), dtype=float)
            if len(v) <= 2 * cells.MAX_POLYGON_VERTICES:
                polys += [v[0::2], v[1::2]]
                is_poly[i] = True
            caps[i] = polygon_cap(list(zip(v[0::2].tolist(), v[1::2].tolist(), strict=True)))
        elif ra is not None and dec is not None:
            caps[i] = (float(ra), float(dec), float(fov) / 2 if fov else 0.1)
    return polys, is_poly, caps


def _cones(caps: np.ndarray, order: int) -> Any:
    """The union of caps ``(ra, dec, radius)`` as one MOC."""
    import astropy.units as u
    from mocpy import MOC

    caps = caps[np.isfinite(caps).all(axis=1)]
    if not len(caps):
        return MOC.new_empty(order)
    return MOC.from_cones(caps[:, 0] * u.deg, caps[:, 1] * u.deg, radius=caps[:, 2] * u.deg,
                          max_depth=order, union_strategy="large_cones",
                          n_threads=_THREADS)  # fmt: skip


def _space_moc(polys: list[np.ndarray], is_poly: np.ndarray, caps: np.ndarray, order: int) -> Any:
    """Footprints as one MOC: few-vertex polygons exactly, the rest by their caps.

    A many-vertex ``s_region`` approximates the FoV circle: its enclosing cap is
    the same MOC at these orders and ten times faster to build.
    """
    from mocpy import MOC

    parts = [_cones(caps[~is_poly], order)]
    if polys:
        parts += MOC.from_polygons(polys, max_depth=order, n_threads=_THREADS)
    return _union(parts)


def footprint_moc(rows: Iterable[tuple], order: int = ORDERS.space) -> Any:
    """The space MOC of footprints, as the archive builds it (results drawn on the sky).

    Parameters
    ----------
    rows : iterable of tuple
        ``(s_ra, s_dec, s_fov, s_region)`` per dataset; ``s_region`` the vertex
        list ``"ra1 dec1 ra2 dec2 ..."`` (degrees) or None.
    order : int, optional
        HEALPix order (default the archive's).
    """
    polys, is_poly, caps = _footprints(list(rows))
    return _space_moc(polys, is_poly, caps, order)


def _union(mocs: list[Any]) -> Any:
    """The union of one or more MOCs (mocpy's ``union`` needs two or more)."""
    return mocs[0].union(*mocs[1:]) if len(mocs) > 1 else mocs[0]


def build_mocs(rows: Sequence[tuple], intervals: dict[str, Any] | None = None,
               orders: CoverageOrders = ORDERS) -> dict[str, Any]:  # fmt: skip
    """The four coverage MOCs of *rows*.

    Parameters
    ----------
    rows : sequence of tuple
        ``(obs_publisher_did, s_ra, s_dec, s_fov, s_region, t_min, t_max,
        energy_min, energy_max)`` per dataset (angles in degrees, times MJD TT,
        energies TeV; ``s_region`` the archive's vertex list).
    intervals : dict, optional
        Good-time intervals of some datasets by DID: TMOC ASCII text, or an
        ``(n, 2)`` array of MJD (TT) start/stop pairs.
    orders : CoverageOrders, optional
        The orders to build at.

    Returns
    -------
    dict
        ``{kind: mocpy object}`` for every kind of :data:`KINDS`. Every footprint,
        interval and band is covered; the space MOC of thousands of rows comes from
        :class:`~ctanb.archive.coverage_cells.CellCover` (cells at most about one
        cell beyond a footprint), of fewer from mocpy footprint by footprint.
    """
    from mocpy import MOC

    intervals = intervals or {}
    out = {kind: empty_moc(kind, orders) for kind in KINDS}
    cover = None
    if len(rows) >= cells.FAST_MIN_FOOTPRINTS and orders.space <= cells.FAST_MAX_ORDER:
        cover = cells.CellCover(orders.space)
    nights: dict[tuple, Any] = {}
    bands: dict[tuple, Any] = {}
    for start in range(0, len(rows), _CHUNK):
        chunk = rows[start : start + _CHUNK]
        fp_rows = [(r[1], r[2], r[3], r[4]) for r in chunk]
        f = cells.footprints(fp_rows)
        if cover is None:
            out["space"] = out["space"].union(footprint_moc(fp_rows, orders.space))
        else:
            cover.add(f)
            if f.other_polygons:  # not convex: mocpy's exact polygons
                made = MOC.from_polygons(f.other_polygons, max_depth=orders.space,
                                         n_threads=_THREADS)  # fmt: skip
                out["space"] = out["space"].union(*made)
        out["time"] = out["time"].union(
            axes.time_moc([(r[0], r[5], r[6]) for r in chunk], intervals, orders.time)
        )
        # The 2-D coverages are coarse: rows are grouped by the time cells (nights)
        # or the energy bins they fall in, and each group's caps make one spatial
        # coverage: mocpy gets thousands of coverages instead of a million.
        coarse = axes.cone_mocs(f, orders.st_space)
        night = axes.night_keys([(r[5], r[6]) for r in chunk], orders.st_time)
        axes.add_grouped(nights, night[f.row], coarse)
        if orders.sf_space != orders.st_space:
            coarse = axes.cone_mocs(f, orders.sf_space)
        axes.add_grouped(bands, axes.band_keys([(r[7], r[8]) for r in chunk])[f.row], coarse)
    if cover is not None:
        out["space"] = out["space"].union(cover.moc())
    out["space-time"] = axes.space_time(nights, orders.st_time) or out["space-time"]
    out["space-energy"] = axes.space_energy(bands, orders.sf_frequency) or out["space-energy"]
    return out


_ROWS_SQL = (
    "SELECT {level}, coalesce(\"_access_group\", ''), "
    "CASE WHEN \"_access_group\" IS NULL THEN '' ELSE coalesce(obs_release_date, '') END, "
    "obs_publisher_did, s_ra, s_dec, s_fov, s_region, t_min, t_max, energy_min, energy_max "
    f"FROM {q(OBSCORE_TABLE)} WHERE {{where}}"
)


def _store(conn: sqlite3.Connection, part: Partition, mocs: dict[str, Any], n_rows: int) -> None:
    conn.executemany(
        f"INSERT OR REPLACE INTO {q(COVERAGE_TABLE)} (collection, level, access_group, "
        "release_date, kind, n_rows, moc) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(part.collection, part.level, part.access_group, part.release_date, kind, n_rows,
          moc.to_string(format="ascii")) for kind, moc in mocs.items()],
    )  # fmt: skip


def add_to_coverage(conn: sqlite3.Connection, did: str, orders: CoverageOrders = ORDERS) -> None:
    """Add the new dataset *did* to the stored coverage of its partition (publication).

    A publication only adds a dataset with fixed rights, so its MOCs are merged
    into the stored ones instead of rebuilding the collection. Does not commit.
    """
    create_coverage_schema(conn)
    found = conn.execute(
        _ROWS_SQL.format(level=_level_sql(), where="obs_publisher_did = ?"), (did,)
    ).fetchone()
    if found is None:
        return
    collection = conn.execute(
        f"SELECT obs_collection FROM {q(OBSCORE_TABLE)} WHERE obs_publisher_did = ?", (did,)
    ).fetchone()[0]
    lvl, group, release, *row = found
    part = Partition(collection, lvl, group, release)
    mocs = build_mocs([tuple(row)], _read_intervals(conn, [did]), orders)
    stored = dict(conn.execute(
        f"SELECT kind, moc FROM {q(COVERAGE_TABLE)} WHERE collection = ? AND level = ? "
        "AND access_group = ? AND release_date = ?",
        (part.collection, part.level, part.access_group, part.release_date),
    ).fetchall())  # fmt: skip
    n = (
        conn.execute(
            f"SELECT max(n_rows) FROM {q(COVERAGE_TABLE)} WHERE collection = ? AND level = ? "
            "AND access_group = ? AND release_date = ?",
            (part.collection, part.level, part.access_group, part.release_date),
        ).fetchone()[0]
        or 0
    )
    for kind, moc in mocs.items():
        if kind in stored:
            mocs[kind] = moc.union(moc_class(kind).from_string(stored[kind], format="ascii"))
    _store(conn, part, mocs, n + 1)


def _read_intervals(conn: sqlite3.Connection, dids: Iterable[str]) -> dict[str, Any]:
    """GTIs of *dids* from ``ivoa.obscore_hea``, for :func:`build_mocs`.

    The private ``_t_mjd`` MJD pairs (the same intervals as ``t_intervals``, read
    as numbers: parsing a million TMOC texts would take minutes) where readable,
    else the ``t_intervals`` TMOC text.
    """
    if not _has_hea(conn):
        return {}
    wanted = set(dids)
    cols = {r[1] for r in conn.execute(f"PRAGMA table_info({q(_HEA_TABLE)})")}
    pairs_col = '"_t_mjd"' if "_t_mjd" in cols else "NULL"
    found = conn.execute(
        f"SELECT obs_publisher_did, t_intervals, {pairs_col} FROM {q(_HEA_TABLE)} "
        f"WHERE (t_intervals IS NOT NULL AND t_intervals != '') OR {pairs_col} IS NOT NULL"
    )
    out: dict[str, Any] = {}
    for did, text, pairs in found:
        if did not in wanted:
            continue
        try:
            out[did] = np.array(str(pairs).split(), dtype=float) if pairs else str(text or "")
        except ValueError:  # unreadable pairs: the TMOC text (or the row's bounds) instead
            out[did] = str(text or "")
    return out


def refresh_coverage(
    conn: sqlite3.Connection,
    collections: Iterable[str] | None = None,
    *,
    level: str | None = None,
    orders: CoverageOrders = ORDERS,
) -> int:
    """Rebuild the stored coverage of *collections* (all: None) from their rows.

    Every partition of a collection (and *level*, when given) is replaced, so a
    dataset removed or moved to other rights leaves no trace in the old MOC. Does
    not commit: ingestion and publication commit it with the rows. Returns the
    number of partitions written.
    """
    create_coverage_schema(conn)
    if collections is None:
        collections = [c for (c,) in conn.execute(
            f"SELECT DISTINCT obs_collection FROM {q(OBSCORE_TABLE)}")]  # fmt: skip
    level_sql = _level_sql()
    written = 0
    for collection in sorted(set(collections)):
        where, args = "obs_collection = ?", [collection]
        if level is not None:
            where, args = f"{where} AND {level_sql} = ?", [collection, level]
        cur = conn.execute(_ROWS_SQL.format(level=level_sql, where=where), args)
        by_key: dict[tuple, list[tuple]] = {}
        for row in cur:  # a million rows: no per-row objects beyond the tuples
            found = by_key.get(row[:3])
            if found is None:
                found = by_key[row[:3]] = []
            found.append(row[3:])
        groups = {Partition(collection, *key): rows for key, rows in by_key.items()}
        delete = f"DELETE FROM {q(COVERAGE_TABLE)} WHERE collection = ?"
        conn.execute(
            delete if level is None else delete + " AND level = ?", args[: 1 + (level is not None)]
        )
        for part, rows in groups.items():
            mocs = build_mocs(rows, _read_intervals(conn, (r[0] for r in rows)), orders)
            _store(conn, part, mocs, len(rows))
            written += 1
    return written
