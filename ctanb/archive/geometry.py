"""Spherical geometry for the embedded archive's spatial index and ADQL functions.

Everything works on unit vectors so that no test breaks at RA = 0/360 or at the
poles. The R-tree index stores, per row, the 3-D bounding box of a spherical cap
that contains the footprint; a query cap's box selects the candidates, and only
those candidates get the exact test.

Shapes follow ADQL/DALI: a :class:`Point`, a :class:`Circle` (a spherical cap)
and a :class:`Polygon` whose edges are great-circle arcs. A polygon's interior is
the smaller of the two regions its edges bound, whatever the vertex order, so a
polygon must fit in a hemisphere (as with pgSphere). Points on a boundary count
as inside. All angles are degrees (ICRS).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

__all__ = [
    "Circle",
    "Point",
    "Polygon",
    "Shape",
    "angular_distance",
    "area",
    "box_polygon",
    "cap_bbox",
    "circle_polygon",
    "contains",
    "enclosing_cap",
    "intersects",
    "point_in_circle",
    "point_in_polygon",
    "unit_vector",
]

Vector = tuple[float, float, float]

# Boundary tolerance in radians (~2e-5 arcsec): points on an edge count as inside
# despite rounding.
_EPS = 1e-10


def unit_vector(ra_deg: float, dec_deg: float) -> tuple[float, float, float]:
    """Cartesian unit vector of a sky position given in degrees."""
    ra, dec = math.radians(ra_deg), math.radians(dec_deg)
    cd = math.cos(dec)
    return (cd * math.cos(ra), cd * math.sin(ra), math.sin(dec))


def angular_distance(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    """Great-circle distance in degrees (Vincenty formula, stable at all angles)."""
    ra1, dec1, ra2, dec2 = map(math.radians, (ra1, dec1, ra2, dec2))
    dra = ra2 - ra1
    sd1, cd1, sd2, cd2 = math.sin(dec1), math.cos(dec1), math.sin(dec2), math.cos(dec2)
    num1 = cd2 * math.sin(dra)
    num2 = cd1 * sd2 - sd1 * cd2 * math.cos(dra)
    den = sd1 * sd2 + cd1 * cd2 * math.cos(dra)
    return math.degrees(math.atan2(math.hypot(num1, num2), den))


def cap_bbox(
    ra_deg: float, dec_deg: float, radius_deg: float
) -> tuple[float, float, float, float, float, float]:
    """Axis-aligned 3-D box ``(xmin, xmax, ymin, ymax, zmin, zmax)`` of a spherical cap.

    Exact: along each axis e, the cap spans cos(min(pi, a + r)) .. cos(max(0, a - r))
    where a is the angle between the cap centre and e. A tiny margin absorbs
    rounding so that a point on the cap's edge is never lost.
    """
    center = unit_vector(ra_deg, dec_deg)
    r = math.radians(max(radius_deg, 0.0))
    box: list[float] = []
    for c in center:
        a = math.acos(max(-1.0, min(1.0, c)))
        lo = math.cos(min(math.pi, a + r))
        hi = math.cos(max(0.0, a - r))
        box += [lo - 1e-12, hi + 1e-12]
    return tuple(box)  # type: ignore[return-value]


# --- vector helpers ------------------------------------------------------------------


def _dot(a: Vector, b: Vector) -> float:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _cross(a: Vector, b: Vector) -> Vector:
    return (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])


def _normalized(a: Vector) -> Vector:
    n = math.sqrt(_dot(a, a))
    if n == 0.0:
        return (0.0, 0.0, 0.0)
    return (a[0] / n, a[1] / n, a[2] / n)


def _radec(v: Vector) -> tuple[float, float]:
    v = _normalized(v)
    ra = math.degrees(math.atan2(v[1], v[0])) % 360.0
    return ra, math.degrees(math.asin(max(-1.0, min(1.0, v[2]))))


def _angle(a: Vector, b: Vector) -> float:
    """Angle between unit vectors in radians, accurate at 0 and pi."""
    return math.atan2(math.sqrt(_dot(c := _cross(a, b), c)), _dot(a, b))


# --- shapes ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Point:
    """A sky position."""

    ra: float
    dec: float


@dataclass(frozen=True)
class Circle:
    """A spherical cap: all positions within ``radius`` degrees of the centre."""

    ra: float
    dec: float
    radius: float


@dataclass(frozen=True)
class Polygon:
    """A spherical polygon with great-circle edges; ``vertices`` are ``(ra, dec)`` pairs."""

    vertices: tuple[tuple[float, float], ...]

    @classmethod
    def from_flat(cls, values: Sequence[float]) -> Polygon:
        """Polygon from ``ra1, dec1, ra2, dec2, ...`` (the DALI array)."""
        if len(values) % 2 or len(values) < 6:
            raise ValueError("a polygon needs at least 3 vertices given as (ra, dec) pairs")
        return cls(tuple(zip(values[0::2], values[1::2], strict=True)))


Shape = Point | Circle | Polygon


@dataclass(frozen=True)
class _Prepared:
    """Unit vectors and unit edge normals of a polygon, computed once per polygon."""

    vectors: tuple[Vector, ...]
    normals: tuple[Vector, ...]  # normals[i]: plane of edge vectors[i] -> vectors[i+1]
    center: Vector
    convex_sign: float  # +1/-1: inside is where sign * dot(p, n) >= 0 for all edges; 0: concave


@lru_cache(maxsize=4096)
def _prepare(vertices: tuple[tuple[float, float], ...]) -> _Prepared:
    vs = [unit_vector(ra, dec) for ra, dec in vertices]
    # Drop repeated vertices (a closed ring repeats its first vertex).
    clean = [v for i, v in enumerate(vs) if _angle(v, vs[i - 1]) > 1e-15] or vs[:1]
    n = len(clean)
    normals = tuple(_normalized(_cross(clean[i], clean[(i + 1) % n])) for i in range(n))
    center = _normalized(tuple(sum(v[k] for v in clean) for k in range(3)))  # type: ignore[arg-type]
    turns = [_dot(normals[i], clean[(i + 2) % n]) for i in range(n)]
    if n < 3:  # degenerate: only its vertices and arcs are "inside"
        sign = 0.0
    elif all(t >= -1e-15 for t in turns):
        sign = 1.0
    elif all(t <= 1e-15 for t in turns):
        sign = -1.0
    else:
        sign = 0.0
    return _Prepared(tuple(clean), normals, center, sign)


def _in_prepared(p: Vector, poly: _Prepared) -> bool:
    if poly.convex_sign:
        s = poly.convex_sign
        return all(s * _dot(p, nrm) >= -_EPS for nrm in poly.normals)
    # Concave: the polygon lies in the hemisphere around its centre, so a point in
    # the other half is outside; otherwise the winding number about p decides.
    if _dot(p, poly.center) <= 0.0:
        return False
    vs = poly.vectors
    total = 0.0
    for i, a in enumerate(vs):
        b = vs[(i + 1) % len(vs)]
        if _angle(p, a) < _EPS:
            return True
        total += math.atan2(_dot(p, _cross(a, b)), _dot(a, b) - _dot(p, a) * _dot(p, b))
    if abs(abs(total) - 2 * math.pi) < 1e-6:
        return True
    return _near_boundary(p, poly, _EPS)


def _arc_distance(p: Vector, a: Vector, b: Vector, n: Vector) -> float:
    """Angular distance (radians) from p to the great-circle arc a -> b of normal n."""
    if n == (0.0, 0.0, 0.0):
        return min(_angle(p, a), _angle(p, b))
    if _dot(_cross(a, p), n) >= 0.0 and _dot(_cross(p, b), n) >= 0.0:
        return abs(math.asin(max(-1.0, min(1.0, _dot(p, n)))))
    return min(_angle(p, a), _angle(p, b))


def _boundary_distance(p: Vector, poly: _Prepared) -> float:
    vs, ns = poly.vectors, poly.normals
    return min(_arc_distance(p, vs[i], vs[(i + 1) % len(vs)], ns[i]) for i in range(len(vs)))


def _near_boundary(p: Vector, poly: _Prepared, tol: float) -> bool:
    return _boundary_distance(p, poly) <= tol


def _arcs_cross(a1: Vector, a2: Vector, na: Vector, b1: Vector, b2: Vector, nb: Vector) -> bool:
    """Whether two great-circle arcs (each shorter than 180 degrees) meet."""
    d1, d2 = _dot(na, b1), _dot(na, b2)
    e1, e2 = _dot(nb, a1), _dot(nb, a2)
    if d1 * d2 > 0.0 or e1 * e2 > 0.0:
        return False
    x = _cross(na, nb)
    if _dot(x, x) < 1e-30:  # same great circle: overlapping if an end lies on the other arc
        return any(
            _arc_distance(p, q1, q2, nq) < _EPS
            for p, q1, q2, nq in ((a1, b1, b2, nb), (a2, b1, b2, nb), (b1, a1, a2, na))
        )
    sa = _dot(x, (a1[0] + a2[0], a1[1] + a2[1], a1[2] + a2[2]))
    sb = _dot(x, (b1[0] + b2[0], b1[1] + b2[1], b1[2] + b2[2]))
    return sa * sb >= 0.0


def _edges_cross(p: _Prepared, q: _Prepared) -> bool:
    pv, qv = p.vectors, q.vectors
    for i, a1 in enumerate(pv):
        a2 = pv[(i + 1) % len(pv)]
        for j, b1 in enumerate(qv):
            if _arcs_cross(a1, a2, p.normals[i], b1, qv[(j + 1) % len(qv)], q.normals[j]):
                return True
    return False


# --- public predicates ------------------------------------------------------------------


def circle_polygon(
    ra_deg: float, dec_deg: float, radius_deg: float, n: int = 32
) -> tuple[tuple[float, float], ...]:
    """*n* vertices ``(ra, dec)`` in degrees on the circle of *radius_deg* around a
    position, counter-clockwise on the sky (position angle from north through east)."""
    lat0, lon0, r = math.radians(dec_deg), math.radians(ra_deg), math.radians(radius_deg)
    out = []
    for k in range(n):
        pa = 2 * math.pi * k / n
        lat = math.asin(math.sin(lat0) * math.cos(r) + math.cos(lat0) * math.sin(r) * math.cos(pa))
        lon = lon0 + math.atan2(
            math.sin(pa) * math.sin(r) * math.cos(lat0),
            math.cos(r) - math.sin(lat0) * math.sin(lat),
        )
        out.append((math.degrees(lon) % 360.0, math.degrees(lat)))
    return tuple(out)


def point_in_circle(ra: float, dec: float, cra: float, cdec: float, radius: float) -> bool:
    """Whether ``(ra, dec)`` lies within ``radius`` degrees of ``(cra, cdec)``."""
    return angular_distance(ra, dec, cra, cdec) <= radius + math.degrees(_EPS)


def point_in_polygon(ra: float, dec: float, vertices: Sequence[tuple[float, float]]) -> bool:
    """Whether ``(ra, dec)`` lies in the spherical polygon (great-circle edges)."""
    return _in_prepared(unit_vector(ra, dec), _prepare(tuple(map(tuple, vertices))))


def _vec(p: Point | Circle) -> Vector:
    return unit_vector(p.ra, p.dec)


def contains(inner: Shape, outer: Shape) -> bool:
    """ADQL ``CONTAINS(inner, outer)``: whether *inner* lies entirely within *outer*."""
    if isinstance(outer, Point):
        if isinstance(inner, Point):
            return _angle(_vec(inner), _vec(outer)) <= _EPS
        if isinstance(inner, Circle):
            return inner.radius <= 0.0 and _angle(_vec(inner), _vec(outer)) <= _EPS
        return False
    if isinstance(outer, Circle):
        r = math.radians(outer.radius) + _EPS
        c = _vec(outer)
        if isinstance(inner, Point):
            return _angle(_vec(inner), c) <= r
        if isinstance(inner, Circle):
            return _angle(_vec(inner), c) + math.radians(inner.radius) <= r
        # A cap of at most a hemisphere is convex: holding the vertices is enough.
        return all(_angle(v, c) <= r for v in _prepare(inner.vertices).vectors)
    poly = _prepare(outer.vertices)
    if isinstance(inner, Point):
        return _in_prepared(_vec(inner), poly)
    if isinstance(inner, Circle):
        p = _vec(inner)
        return _in_prepared(p, poly) and _boundary_distance(p, poly) + _EPS >= math.radians(
            inner.radius
        )
    other = _prepare(inner.vertices)
    if not all(_in_prepared(v, poly) for v in other.vectors):
        return False
    return bool(poly.convex_sign) or not _edges_cross(other, poly)


def intersects(a: Shape, b: Shape) -> bool:
    """ADQL ``INTERSECTS(a, b)``: whether the shapes share at least one position."""
    if isinstance(a, Point):
        return contains(a, b)
    if isinstance(b, Point):
        return contains(b, a)
    if isinstance(a, Circle) and isinstance(b, Circle):
        return _angle(_vec(a), _vec(b)) <= math.radians(a.radius + b.radius) + _EPS
    if isinstance(a, Polygon) and isinstance(b, Circle):
        a, b = b, a
    if isinstance(a, Circle):
        c, r = _vec(a), math.radians(a.radius) + _EPS
        # Cheap first: a vertex inside the circle settles it before any preparation.
        cos_r = math.cos(min(r, math.pi))
        if any(_dot(unit_vector(ra, dec), c) >= cos_r for ra, dec in b.vertices):  # type: ignore[union-attr]
            return True
        poly = _prepare(b.vertices)  # type: ignore[union-attr]
        if _in_prepared(c, poly):
            return True
        return _boundary_distance(c, poly) <= r
    p, q = _prepare(a.vertices), _prepare(b.vertices)  # type: ignore[union-attr]
    return (
        any(_in_prepared(v, q) for v in p.vectors)
        or any(_in_prepared(v, p) for v in q.vectors)
        or _edges_cross(p, q)
    )


def area(shape: Shape) -> float:
    """ADQL ``AREA``: solid angle of a shape in square degrees."""
    sr_to_deg2 = (180.0 / math.pi) ** 2
    if isinstance(shape, Point):
        return 0.0
    if isinstance(shape, Circle):
        return 2 * math.pi * (1 - math.cos(math.radians(shape.radius))) * sr_to_deg2
    vs = _prepare(shape.vertices).vectors
    total = 0.0
    a = vs[0]
    # Signed solid angles of the fan triangles (Van Oosterom & Strackee 1983).
    for i in range(1, len(vs) - 1):
        b, c = vs[i], vs[i + 1]
        num = _dot(a, _cross(b, c))
        den = 1.0 + _dot(a, b) + _dot(b, c) + _dot(c, a)
        total += 2.0 * math.atan2(num, den)
    total = abs(total)
    if total > 2 * math.pi:
        total = 4 * math.pi - total
    return total * sr_to_deg2


def box_polygon(
    ra: float, dec: float, width: float, height: float
) -> tuple[tuple[float, float], ...]:
    """The four corners of an ADQL/STC ``BOX`` as a polygon.

    STC 1.33 defines the box by a cross centred on ``(ra, dec)`` whose arms run
    along the local east and north directions for half of ``width`` and
    ``height``; each side is the great circle through an arm's end, at right
    angles to that arm. Corners are listed south-west, south-east, north-east,
    north-west.
    """
    c = unit_vector(ra, dec)
    a, d = math.radians(ra), math.radians(dec)
    east = (-math.sin(a), math.cos(a), 0.0)
    north = (-math.sin(d) * math.cos(a), -math.sin(d) * math.sin(a), math.cos(d))
    hw, hh = math.radians(width) / 2, math.radians(height) / 2

    def along(axis: Vector, half: float) -> Vector:
        return tuple(math.cos(half) * c[k] + math.sin(half) * axis[k] for k in range(3))  # type: ignore[return-value]

    minus = lambda v: (-v[0], -v[1], -v[2])  # noqa: E731
    sides_ew = {s: _cross(along(east if s > 0 else minus(east), hw), north) for s in (-1, 1)}
    sides_ns = {s: _cross(along(north if s > 0 else minus(north), hh), east) for s in (-1, 1)}
    corners = []
    for se, sn in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
        v = _cross(sides_ew[se], sides_ns[sn])
        if _dot(v, c) < 0:
            v = minus(v)
        corners.append(_radec(v))
    return tuple(corners)


def enclosing_cap(shape: Shape) -> tuple[float, float, float] | None:
    """A cap ``(ra, dec, radius)`` containing *shape*, or None if none below 90 degrees.

    Used to pick R-tree candidates, so it must never be too small.
    """
    if isinstance(shape, Point):
        return (shape.ra, shape.dec, 0.0)
    if isinstance(shape, Circle):
        return (shape.ra, shape.dec, max(shape.radius, 0.0))
    poly = _prepare(shape.vertices)
    r = max(_angle(poly.center, v) for v in poly.vectors)
    if r >= math.pi / 2 - 1e-9:
        return None
    ra, dec = _radec(poly.center)
    return (ra, dec, math.degrees(r) * 1.000001 + 1e-9)
