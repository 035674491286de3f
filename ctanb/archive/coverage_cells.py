"""Coverage of many footprints and times at once, with numpy (used by :mod:`ctanb.archive.coverage`).

Building the space MOC footprint by footprint with mocpy costs about 0.1 ms per cone
and 0.3 ms per polygon at order 8 (~800 cells each): minutes for a million rows. Here
the question is turned round: for each HEALPix cell of the sky at the MOC's order
(786 432 cells at order 8) is there a footprint that may touch it? A KD-tree of the
footprints' centres answers it for all cells at once, and a cell, once covered, is
not asked again (a busy sky saturates after a few thousand runs).

The rule is conservative, so the MOC holds every footprint: a cell of centre ``c``
whose points all lie within ``rho`` of ``c`` (``rho``: the cell's largest
centre-to-vertex distance) is kept for a footprint of enclosing cap ``(centre,
r)`` when ``angle(c, centre) <= r + rho`` and, for a convex polygon, when ``c`` lies
within ``rho`` of the inner side of every edge. Any point of the footprint in the
cell satisfies both, so no touched cell is missed; a kept cell is at most about one
cell from the footprint (mocpy's own cone and polygon MOCs keep the cells they
touch exactly).

Times (TT to TCB, the MOC 2.0 time axis) are converted by
:func:`ctanb.archive.gti.mjd_to_tcb_microseconds`, fast enough for a million rows.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

__all__: list[str] = []  # private: the public entry points are in ctanb.archive.coverage

#: Below this many footprints mocpy's per-footprint MOCs are cheaper than the sky's cells.
FAST_MIN_FOOTPRINTS = 4000
#: The cell rule holds the whole sky in memory: 12 * 4**9 = 3.1 M cells at most.
FAST_MAX_ORDER = 9
MAX_POLYGON_VERTICES = 8  # beyond this s_region approximates the FoV circle: use its cap
_BALL_CHUNK = 4096  # cells per ball query: bounds the candidate pairs held at once
_PAIR_CHUNK = 400_000


def _unit(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Unit vectors of longitudes and latitudes in radians, shape ``(..., 3)``."""
    cl = np.cos(lat)
    return np.stack([cl * np.cos(lon), cl * np.sin(lon), np.sin(lat)], axis=-1)


def _angle_to_chord(angle: float) -> float:
    return 2.0 * np.sin(min(np.pi, angle) / 2.0)


@dataclass
class Footprints:
    """Footprints of rows as arrays (angles in degrees for mocpy, radians inside).

    ``lon``, ``lat``, ``radius``: one enclosing cap per row with a position (rows
    without are dropped); ``xyz``: its centre as a unit vector; ``normals``: inward
    unit normals of the edges of convex few-vertex polygons (zeros for circles and
    padding), or None when no row has one; ``other_polygons``: few-vertex polygons
    that are not convex (or not smaller than a hemisphere), for mocpy's exact
    ``from_polygons`` (flat ``[lon, lat, lon, lat, ...]`` list); ``row``: the
    index of each footprint's row in the input; ``in_cells``: whether the
    footprint is one for :class:`CellCover` (False for the other polygons, whose
    caps would over-cover them; their caps still serve the coarse 2-D MOCs).
    """

    lon: np.ndarray
    lat: np.ndarray
    radius: np.ndarray
    xyz: np.ndarray
    normals: np.ndarray | None
    other_polygons: list[np.ndarray]
    row: np.ndarray
    in_cells: np.ndarray

    def __len__(self) -> int:
        return len(self.radius)


def footprints(rows: list[tuple]) -> Footprints:
    """Parse ``(s_ra, s_dec, s_fov, s_region)`` rows into :class:`Footprints`.

    A row with an ``s_region`` gets the polygon's enclosing cap (the rule of
    :func:`ctanb.archive.db.polygon_cap`: through the farthest vertex from the
    normalised mean of the vertices, 0.1 % larger) and, when the polygon has at most
    :data:`MAX_POLYGON_VERTICES` vertices, its edges; a row without one a cone of
    ``s_fov / 2`` (0.1 deg when unknown) around ``(s_ra, s_dec)``, as does a row
    whose ``s_region`` has fewer than three vertices.
    """
    n = len(rows)
    counts = np.zeros(n, dtype=np.int64)
    texts: list[str] = []
    circles = np.full((n, 3), np.nan)
    for i, (ra, dec, fov, region) in enumerate(rows):
        if region:
            words = str(region).replace(",", " ").split()
            counts[i] = len(words)
            texts.append(" ".join(words))
        if ra is not None and dec is not None:
            circles[i] = (float(ra), float(dec), float(fov) / 2 if fov else 0.1)
    values = np.array(" ".join(texts).split(), dtype=float) if texts else np.zeros(0)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]) if n else counts
    lon_d, lat_d, rad_d = circles[:, 0].copy(), circles[:, 1].copy(), circles[:, 2].copy()
    width = MAX_POLYGON_VERTICES if (counts // 2 >= 3).any() else 0
    normals_all = np.zeros((n, width, 3))
    in_cells = np.ones(n, dtype=bool)
    other: list[np.ndarray] = []
    for k in np.unique(counts[counts > 0] // 2):
        idx = np.flatnonzero(counts // 2 == k)
        if k < 3:  # not a polygon: the row's cone of s_fov, if it has a position
            continue
        take = starts[idx][:, None] + np.arange(2 * k)[None, :]
        v = np.radians(values[take].reshape(len(idx), k, 2))
        vec = _unit(v[..., 0], v[..., 1])  # (m, k, 3)
        s = vec.sum(axis=1)
        centre = s / np.linalg.norm(s, axis=1, keepdims=True)
        r = np.arccos(np.clip(np.einsum("mkj,mj->mk", vec, centre), -1.0, 1.0)).max(axis=1)
        lon_d[idx] = np.degrees(np.arctan2(centre[:, 1], centre[:, 0])) % 360.0
        lat_d[idx] = np.degrees(np.arcsin(np.clip(centre[:, 2], -1.0, 1.0)))
        rad_d[idx] = np.degrees(r) * 1.001 + 1e-9
        if k > MAX_POLYGON_VERTICES:
            continue
        edge = np.cross(vec, np.roll(vec, -1, axis=1))  # (m, k, 3)
        norm = np.linalg.norm(edge, axis=2, keepdims=True)
        edge = edge / np.where(norm > 0, norm, 1.0)
        side = np.sign(np.einsum("mkj,mj->mk", edge, centre))
        edge *= side[:, :, None]
        # Convex and smaller than a hemisphere: every vertex on the inner side of every edge.
        inner = np.einsum("mkj,mlj->mkl", edge, vec) >= -1e-12
        convex = (norm[..., 0] > 0).all(1) & (side != 0).all(1) & inner.all((1, 2))
        convex &= r < np.radians(80.0)
        normals_all[idx[convex], :k] = edge[convex]
        in_cells[idx[~convex]] = False
        for j in np.flatnonzero(~convex).tolist():
            other += [np.degrees(v[j, :, 0]), np.degrees(v[j, :, 1])]
    ok = np.isfinite(lon_d) & np.isfinite(lat_d) & np.isfinite(rad_d)
    keep = np.flatnonzero(ok)
    normals = normals_all[keep] if width else None
    lon, lat, radius = lon_d[keep], lat_d[keep], rad_d[keep]
    xyz = _unit(np.radians(lon), np.radians(lat))
    return Footprints(lon, lat, radius, xyz, normals, other, keep, in_cells[keep])


@functools.lru_cache(maxsize=4)
def _sky_cells(order: int) -> tuple[np.ndarray, np.ndarray]:
    """Centres (unit vectors) and largest centre-to-vertex angles of all cells at *order*.

    A cell's farthest point from its centre is one of its vertices (checked with
    points along the edges at orders 3 to 8); the 1e-6 margin covers rounding.
    """
    import astropy.units as u
    import cdshealpix.nested as hp

    ipix = np.arange(12 * 4**order, dtype=np.uint64)
    lon, lat = hp.healpix_to_lonlat(ipix, order, num_threads=1)
    centre = _unit(lon.to_value(u.rad), lat.to_value(u.rad))
    vlon, vlat = hp.vertices(ipix, order, num_threads=1)
    vert = _unit(vlon.to_value(u.rad), vlat.to_value(u.rad))
    cosines = np.einsum("nkj,nj->nk", vert, centre).min(axis=1)
    rho = np.arccos(np.clip(cosines, -1.0, 1.0)) * (1 + 1e-6) + 1e-12
    return centre, rho


class CellCover:
    """The cells of the sky at *order* that some footprint may touch (see module doc)."""

    def __init__(self, order: int) -> None:
        self.order = order
        self.centre, self.rho = _sky_cells(order)
        self.covered = np.zeros(len(self.rho), dtype=bool)

    def _passes(self, cells: np.ndarray, fps: np.ndarray, f: Footprints) -> np.ndarray:
        c = self.centre[cells]
        rho = self.rho[cells]
        ok = (
            np.einsum("ij,ij->i", c, f.xyz[fps])
            >= np.cos(np.minimum(np.pi, np.radians(f.radius[fps]) + rho)) - 1e-12
        )
        if f.normals is not None:
            side = np.einsum("ikj,ij->ik", f.normals[fps], c)
            ok &= (side >= -np.sin(rho)[:, None] - 1e-12).all(axis=1)
        return ok

    def add(self, f: Footprints) -> None:
        """Mark the cells of footprints *f* (caps and convex polygons)."""
        from scipy.spatial import cKDTree

        if not f.in_cells.any():
            return
        rho_max = float(self.rho.max())
        # Radii within a factor two share a tree: the search radius fits them all.
        bins = np.floor(np.log2(np.maximum(f.radius, 1e-6))).astype(int)
        for b in np.unique(bins[f.in_cells]):
            members = np.flatnonzero((bins == b) & f.in_cells)
            tree = cKDTree(f.xyz[members])
            bound = _angle_to_chord(np.radians(float(f.radius[members].max())) + rho_max)
            todo = np.flatnonzero(~self.covered)
            if not len(todo):
                return
            _, near = tree.query(self.centre[todo], k=1, distance_upper_bound=bound * (1 + 1e-9))
            has = near < len(members)
            todo, near = todo[has], members[near[has]]
            hit = np.zeros(len(todo), dtype=bool)
            for s in range(0, len(todo), _PAIR_CHUNK):
                sl = slice(s, s + _PAIR_CHUNK)
                hit[sl] = self._passes(todo[sl], near[sl], f)
            self.covered[todo[hit]] = True
            # The nearest footprint does not take the cell: ask every one in reach.
            rest = todo[~hit]
            for s in range(0, len(rest), _BALL_CHUNK):
                cells = rest[s : s + _BALL_CHUNK]
                found = tree.query_ball_point(self.centre[cells], bound * (1 + 1e-9))
                lens = np.fromiter((len(x) for x in found), dtype=np.int64, count=len(found))
                if not lens.sum():
                    continue
                pair_cell = np.repeat(np.arange(len(cells)), lens)
                pair_fp = members[np.concatenate([x for x in found if x]).astype(np.int64)]
                ok = np.zeros(len(pair_cell), dtype=bool)
                for p in range(0, len(pair_cell), _PAIR_CHUNK):
                    sl = slice(p, p + _PAIR_CHUNK)
                    ok[sl] = self._passes(cells[pair_cell[sl]], pair_fp[sl], f)
                self.covered[cells[np.unique(pair_cell[ok])]] = True

    def moc(self):
        """The covered cells as a mocpy MOC at :attr:`order`."""
        from mocpy import MOC

        ipix = np.flatnonzero(self.covered).astype(np.uint64)
        if not len(ipix):
            return MOC.new_empty(self.order)
        depth = np.full(len(ipix), self.order, dtype=np.uint8)
        return MOC.from_healpix_cells(ipix, depth, self.order)
