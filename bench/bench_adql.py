"""Benchmark of the ADQL translator on a synthetic ``ivoa.obscore`` of 1M rows.

Builds (once, cached under the temp folder) an archive database with positions
uniform on the sphere and an 8-vertex footprint polygon of 2.5 deg radius per
row, then times translate + execute + fetch of typical queries (cone searches
answered from the R-tree, a region search, a full scan for comparison).

    .venv/bin/python bench/bench_adql.py            # 1M rows
    .venv/bin/python bench/bench_adql.py --quick    # 100k rows, fewer repeats
"""

from __future__ import annotations

import argparse
import math
import random
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from ctanb.archive import db
from ctanb.archive.adql import load_schema, register_functions, translate
from ctanb.archive.geometry import cap_bbox, unit_vector
from ctanb.datamodel import OBSCORE_TABLE


def footprint(ra: float, dec: float, radius: float, n: int) -> list[tuple[float, float]]:
    """Vertices of a circle of *radius* deg around (ra, dec), as a polygon."""
    c = unit_vector(ra, dec)
    a, d = math.radians(ra), math.radians(dec)
    east = (-math.sin(a), math.cos(a), 0.0)
    north = (-math.sin(d) * math.cos(a), -math.sin(d) * math.sin(a), math.cos(d))
    r = math.radians(radius)
    out = []
    for k in range(n):
        t = 2 * math.pi * k / n
        v = [math.cos(r) * c[i] + math.sin(r) * (math.cos(t) * north[i] + math.sin(t) * east[i])
             for i in range(3)]  # fmt: skip
        out.append((math.degrees(math.atan2(v[1], v[0])) % 360, math.degrees(math.asin(v[2]))))
    return out


def build(path: Path, n_rows: int, seed: int = 1) -> None:
    """Bulk-fill an archive database (bypasses upsert_dataset for speed)."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    db.create_schema(conn)
    rng = random.Random(seed)
    cols = ["obs_publisher_did", "obs_id", "obs_collection", "dataproduct_type", "target_name",
            "s_ra", "s_dec", "s_fov", "s_region", "t_min", "t_max"]  # fmt: skip
    insert = (f'INSERT INTO "{OBSCORE_TABLE}" (rowid, {", ".join(cols)}) '
              f"VALUES (?, {', '.join('?' * len(cols))})")  # fmt: skip
    batch, points, regions = [], [], []
    for i in range(1, n_rows + 1):
        ra = rng.uniform(0, 360)
        dec = math.degrees(math.asin(rng.uniform(-1, 1)))
        poly = footprint(ra, dec, 2.5, 8)
        region = " ".join(f"{x:.5f}" for v in poly for x in v)
        batch.append((i, f"ivo://bench?{i}", str(i), "bench", "event", f"target {i % 1000}",
                      ra, dec, 5.0, region, 55000 + i * 1e-3, 55000 + i * 1e-3 + 0.02))  # fmt: skip
        x, y, z = unit_vector(ra, dec)
        points.append((i, x, x, y, y, z, z))
        regions.append((i, *cap_bbox(ra, dec, 2.5 * 1.001 + 1e-6)))
        if len(batch) == 50_000 or i == n_rows:
            conn.executemany(insert, batch)
            conn.executemany(f'INSERT INTO "{db.POINT_INDEX}" VALUES (?,?,?,?,?,?,?)', points)
            conn.executemany(f'INSERT INTO "{db.REGION_INDEX}" VALUES (?,?,?,?,?,?,?)', regions)
            conn.commit()
            batch, points, regions = [], [], []
    conn.close()


QUERIES = {
    "cone r=1 (CONTAINS)": "SELECT obs_id, s_ra, s_dec, target_name FROM ivoa.obscore "
    "WHERE CONTAINS(POINT('ICRS', s_ra, s_dec), CIRCLE('ICRS', {ra}, {dec}, 1)) = 1",
    "cone r=3 (CONTAINS)": "SELECT obs_id, s_ra, s_dec, target_name FROM ivoa.obscore "
    "WHERE CONTAINS(POINT('ICRS', s_ra, s_dec), CIRCLE('ICRS', {ra}, {dec}, 3)) = 1",
    "cone r=3 (DISTANCE)": "SELECT obs_id, s_ra, s_dec, target_name FROM ivoa.obscore "
    "WHERE DISTANCE(POINT(s_ra, s_dec), POINT({ra}, {dec})) < 3",
    "cone r=3 + indexed column": "SELECT obs_id, s_ra, s_dec, target_name FROM ivoa.obscore "
    "WHERE CONTAINS(POINT(s_ra, s_dec), CIRCLE({ra}, {dec}, 3)) = 1 "
    "AND dataproduct_type = 'event' AND obs_collection = 'bench'",
    "region r=1 (INTERSECTS)": "SELECT obs_id, s_region FROM ivoa.obscore "
    "WHERE INTERSECTS(s_region, CIRCLE('ICRS', {ra}, {dec}, 1)) = 1",
}
SCAN = "SELECT COUNT(*) FROM ivoa.obscore WHERE s_dec > {dec} + 1000"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100k rows, fewer repeats")
    parser.add_argument("--rows", type=int, default=None)
    args = parser.parse_args()
    n_rows = args.rows or (100_000 if args.quick else 1_000_000)
    repeats = 30 if args.quick else 100
    path = Path(tempfile.gettempdir()) / f"ctanb-bench-adql-{n_rows}.db"
    if not path.exists():
        t0 = time.perf_counter()
        tmp = path.with_suffix(".part")
        tmp.unlink(missing_ok=True)
        build(tmp, n_rows)
        tmp.rename(path)
        print(f"built {n_rows} rows in {time.perf_counter() - t0:.1f} s -> {path}")
    conn = db.connect(path, readonly=True)
    register_functions(conn)
    schema = load_schema(conn)
    rng = random.Random(7)
    centres = [(rng.uniform(0, 360), math.degrees(math.asin(rng.uniform(-1, 1))))
               for _ in range(repeats)]  # fmt: skip
    print(f"{n_rows} rows, {repeats} random centres per query "
          "(wall p50 / p95, CPU p50, ms; mean rows); machine load skews wall times")  # fmt: skip
    for label, template in QUERIES.items():
        times, cpu, rows = [], [], []
        for ra, dec in centres:
            t0, c0 = time.perf_counter(), time.process_time()
            q = translate(template.format(ra=ra, dec=dec), schema, row_limit=10001)
            result = conn.execute(q.sql, q.params).fetchall()
            times.append((time.perf_counter() - t0) * 1e3)
            cpu.append((time.process_time() - c0) * 1e3)
            rows.append(len(result))
        times.sort()
        p95 = times[int(0.95 * (len(times) - 1))]
        print(f"  {label:28s} {statistics.median(times):7.2f} / {p95:7.2f}"
              f"   cpu p50 {statistics.median(cpu):7.2f}"
              f"   rows {statistics.mean(rows):7.1f}")  # fmt: skip
    t0 = time.perf_counter()
    q = translate(SCAN.format(dec=0), schema)
    conn.execute(q.sql).fetchall()
    scan = (time.perf_counter() - t0) * 1e3
    t0 = time.perf_counter()
    for _ in range(repeats):
        translate(QUERIES["cone r=3 (CONTAINS)"].format(ra=83.6, dec=22.0), schema)
    tr = (time.perf_counter() - t0) * 1e3 / repeats
    print(f"  full-table scan (no index) {scan:7.2f} ms; translate alone {tr:.3f} ms")


if __name__ == "__main__":
    main()
