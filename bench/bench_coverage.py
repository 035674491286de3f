"""Cost of building the archive's coverage MOCs, against ingestion, in the same run.

For N synthetic ObsCore rows (:func:`ctanb.archive.synthetic.make_synthetic_db`; 5-deg
square footprints, random times over 2000 nights and energy bands, two rights
partitions), times:

- the bulk synthetic ingestion of the N rows (``make_synthetic_db``),
- the ingestion path ``db.upsert_dataset`` for 2000 of them,
- :func:`ctanb.archive.coverage.refresh_coverage` on the N rows (all four MOCs:
  space, time, space-time, space-energy, per partition, stored),
- one request's worth of reading per kind: :func:`~ctanb.archive.coverage.visible_coverage`
  for an anonymous caller (parse + union, no cache) and the size of the FITS answer.

and prints each per 1000 rows and the ratios, in wall-clock and in CPU time (the
machine is shared: CPU time is the steadier of the two). Target (the ingestion
budget, issue 18 item 6): building the MOCs costs no more per 1000 rows than the
``upsert_dataset`` ingestion path (ratio <= 1); the bulk loader, which only writes
rows, is given for comparison. Also printed: the stored size of each kind of MOC
(ASCII, all partitions) and the peak memory. mocpy, scipy and cdshealpix are
imported before timing (an archive process has them loaded); the one-off table of
the sky's cells (~1 s) is inside the timing. Results go to bench/results/coverage.json.

Run: ``.venv/bin/python bench/bench_coverage.py [--quick] [--rows N]`` (default 1M rows;
``--quick``: 100k).
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import tempfile
import time
from pathlib import Path

import cdshealpix.nested  # noqa: F401  (loaded before timing, as in a running archive)
import mocpy  # noqa: F401
import scipy.spatial  # noqa: F401

from ctanb.archive import db as archive_db
from ctanb.archive.coverage import KINDS, refresh_coverage
from ctanb.archive.coverage_read import partitions, visible_coverage
from ctanb.archive.policy import AccessPolicy
from ctanb.archive.synthetic import SYNTHETIC_COLLECTION, make_synthetic_db

RESULTS = Path(__file__).resolve().parent / "results" / "coverage.json"


def bench_upsert(src: Path, tmp: Path, n_rows: int = 2000) -> tuple[float, float]:
    """Seconds per 1000 rows through db.upsert_dataset (the ingestion path): wall, CPU."""
    conn_src = archive_db.connect(src, readonly=True)
    cur = conn_src.execute(f'SELECT * FROM "ivoa.obscore" LIMIT {int(n_rows)}')
    names = [d[0] for d in cur.description]
    rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    conn_src.close()
    conn = archive_db.connect(tmp / "upsert.db")
    archive_db.create_schema(conn)
    t0, c0 = time.perf_counter(), time.process_time()
    for row in rows:
        group = row.pop("_access_group")
        archive_db.upsert_dataset(conn, row, access_group=group)
    conn.commit()
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    conn.close()
    return elapsed / len(rows) * 1000, cpu / len(rows) * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100k rows")
    parser.add_argument("--rows", type=int, default=None, help="number of synthetic rows")
    args = parser.parse_args(argv)
    n = args.rows or (100_000 if args.quick else 1_000_000)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        t0 = time.perf_counter()
        db = make_synthetic_db(tmp / "synthetic.db", n, seed=7)
        bulk = (time.perf_counter() - t0) / n * 1000
        upsert, upsert_cpu = bench_upsert(db, tmp)
        conn = archive_db.connect(db)
        t0, c0 = time.perf_counter(), time.process_time()
        written = refresh_coverage(conn, [SYNTHETIC_COLLECTION])
        conn.commit()
        build_s, build_cpu = time.perf_counter() - t0, time.process_time() - c0
        parts = partitions(conn)
        t0 = time.perf_counter()
        moc = visible_coverage(conn, AccessPolicy.demo(), None, kind="space")
        read_ms = (time.perf_counter() - t0) * 1000
        served = {}
        for kind in KINDS:
            t0 = time.perf_counter()
            got = visible_coverage(conn, AccessPolicy.demo(), None, kind=kind)
            took = (time.perf_counter() - t0) * 1000
            buf = io.BytesIO()
            got.serialize(format="fits").writeto(buf)
            served[kind] = {"read_ms": took, "fits_bytes": len(buf.getvalue())}
        sizes = dict(conn.execute(
            'SELECT kind, sum(length(moc)) FROM "ctanb.coverage" GROUP BY kind').fetchall())  # fmt: skip
        conn.close()
    per_1000, per_1000_cpu = build_s / n * 1000, build_cpu / n * 1000
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    report = {
        "rows": n,
        "partitions": written,
        "s_per_1000_rows": {
            "moc_build": per_1000,
            "upsert_dataset": upsert,
            "bulk_synthetic": bulk,
        },
        "cpu_s_per_1000_rows": {"moc_build": per_1000_cpu, "upsert_dataset": upsert_cpu},
        "ratio_moc_to_upsert": per_1000 / upsert,
        "ratio_moc_to_upsert_cpu": per_1000_cpu / upsert_cpu,
        "target": "ratio <= 1",
        "ratio_moc_to_bulk": per_1000 / bulk,
        "moc_build_total_s": build_s,
        "read_space_ms": read_ms,
        "served_public": served,
        "stored_ascii_bytes": sizes,
        "public_sky_fraction": moc.sky_fraction,
        "target_met": per_1000 <= upsert,
        "peak_rss_gb": peak_gb,
    }
    print(
        f"{n} synthetic rows, {written} partition(s): {[p.access_group or 'public' for p, _ in parts]}"
    )
    print(f"per 1000 rows: MOC build {per_1000 * 1000:.0f} ms, upsert_dataset ingestion "
          f"{upsert * 1000:.0f} ms, bulk synthetic ingestion {bulk * 1000:.0f} ms")  # fmt: skip
    print(f"ratio MOC / upsert ingestion {per_1000 / upsert:.2f} (target <= 1: "
          f"{'met' if report['target_met'] else 'MISSED'}); MOC / bulk {per_1000 / bulk:.2f}")  # fmt: skip
    print(f"CPU per 1000 rows: MOC build {per_1000_cpu * 1000:.0f} ms, upsert_dataset "
          f"{upsert_cpu * 1000:.0f} ms: ratio {per_1000_cpu / upsert_cpu:.2f} (target <= 1)")  # fmt: skip
    print(f"total MOC build {build_s:.1f} s wall, {build_cpu:.1f} s CPU; a request's space MOC "
          f"read+union {read_ms:.0f} ms; peak memory {peak_gb:.1f} GB")  # fmt: skip
    print("stored MOC sizes (ASCII, all partitions): "
          + ", ".join(f"{k} {v / 1e6:.2f} MB" for k, v in sorted(sizes.items())))  # fmt: skip
    print("public coverage served (read+union, FITS answer): "
          + ", ".join(f"{k} {v['read_ms']:.0f} ms {v['fits_bytes'] / 1e6:.2f} MB"
                      for k, v in served.items()))  # fmt: skip
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
