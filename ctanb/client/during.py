"""Simultaneity search: the datasets whose good time overlaps given time intervals.

``archive.search(..., during=...)`` turns what the user has (see
:func:`ctanb.archive.gti.as_intervals`: a Table with start/stop, Time pairs, a time
MOC or a TMOC file, or another observation's file with GTIs) into a time MOC and
wraps the ordinary criteria query so that it keeps the datasets whose
``ivoa.obscore_hea.t_intervals`` overlap it, adding the overlap in seconds::

    SELECT o.*, ivo_tmoc_overlap(h.t_intervals, '<tmoc>') AS overlap_s
    FROM (<criteria query>) AS o
    JOIN ivoa.obscore_hea AS h ON h.obs_publisher_did = o.obs_publisher_did
    WHERE ivo_tmoc_overlap(h.t_intervals, '<tmoc>') > 0
    ORDER BY o.t_min

The same ADQL runs on the embedded archive and on DaCHS.

A time MOC longer than :data:`MAX_TMOC_CHARS` is sent at a coarser order, rounded
outwards: the server's answer is then a superset, and :func:`exact_overlaps` (which
:meth:`~ctanb.client.Archive.search` and the search panel call) recomputes each
candidate's overlap from its own ``t_intervals`` and the user's exact intervals and
drops the candidates that do not overlap, so the result never depends on the size.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from .._errors import TimeCoverageError
from ..archive import gti
from ..datamodel import OBSCORE_HEA_TABLE

__all__ = [
    "DURING_COLUMN",
    "MAX_INTERVALS",
    "MAX_TMOC_CHARS",
    "during_adql",
    "during_intervals",
    "during_tmoc",
    "exact_overlaps",
    "intervals_from_text",
]

#: Name of the result column with the overlap duration (seconds).
DURING_COLUMN = "overlap_s"

#: Longest time MOC sent in a query; longer ones are degraded to a coarser order
#: (rounded outwards, so no overlapping dataset is lost) and the answer is made exact
#: again by :func:`exact_overlaps`.
MAX_TMOC_CHARS = 20_000

#: Most intervals a simultaneity search takes (more is refused with a clear message:
#: beyond this, the user's file is not a list of pointings but a mistake).
MAX_INTERVALS = 100_000


def _time_word(word: str, where: str) -> float:
    """An MJD (TT) from a number (MJD, TT) or an ISO time (UTC)."""
    from astropy.time import Time

    try:
        value = float(word)
    except ValueError:
        pass
    else:
        if not np.isfinite(value):
            raise TimeCoverageError(
                f"{where}: {word!r} is not a number (give an ISO time (UTC) or an MJD (TT))"
            )
        return value
    try:
        return float(Time(word, scale="utc").tt.mjd)
    except ValueError:
        raise TimeCoverageError(
            f"{where}: {word!r} is not a time (give an ISO time such as "
            "2006-07-29T21:00 (UTC) or an MJD number (TT))"
        ) from None


def _is_date(word: str) -> bool:
    return re.fullmatch(r"\d{4}-\d{2}-\d{2}", word) is not None


def _is_number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True


def intervals_from_text(text: str) -> np.ndarray:
    """Intervals typed by a user: a file path, or ``start stop; start stop ...``.

    A file is a time MOC (FITS or ASCII) or an observation file with a GTI table;
    otherwise each ``;`` (or line) holds a start and a stop, ISO times (UTC) or MJD
    numbers (TT). Returns checked, merged ``(n, 2)`` MJD (TT) intervals.

    Raises
    ------
    TimeCoverageError
        Naming the interval or the file that is wrong.
    """
    text = str(text).strip()
    if not text:
        raise TimeCoverageError("no time intervals given")
    path = Path(text).expanduser()
    looks_like_path = "/" in text or re.search(r"\.(fits|fit|gz|txt|moc|ascii)$", text, re.I)
    if looks_like_path and ";" not in text:
        gti.check_file(path)
        return _checked_size(gti.as_intervals(path))
    starts, stops = [], []
    for i, chunk in enumerate(c for c in re.split(r"[;\n]", text) if c.strip()):
        words = chunk.replace(",", " ").split()
        if len(words) == 4 and all(_is_date(w) for w in words[::2]):
            # space-separated ISO times: "2006-07-29 20:50:00 2006-07-29 20:54:00"
            words = [f"{words[0]}T{words[1]}", f"{words[2]}T{words[3]}"]
        if len(words) != 2:
            raise TimeCoverageError(
                f"time interval {i} ({chunk.strip()!r}) must be a start and a stop"
            )
        if _is_number(words[0]) != _is_number(words[1]):
            raise TimeCoverageError(
                f"time interval {i} ({chunk.strip()!r}) mixes an ISO time (read as UTC) and "
                "an MJD number (read as TT): give both times the same way"
            )
        for word in words:
            number = float(word) if _is_number(word) else None
            if (
                number is not None
                and np.isfinite(number)
                and not (gti.MJD_RANGE[0] <= number <= gti.MJD_RANGE[1])
            ):
                # a text box: astropy Time objects cannot be typed here
                raise TimeCoverageError(
                    f"time interval {i}: {word} is not an MJD (expected days between "
                    f"{gti.MJD_RANGE[0]:g} = 1900 and {gti.MJD_RANGE[1]:g} = 2100): mission "
                    "seconds or a JD? Type ISO dates such as 2006-07-29T21:00 (UTC) or MJD "
                    "numbers (TT)"
                )
        starts.append(_time_word(words[0], f"time interval {i}"))
        stops.append(_time_word(words[1], f"time interval {i}"))
        if not stops[-1] > starts[-1]:
            raise TimeCoverageError(
                f"time interval {i} is in the wrong order: its stop {words[1]} is not after "
                f"its start {words[0]}"
            )
    return _checked_size(gti.check_intervals(np.array(starts), np.array(stops)))


def _checked_size(intervals: np.ndarray) -> np.ndarray:
    if len(intervals) > MAX_INTERVALS:
        raise TimeCoverageError(
            f"{len(intervals)} separate time intervals: more than the {MAX_INTERVALS} a "
            "simultaneity search takes; merge them (or give a coarser time MOC)"
        )
    return intervals


def during_intervals(during: Any) -> np.ndarray:
    """*during* (anything :func:`ctanb.archive.gti.as_intervals` takes) as ``(n, 2)`` MJD (TT).

    Raises
    ------
    TimeCoverageError
        When *during* is not usable intervals, or more than :data:`MAX_INTERVALS`.
    """
    if isinstance(during, np.ndarray) and during.ndim == 2 and during.shape[1:] == (2,):
        return _checked_size(gti.check_intervals(during[:, 0], during[:, 1]))
    return _checked_size(gti.as_intervals(during))


def during_tmoc(during: Any) -> tuple[str, int]:
    """The time MOC (MOC 2.0 ASCII) of *during* and its order.

    Raises
    ------
    TimeCoverageError
        When *during* is not usable intervals (wrong order, scale, unreadable file).
    """
    from astropy.time import Time

    intervals = during_intervals(during)
    # As Times: checked above, so ISO input near 1900 or 2100 is not re-checked as numbers
    starts, stops = (Time(intervals[:, i], format="mjd", scale="tt") for i in (0, 1))
    order = gti.TMOC_ORDER
    text = gti.tmoc_to_string(gti.intervals_to_tmoc(starts, stops, order=order))
    while len(text) > MAX_TMOC_CHARS and order > 20:
        order -= 4
        text = gti.tmoc_to_string(gti.intervals_to_tmoc(starts, stops, order=order))
    return text, order


def during_adql(inner: str, tmoc: str, *, top: int | None = None) -> str:
    """Wrap the criteria query *inner* (without TOP/ORDER BY) into a simultaneity query."""
    inner = inner.strip()
    if inner.upper().endswith("ORDER BY T_MIN"):
        inner = inner[: -len("ORDER BY t_min")].rstrip()
    literal = "'" + tmoc.replace("'", "''") + "'"
    head = f"SELECT TOP {int(top)} " if top else "SELECT "
    return (
        f"{head}o.*, ivo_tmoc_overlap(h.t_intervals, {literal}) AS {DURING_COLUMN}\n"
        f"FROM ({inner}) AS o\n"
        f"JOIN {OBSCORE_HEA_TABLE} AS h ON h.obs_publisher_did = o.obs_publisher_did\n"
        f"WHERE ivo_tmoc_overlap(h.t_intervals, {literal}) > 0\n"
        "ORDER BY o.t_min"
    )


def exact_overlaps(results: Any, intervals: np.ndarray) -> Any:
    """*results* of a simultaneity query with exact ``overlap_s``, non-overlapping rows dropped.

    Each row's good time is its ``ivoa.obscore_hea.t_intervals`` (asked for the
    candidate rows only); the overlap is computed with the user's exact
    *intervals* (``(n, 2)`` MJD, TT), so a time MOC sent at a coarser order (a
    superset) gives the same answer as an exact one.

    Parameters
    ----------
    results : Results
        The answer of :func:`during_adql`'s query (with ``obs_publisher_did``).
    intervals : numpy.ndarray
        The user's intervals, as returned by :func:`ctanb.archive.gti.as_intervals`.

    Returns
    -------
    Results
        The rows whose good time overlaps *intervals*, with exact ``overlap_s``.
    """
    table = results.table
    if not len(table) or DURING_COLUMN not in table.colnames or results.archive is None:
        return results
    dids = [str(d) for d in table["obs_publisher_did"]]
    good: dict[str, str | None] = {}
    for i in range(0, len(dids), 200):
        chunk = sorted(set(dids[i : i + 200]))
        listed = ", ".join("'" + d.replace("'", "''") + "'" for d in chunk)
        answer = results.archive.query(
            f"SELECT obs_publisher_did, t_intervals FROM {OBSCORE_HEA_TABLE} "
            f"WHERE obs_publisher_did IN ({listed})"
        )
        for did, moc in zip(answer.table["obs_publisher_did"], answer.table["t_intervals"],
                            strict=True):  # fmt: skip
            text = None if np.ma.is_masked(moc) else str(moc).strip()
            good[str(did)] = text or None
    overlaps = np.zeros(len(dids))
    for i, did in enumerate(dids):
        text = good.get(did)
        if text:
            own = gti.tmoc_intervals(gti.tmoc_from_string(text))
            overlaps[i] = gti.overlap_seconds(own, intervals)
    table = table.copy()
    column = table[DURING_COLUMN]
    if hasattr(column, "mask"):
        column.mask = False
    column[:] = overlaps
    keep = overlaps > 0
    return type(results)(
        table[keep],
        query=results.query,
        url=results.url,
        archive=results.archive,
        datalink_url=results.datalink_url,
        overflow=results.overflow,
    )
