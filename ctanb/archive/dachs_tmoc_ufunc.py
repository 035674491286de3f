"""DaCHS side of the ADQL function ``ivo_tmoc_overlap`` (see ctanb.archive.adql_tmoc).

This file runs inside DaCHS (Debian's /usr/bin/python3, with DaCHS and astropy),
not in ctanb's environment: deploy/dachs/up copies it into the resource directory
and the RD ``ctanb/hea`` loads it (the RD is preloaded by ``dachs serve``, so the
function is registered before the first query). It can import neither ctanb nor
mocpy, hence its own small MOC 2.0 ASCII reader.

The function rewrites ``ivo_tmoc_overlap(t_intervals, '<tmoc>')`` and
``ivo_tmoc_overlap(t_intervals, mjd_start, mjd_stop)`` to the PostgreSQL functions
``ivoa.ctanb_tmoc_overlap(t_mjd, ARRAY[...])`` and ``ivoa.ctanb_tmoc_overlap_mjd(t_mjd,
start, stop)`` (which checks each row's interval) on the hidden column ``t_mjd`` (the
good-time intervals as MJD (TT) pairs, the same numbers as the embedded archive's
``_t_mjd``), so both archives compute the same overlap in seconds.
"""

from gavo import adql
from gavo.adql import nodes

_DAY_US = 86_400_000_000
_MAX_ORDER = 61
_MJD_RANGE = (15020.0, 88069.0)  # ctanb.archive.gti.MJD_RANGE (1900 to 2100)


def _moc_ranges(text):
    """(start_us, stop_us) ranges of TCB microseconds since JD 0 of a MOC 2.0 ASCII TMOC."""
    body = str(text).strip()
    # as ctanb.archive.gti.tmoc_from_string: without the 't' (mocpy's form), a cell beyond
    # the time order's last one or no time between 1900 and 2100 is a space MOC
    space = adql.UfuncError(
        f"{body[:40]!r} is a space MOC (order/cells without 't'): give a time MOC such as 't61/...'"
    )
    marked = body[:1].lower() == "t"
    if marked:
        body = body[1:]
    order, ranges = None, []
    for word in body.replace(",", " ").split():
        if "/" in word:
            head, word = word.split("/", 1)
            if not head.isdigit():
                raise adql.UfuncError(f"not a time MOC in the MOC 2.0 ASCII form: {text[:60]!r}")
            order = int(head)
            if order > _MAX_ORDER:
                raise adql.UfuncError(
                    f"time MOC order {order} is out of range: it must be an integer from 0"
                    " to 61 (61 = 1 microsecond)"
                )
            if not word:
                continue
        if order is None:
            raise adql.UfuncError(f"not a time MOC in the MOC 2.0 ASCII form: {text[:60]!r}")
        lo, _, hi = word.partition("-")
        if not lo.isdigit() or (hi and not hi.isdigit()):
            raise adql.UfuncError(f"not a time MOC in the MOC 2.0 ASCII form: {text[:60]!r}")
        if int(hi or lo) >= 2 ** (order + 1):
            if not marked:
                raise space
            raise adql.UfuncError(
                f"time MOC cell {word} is out of range for order {order}: its cells are 0 to"
                f" {2 ** (order + 1) - 1}"
            )
        if int(hi or lo) < int(lo):
            raise adql.UfuncError(
                f"time MOC range {word} is reversed: its first cell is after its last"
            )
        shift = 2 ** (_MAX_ORDER - order)
        ranges.append((int(lo) * shift, (int(hi or lo) + 1) * shift))
    ranges.sort()
    merged = []
    for a, b in ranges:
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    first, last = (int((mjd + 2_400_000.5) * _DAY_US) for mjd in _MJD_RANGE)
    if not marked and merged and not any(a < last and b > first for a, b in merged):
        raise space
    return merged


def _mjd_tt(ranges):
    """TCB microsecond ranges as MJD (TT) pairs (astropy, as ctanb.archive.gti does)."""
    from astropy.time import Time

    if not ranges:
        return []
    flat = [v for pair in ranges for v in pair]
    days = [v // _DAY_US for v in flat]
    rest = [(v - d * _DAY_US) / _DAY_US for v, d in zip(flat, days, strict=True)]
    mjd = Time([float(d) for d in days], rest, format="jd", scale="tcb").tt.mjd
    return [float(v) for v in mjd]


def _literal_number(node):
    try:
        return float(nodes.flatten(node))
    except (TypeError, ValueError):
        return None


@adql.userFunction(
    "ivo_tmoc_overlap",
    "(tmoc1 TEXT, tmoc2 TEXT) -> DOUBLE PRECISION",
    """
    Seconds covered by both time MOCs; the first must be the t_intervals column of
    ivoa.obscore_hea, the second a MOC 2.0 ASCII time MOC literal.  0 when they do
    not overlap.
    """,
    "double precision",
    unit="s",
    ucd="time.duration;obs.exposure",
    polymorphism=[
        (
            "(tmoc TEXT, mjd_start DOUBLE PRECISION, mjd_stop DOUBLE PRECISION)"
            " -> DOUBLE PRECISION",
            "Seconds of the time MOC within the interval from mjd_start to mjd_stop (MJD, TT).",
        )
    ],
)
def _ivo_tmoc_overlap(args):
    if len(args) not in (2, 3):
        raise adql.UfuncError(
            "ivo_tmoc_overlap takes a time MOC and either a second time MOC or an MJD"
            " start and stop"
        )
    first = args[0]
    if getattr(first, "type", None) != "columnReference" or str(first.name).lower() != (
        "t_intervals"
    ):
        raise adql.UfuncError(
            "on this service the first argument of ivo_tmoc_overlap must be the"
            " t_intervals column of ivoa.obscore_hea"
        )
    column = ".".join(nodes.flatten(p) for p in (first.refName, "t_mjd") if p)
    if len(args) == 2:
        if args[1].type != "characterStringLiteral":
            raise adql.UfuncError("the second time MOC must be a string literal")
        values = _mjd_tt(_moc_ranges(args[1].value))
        if not values:
            return "0.0"
        array = "ARRAY[{}]::double precision[]".format(", ".join(repr(v) for v in values))
    else:
        lo, hi = _literal_number(args[1]), _literal_number(args[2])
        if lo is not None and hi is not None and not hi > lo:
            raise adql.UfuncError(
                "time interval 0 is in the wrong order: it stops before (or when) it starts"
            )
        # Row values are checked per row by ivoa.ctanb_tmoc_overlap_mjd (wrong order, no MJD).
        return (
            f"ivoa.ctanb_tmoc_overlap_mjd({column}, CAST({nodes.flatten(args[1])} AS double"
            f" precision), CAST({nodes.flatten(args[2])} AS double precision))"
        )
    return f"ivoa.ctanb_tmoc_overlap({column}, {array})"
