"""Latency of cone searches on the embedded archive over HTTP, and bulk ingestion speed.

For 10k, 100k and 1M synthetic ObsCore rows (:func:`ctanb.archive.synthetic.make_synthetic_db`,
the 1M file cached under the temp dir), the TAP service runs on loopback and a
keep-alive HTTP client sends >= 20 sync cone searches (4 columns, r = 1 and 3 deg,
random centres); the table shows median and 90th percentile latencies and the
number of rows returned. Ingestion is timed per 1000 rows for the bulk path
(synthetic generator) and for the one-dataset-at-a-time ``db.upsert_dataset`` path.

Target: p50 <= 20 ms at 1M rows. Results go to bench/results/archive.json.

Run: ``.venv/bin/python bench/bench_archive.py [--quick]``
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from ctanb.archive import db as archive_db
from ctanb.archive.service import ArchiveServer
from ctanb.archive.synthetic import make_synthetic_db

RESULTS = Path(__file__).resolve().parent / "results" / "archive.json"
CACHE = Path(tempfile.gettempdir()) / "ctanb-bench-archive"
TARGET_MS = 20.0


def _db(n_rows: int) -> tuple[Path, float | None]:
    """The synthetic DB of *n_rows* (cached); returns (path, build seconds or None if cached)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"synthetic-{n_rows}.db"
    if path.exists():
        return path, None
    t0 = time.perf_counter()
    make_synthetic_db(path, n_rows, seed=0)
    return path, time.perf_counter() - t0


def _cone(client: httpx.Client, ra: float, dec: float, r: float) -> tuple[float, int]:
    query = (
        "SELECT obs_id, s_ra, s_dec, t_min FROM ivoa.obscore WHERE "
        f"CONTAINS(POINT('ICRS', s_ra, s_dec), CIRCLE('ICRS', {ra:.6f}, {dec:.6f}, {r}))=1"
    )
    t0 = time.perf_counter()
    resp = client.post("/sync", data={"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": query})
    dt = time.perf_counter() - t0
    if resp.status_code != 200:
        raise SystemExit(f"query failed ({resp.status_code}): {resp.text[:500]}")
    return dt * 1000, resp.text.count("<TR>")


def bench_latency(path: Path, n_queries: int, seed: int = 1) -> dict[str, dict[str, float]]:
    """Cone-search latencies (ms) for r = 1 and 3 deg."""
    rng = random.Random(seed)
    out = {}
    with ArchiveServer(path) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        _cone(client, 10.0, 10.0, 1.0)  # warm-up: connections, caches
        for r in (1.0, 3.0):
            times, rows = [], []
            for _ in range(n_queries):
                ra, dec = rng.uniform(0, 360), rng.uniform(-80, 80)
                ms, n = _cone(client, ra, dec, r)
                times.append(ms)
                rows.append(n)
            times.sort()
            out[f"r={r:g}deg"] = {
                "p50_ms": statistics.median(times),
                "p90_ms": times[int(0.9 * (len(times) - 1))],
                "mean_rows": statistics.fmean(rows),
                "queries": n_queries,
            }
    return out


def bench_upsert(n_rows: int = 1000) -> float:
    """Seconds per 1000 rows through db.upsert_dataset (the ingestion path)."""
    with tempfile.TemporaryDirectory() as tmp:
        src = make_synthetic_db(Path(tmp) / "src.db", n_rows, seed=3)
        conn_src = archive_db.connect(src, readonly=True)
        cur = conn_src.execute('SELECT * FROM "ivoa.obscore"')
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
        conn_src.close()
        conn = archive_db.connect(Path(tmp) / "dst.db")
        archive_db.create_schema(conn)
        t0 = time.perf_counter()
        for row in rows:
            group = row.pop("_access_group")
            archive_db.upsert_dataset(conn, row, access_group=group)
        conn.commit()
        dt = time.perf_counter() - t0
        conn.close()
    return dt / n_rows * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10k and 100k rows, 20 queries")
    parser.add_argument("--queries", type=int, default=50, help="queries per radius (>= 20)")
    args = parser.parse_args(argv)
    sizes = [10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000]
    n_queries = 20 if args.quick else max(20, args.queries)
    report: dict[str, object] = {"target_p50_ms": TARGET_MS, "sizes": {}}
    print(f"{'rows':>9} {'radius':>7} {'p50 ms':>8} {'p90 ms':>8} {'rows/answer':>12}")
    bulk_per_1000 = []
    for n in sizes:
        path, build_s = _db(n)
        if build_s is not None:
            bulk_per_1000.append(build_s / n * 1000)
        lat = bench_latency(path, n_queries)
        report["sizes"][str(n)] = {"latency": lat, "build_s": build_s}  # type: ignore[index]
        for radius, s in lat.items():
            print(
                f"{n:>9} {radius:>7} {s['p50_ms']:>8.2f} {s['p90_ms']:>8.2f} {s['mean_rows']:>12.1f}"
            )
    upsert = bench_upsert()
    report["ingest_s_per_1000_rows"] = {
        "bulk_synthetic": statistics.fmean(bulk_per_1000) if bulk_per_1000 else None,
        "upsert_dataset": upsert,
    }
    print(f"ingestion per 1000 rows: upsert_dataset {upsert * 1000:.0f} ms", end="")
    if bulk_per_1000:
        print(f", bulk synthetic {statistics.fmean(bulk_per_1000) * 1000:.0f} ms")
    else:
        print(" (bulk: DBs were cached; delete the cache to time it)")
    largest = report["sizes"][str(sizes[-1])]["latency"]  # type: ignore[index]
    worst = max(s["p50_ms"] for s in largest.values())
    met = worst <= TARGET_MS
    report["target_met_at_largest"] = met
    print(
        f"p50 at {sizes[-1]} rows: {worst:.2f} ms (target {TARGET_MS} ms: {'met' if met else 'MISSED'})"
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {RESULTS}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
