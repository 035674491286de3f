"""SQLite user functions called by the SQL that :func:`ctanb.archive.adql.translate` emits.

Geometry travels between SQL and these functions as a *tag* followed by values,
so that no per-row string has to be built for a constant shape:

``'point', ra, dec`` / ``'circle', ra, dec, radius`` / ``'polygon:N', v1 .. vN``
    Numeric forms (N numbers: ra1, dec1, ra2, dec2, ...).
``'point:text', t`` / ``'circle:text', t`` / ``'polygon:text', t``
    A DALI string ``"ra dec"``, ``"ra dec radius"``, ``"ra1 dec1 ra2 dec2 ..."``,
    as stored in ``s_region`` or returned by :func:`adql_dali`.

Every function returns NULL (never raises) on NULL or malformed input, so a bad
row cannot abort a query.
"""

from __future__ import annotations

import contextlib
import math
import random
import sqlite3
import threading
import time
from functools import lru_cache

from .geometry import Circle, Point, Polygon, Shape, angular_distance, area, contains, intersects

__all__ = ["GEOMETRY_VALUE_COUNT", "QueryInterrupted", "RowValueError", "dali_text",
           "query_deadline", "register_functions", "row_error"]  # fmt: skip

#: Number of numeric values of each fixed-size geometry kind.
GEOMETRY_VALUE_COUNT = {"point": 2, "circle": 3}


@lru_cache(maxsize=65536)
def _parse_text(kind: str, text: str) -> Shape | None:
    try:
        values = [float(x) for x in text.replace(",", " ").split()]
    except ValueError:
        return None
    return _build(kind, values)


def _build(kind: str, values: list[float]) -> Shape | None:
    if any(math.isnan(v) or math.isinf(v) for v in values):
        return None
    # A computed centre beyond a pole is still a position on the sphere (unit vectors),
    # but a radius outside 0..180 is no circle: NULL, like any malformed value.
    if kind == "circle" and len(values) == 3 and not 0 <= values[2] <= 180:
        return None
    if kind == "point" and len(values) == 2:
        return Point(*values)
    if kind == "circle" and len(values) == 3:
        return Circle(*values)
    if kind == "polygon" and len(values) >= 6 and len(values) % 2 == 0:
        return Polygon.from_flat(values)
    return None


def _decode(args: tuple, i: int) -> tuple[Shape | None, int]:
    """The shape starting at ``args[i]`` (its tag) and the index after it."""
    tag = args[i]
    if not isinstance(tag, str):
        raise ValueError("geometry tag expected")
    kind, _, form = tag.partition(":")
    if form == "text":
        text = args[i + 1]
        return (_parse_text(kind, text) if isinstance(text, str) else None), i + 2
    count = GEOMETRY_VALUE_COUNT.get(kind) or int(form)
    values = args[i + 1 : i + 1 + count]
    if any(v is None or isinstance(v, (str, bytes)) for v in values):
        return None, i + 1 + count
    return _build(kind, [float(v) for v in values]), i + 1 + count


def _two_shapes(args: tuple) -> tuple[Shape | None, Shape | None]:
    a, j = _decode(args, 0)
    b, _ = _decode(args, j)
    return a, b


class QueryInterrupted(Exception):
    """Raised inside a SQL function once the running query's deadline has passed.

    SQLite then fails the statement ("user-defined function raised exception"); the
    caller sees that its deadline has passed and reports the timeout.
    """


class RowValueError(Exception):
    """Raised inside a SQL function for a row value it cannot take (a bad time MOC or
    MJD in a column or an expression): the service answers 400 with the message
    (:func:`row_error`), as for the same mistake in a constant."""


_running = threading.local()


def _bad_row(message: str) -> None:
    _running.row_error = message
    raise RowValueError(message)


def row_error() -> str | None:
    """The message of the last :class:`RowValueError` of this thread (then forgotten)."""
    message = getattr(_running, "row_error", None)
    _running.row_error = None
    return message


@contextlib.contextmanager
def query_deadline(deadline: float, cancelled=None):
    """Make the SQL functions of this thread stop the query after ``time.monotonic()``
    reaches *deadline* or when ``cancelled()`` says so."""
    _running.deadline, _running.cancelled = deadline, cancelled
    _running.row_error = None
    try:
        yield
    finally:
        _running.deadline = _running.cancelled = None


def _check_deadline() -> None:
    deadline = getattr(_running, "deadline", None)
    if deadline is not None and time.monotonic() > deadline:
        raise QueryInterrupted("the query ran out of time")
    cancelled = getattr(_running, "cancelled", None)
    if cancelled is not None and cancelled():
        raise QueryInterrupted("the query was aborted")


def _safe(func):
    def wrapper(*args):
        _check_deadline()
        try:
            return func(*args)
        except (ValueError, TypeError, IndexError, ArithmeticError, RecursionError):
            return None

    wrapper.__name__ = func.__name__
    return wrapper


@_safe
def adql_contains(*args):
    a, b = _two_shapes(args)
    return None if a is None or b is None else int(contains(a, b))


@_safe
def adql_intersects(*args):
    a, b = _two_shapes(args)
    return None if a is None or b is None else int(intersects(a, b))


@_safe
def adql_area(*args):
    shape, _ = _decode(args, 0)
    return None if shape is None else area(shape)


@_safe
def adql_coord(index, *args):
    shape, _ = _decode(args, 0)
    if isinstance(shape, Point):
        return shape.ra if index == 1 else shape.dec
    return None


@_safe
def adql_distance(ra1, dec1, ra2, dec2):
    if None in (ra1, dec1, ra2, dec2):
        return None
    return angular_distance(float(ra1), float(dec1), float(ra2), float(dec2))


def dali_text(shape: Shape) -> str:
    """The DALI serialisation of a shape: ``"ra dec"``, ``"ra dec r"``, ``"ra1 dec1 ..."``."""
    if isinstance(shape, Point):
        values = [shape.ra % 360.0, shape.dec]
    elif isinstance(shape, Circle):
        values = [shape.ra % 360.0, shape.dec, shape.radius]
    else:
        values = [x for ra, dec in shape.vertices for x in (ra % 360.0, dec)]
    return " ".join(repr(float(v)) for v in values)


@_safe
def adql_dali(*args):
    shape, _ = _decode(args, 0)
    return None if shape is None else dali_text(shape)


@_safe
def adql_box(ra, dec, width, height):
    """DALI polygon text of a BOX (computed in SQL only for non-constant boxes)."""
    from .geometry import box_polygon

    if None in (ra, dec, width, height):
        return None
    if not (0 <= width <= 180 and 0 <= height <= 180):
        return None
    return dali_text(Polygon(box_polygon(float(ra), float(dec), float(width), float(height))))


@_safe
def adql_truncate(x, digits=0):
    if x is None or digits is None:
        return None
    factor = 10.0 ** int(digits)
    return math.trunc(float(x) * factor) / factor


def adql_rand(seed=None):
    return random.Random(seed).random() if seed is not None else random.random()


Piece = tuple[str | None, ...]  # a literal run of a LIKE pattern; None is '_'


@lru_cache(maxsize=256)
def _like_parts(pattern: str, escape: str | None) -> tuple[Piece, ...]:
    """A LIKE pattern as its pieces between '%' wildcards."""
    pieces: list[Piece] = []
    cur: list[str | None] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if escape and ch == escape and i + 1 < len(pattern):
            cur.append(pattern[i + 1])
            i += 2
            continue
        if ch == "%":
            pieces.append(tuple(cur))
            cur = []
        else:
            cur.append(None if ch == "_" else ch)
        i += 1
    pieces.append(tuple(cur))
    return tuple(pieces)


def _piece_at(value: str, piece: Piece, pos: int) -> bool:
    if pos < 0 or pos + len(piece) > len(value):
        return False
    return all(
        p is None or p == v for p, v in zip(piece, value[pos : pos + len(piece)], strict=True)
    )


def _find_piece(value: str, piece: Piece, start: int) -> int:
    if None not in piece:
        return value.find("".join(piece), start)  # type: ignore[arg-type]
    for pos in range(start, len(value) - len(piece) + 1):
        if _piece_at(value, piece, pos):
            return pos
    return -1


def _like_match(value: str, pattern: str, escape: str | None) -> bool:
    """SQL LIKE without backtracking: each piece between '%' is matched at its earliest
    place, which is optimal for '%' wildcards (O(len(value) * len(pattern)))."""
    pieces = _like_parts(pattern, escape)
    if len(pieces) == 1:
        return len(value) == len(pieces[0]) and _piece_at(value, pieces[0], 0)
    first, last, middle = pieces[0], pieces[-1], pieces[1:-1]
    if not _piece_at(value, first, 0):
        return False
    pos, end = len(first), len(value) - len(last)
    if end < pos or not _piece_at(value, last, end):
        return False
    for piece in middle:
        found = _find_piece(value[:end], piece, pos)
        if found < 0:
            return False
        pos = found + len(piece)
    return True


@_safe
def adql_like(value, pattern, escape=None):
    """Case-sensitive SQL LIKE (SQLite's own LIKE ignores ASCII case)."""
    if value is None or pattern is None:
        return None
    return int(_like_match(str(value), str(pattern), escape))


@_safe
def adql_ilike(value, pattern, escape=None):
    """Case-insensitive LIKE, Unicode-aware."""
    if value is None or pattern is None:
        return None
    return int(_like_match(str(value).casefold(), str(pattern).casefold(), escape))


# SQLite's built-in math functions (SQLITE_ENABLE_MATH_FUNCTIONS) are used when the
# library has them; these stand in when it does not.
@lru_cache(maxsize=65536)
def _tmoc_text_intervals(text: str) -> tuple[tuple[float, float], ...]:
    """Intervals (MJD) of a time-MOC operand: ``"mjd:a1 b1 ..."`` (the translator's
    form of constants), bare MJD pairs (``ivoa.obscore_hea``'s private ``_t_mjd``) or
    a MOC 2.0 ASCII time MOC; anything else is a :class:`RowValueError` naming it."""
    from .._errors import TimeCoverageError
    from . import gti

    body = text[4:] if text.startswith("mjd:") else text
    if "/" not in body:
        try:
            nums = [float(x) for x in body.split()]
        except ValueError:
            nums = []
        if not nums or len(nums) % 2:
            _bad_row(
                f"ivo_tmoc_overlap: {text[:40]!r} is not a time MOC (MOC 2.0 ASCII, e.g. "
                "'t35/1-4 36/11')"
            )
        return tuple(zip(nums[0::2], nums[1::2], strict=True))
    try:
        iv = gti.tmoc_intervals(gti.tmoc_from_string(text))
    except TimeCoverageError as exc:
        _bad_row(f"ivo_tmoc_overlap: {exc.message}")
    return tuple((float(a), float(b)) for a, b in iv)


def _mjd_word(value, what: str) -> float:
    from .gti import MJD_RANGE

    try:
        x = float(value)
    except (TypeError, ValueError):
        _bad_row(f"ivo_tmoc_overlap: the MJD {what} {str(value)[:30]!r} is not a number")
    if math.isnan(x) or math.isinf(x):
        _bad_row(f"ivo_tmoc_overlap: the MJD {what} is not a number ({x})")
    if not MJD_RANGE[0] <= x <= MJD_RANGE[1]:
        _bad_row(
            f"ivo_tmoc_overlap: the MJD {what} {x:g} is not an MJD (expected days between "
            f"{MJD_RANGE[0]:g} = 1900 and {MJD_RANGE[1]:g} = 2100): mission seconds or a JD?"
        )
    return x


@_safe
def adql_tmoc_overlap(first, *rest):
    """Seconds covered by a time MOC and a second MOC, or an MJD start and stop."""
    if first is None or None in rest:
        return None  # NULL stays NULL (no GTIs, or not readable by this caller)
    a = _tmoc_text_intervals(str(first))
    if len(rest) == 1:
        b = _tmoc_text_intervals(str(rest[0]))
    else:
        lo, hi = _mjd_word(rest[0], "start"), _mjd_word(rest[1], "stop")
        if not hi > lo:
            _bad_row(
                f"ivo_tmoc_overlap: the interval is in the wrong order: it stops (MJD {hi!r}) "
                f"{'before' if hi < lo else 'when'} it starts (MJD {lo!r})"
            )
        b = ((lo, hi),)
    i = j = 0
    total = 0.0
    while i < len(a) and j < len(b):  # both sorted and merged
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if hi > lo:
            total += hi - lo
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return total * 86400.0


def _math1(f):
    return _safe(lambda x: None if x is None else f(float(x)))


_MATH_FALLBACKS = {
    ("sqrt", 1): _math1(math.sqrt),
    ("exp", 1): _math1(math.exp),
    ("ln", 1): _math1(math.log),
    ("log10", 1): _math1(math.log10),
    ("sin", 1): _math1(math.sin),
    ("cos", 1): _math1(math.cos),
    ("tan", 1): _math1(math.tan),
    ("asin", 1): _math1(math.asin),
    ("acos", 1): _math1(math.acos),
    ("atan", 1): _math1(math.atan),
    ("degrees", 1): _math1(math.degrees),
    ("radians", 1): _math1(math.radians),
    ("ceil", 1): _math1(math.ceil),
    ("floor", 1): _math1(math.floor),
    ("trunc", 1): _math1(math.trunc),
    ("pi", 0): lambda: math.pi,
    ("atan2", 2): _safe(lambda y, x: None if None in (y, x) else math.atan2(y, x)),
    ("pow", 2): _safe(lambda x, y: None if None in (x, y) else math.pow(x, y)),
    ("mod", 2): _safe(lambda x, y: None if None in (x, y) else math.fmod(x, y)),
}


def register_functions(conn: sqlite3.Connection) -> None:
    """Register on *conn* every user function that translated ADQL may call.

    Call once per connection before executing :attr:`TranslatedQuery.sql`.
    """
    deterministic = {"deterministic": True}
    for name, func, nargs in (
        ("adql_contains", adql_contains, -1),
        ("adql_intersects", adql_intersects, -1),
        ("adql_area", adql_area, -1),
        ("adql_coord", adql_coord, -1),
        ("adql_dali", adql_dali, -1),
        ("adql_box", adql_box, 4),
        ("adql_tmoc_overlap", adql_tmoc_overlap, 2),
        ("adql_tmoc_overlap", adql_tmoc_overlap, 3),
        ("adql_distance", adql_distance, 4),
        ("adql_truncate", adql_truncate, 2),
        ("adql_like", adql_like, 2),
        ("adql_like", adql_like, 3),
        ("adql_ilike", adql_ilike, 2),
        ("adql_ilike", adql_ilike, 3),
    ):
        conn.create_function(name, nargs, func, **deterministic)
    # Rights on data-derived columns (see adql_tmoc.column_sql): closed for any
    # proprietary row unless the service registers the per-request rule over this one
    # (ctanb.archive.provtap.register_rights).
    conn.create_function("ctanb_prov_visible", 2, lambda group, _release: int(not group))
    conn.create_function("adql_rand", 0, adql_rand)
    conn.create_function("adql_rand", 1, adql_rand, deterministic=True)
    try:
        conn.execute("SELECT sqrt(4.0), ln(1.0), pi()").fetchone()
    except sqlite3.OperationalError:
        for (name, nargs), func in _MATH_FALLBACKS.items():
            conn.create_function(name, nargs, func, deterministic=True)
