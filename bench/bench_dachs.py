"""Cone-search latency: embedded archive vs DaCHS, same synthetic rows, one run.

    .venv/bin/python bench/bench_dachs.py            # 1,000,000 rows (root: runs deploy/dachs/up)
    .venv/bin/python bench/bench_dachs.py --quick    # 50,000 rows, fewer repetitions

Both archives serve the same SQLite file made by ``make_synthetic_db``; DaCHS gets it
through ``deploy/dachs/up --db FILE --no-region-index``: at a million rows only the
index the cone search uses is built (q3c on s_ra/s_dec, clustered); the GIST index
on s_region (about 0.5 ms per row, ~9 min at 1M rows) is left out. The rows are
loaded with COPY. Queries: CONTAINS(POINT(s_ra, s_dec), CIRCLE(r)) with r = 1 and
3 deg, 4 columns, over TAP /sync (VOTable), the same random centres for both.
Both answers must have the same rows (checked).

Afterwards ctanb.obs in DaCHS holds the synthetic rows; the next ``deploy/dachs/up``
with the real archive re-imports it (the export digest changed).
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import requests
from astropy.io.votable import parse_single_table

from ctanb.archive.policy import AccessPolicy
from ctanb.archive.service import ArchiveServer
from ctanb.archive.synthetic import make_synthetic_db

ROOT = Path(__file__).resolve().parent.parent
QUERY = (
    "SELECT obs_publisher_did, s_ra, s_dec, t_min FROM ivoa.obscore "
    "WHERE 1=CONTAINS(POINT('ICRS', s_ra, s_dec), CIRCLE('ICRS', {ra}, {dec}, {r}))"
)


def _query(session: requests.Session, url: str, adql: str) -> tuple[float, set[str]]:
    start = time.perf_counter()
    resp = session.post(
        url + "/sync",
        data={"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": adql, "MAXREC": "1000000"},
        timeout=300,
    )
    elapsed = time.perf_counter() - start
    resp.raise_for_status()
    table = parse_single_table(io.BytesIO(resp.content)).to_table()
    dids = {str(v.decode() if isinstance(v, bytes) else v) for v in table["obs_publisher_did"]}
    return elapsed, dids


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50k rows, 5 centres")
    parser.add_argument("--rows", type=int)
    parser.add_argument("--work", type=Path, default=Path("/var/tmp/ctanb-bench-dachs"))
    args = parser.parse_args()
    n_rows = args.rows or (50_000 if args.quick else 1_000_000)
    n_centres, repeats = (5, 3) if args.quick else (20, 5)
    if os.geteuid() != 0:
        sys.exit("bench_dachs: run as root (deploy/dachs/up installs and runs DaCHS)")

    db = args.work / f"synthetic-{n_rows}.db"
    t0 = time.perf_counter()
    if not db.exists():
        make_synthetic_db(db, n_rows, seed=1)
    print(f"synthetic archive: {n_rows} rows ({time.perf_counter() - t0:.1f} s)")

    t0 = time.perf_counter()
    up = subprocess.run(
        ["bash", str(ROOT / "deploy" / "dachs" / "up"), "--db", str(db), "--no-region-index"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if up.returncode:
        sys.exit(f"deploy/dachs/up failed:\n{up.stderr[-3000:]}")
    dachs_url = up.stdout.strip().splitlines()[-1]
    print(f"DaCHS up (export + COPY + q3c index): {time.perf_counter() - t0:.1f} s")

    rng = np.random.default_rng(7)
    centres = [(float(rng.uniform(0, 360)), float(np.degrees(np.arcsin(rng.uniform(-1, 1)))))
               for _ in range(n_centres)]  # fmt: skip
    session = requests.Session()
    with ArchiveServer(db, policy=AccessPolicy.demo()) as server:
        urls = {"embedded": server.url, "dachs": dachs_url}
        for url in urls.values():  # warm caches and connections
            _query(session, url, QUERY.format(ra=10.0, dec=10.0, r=1.0))
        for radius in (1.0, 3.0):
            times: dict[str, list[float]] = {k: [] for k in urls}
            n_found = []
            for ra, dec in centres:
                adql = QUERY.format(ra=ra, dec=dec, r=radius)
                answers = {}
                for name, url in urls.items():
                    for _ in range(repeats):
                        elapsed, dids = _query(session, url, adql)
                        times[name].append(elapsed)
                    answers[name] = dids
                if answers["embedded"] != answers["dachs"]:
                    sys.exit(f"different answers for {adql}")
                n_found.append(len(answers["dachs"]))
            emb = statistics.median(times["embedded"]) * 1e3
            dac = statistics.median(times["dachs"]) * 1e3
            print(
                f"cone r={radius:.0f} deg ({statistics.mean(n_found):.0f} rows on average, "
                f"{len(centres)} centres x {repeats}): embedded {emb:.1f} ms, DaCHS {dac:.1f} ms "
                f"median; embedded/DaCHS latency ratio {emb / dac:.2f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
