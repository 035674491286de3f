"""Spherical geometry for the embedded archive's spatial index and ADQL functions.

Everything works on unit vectors so that no test breaks at RA = 0/360 or at the
poles. The R-tree index stores, per row, the 3-D bounding box of a spherical cap
that contains the footprint; a query cap's box selects the candidates, and only
those candidates get the exact test.
"""

from __future__ import annotations

import math

__all__ = [
    "angular_distance",
    "cap_bbox",
    "unit_vector",
]


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
