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

from typing import Any

from ..archive import gti
from ..datamodel import OBSCORE_HEA_TABLE

__all__ = ["DURING_COLUMN", "MAX_TMOC_CHARS", "during_adql", "during_tmoc"]

#: Name of the result column with the overlap duration (seconds).
DURING_COLUMN = "overlap_s"

#: Longest time MOC sent in a query; longer ones are degraded to a coarser order
#: (rounded outwards, so no overlapping dataset is lost; durations then grow by at
#: most one cell per interval edge).
MAX_TMOC_CHARS = 20_000


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
