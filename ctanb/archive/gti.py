"""Good-time intervals and time MOCs: the one place that reads when a run took data.

A Cherenkov run is a few tens of minutes of good time, and the good-time intervals
(GTIs) of the run's DL3 file say exactly when. Everything in ctanb that needs them
(``t_intervals`` of ``ivoa.obscore_hea``, the archive's time coverage, the
simultaneity search ``archive.search(during=...)``, the ADQL TMOC functions) goes
through this module:

- :func:`read_gti` reads the GTI HDU of a GADF file, honouring ``MJDREFI``/``MJDREFF``
  (or ``MJDREF``), ``TIMESYS``, ``TIMEUNIT`` and ``TIMEZERO`` as the GADF time format
  says (keywords of the GTI header, else of the EVENTS header);
- :func:`intervals_to_tmoc` turns intervals into a :class:`mocpy.TimeMOC` at
  :data:`TMOC_ORDER` (1 microsecond: the MOC 2.0 finest order, so GTI-exact);
- :func:`as_intervals` accepts what a user has (an astropy Table with start/stop,
  pairs of Time, a TMOC object, a TMOC FITS or ASCII file, or the GTIs of another
  observation file) and returns checked, merged intervals in MJD (TT);
- :func:`overlap_seconds` is the exact overlap duration of two interval sets.

Intervals travel as ``(n, 2)`` float arrays of MJD in TT: float64 resolves 1 us at
today's MJDs, and the archive's ``t_min``/``t_max`` use the same convention.
Problems raise :class:`~ctanb._errors.TimeCoverageError` naming the interval, the
scale or the file.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._errors import TimeCoverageError

if TYPE_CHECKING:  # pragma: no cover
    from astropy.time import Time
    from mocpy import TimeMOC

__all__ = [
    "MJD_RANGE",
    "TMOC_ORDER",
    "as_intervals",
    "check_intervals",
    "gti_mjd",
    "intervals_to_tmoc",
    "merge_intervals",
    "mjd_to_tcb_microseconds",
    "overlap_seconds",
    "read_gti",
    "read_tmoc",
    "tcb_microseconds_to_time",
    "tmoc_from_string",
    "tmoc_intervals",
    "tmoc_to_string",
]

#: Order of the time MOCs ctanb writes: 61, the finest of MOC 2.0 (1 microsecond),
#: so that a TMOC keeps the GTIs exactly (to 1 us, rounded outwards).
TMOC_ORDER = 61

#: MJDs accepted as plain numbers (1900-01-01 to 2100-01-01): outside, a number is
#: almost surely mission seconds or a JD given by mistake.
MJD_RANGE = (15020.0, 88069.0)

_SECONDS_PER_DAY = 86400.0


# GTI and time MOC files: ctanb.archive.gti_files (re-exported here)
from .gti_files import (  # noqa: E402
    _gti_extension,
    _is_fits,
    check_file,
    gti_mjd,
    open_fits_quietly,
    read_gti,
    read_tmoc,
)


# ------------------------------------------------------------------------ intervals
def merge_intervals(intervals: np.ndarray) -> np.ndarray:
    """Sort ``(n, 2)`` intervals and merge those that overlap or touch."""
    iv = np.asarray(intervals, dtype=float).reshape(-1, 2)
    if iv.shape[0] <= 1:
        return iv.copy()
    iv = iv[np.argsort(iv[:, 0], kind="stable")]
    out = [iv[0].copy()]
    for a, b in iv[1:]:
        if a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append(np.array([a, b]))
    return np.array(out)


def _as_time(value: Any, what: str) -> Time:
    from astropy.time import Time

    if isinstance(value, Time):
        t = value
    else:
        arr = np.atleast_1d(np.asarray(getattr(value, "value", value), dtype=float))
        unit = str(getattr(value, "unit", "") or "")
        if unit and unit not in ("d", "day"):
            raise TimeCoverageError(
                f"{what} {arr[0]:g} {unit} is a duration, not a time: give times as "
                "astropy Time objects or MJD numbers (TT)"
            )
        outside = arr[(arr < MJD_RANGE[0]) | (arr > MJD_RANGE[1]) | ~np.isfinite(arr)]
        if outside.size:
            raise TimeCoverageError(
                f"{what} {outside[0]:g} is not an MJD (expected days between "
                f"{MJD_RANGE[0]:g} = 1900 and {MJD_RANGE[1]:g} = 2100): mission seconds or "
                "a JD? Give astropy Time objects, or MJD numbers in TT"
            )
        t = Time(arr, format="mjd", scale="tt")
    if t.scale not in ("tt", "tai", "utc", "tcg", "tcb", "tdb", "ut1"):
        raise TimeCoverageError(
            f"{what} is in the time scale {t.scale!r}, which cannot be placed on the TT "
            "time line: give times in UTC, TT, TAI, TDB or TCB"
        )
    return t


def _missing(value: Any) -> np.ndarray:
    """Which entries of *value* are masked (a masked Time, MaskedColumn or masked array)."""
    mask = getattr(value, "mask", None)
    if mask is None or mask is np.ma.nomask:
        return np.zeros(np.shape(np.atleast_1d(getattr(value, "value", value))), dtype=bool)
    return np.atleast_1d(np.asarray(mask, dtype=bool))


def check_intervals(start: Any, stop: Any) -> np.ndarray:
    """Checked intervals from starts and stops, as ``(n, 2)`` MJD (TT), merged.

    Parameters
    ----------
    start, stop : astropy.time.Time or array of float
        Starts and stops of the intervals (Time in any scale convertible to TT, or
        MJD numbers in TT).

    Raises
    ------
    TimeCoverageError
        When the lengths differ, a time is not a plausible MJD, the scale cannot be
        converted to TT, or an interval stops before (or when) it starts; the
        message names the interval by its position.
    """
    missing = np.union1d(np.flatnonzero(_missing(start)), np.flatnonzero(_missing(stop)))
    if len(missing):
        rows = ", ".join(str(int(i)) for i in missing[:10]) + (" ..." if len(missing) > 10 else "")
        raise TimeCoverageError(
            f"time interval{'s' if len(missing) > 1 else ''} {rows} "
            f"{'have' if len(missing) > 1 else 'has'} a missing (blank) start or stop time: "
            "fill them in or remove those rows"
        )
    t0 = _as_time(start, "start time")
    t1 = _as_time(stop, "stop time")
    a = np.atleast_1d(t0.tt.mjd).astype(float)
    b = np.atleast_1d(t1.tt.mjd).astype(float)
    if a.shape != b.shape:
        raise TimeCoverageError(f"{a.size} start time(s) but {b.size} stop time(s)")
    if a.size == 0:
        raise TimeCoverageError("no time intervals given")
    bad = np.flatnonzero(~(b > a))
    if bad.size:
        i = int(bad[0])
        # in the scale the user gave (UTC stays UTC)
        iso0, iso1 = np.atleast_1d(t0.isot)[i], np.atleast_1d(t1.isot)[i]
        raise TimeCoverageError(
            f"time interval {i} is in the wrong order: it stops ({iso1} {t1.scale.upper()}) "
            f"{'before' if b[i] < a[i] else 'when'} it starts ({iso0} {t0.scale.upper()})"
        )
    return merge_intervals(np.column_stack([a, b]))


def overlap_seconds(a: np.ndarray, b: np.ndarray) -> float:
    """Total time in seconds covered by both interval sets (``(n, 2)`` MJD arrays)."""
    a, b = merge_intervals(a), merge_intervals(b)
    i = j = 0
    total = 0.0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i, 0], b[j, 0]), min(a[i, 1], b[j, 1])
        if hi > lo:
            total += hi - lo
        if a[i, 1] < b[j, 1]:
            i += 1
        else:
            j += 1
    return total * _SECONDS_PER_DAY


# ----------------------------------------------------------------------------- TMOCs
def _check_order(order: int) -> int:
    from mocpy import TimeMOC

    if not isinstance(order, (int, np.integer)) or not 0 <= int(order) <= TimeMOC.MAX_ORDER:
        raise TimeCoverageError(
            f"time MOC order {order!r} is out of range: it must be an integer from 0 "
            f"to {TimeMOC.MAX_ORDER} (61 = 1 microsecond)"
        )
    return int(order)


def intervals_to_tmoc(intervals: Any, stop: Any = None, *, order: int = TMOC_ORDER) -> TimeMOC:
    """A :class:`mocpy.TimeMOC` covering the given intervals.

    Parameters
    ----------
    intervals : (n, 2) array of MJD (TT), or astropy.time.Time of starts
        The intervals; with *stop* given, *intervals* are the starts.
    stop : astropy.time.Time or array of float, optional
        The stops, when *intervals* holds the starts.
    order : int, optional
        MOC order, 0..61 (default :data:`TMOC_ORDER`: 1 us cells, rounded outwards).

    Raises
    ------
    TimeCoverageError
        For intervals in the wrong order or an order out of range.
    """
    from mocpy import TimeMOC

    order = _check_order(order)
    if stop is not None:
        iv = check_intervals(intervals, stop)
    else:
        raw = np.asarray(intervals, dtype=float).reshape(-1, 2)
        iv = check_intervals(raw[:, 0], raw[:, 1])
    return TimeMOC.from_depth61_ranges(order, mjd_to_tcb_microseconds(iv))


_DAY_US = 86_400_000_000


def mjd_to_tcb_microseconds(intervals: np.ndarray) -> np.ndarray:
    """``(n, 2)`` MJD (TT) intervals as MOC 2.0 ranges: microseconds of TCB since JD 0.

    Parameters
    ----------
    intervals : numpy.ndarray
        ``(n, 2)`` (or anything reshaping to it) start and stop times, MJD in TT.

    Returns
    -------
    numpy.ndarray
        ``(n, 2)`` ``uint64`` microseconds of TCB since JD 0: starts rounded down and
        stops up, so a MOC of these ranges covers every interval.

    Notes
    -----
    ctanb's one TT -> TCB conversion (GTIs, ``obscore_hea.t_intervals``, coverage
    MOCs). astropy's TDB - TT series costs ~30 us per instant, so the offset is
    computed by astropy at the start, middle and end of each day concerned and
    interpolated quadratically: < 0.001 us off (the 1.7 ms annual term's curvature).
    Whole days stay integers, as in astropy's two-double times (mocpy's
    ``from_time_ranges`` takes one float JD: 40 us coarse, and in TT if given TT).
    """
    from astropy.time import Time

    iv = np.asarray(intervals, dtype=float).reshape(-1, 2)
    out = np.zeros(iv.shape, dtype=np.uint64)
    if not iv.size:
        return out
    day = np.floor(iv)
    nodes = np.unique(np.concatenate([day.ravel(), (day + 0.5).ravel(), (day + 1).ravel()]))
    tt = Time(nodes, format="mjd", scale="tt")
    tcb = tt.tcb
    offset_us = ((tcb.jd1 - tt.jd1) + (tcb.jd2 - tt.jd2)) * _DAY_US
    at = np.searchsorted(nodes, day)  # nodes[at] == day, then day + 0.5, day + 1
    o0, o1, o2 = offset_us[at], offset_us[at + 1], offset_us[at + 2]
    u = 2.0 * (iv - day)  # Lagrange interpolation through the nodes u = 0, 1, 2
    offset = o0 * (u - 1) * (u - 2) / 2 - o1 * u * (u - 2) + o2 * u * (u - 1) / 2
    # MJD 0 is JD 2400000.5: whole days in integers, the rest (< 2 days) in floats.
    frac_us = (iv - day + 0.5) * _DAY_US + offset
    frac_us[:, 0] = np.floor(frac_us[:, 0])
    frac_us[:, 1] = np.ceil(frac_us[:, 1])
    out[:] = (day + 2_400_000).astype(np.uint64) * np.uint64(_DAY_US)
    return out + frac_us.astype(np.int64).astype(np.uint64)


def tmoc_intervals(tmoc: TimeMOC) -> np.ndarray:
    """The intervals of a TimeMOC as an ``(n, 2)`` array of MJD (TT)."""

    ranges = np.asarray(tmoc.to_depth61_ranges, dtype=np.uint64).reshape(-1, 2)
    if ranges.size == 0:
        return np.zeros((0, 2))
    t = tcb_microseconds_to_time(ranges)
    return merge_intervals(np.asarray(t.tt.mjd, dtype=float).reshape(-1, 2))


def tcb_microseconds_to_time(us: np.ndarray) -> Time:
    """MOC 2.0 time cells (microseconds of TCB since JD 0) as astropy Times in TCB.

    Parameters
    ----------
    us : numpy.ndarray
        ``uint64`` microseconds, any shape (the inverse of :func:`mjd_to_tcb_microseconds`).

    Returns
    -------
    astropy.time.Time
        Of the same shape (whole days and the day's fraction kept apart).
    """
    from astropy.time import Time

    us = np.asarray(us, dtype=np.uint64)
    days = us // np.uint64(_DAY_US)
    rest = (us - days * np.uint64(_DAY_US)).astype(float) / _DAY_US
    return Time(days.astype(float), rest, format="jd", scale="tcb")


def tmoc_to_string(tmoc: TimeMOC) -> str:
    """The MOC 2.0 ASCII serialization of *tmoc* (e.g. ``"t31/197383812 33/..."``)."""
    return tmoc.to_string(format="ascii").strip()


#: Start of the message of :func:`tmoc_from_string` for a text that is not a MOC at all
#: (it quotes the text: a file reader replaces it by its own).
NOT_A_TMOC = "not a time MOC in the MOC 2.0 ASCII form"


def tmoc_from_string(text: str) -> TimeMOC:
    """Parse a MOC 2.0 ASCII time MOC; TimeCoverageError names what is wrong.

    MOC 2.0 starts a time MOC with ``t`` (``t61/...``); mocpy writes (and reads) it
    without, so both are taken. Without the ``t``, a text with a cell beyond the
    time order's last one, or covering no time between 1900 and 2100, is a space MOC
    given by mistake (``3/1-5``) and is named so. An order out of 0..61, a cell
    beyond the order's last one and a reversed range are each named.
    """
    from mocpy import TimeMOC

    body = str(text).strip()
    space = TimeCoverageError(
        f"{body[:40]!r} is a space MOC (order/cells without 't'): give a time MOC such as 't61/...'"
    )
    marked = body.lower().startswith("t")
    if marked:
        body = body[1:]
    try:
        order = None
        for word in body.replace(",", " ").split():
            if "/" in word:
                order = _check_order(int(word.split("/")[0]))
            cells = word.split("/")[-1]
            if not cells:
                continue
            lo, _, hi = cells.partition("-")
            if order is not None and max(int(lo), int(hi or lo)) >= 2 ** (order + 1):
                if not marked:
                    raise space
                raise TimeCoverageError(
                    f"time MOC cell {cells} is out of range for order {order}: its cells "
                    f"are 0 to {2 ** (order + 1) - 1}"
                )
            if hi and int(lo) > int(hi):
                raise TimeCoverageError(
                    f"time MOC range {cells} is reversed: its first cell is after its last"
                )
        tmoc = TimeMOC.from_string(body, format="ascii")
    except TimeCoverageError:
        raise
    except Exception:  # mocpy raises ValueError or a Rust panic exception
        raise TimeCoverageError(f"{NOT_A_TMOC} (e.g. 't35/1-4 36/11'): {text[:60]!r}") from None
    if not marked and not tmoc.empty():
        ranges = np.asarray(tmoc.to_depth61_ranges, dtype=np.uint64).reshape(-1, 2)
        # 1900 and 2100 to a minute (TT, not TCB: astropy would warn of 2100's leap seconds)
        lo, hi = (np.uint64((mjd + 2_400_000.5) * _DAY_US) for mjd in MJD_RANGE)
        if not np.any((ranges[:, 0] < hi) & (ranges[:, 1] > lo)):
            raise space
    return tmoc


def _is_time_moc(obj: Any) -> bool:
    return type(obj).__name__ == "TimeMOC"


def as_intervals(during: Any) -> np.ndarray:
    """What a user has, as checked ``(n, 2)`` intervals of MJD (TT), merged.

    Parameters
    ----------
    during : Table, TimeMOC, path, or sequence of (start, stop)
        One of:

        - an astropy Table (or dict) with ``start``/``stop`` columns (any case; also
          ``t_start``/``t_stop``, ``tstart``/``tstop``), Time or MJD numbers;
        - a :class:`mocpy.TimeMOC`;
        - a path to a TMOC file (FITS or ASCII), or to an observation file with a
          GTI table (GADF event list, an X-ray or Fermi file...);
        - a pair ``(start, stop)`` of Time arrays, or a sequence of
          ``(start, stop)`` pairs of Time or MJD numbers.

    Raises
    ------
    TimeCoverageError
        Naming what is wrong (the interval, the scale, the file).
    """
    from astropy.table import Table

    if during is None:
        raise TimeCoverageError("no time intervals given")
    if _is_time_moc(during):
        iv = tmoc_intervals(during)
        if iv.size == 0:
            raise TimeCoverageError("the time MOC is empty")
        return iv
    if isinstance(during, (str, Path)):
        return _file_intervals(Path(during))
    if isinstance(during, (Table, dict)):
        names = {n.lower(): n for n in (during.colnames if isinstance(during, Table) else during)}
        for a, b in (("start", "stop"), ("t_start", "t_stop"), ("tstart", "tstop")):
            if a in names and b in names:
                return check_intervals(during[names[a]], during[names[b]])
        raise TimeCoverageError(
            f"the table has no start/stop columns (it has {', '.join(names) or 'none'})"
        )
    from astropy.time import Time

    if isinstance(during, Time):
        raise TimeCoverageError("give intervals as (start, stop) pairs, not a single Time")
    pairs = list(during) if isinstance(during, Iterable) else None
    if not pairs:
        raise TimeCoverageError(
            "during must be a Table with start/stop, (start, stop) pairs, a TimeMOC or a file"
        )
    if len(pairs) == 2 and all(isinstance(p, Time) and not p.isscalar for p in pairs):
        return check_intervals(pairs[0], pairs[1])
    try:
        starts, stops = zip(*(tuple(p) for p in pairs), strict=True)
    except (TypeError, ValueError):
        raise TimeCoverageError("each interval must be a (start, stop) pair") from None
    if any(isinstance(s, str) for s in starts + stops):
        starts, stops = _iso_pairs(starts, stops)
    if any(isinstance(s, Time) or hasattr(s, "unit") for s in starts + stops):
        # a Quantity in days is an MJD; in seconds (or any other unit) a duration
        one = [_as_time(s, "start time") for s in starts], [_as_time(s, "stop time") for s in stops]
        one = tuple([t.reshape(()) if t.shape == (1,) else t for t in ts] for ts in one)
        return check_intervals(Time(one[0]), Time(one[1]))
    return check_intervals(np.asarray(starts, dtype=float), np.asarray(stops, dtype=float))


def _iso_pairs(starts: tuple, stops: tuple) -> tuple[tuple, tuple]:
    """ISO strings as UTC Times; a pair mixing an ISO time and an MJD number is refused."""
    from astropy.time import Time

    def one(value: Any, i: int, what: str) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return Time(value.strip().replace(" ", "T", 1), scale="utc")
        except ValueError:
            raise TimeCoverageError(
                f"time interval {i}: {what} {value!r} is not a time (give an ISO time such "
                "as 2006-07-29T21:00 (UTC), an astropy Time, or an MJD number (TT))"
            ) from None

    for i, (a, b) in enumerate(zip(starts, stops, strict=True)):
        if isinstance(a, str) != isinstance(b, str) and not (
            isinstance(a, Time) or isinstance(b, Time)
        ):
            raise TimeCoverageError(
                f"time interval {i} mixes an ISO time (read as UTC) and an MJD number (read "
                "as TT): give both times the same way"
            )
    return (
        tuple(one(a, i, "start") for i, a in enumerate(starts)),
        tuple(one(b, i, "stop") for i, b in enumerate(stops)),
    )


def _file_intervals(path: Path) -> np.ndarray:
    """Intervals of a file: the GTIs of an observation file, else a time MOC."""
    check_file(path)
    if _is_fits(path):
        names, headers = open_fits_quietly(path)
        dims = {str(h.get("MOCDIM", "")).upper() for h in headers[1:]} - {""}
        if dims - {"TIME"} or any("MOCORD_S" in h for h in headers[1:]):
            raise TimeCoverageError(
                f"{path}: a {' and '.join(sorted(dims)).lower() or 'space'} MOC, not a time "
                "MOC: give a time MOC (MOCDIM = 'TIME') or an observation file with a GTI table"
            )
        moc = any("TIME" in dims or "TORDER" in h or "MOCORD_T" in h for h in headers[1:])
        if _gti_extension(names, "GTI") and not moc:
            return gti_mjd(path)
        if not moc:
            raise TimeCoverageError(
                f"{path}: neither a time MOC nor an observation file with a GTI table "
                f"(it has {', '.join(names)})"
            )
    iv = tmoc_intervals(read_tmoc(path))
    if iv.size == 0:
        raise TimeCoverageError(f"{path}: the time MOC is empty")
    return iv
