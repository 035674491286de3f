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
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from .._errors import TimeCoverageError
from ..archive import gti
from ..datamodel import OBSCORE_HEA_TABLE

__all__ = ["DURING_COLUMN", "MAX_TMOC_CHARS", "during_adql", "during_tmoc", "intervals_from_text"]

#: Name of the result column with the overlap duration (seconds).
DURING_COLUMN = "overlap_s"

#: Longest time MOC sent in a query; longer ones are degraded to a coarser order
#: (rounded outwards, so no overlapping dataset is lost; durations then grow by at
#: most one cell per interval edge).
MAX_TMOC_CHARS = 20_000


def _time_word(word: str, where: str) -> float:
    """An MJD (TT) from a number (MJD, TT) or an ISO time (UTC)."""
    from astropy.time import Time

    try:
        return float(word)
    except ValueError:
        pass
    try:
        return float(Time(word, scale="utc").tt.mjd)
    except ValueError:
        raise TimeCoverageError(
            f"{where}: {word!r} is not a time (give an ISO time such as "
            "2006-07-29T21:00 (UTC) or an MJD number (TT))"
        ) from None


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
        if not path.is_file():
            raise TimeCoverageError(f"{text}: no such file")
        return gti.as_intervals(path)
    starts, stops = [], []
    for i, chunk in enumerate(c for c in re.split(r"[;\n]", text) if c.strip()):
        words = chunk.replace(",", " ").split()
        if len(words) != 2:
            raise TimeCoverageError(
                f"time interval {i} ({chunk.strip()!r}) must be a start and a stop"
            )
        starts.append(_time_word(words[0], f"time interval {i}"))
        stops.append(_time_word(words[1], f"time interval {i}"))
        if not stops[-1] > starts[-1]:
            raise TimeCoverageError(
                f"time interval {i} is in the wrong order: its stop {words[1]} is not after "
                f"its start {words[0]}"
            )
    return gti.check_intervals(np.array(starts), np.array(stops))


def during_tmoc(during: Any) -> tuple[str, int]:
    """The time MOC (MOC 2.0 ASCII) of *during* and its order.

    Raises
    ------
    TimeCoverageError
        When *during* is not usable intervals (wrong order, scale, unreadable file).
    """
    intervals = gti.as_intervals(during)
    order = gti.TMOC_ORDER
    text = gti.tmoc_to_string(gti.intervals_to_tmoc(intervals, order=order))
    while len(text) > MAX_TMOC_CHARS and order > 20:
        order -= 4
        text = gti.tmoc_to_string(gti.intervals_to_tmoc(intervals, order=order))
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
