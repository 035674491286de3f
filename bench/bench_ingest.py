"""Ingestion speed: real GADF files per run, and the DB insert path in rows/s.

Run: ``.venv/bin/python bench/bench_ingest.py [--quick]``. Prints, measured in
this run: seconds per run for each real release (read + hash + metadata + insert),
the extrapolated time per 1000 runs, and rows/s of ``upsert_dataset`` with
synthetic rows (and the ratio between the two paths).
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import tempfile
import time
from pathlib import Path

from ctanb._settings import data_dir
from ctanb.archive import db as archive_db
from ctanb.archive.ingest import KNOWN_RELEASES, ingest
from ctanb.archive.ingest_gadf import fov_polygon


def bench_releases(tmp: Path, quick: bool) -> dict[str, float]:
    per_run = {}
    for collection, rel in KNOWN_RELEASES.items():
        path = data_dir(must_exist=True) / rel
        db = tmp / f"{collection}.db"
        start = time.perf_counter()
        report = ingest([path], db)
        elapsed = time.perf_counter() - start
        per_run[collection] = elapsed / max(1, len(report.ingested))
        print(f"{collection:14s} {len(report.ingested):4d} runs  {elapsed:7.2f} s  "
              f"{per_run[collection] * 1000:7.1f} ms/run  "
              f"-> {per_run[collection] * 1000:7.1f} s per 1000 runs")  # fmt: skip
        if quick:
            break
    return per_run


def bench_insert(tmp: Path, n_rows: int) -> float:
    db = tmp / "synthetic.db"
    conn = archive_db.connect(db)
    archive_db.create_schema(conn)
    rng = random.Random(0)
    files = [archive_db.FileRecord("#this", "/data/x.fits", size=1000, sha256="0" * 64)]
    rows = []
    for i in range(n_rows):
        ra, dec = rng.uniform(0, 360), rng.uniform(-80, 80)
        did = archive_db.publisher_did("BENCH", i)
        rows.append({"obs_publisher_did": did, "obs_collection": "BENCH", "obs_id": str(i),
                     "dataproduct_type": "event", "calib_level": 2, "s_ra": ra, "s_dec": dec,
                     "s_fov": 5.0, "s_region": fov_polygon(ra, dec, 2.5),
                     "t_min": 53000 + i * 0.01, "t_max": 53000.02 + i * 0.01,
                     "energy_min": 0.1, "energy_max": 100.0, "target_name": f"T{i % 50}"})  # fmt: skip
    start = time.perf_counter()
    for row in rows:
        archive_db.upsert_dataset(conn, row, files)
    conn.commit()
    elapsed = time.perf_counter() - start
    conn.close()
    count = sqlite3.connect(db).execute('SELECT count(*) FROM "ivoa.obscore"').fetchone()[0]
    assert count == n_rows
    rate = n_rows / elapsed
    print(f"DB insert path: {n_rows} synthetic rows in {elapsed:.2f} s = {rate:,.0f} rows/s "
          f"({1000 / rate:.2f} s per 1000 rows)")  # fmt: skip
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one release, 2000 rows")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        per_run = bench_releases(Path(tmp), args.quick)
        rate = bench_insert(Path(tmp), 2000 if args.quick else 20000)
    slowest = max(per_run.values())
    print(
        f"ratio: reading+hashing a real run costs {slowest * rate:,.0f}x one DB insert "
        f"(the file work dominates; insert is {100 / (1 + slowest * rate):.2f}% of a run)"
    )


if __name__ == "__main__":
    main()
