"""DaCHS side of the coverage service ``ctanb/cov/coverage`` (see ctanb.archive.dachs_coverage).

This file runs inside DaCHS (Debian's /usr/bin/python3 with numpy and astropy),
not in ctanb's environment: deploy/dachs/up copies it to ``res/coverage_core.py``
and the RD ``ctanb/cov`` loads it. It can import neither ctanb nor mocpy, so the
MOCs are built at export with ctanb's coverage functions, one per audience,
collection, data level and kind (``data/coverage/index.json`` names the files);
here a request only picks its file. A coarser ``order`` of a space or time MOC is
computed from the stored ranges (1-D MOCs: the parent cells of the covered ones).

The messages are the embedded archive's (ctanb.archive.coverage,
ctanb.archive.service.coverage_api); tests/test_dachs_coverage.py compares them.
"""

import io
import json
import os

KINDS = ("space", "time", "space-time", "space-energy")
FORMATS = {"fits": "application/fits", "ascii": "text/plain"}
_ALIASES = {"application/fits": "fits", "text/plain": "ascii", "txt": "ascii", "text": "ascii"}
# 1-D MOCs: the deepest order and the bits per order (HEALPix cells split in 4,
# time cells in 2).
_DEPTH = {"space": 29, "time": 61}
_BITS = {"space": 2, "time": 1}
_INDEX = {}  # path -> (mtime, parsed index)
#: The parameters of the service (the embedded /coverage's, coverage_api.PARAMETERS).
PARAMETERS = ("kind", "collection", "level", "order", "format", "RESPONSEFORMAT", "RUNID")
#: Parameters DaCHS itself adds or reads on an ``api`` service, accepted and not named
#: in messages: its HTML forms' bookkeeping (gavo.web.grend._IGNORED_KEYS), DALI's MAXREC
#: (MAXREC=0 answers the service's metadata). DaCHS also adds ``upload`` (the DALI
#: uploads, gavo.protocols.dali.mangleUploads), empty without one: a name without
#: values is DaCHS's, never the caller's.
DACHS_PARAMETERS = ("__nevow_form__", "_charset_", "submit", "nextURL", "MAXREC")


class CoverageRequestError(Exception):
    """A bad request, in the words of the embedded archive; *field* names the parameter."""

    def __init__(self, message, field=None):
        super().__init__(message)
        self.field = field


def shown(value, limit=80):
    """*value* as a message echoes it (ctanb.archive.coverage.shown): text cut to *limit*."""
    if isinstance(value, str) and len(value) > limit:
        return repr(value[: limit - 3] + "...") + f" ({len(value)} characters)"
    return repr(value)


def check_names(raw):
    """Refuse unknown and repeated parameters, in the words of the embedded /coverage.

    *raw* maps each request parameter to its list of values (DaCHS's ``rawArgs``).
    """
    known = {name.upper(): name for name in PARAMETERS}
    own = {name.upper() for name in DACHS_PARAMETERS}
    unknown = sorted(n for n, values in raw.items()
                     if n.upper() not in known and n.upper() not in own and values)  # fmt: skip
    if unknown:
        names = ", ".join(shown(n.lower()) for n in unknown)
        raise CoverageRequestError(
            f"unknown parameter{'s' if len(unknown) > 1 else ''} {names} for /coverage: "
            f"the accepted parameters are {', '.join(PARAMETERS)}"
        )
    counts = {}
    for name, values in raw.items():
        if name.upper() in known:
            word = known[name.upper()]
            count = len(values) if isinstance(values, list | tuple) else 1
            counts[word] = counts.get(word, 0) + count
    for word in PARAMETERS:
        if counts.get(word, 0) > 1:
            raise CoverageRequestError(
                f"parameter {word} is given {counts[word]} times for /coverage: give {word} once",
                word,
            )


def _index(directory):
    path = os.path.join(directory, "index.json")
    mtime = os.stat(path).st_mtime_ns
    cached = _INDEX.get(path)
    if cached is None or cached[0] != mtime:
        with open(path, encoding="utf-8") as f:
            cached = (mtime, json.load(f))
        _INDEX[path] = cached
    return cached[1]


def _text(value):
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    if value is None:
        return None
    value = str(value).strip()
    return value or None


def _kind(raw):
    if raw is None:
        return "space"
    if raw.lower() not in KINDS:
        raise CoverageRequestError(
            f"unknown coverage kind {shown(raw)}: use one of {', '.join(KINDS)}", "kind"
        )
    return raw.lower()


def _order(kind, raw, orders):
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise CoverageRequestError(
            f"MOC order {shown(raw)} is not a whole number", "order"
        ) from None
    if kind not in _DEPTH:
        raise CoverageRequestError(
            f"a MOC order can be given for space or time coverage only, not {kind}", "order"
        )
    top = orders[kind]
    if not 0 <= value <= top:
        raise CoverageRequestError(
            f"MOC order {value} is out of range for {kind} coverage: use 0 to {top} "
            f"(the archive stores {kind} coverage at order {top})",
            "order",
        )
    return value


def _format(raw):
    raw = (raw or "fits").lower()
    fmt = _ALIASES.get(raw, raw)
    if fmt not in FORMATS:
        raise CoverageRequestError(
            f"format {shown(raw)} is not supported for coverage: use fits or ascii", "format"
        )
    return fmt


def _pick(names, raw, what, field):
    """The stored spelling of *raw* in *names* ({normalised: stored}), or a clear error."""
    if raw is None:
        return "*"
    key = raw.upper() if field == "level" else raw.lower()
    if key not in names:
        known = ", ".join(sorted(names.values())) or "none yet"
        if field == "level":
            raise CoverageRequestError(
                f"no data level {shown(raw)} in this archive (levels: {known})", field
            )
        raise CoverageRequestError(
            f"no {what} {shown(raw)} in this archive ({what}s: {known})", field
        )
    return names[key]


def parse_ranges(text, kind):
    """Ranges ``[lo, hi)`` at the deepest order of a 1-D MOC 2.0 ASCII text, merged."""
    depth, bits = _DEPTH[kind], _BITS[kind]
    order, ranges = None, []
    for word in text.replace(",", " ").split():
        if "/" in word:
            head, word = word.split("/", 1)
            order = int(head.lstrip("stSTf"))
            if not word:
                continue
        lo, _, hi = word.partition("-")
        shift = bits * (depth - order)
        ranges.append(((int(lo)) << shift, (int(hi or lo) + 1) << shift))
    return _merged(ranges)


def _merged(ranges):
    out = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1]:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return [(lo, hi) for lo, hi in out]


def degrade(ranges, kind, order):
    """*ranges* (deepest order) widened to whole cells of *order* (the covering MOC)."""
    shift = _BITS[kind] * (_DEPTH[kind] - order)
    size = 1 << shift
    return _merged([((lo >> shift) << shift, ((hi + size - 1) >> shift) << shift)
                    for lo, hi in ranges])  # fmt: skip


def to_ascii(ranges, kind, order):
    """MOC 2.0 ASCII of *ranges* (aligned to *order*): largest cells first, as mocpy writes."""
    depth, bits = _DEPTH[kind], _BITS[kind]
    cells = {}
    for lo, hi in ranges:
        x = lo
        while x < hi:
            for o in range(order + 1):
                size = 1 << (bits * (depth - o))
                if x % size == 0 and x + size <= hi:
                    cells.setdefault(o, []).append(x // size)
                    x += size
                    break
            else:  # not aligned to the order (cannot happen after degrade)
                raise ValueError("ranges are not aligned to the MOC order")
    words = []
    for o in sorted(cells):
        runs, values = [], sorted(cells[o])
        start = prev = values[0]
        for v in values[1:]:
            if v != prev + 1:
                runs.append((start, prev))
                start = v
            prev = v
        runs.append((start, prev))
        text = " ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)
        words.append(f"{o}/{text}")
    if order not in cells:
        words.append(f"{order}/")
    return " ".join(words) + "\n"


def to_fits(ranges, kind, order):
    """MOC 2.0 FITS (RANGE ordering, as mocpy writes) of *ranges*."""
    import numpy as np
    from astropy.io import fits

    flat = np.array([v for pair in ranges for v in pair], dtype=np.uint64).astype(np.int64)
    table = fits.BinTableHDU.from_columns([fits.Column(name="RANGE", format="1K", array=flat)])
    head = table.header
    head["MOCVERS"] = "2.0"
    head["MOCDIM"] = "SPACE" if kind == "space" else "TIME"
    head["ORDERING"] = "RANGE"
    if kind == "space":
        head["COORDSYS"] = "C"
    else:
        head["TIMESYS"] = "TCB"
    head["MOCTOOL"] = "ctanb on DaCHS"
    head["MOCORD_S" if kind == "space" else "MOCORD_T"] = order
    buf = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(buf)
    return buf.getvalue()


def answer(directory, user, args, raw=None):
    """``(mime type, bytes)`` of a coverage request.

    *directory* holds index.json and the MOC files; *user* is the authenticated
    DaCHS user (None: anonymous); *args* the request parameters (kind, collection,
    level, order, format or RESPONSEFORMAT); *raw* the request's parameters as sent
    (name: list of values), checked for unknown and repeated names. Raises
    CoverageRequestError.
    """
    if raw is not None:
        check_names(raw)
    index = _index(directory)
    kind = _kind(_text(args.get("kind")))
    order = _order(kind, _text(args.get("order")), index["orders"])
    fmt = _format(_text(args.get("format")) or _text(args.get("RESPONSEFORMAT")))
    collection = _pick(index["collections"], _text(args.get("collection")), "collection",
                       "collection")  # fmt: skip
    level = _pick(index["levels"], _text(args.get("level")), "data level", "level")
    audience = index["users"].get(user or "", "public")
    name = index["mocs"][f"{audience}|{collection}|{level}|{kind}"]
    if order is None:
        with open(os.path.join(directory, f"{name}.{'fits' if fmt == 'fits' else 'txt'}"),
                  "rb") as f:  # fmt: skip
            return FORMATS[fmt], f.read()
    with open(os.path.join(directory, f"{name}.txt"), encoding="ascii") as f:
        ranges = degrade(parse_ranges(f.read(), kind), kind, order)
    if fmt == "ascii":
        return FORMATS[fmt], to_ascii(ranges, kind, order).encode()
    return FORMATS[fmt], to_fits(ranges, kind, order)
