"""Benchmark of the simultaneity search (``ivo_tmoc_overlap``) on 1M synthetic rows.

Builds (once, cached under the temp folder) a synthetic archive
(:func:`ctanb.archive.synthetic.make_synthetic_db`: runs of 10-30 min spread over
MJD 60000-62000) with its ``ivoa.obscore_hea`` (t_intervals time MOCs, private MJD
intervals and the time R-tree, as ingestion writes them), then times translate +
execute + fetch, in process, of

- the TMOC search: ``WHERE ivo_tmoc_overlap(t_intervals, '<tmoc of 3 X-ray
  pointings>') > 0`` with the overlap in the SELECT list (target: p50 <= 50 ms);
- the baseline in the same run: the same pointings as a plain ``t_min``/``t_max``
  range query on the indexed ObsCore columns (what a user did by hand before);

and prints the ratio TMOC / baseline and the full scan (the overlap without the
R-tree) for comparison. Results go to bench/results/bench_tmoc.json.

    .venv/bin/python bench/bench_tmoc.py            # 1M rows
    .venv/bin/python bench/bench_tmoc.py --quick    # 100k rows, fewer repeats
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from mocpy import TimeMOC

from ctanb.archive import db, gti
from ctanb.archive.adql import load_schema, register_functions, translate
from ctanb.archive.obscore_hea import HEA_TIME_INDEX, intervals_text
from ctanb.archive.synthetic import make_synthetic_db
from ctanb.datamodel import OBSCORE_HEA_COLUMNS, OBSCORE_HEA_TABLE, OBSCORE_TABLE

RESULTS = Path(__file__).parent / "results"


def fill_hea(path: Path, batch: int = 50_000) -> None:
    """One ``ivoa.obscore_hea`` row per synthetic ObsCore row (one GTI = [t_min, t_max])."""
    conn = db.connect(path)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    names = [c.name for c in OBSCORE_HEA_COLUMNS] + ["_t_mjd"]
    insert = (f'INSERT INTO "{OBSCORE_HEA_TABLE}" (rowid, {", ".join(names)}) '
              f"VALUES (?, {', '.join('?' * len(names))})")  # fmt: skip
    cur = conn.execute(
        f"SELECT rowid, obs_publisher_did, t_min, t_max, energy_min, energy_max, ev_xel "
        f'FROM "{OBSCORE_TABLE}" ORDER BY rowid'
    )
    while rows := cur.fetchmany(batch):
        iv = np.array([(r[2], r[3]) for r in rows])
        us = gti.mjd_to_tcb_microseconds(iv)
        values, index = [], []
        for r, (a, b), u in zip(rows, iv, us, strict=True):
            moc = gti.tmoc_to_string(TimeMOC.from_depth61_ranges(61, u.reshape(1, 2)))
            hea = {"obs_publisher_did": r[1], "dataproduct_type": "hea-event-list",
                   "ev_xel": r[6], "t_intervals": moc, "energy_min": r[4] * 1e12,
                   "energy_max": r[5] * 1e12, "obs_mode": "wobble", "messenger": "photon",
                   "_t_mjd": intervals_text(np.array([[a, b]]))}  # fmt: skip
            values.append((r[0], *(hea.get(n) for n in names)))
            index.append((r[0], a, b))
        conn.executemany(insert, values)
        conn.executemany(f'INSERT INTO "{HEA_TIME_INDEX}" VALUES (?, ?, ?)', index)
        conn.commit()
    conn.execute("ANALYZE")
    conn.commit()
    conn.close()


def build(path: Path, n_rows: int) -> None:
    t0 = time.perf_counter()
    tmp = path.with_suffix(".part")
    make_synthetic_db(tmp, n_rows, seed=3)
    t1 = time.perf_counter()
    fill_hea(tmp)
    t2 = time.perf_counter()
    tmp.rename(path)
    print(f"built {n_rows} rows: obscore {t1 - t0:.1f} s, obscore_hea {t2 - t1:.1f} s "
          f"({(t2 - t1) / n_rows * 1e6:.0f} us per row) -> {path}")  # fmt: skip


def _timed(conn, schema, adql: str) -> tuple[float, int]:
    t0 = time.perf_counter()
    q = translate(adql, schema, row_limit=100_001)
    rows = conn.execute(q.sql, q.params).fetchall()
    return (time.perf_counter() - t0) * 1e3, len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100k rows, fewer repeats")
    parser.add_argument("--rows", type=int, default=None)
    args = parser.parse_args()
    n_rows = args.rows or (100_000 if args.quick else 1_000_000)
    repeats = 20 if args.quick else 60
    path = Path(tempfile.gettempdir()) / f"ctanb-bench-tmoc-{n_rows}.db"
    if not path.exists():
        build(path, n_rows)
    conn = db.connect(path, readonly=True)
    register_functions(conn)
    schema = load_schema(conn)
    rng = random.Random(11)
    stats: dict[str, list] = {"tmoc": [], "baseline": [], "rows_tmoc": [], "rows_base": []}
    for _ in range(repeats):
        # three X-ray pointings of 1 h on consecutive days
        day = rng.uniform(60010.0, 61990.0)
        iv = [(day + k + 0.1, day + k + 0.1 + 1 / 24) for k in range(3)]
        moc = gti.tmoc_to_string(gti.intervals_to_tmoc(iv))
        tmoc_q = (f"SELECT obs_publisher_did, ivo_tmoc_overlap(t_intervals, '{moc}') AS overlap_s "
                  f"FROM ivoa.obscore_hea WHERE ivo_tmoc_overlap(t_intervals, '{moc}') > 0")  # fmt: skip
        ranges = " OR ".join(f"(t_min <= {b!r} AND t_max >= {a!r})" for a, b in iv)
        base_q = f"SELECT obs_publisher_did, t_min, t_max FROM ivoa.obscore WHERE {ranges}"
        for key, q in (("tmoc", tmoc_q), ("baseline", base_q)):
            ms, n = _timed(conn, schema, q)
            stats[key].append(ms)
            stats["rows_" + ("tmoc" if key == "tmoc" else "base")].append(n)
    # the same overlap test on every row (no R-tree), in SQL directly
    mjd = "mjd:" + " ".join(repr(float(v)) for pair in iv for v in pair)
    t0 = time.perf_counter()
    conn.execute(f'SELECT count(*) FROM "{OBSCORE_HEA_TABLE}" '
                 f"WHERE adql_tmoc_overlap(\"_t_mjd\", '{mjd}') > 0").fetchall()  # fmt: skip
    scan_ms = (time.perf_counter() - t0) * 1e3
    p50 = {k: statistics.median(stats[k]) for k in ("tmoc", "baseline")}
    ratio = p50["tmoc"] / p50["baseline"]
    print(f"{n_rows} rows, {repeats} random sets of 3 one-hour pointings (ms, wall)")
    print(f"  TMOC search  p50 {p50['tmoc']:7.2f}  p95 {sorted(stats['tmoc'])[int(0.95 * (repeats - 1))]:7.2f}"
          f"  rows {statistics.mean(stats['rows_tmoc']):6.1f}   target p50 <= 50 ms")  # fmt: skip
    print(f"  t_min/t_max baseline p50 {p50['baseline']:7.2f}"
          f"  rows {statistics.mean(stats['rows_base']):6.1f}")  # fmt: skip
    print(f"  ratio TMOC / baseline {ratio:.2f}; full scan without the R-tree {scan_ms:.0f} ms")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bench_tmoc.json").write_text(json.dumps({
        "rows": n_rows, "p50_tmoc_ms": p50["tmoc"], "p50_baseline_ms": p50["baseline"],
        "ratio": ratio, "scan_ms": scan_ms, "target_met": p50["tmoc"] <= 50.0,
    }, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
