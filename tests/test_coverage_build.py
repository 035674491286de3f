"""Coverage MOCs of many rows (issue 18, item 6): the fast building path for thousands of
rows must still hold every footprint, interval and band, and leave out what no dataset
covers. Expected values come from independent geometry (points inside / outside each
footprint computed here) and from the exact TT->TCB conversion of astropy."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest
from astropy.time import Time
from mocpy import TimeMOC

from ctanb.archive import coverage, coverage_cells, gti

N = coverage_cells.FAST_MIN_FOOTPRINTS + 200
OUTSIDE_DEG = 0.55  # more than two order-8 cells' reach (2 x 0.24 deg)


def _unit(lon, lat):
    lon, lat = np.radians(lon), np.radians(lat)
    return np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], -1)


def _lonlat(v):
    v = v / np.linalg.norm(v, axis=-1, keepdims=True)
    return np.degrees(np.arctan2(v[..., 1], v[..., 0])) % 360, np.degrees(np.arcsin(v[..., 2]))


def _offset(centre, angle_deg, bearing_deg):
    """Points at *angle_deg* from unit vectors *centre* along *bearing_deg* (from north)."""
    north = np.array([0.0, 0.0, 1.0]) - centre * centre[..., 2:3]
    bad = np.linalg.norm(north, axis=-1) < 1e-9
    north[bad] = [1.0, 0.0, 0.0]
    north /= np.linalg.norm(north, axis=-1, keepdims=True)
    east = np.cross(north, centre)
    b, a = np.radians(bearing_deg)[..., None], np.radians(angle_deg)[..., None]
    return np.cos(a) * centre + np.sin(a) * (np.cos(b) * north + np.sin(b) * east)


@pytest.fixture(scope="module")
def sky():
    """N footprints on a Fibonacci lattice (~3 deg apart, so none touches another):
    squares, triangles, circles given by s_fov, 32-vertex circles and non-convex
    arrows, some across RA 0 and at the poles; plus times and energy bands."""
    rng = np.random.default_rng(3)
    i = np.arange(N) + 0.5
    lat = np.degrees(np.arcsin(1 - 2 * i / N))
    lon = (np.degrees(np.pi * (1 + 5**0.5) * i)) % 360
    centre = _unit(lon, lat)
    size = rng.uniform(0.3, 0.7, N)  # largest distance of the footprint from its centre
    rot = rng.uniform(0, 360, N)
    kind = np.arange(N) % 5
    size[kind == 4] = 1.0  # arrowheads: big enough for a point in the notch 0.575 deg away
    rows, inside, outside = [], [], []
    for j in range(N):
        c = centre[j : j + 1]
        if kind[j] == 2:  # a circle given by s_fov
            region = None
            edge = _offset(np.repeat(c, 12, 0), np.full(12, size[j]), np.arange(12) * 30.0)
            out = _offset(
                np.repeat(c, 12, 0), np.full(12, size[j] + OUTSIDE_DEG), np.arange(12) * 30.0
            )
        else:
            n_v = {0: 4, 1: 3, 3: 32, 4: 4}[kind[j]]
            bearings = rot[j] + np.arange(n_v) * 360.0 / n_v
            radii = np.full(n_v, size[j])
            if kind[j] == 4:  # an arrowhead: the second vertex pulled past the centre
                radii[1] = -0.3 * size[j]
            vlon, vlat = _lonlat(_offset(np.repeat(c, n_v, 0), radii, bearings))
            region = " ".join(f"{a:.6f} {b:.6f}" for a, b in zip(vlon, vlat, strict=True))
            v = np.array(region.split(), dtype=float)  # the vertices as the archive has them
            verts = _unit(v[0::2], v[1::2])
            mids = verts + np.roll(verts, -1, 0)
            mids /= np.linalg.norm(mids, axis=1, keepdims=True)
            edge = np.concatenate([verts, mids])
            # Beyond each edge's midpoint, along the edge's outward normal.
            normal = np.cross(verts, np.roll(verts, -1, 0))
            normal /= np.linalg.norm(normal, axis=1, keepdims=True)
            normal *= np.sign(normal @ c[0])[:, None]
            keep = np.ones(n_v, dtype=bool)
            if kind[j] == 4:
                keep[:2] = False  # the two edges of the notch
            a = np.radians(OUTSIDE_DEG)
            out = np.cos(a) * mids[keep] - np.sin(a) * normal[keep]
            if kind[j] == 4:  # in the notch: inside the arrow's enclosing cap, not the arrow
                # 0.575 x size from its edges, inside its enclosing cap.
                notch = _offset(c, np.array([0.3 * size[j]]), np.array([bearings[1]]))
                out = np.concatenate([out, notch])
        toward = 0.5 * (edge + c)  # halfway to the centre: inside the convex ones
        # (The centre of an arrowhead is in its notch: only its boundary is inside.)
        inside.append(np.concatenate([edge] if kind[j] == 4 else [c, edge, toward]))
        outside.append(out)
        t0 = 60000 + j * 0.37 + rng.uniform(0, 0.1)
        e0, e1 = 10 ** rng.uniform(-1.5, 0), 10 ** rng.uniform(1, 2)
        rows.append((f"ivo://x?{j}", lon[j], lat[j], 2 * size[j], region, t0, t0 + 0.02, e0, e1))
    # First: a row without a place shifts every later row's index among the footprints.
    rows.insert(0, ("ivo://x?nowhere", None, None, None, None, 59990.0, 59990.01, 1.0, 10.0))
    rows.append(("ivo://x?never", lon[0], lat[0], 0.01, None, None, None, None, None))
    mocs = coverage.build_mocs(rows)
    pin = _lonlat(np.concatenate(inside))
    pout = _lonlat(np.concatenate(outside))
    return rows, mocs, pin, pout


def test_many_footprints_are_held_and_their_surroundings_left_out(sky):
    rows, mocs, pin, pout = sky
    space = mocs["space"]
    assert len(rows) >= coverage_cells.FAST_MIN_FOOTPRINTS  # the fast path was taken
    held = space.contains_lonlat(pin[0] * u.deg, pin[1] * u.deg)
    assert held.all(), f"{(~held).sum()} footprint points outside the coverage"
    assert not space.contains_lonlat(pout[0] * u.deg, pout[1] * u.deg).any()
    # Not much more than the footprints: the lattice's free sky stays free.
    assert 0.01 < space.sky_fraction < 0.2


def test_time_coverage_of_many_rows_holds_the_exact_intervals_only(sky):
    rows, mocs, _, _ = sky
    moc = mocs["time"]
    timed = np.array([(r[5], r[6]) for r in rows if r[5] is not None])
    exact = TimeMOC.from_depth61_ranges(61, gti.mjd_to_tcb_microseconds(timed))
    assert exact.difference(moc).empty()
    # Nothing between the runs (gaps of ~8.4 h), and ~1 s cells around each run at most.
    gaps = Time((timed[1:-1, 1] + timed[2:, 0]) / 2, format="mjd", scale="tt")  # after 59990
    assert not moc.contains(gaps).any()
    total = (timed[:, 1] - timed[:, 0]).sum() * 86400
    assert total <= moc.total_duration.to_value("s") <= total + 2.2 * len(timed)


def test_space_time_and_space_energy_of_many_rows(sky):
    rows, mocs, _, _ = sky
    placed = [r for r in rows if r[1] is not None and r[5] is not None]
    lon = np.array([r[1] for r in placed]) * u.deg
    lat = np.array([r[2] for r in placed]) * u.deg
    mid = Time([(r[5] + r[6]) / 2 for r in placed], format="mjd", scale="tt")
    assert mocs["space-time"].contains(mid, lon, lat).all()
    # Shifted by a day (other runs' nights, other places): not covered.
    # (Away from the poles, where the lattice puts consecutive rows next to each other.)
    mid_sky = np.flatnonzero(np.abs(lat[:-10].value) < 60)
    later = Time(
        [(placed[i][5] + placed[i][6]) / 2 + 1.5 for i in mid_sky], format="mjd", scale="tt"
    )
    assert not mocs["space-time"].contains(later, lon[mid_sky], lat[mid_sky]).any()
    # Energies: each row's band at its own place; not 10x above the highest band.
    tev = np.array([np.sqrt(r[7] * r[8]) for r in placed]) * u.TeV
    nu = tev.to(u.Hz, equivalencies=u.spectral())
    assert mocs["space-energy"].contains(nu, lon, lat).all()
    high = (np.full(len(placed), 1e3) * u.TeV).to(u.Hz, equivalencies=u.spectral())
    assert not mocs["space-energy"].contains(high, lon, lat).any()


def test_tt_to_tcb_of_many_instants_rounds_outwards_to_the_microsecond():
    # The one (interpolated) conversion against astropy's exact one instant by instant:
    # starts rounded down and stops up to the next microsecond, never more.
    mjd = np.random.default_rng(5).uniform(50000, 62000, 20000)
    got = gti.mjd_to_tcb_microseconds(np.stack([mjd, mjd], axis=1))
    tcb = Time(mjd, format="mjd", scale="tt").tcb
    day = np.floor(tcb.jd1)
    exact = ((tcb.jd1 - day) + tcb.jd2) * 86_400_000_000  # us since the JD's day start
    base = day.astype(np.int64) * 86_400_000_000
    low = (got[:, 0].astype(np.int64) - base) - exact
    high = (got[:, 1].astype(np.int64) - base) - exact
    noise = 1e-3  # float64 rounding of the exact value itself (~1e-4 us)
    assert (low <= noise).all() and (low > -1 - noise).all()
    assert (high >= -noise).all() and (high < 1 + noise).all()
