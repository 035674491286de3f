"""Time, space-time and space-energy coverage of many rows (used by :mod:`ctanb.archive.coverage`).

Everything here goes to mocpy in few calls: the time MOC from all intervals at
once, and the 2-D MOCs from one spatial coverage per *group* of rows (the rows
observed in the same ST-MOC time cells, or with the same energy bins), the groups
merged across chunks of rows in a dict, so that mocpy sees thousands of
coverages, not a million.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from .._errors import CtanbError
from . import coverage_cells as cells
from . import gti

__all__: list[str] = []  # private: the public entry points are in ctanb.archive.coverage

log = logging.getLogger("ctanb.archive.coverage")
PLANCK_TEV_S = 4.135667696e-27  # h in TeV s (CODATA 2018): nu = E / h
BINS_PER_DECADE = 20  # space-energy: bands rounded outwards to 20 log bins per decade (12 %)
_THREADS = 1  # see ctanb.archive.coverage: one mocpy thread, no pool per call


def time_moc(rows: list[tuple], intervals: dict[str, Any], order: int) -> Any:
    """Time MOC of rows ``(did, t_min, t_max)``; GTIs replace the bounds where known.

    All intervals go to mocpy in one call (TT to TCB converted at once by
    :func:`~ctanb.archive.gti.mjd_to_tcb_microseconds`).
    """
    from mocpy import TimeMOC

    pairs: list[Any] = []
    ranges: list[np.ndarray] = []
    bounds: list[tuple[float, float]] = []
    for did, t0, t1 in rows:
        got = intervals.get(did) if intervals else None
        if got is not None and len(got):
            iv = _read_gtis(did, got, order)
            if iv is not None:
                (ranges if iv.dtype == np.uint64 else pairs).append(iv)
                continue
        if t0 is not None and t1 is not None and t1 > t0:
            bounds.append((t0, t1))
    if bounds:
        pairs.append(np.asarray(bounds, dtype=float))
    if pairs:
        mjd = np.concatenate(pairs)
        ranges.append(gti.mjd_to_tcb_microseconds(mjd))
    if not ranges:
        return TimeMOC.new_empty(order)
    return TimeMOC.from_depth61_ranges(order, np.concatenate(ranges))


def _read_gtis(did: str, got: Any, order: int) -> np.ndarray | None:
    """GTIs of one dataset: TMOC text -> its ranges (uint64); MJD pairs -> checked floats.

    None (logged) when unreadable: the row's bounds still hold.
    """
    if isinstance(got, str):
        try:
            tmoc = gti.tmoc_from_string(got).degrade_to_order(order)
            return np.asarray(tmoc.to_depth61_ranges, dtype=np.uint64).reshape(-1, 2)
        except CtanbError:
            pass
    else:
        iv = np.asarray(got, dtype=float)
        if iv.size and iv.size % 2 == 0:
            iv = iv.reshape(-1, 2)
            if np.isfinite(iv).all() and (iv[:, 1] >= iv[:, 0]).all():
                return iv
    log.warning("coverage: unreadable good-time intervals of %s; using t_min/t_max", did)
    return None


def night_keys(times: list[tuple], time_order: int) -> np.ndarray:
    """``(first, last)`` ST-MOC time cell of each ``(t_min, t_max)``; NaN when unknown."""
    t = np.array([(a, b) if a is not None and b is not None and b >= a else (np.nan, np.nan)
                  for a, b in times], dtype=float).reshape(-1, 2)  # fmt: skip
    keys = np.full(t.shape, np.nan)  # cell numbers < 2**53: exact as floats
    ok = np.isfinite(t).all(axis=1)
    if ok.any():
        cell_us = np.uint64(2 ** (61 - time_order))
        keys[ok] = gti.mjd_to_tcb_microseconds(t[ok]) // cell_us
    return keys


def band_keys(bands: list[tuple]) -> np.ndarray:
    """Energy bands (TeV) rounded outwards to :data:`BINS_PER_DECADE` log bins; NaN when unknown."""
    e = np.array([(a if a else np.nan, b if b else np.nan) for a, b in bands],
                 dtype=float).reshape(-1, 2)  # fmt: skip
    keys = np.full(e.shape, np.nan)
    ok = np.isfinite(e).all(axis=1) & (e[:, 0] > 0) & (e[:, 0] <= e[:, 1])
    keys[ok, 0] = np.floor(BINS_PER_DECADE * np.log10(e[ok, 0]) + 1e-9)
    keys[ok, 1] = np.ceil(BINS_PER_DECADE * np.log10(e[ok, 1]) - 1e-9)
    return keys


def cone_mocs(f: cells.Footprints, order: int) -> list[Any]:
    """One MOC per footprint cap of *f* at *order*, in one mocpy call."""
    import astropy.units as u
    from mocpy import MOC

    if not len(f):
        return []
    return list(MOC.from_cones(f.lon * u.deg, f.lat * u.deg, radius=f.radius * u.deg,
                               max_depth=order, delta_depth=0, n_threads=_THREADS))  # fmt: skip


def add_grouped(groups: dict[tuple, Any], keys: np.ndarray, mocs: list[Any]) -> None:
    """Merge per-row *mocs* into *groups* by their row of *keys* (NaN rows left out)."""
    ok = np.flatnonzero(np.isfinite(keys).all(axis=1))
    if not len(ok):
        return
    distinct, inverse = np.unique(keys[ok], axis=0, return_inverse=True)
    inverse = np.asarray(inverse).ravel()
    members = np.split(ok[np.argsort(inverse, kind="stable")], np.cumsum(np.bincount(inverse))[:-1])
    for key, rows in zip(map(tuple, distinct.tolist()), members, strict=True):
        parts = [mocs[i] for i in rows.tolist()]
        if key in groups:
            parts.append(groups[key])
        groups[key] = parts[0].union(*parts[1:]) if len(parts) > 1 else parts[0]


def space_time(groups: dict[tuple, Any], time_order: int) -> Any | None:
    """The ST-MOC of night groups ``{(first cell, last cell): spatial MOC}`` (None: none)."""
    from mocpy import STMOC

    if not groups:
        return None
    nights = np.array(list(groups), dtype=np.uint64).reshape(-1, 2)
    cell_us = np.uint64(2 ** (61 - time_order))
    lo = nights[:, 0] * cell_us
    hi = (nights[:, 1] + np.uint64(1)) * cell_us
    start = gti.tcb_microseconds_to_time(lo)
    stop = gti.tcb_microseconds_to_time(hi - np.uint64(1))
    return STMOC.from_spatial_coverages(start, stop, list(groups.values()), time_depth=time_order)


def space_energy(groups: dict[tuple, Any], frequency_order: int) -> Any | None:
    """The SF-MOC of band groups ``{(first bin, last bin): spatial MOC}`` (None: none)."""
    import astropy.units as u
    from mocpy import SFMOC, FrequencyMOC

    if not groups:
        return None
    e = 10.0 ** (np.array(list(groups), dtype=float).reshape(-1, 2) / BINS_PER_DECADE)
    nu = np.clip(e / PLANCK_TEV_S, FrequencyMOC.FREQ_MIN_HZ, FrequencyMOC.FREQ_MAX_HZ)
    return SFMOC.from_spatial_coverages(nu[:, 0] * u.Hz, nu[:, 1] * u.Hz, list(groups.values()),
                                        max_order_frequency=frequency_order)  # fmt: skip
