"""Spherical geometry: exact tests checked against brute-force sampling of the sphere."""

from __future__ import annotations

import math
import random

import pytest

from ctanb.archive.geometry import (
    Circle,
    Point,
    Polygon,
    angular_distance,
    area,
    box_polygon,
    circle_polygon,
    contains,
    enclosing_cap,
    intersects,
    point_in_circle,
    point_in_polygon,
    unit_vector,
)


def ring(ra: float, dec: float, radius: float, n: int = 32) -> tuple[tuple[float, float], ...]:
    """n vertices on a circle of *radius* degrees around (ra, dec)."""
    return circle_polygon(ra, dec, radius, n)


def random_position(rng: random.Random) -> tuple[float, float]:
    return rng.uniform(0, 360), math.degrees(math.asin(rng.uniform(-1, 1)))


def samples_in_cap(ra: float, dec: float, radius: float, n: int, rng: random.Random):
    """n positions uniform in a cap (rejection-free: uniform in cos of the distance)."""
    out = []
    for _ in range(n):
        rho = math.degrees(math.acos(1 - rng.random() * (1 - math.cos(math.radians(radius)))))
        theta = rng.uniform(0, 2 * math.pi)
        c = unit_vector(ra, dec)
        a, d = math.radians(ra), math.radians(dec)
        east = (-math.sin(a), math.cos(a), 0.0)
        north = (-math.sin(d) * math.cos(a), -math.sin(d) * math.sin(a), math.cos(d))
        r = math.radians(rho)
        v = [math.cos(r) * c[i] + math.sin(r) * (math.cos(theta) * north[i]
             + math.sin(theta) * east[i]) for i in range(3)]  # fmt: skip
        out.append((math.degrees(math.atan2(v[1], v[0])) % 360, math.degrees(math.asin(v[2]))))
    return out


def test_point_in_circle_across_ra_zero_and_at_the_pole():
    assert point_in_circle(359.8, 0.0, 0.3, 0.0, 0.6)
    assert not point_in_circle(359.0, 0.0, 0.3, 0.0, 0.6)
    assert point_in_circle(0.0, 89.5, 180.0, 89.0, 2.0)  # across the pole
    assert point_in_circle(123.0, -90.0, 0.0, -89.0, 1.0 + 1e-9)


def test_polygon_around_the_pole_and_across_ra_zero():
    cap = ((0.0, 80.0), (90.0, 80.0), (180.0, 80.0), (270.0, 80.0))
    assert point_in_polygon(42.0, 89.9, cap)
    assert point_in_polygon(12.0, 90.0, cap)
    assert not point_in_polygon(45.0, 70.0, cap)
    straddle = ((358.0, -1.0), (2.0, -1.0), (2.0, 1.0), (358.0, 1.0))
    assert point_in_polygon(359.5, 0.5, straddle)
    assert point_in_polygon(0.5, -0.5, straddle)
    assert not point_in_polygon(180.0, 0.0, straddle)
    assert not point_in_polygon(3.0, 0.0, straddle)
    # vertex order does not matter: the interior is the smaller region
    assert point_in_polygon(359.5, 0.5, straddle[::-1])
    assert not point_in_polygon(180.0, 0.0, straddle[::-1])


def test_concave_polygon():
    # An L shape: the notch at (1.5, 1.5) is outside.
    ell = ((0.0, 0.0), (2.0, 0.0), (2.0, 1.0), (1.0, 1.0), (1.0, 2.0), (0.0, 2.0))
    assert point_in_polygon(0.5, 0.5, ell)
    assert point_in_polygon(0.5, 1.5, ell)
    assert point_in_polygon(1.5, 0.5, ell)
    assert not point_in_polygon(1.5, 1.5, ell)
    assert not point_in_polygon(180.0, -1.5, ell)


@pytest.mark.parametrize("seed", range(6))
def test_point_in_polygon_against_inscribed_and_circumscribed_circles(seed):
    rng = random.Random(seed)
    ra, dec = random_position(rng)
    if seed == 0:
        ra, dec = 0.1, 88.0  # wraps RA and crosses near the pole
    radius, n = rng.uniform(0.5, 20), rng.randint(3, 40)
    poly = ring(ra, dec, radius, n)
    inscribed = math.degrees(
        math.atan(math.tan(math.radians(radius)) * math.cos(math.pi / n))
    )  # distance from the centre to the middle of an edge
    for pra, pdec in samples_in_cap(ra, dec, radius * 1.5, 400, rng):
        d = angular_distance(ra, dec, pra, pdec)
        if d < inscribed * 0.999:
            assert point_in_polygon(pra, pdec, poly)
        elif d > radius * 1.001:
            assert not point_in_polygon(pra, pdec, poly)


@pytest.mark.parametrize("seed", range(8))
def test_intersections_against_sampling(seed):
    rng = random.Random(100 + seed)
    ra, dec = random_position(rng)
    poly = Polygon(ring(ra, dec, rng.uniform(1, 8), rng.randint(3, 12)))
    for _ in range(15):
        # a circle near the polygon: overlapping, touching or apart
        cra, cdec = samples_in_cap(ra, dec, 15, 1, rng)[0]
        circle = Circle(cra, cdec, rng.uniform(0.2, 6))
        inside_samples = [
            p for p in samples_in_cap(cra, cdec, circle.radius, 1500, rng)
            if contains(Point(*p), poly)
        ]  # fmt: skip
        if inside_samples:
            assert intersects(poly, circle) and intersects(circle, poly)
        if intersects(poly, circle):
            grown = samples_in_cap(cra, cdec, circle.radius + 0.8, 3000, rng)
            assert any(contains(Point(*p), poly) for p in grown)
        # polygon vs polygon, using the circle's 16-gon
        other = Polygon(ring(cra, cdec, circle.radius, 16))
        if any(contains(Point(*p), other) for p in inside_samples):
            assert intersects(poly, other) and intersects(other, poly)
        if not intersects(circle, poly):
            assert not intersects(other, poly)  # the 16-gon lies inside its circle


def test_crossing_polygons_without_vertices_inside():
    # A plus sign: neither rectangle has a vertex inside the other.
    a = Polygon(((-3.0, -0.5), (3.0, -0.5), (3.0, 0.5), (-3.0, 0.5)))
    b = Polygon(((-0.5, -3.0), (0.5, -3.0), (0.5, 3.0), (-0.5, 3.0)))
    assert intersects(a, b)
    assert not contains(a, b)
    far = Polygon(((10.0, 10.0), (11.0, 10.0), (11.0, 11.0)))
    assert not intersects(a, far)


def test_containment():
    big = Circle(10.0, 10.0, 5.0)
    assert contains(Circle(11.0, 10.0, 1.0), big)
    assert not contains(Circle(14.0, 10.0, 2.0), big)
    square = Polygon(((0.0, 0.0), (4.0, 0.0), (4.0, 4.0), (0.0, 4.0)))
    assert contains(Circle(2.0, 2.0, 1.0), square)
    assert not contains(Circle(2.0, 2.0, 2.5), square)
    assert contains(Polygon(((1.0, 1.0), (2.0, 1.0), (2.0, 2.0))), square)
    assert not contains(Polygon(((1.0, 1.0), (5.0, 1.0), (2.0, 2.0))), square)
    assert contains(square, Circle(2.0, 2.0, 3.0))
    assert not contains(square, Circle(2.0, 2.0, 2.0))
    assert contains(Point(1.0, 1.0), Point(1.0, 1.0))
    assert not contains(big, Point(10.0, 10.0))


def test_area():
    assert area(Point(1, 2)) == 0.0
    # whole sky is 41252.96 deg2
    assert area(Circle(0, 0, 180)) == pytest.approx(41252.96, rel=1e-6)
    assert area(Circle(5, 5, 1)) == pytest.approx(math.pi, rel=1e-4)
    assert area(Polygon(ring(40, -30, 2, 256))) == pytest.approx(area(Circle(40, -30, 2)), rel=1e-3)
    octant = Polygon(((0.0, 0.0), (90.0, 0.0), (0.0, 90.0)))
    assert area(octant) == pytest.approx(41252.96 / 8, rel=1e-6)
    assert area(Polygon(octant.vertices[::-1])) == pytest.approx(41252.96 / 8, rel=1e-6)


def test_area_against_monte_carlo():
    rng = random.Random(3)
    poly = Polygon(((350.0, -5.0), (8.0, -3.0), (5.0, 9.0), (355.0, 6.0)))
    cap = enclosing_cap(poly)
    assert cap is not None
    samples = samples_in_cap(*cap, 20000, rng)
    frac = sum(contains(Point(*p), poly) for p in samples) / len(samples)
    assert area(poly) == pytest.approx(frac * area(Circle(*cap)), rel=0.03)


def test_box_is_a_polygon_with_great_circle_sides():
    corners = box_polygon(10.0, 20.0, 2.0, 1.0)
    assert len(corners) == 4
    box = Polygon(corners)
    assert contains(Point(10.0, 20.0), box)
    # arms of the cross end on the sides
    assert contains(Point(10.0 + 0.999 / math.cos(math.radians(20)), 20.0), box)
    assert not contains(Point(10.0 + 1.01 / math.cos(math.radians(20)), 20.0), box)
    assert contains(Point(10.0, 20.499), box)
    assert not contains(Point(10.0, 20.51), box)
    assert area(box) == pytest.approx(2.0, rel=1e-3)
    # a box around the pole and one across RA = 0 are fine too
    assert contains(Point(77.0, 89.9), Polygon(box_polygon(0.0, 90.0, 2.0, 2.0)))
    assert contains(Point(359.7, 0.0), Polygon(box_polygon(0.2, 0.0, 2.0, 2.0)))


def test_enclosing_cap_holds_the_shape():
    rng = random.Random(5)
    for _ in range(20):
        ra, dec = random_position(rng)
        poly = Polygon(ring(ra, dec, rng.uniform(0.1, 30), rng.randint(3, 20)))
        cra, cdec, r = enclosing_cap(poly)
        assert all(angular_distance(cra, cdec, *v) <= r for v in poly.vertices)
    assert enclosing_cap(Polygon(((0, 0), (120, 0), (240, 0)))) is None  # a hemisphere
