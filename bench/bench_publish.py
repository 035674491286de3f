"""Benchmark of publishing and of ProvTAP / ProvSAP on the embedded archive (issue 14).

An archive of the four H.E.S.S. Crab runs, served over HTTP on loopback. Measured in
one run, each as the median of repeated requests, beside a baseline (a one-row ObsCore
query on the same server):

- publish of a new real product (a counts map of run 23523, each with another binning);
- ProvTAP "products derived from run N" and ProvSAP ``BACK`` ``DEPTH=ALL`` of one
  product, at N synthetic published products of 100 activities each (a chain from a
  real DL3 run), i.e. 100,000 activities at 1,000 products.

    .venv/bin/python bench/bench_publish.py            # 1,000 products, 100,000 activities
    .venv/bin/python bench/bench_publish.py --quick    # 100 products, 10,000 activities

Side by side, the same ProvTAP query on GAVO DaCHS publishing the same database
(``deploy/dachs/up --db``, run as root under the machine's DaCHS lock
``/tmp/dachs.lock``, shared with other developers' tests); when DaCHS cannot be
started or the lock is not free within ``--dachs-wait`` seconds, the results say
``dachs_not_measured`` and why. ``--no-dachs`` leaves it out.

ProvSAP asks for a different product at each request (nothing is answered from a
previous request's work).

Target: p50 <= 50 ms for both queries. Results go to bench/results/bench_publish.json.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
RUNS = (23523, 23526, 23559, 23592)


def _p50(func, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def _synthetic(db: Path, count: int, chain: int) -> None:
    """*count* published products, each a chain of *chain* activities from a real run."""
    from ctanb.archive import db as archive_db
    from ctanb.archive.provtap import fill_product_activities, insert_product_provenance
    from ctanb.archive.publish import CURATION_TABLE, PRODUCT_INPUTS_TABLE, product_did
    from ctanb.provenance._agents import AgentRecord
    from ctanb.provenance.records import ActivityRecord, EntityRecord, ProvenanceGraph, Relation

    conn = archive_db.connect(db)
    runs = {
        obs: conn.execute(
            'SELECT obs_publisher_did FROM "ivoa.obscore" WHERE obs_id = ?', (str(obs),)
        ).fetchone()[0]
        for obs in RUNS
    }
    gammapy = AgentRecord("ctanb:agent-software-gammapy-2.1", "software", "gammapy", "2.1")
    for i in range(count):
        obs = RUNS[i % len(RUNS)]
        graph = ProvenanceGraph()
        leaf = EntityRecord(f"ctanb:file-run{obs}", "file", obs_id=str(obs),
                            publisher_did=runs[obs], data_level="DL3")  # fmt: skip
        graph.entities[leaf.id] = leaf
        previous = leaf.id
        for k in range(chain):
            out = EntityRecord(f"ctanb:p{i}-e{k}", "file", data_level="DL4",
                               product_type="counts", data_sha256=f"{i}-{k}")  # fmt: skip
            graph.entities[out.id] = out
            graph.activities[f"ctanb:p{i}-a{k}"] = ActivityRecord(
                f"ctanb:p{i}-a{k}", f"step-{k % 10}", "1.0", status="completed",
                parameters={"radius_deg": 0.1 * (k % 5)}, used=[Relation(previous)],
                generated=[Relation(out.id)], agents=[gammapy],
            )  # fmt: skip
            previous = out.id
        did = product_did(previous, f"{i}")
        row = {"obs_publisher_did": did, "obs_id": did.rsplit("?")[1],
               "obs_collection": "CTANB-PRODUCTS", "dataproduct_type": "image",
               "dataproduct_subtype": "DL4-counts", "calib_level": 3}  # fmt: skip
        archive_db.upsert_dataset(conn, row)
        conn.execute(f'INSERT INTO "{PRODUCT_INPUTS_TABLE}" VALUES (?, ?)', (did, runs[obs]))
        conn.execute(
            f'INSERT INTO "{CURATION_TABLE}" VALUES (?, ?, NULL, ?, NULL, ?, ?)',
            (did, previous, "{}", "2026-12-06T00:00:00", graph.serialize("json")),
        )
        insert_product_provenance(conn, did, graph, previous, None, None)
        fill_product_activities(conn, did)  # as publish_file does
        if i % 100 == 99:
            conn.commit()
    conn.commit()
    conn.close()


def _on_dachs(db: Path, baseline: str, derived: str, n_rows: int, repeat: int,
              wait: float) -> dict[str, object]:  # fmt: skip
    """The same queries on DaCHS publishing *db*, under the shared DaCHS lock."""
    import fcntl
    import io
    import subprocess

    from astropy.io.votable import parse_single_table

    if os.geteuid() != 0:
        return {"dachs_not_measured": "deploy/dachs/up needs root"}
    with open("/tmp/dachs.lock", "a") as lock:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    return {"dachs_not_measured": f"/tmp/dachs.lock busy for {wait:.0f} s"}
                time.sleep(2)
        start = time.perf_counter()
        proc = subprocess.run(
            ["bash", str(ROOT / "deploy" / "dachs" / "up"), "--db", str(db), "--no-prov-documents"],
            capture_output=True, text=True, timeout=3600, check=False,
        )  # fmt: skip
        if proc.returncode != 0:
            return {"dachs_not_measured": f"deploy/dachs/up failed: {proc.stderr[-500:]}"}
        out: dict[str, object] = {"dachs_up_s": time.perf_counter() - start}
        tap = proc.stdout.strip().splitlines()[-1]

        def sync(adql: str) -> bytes:
            resp = requests.post(f"{tap}/sync", data={"REQUEST": "doQuery", "LANG": "ADQL",
                                 "QUERY": adql, "MAXREC": "100000"}, timeout=60)  # fmt: skip
            resp.raise_for_status()
            return resp.content

        got = len(parse_single_table(io.BytesIO(sync(derived))).to_table())
        if got != n_rows:
            out["dachs_rows_differ"] = f"DaCHS {got} rows, embedded {n_rows}"
        out["dachs_baseline_p50_ms"] = _p50(lambda: sync(baseline), repeat)
        out["dachs_provtap_derived_from_run_p50_ms"] = _p50(lambda: sync(derived), repeat)
        out["dachs_provtap_derived_from_run_ratio_to_baseline"] = (
            out["dachs_provtap_derived_from_run_p50_ms"] / out["dachs_baseline_p50_ms"]
        )
        out["derived_from_run_rows"] = n_rows
        subprocess.run(["bash", str(ROOT / "deploy" / "dachs" / "down")], capture_output=True,
                       check=False)  # fmt: skip
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 products, fewer repeats")
    parser.add_argument("--no-dachs", action="store_true", help="leave DaCHS out")
    parser.add_argument("--dachs-wait", type=float, default=900,
                        help="seconds to wait for the DaCHS lock (default 900)")  # fmt: skip
    args = parser.parse_args()
    count, repeat = (100, 10) if args.quick else (1000, 30)
    tmp = Path(tempfile.mkdtemp(prefix="ctanb-bench-publish-"))
    os.environ["CTANB_HOME"] = str(tmp / "home")
    sys.path.insert(0, str(ROOT / "tests"))
    import provenance_steps

    import ctanb
    from ctanb._settings import data_dir
    from ctanb.archive.ingest import ingest
    from ctanb.archive.policy import AccessPolicy
    from ctanb.archive.service import ArchiveServer

    runs = data_dir() / "hess-dl3-dr1" / "data"
    db = tmp / "archive.db"
    ingest([runs / f"hess_dl3_dr1_obs_id_{n:06d}.fits.gz" for n in RUNS], db)
    products = []
    for k in range(5):
        out = tmp / f"counts{k}.fits"
        config = provenance_steps.CountsMapConfig(binsz_deg=0.05 + 0.01 * k)
        provenance_steps.CountsMapStep(config).run([str(runs / "hess_dl3_dr1_obs_id_023523.fits.gz")],
                                                   str(out))  # fmt: skip
        products.append(out)
    results: dict[str, float] = {}
    with ArchiveServer(db, policy=AccessPolicy.demo()) as server:
        archive = ctanb.connect(server.url, token="demo-token-crab", progress=False)
        times = []
        for product in products:
            start = time.perf_counter()
            archive.publish(product)
            times.append(time.perf_counter() - start)
        results["publish_new_product_p50_ms"] = statistics.median(times) * 1000

        def sync(adql: str) -> bytes:
            resp = requests.post(f"{server.url}/sync", data={"REQUEST": "doQuery", "LANG": "ADQL",
                                 "QUERY": adql}, timeout=60)  # fmt: skip
            resp.raise_for_status()
            return resp.content

        def table(adql: str) -> Any:
            from astropy.io.votable import parse_single_table

            return parse_single_table(io.BytesIO(sync(adql))).to_table()

        start = time.perf_counter()
        _synthetic(db, count, 100)
        results["synthetic_insert_s"] = time.perf_counter() - start
        results["products"], results["activities"] = count + len(products), count * 100
        baseline = "SELECT TOP 1 obs_id FROM ivoa.obscore WHERE obs_id = '23523'"
        results["baseline_p50_ms"] = _p50(lambda: sync(baseline), repeat)
        derived = ("SELECT o.obs_publisher_did FROM ivoa.obscore AS o JOIN "
                   "provenance.product_progenitor AS p ON p.product_did = o.obs_publisher_did "
                   "WHERE p.obs_id = '23523'")  # fmt: skip
        results["provtap_derived_from_run_p50_ms"] = _p50(lambda: sync(derived), repeat)
        dids = iter([str(d) for d in table(
            f"SELECT TOP {repeat} product_did FROM provenance.product_progenitor "
            "WHERE obs_id = '23526' ORDER BY product_did")["product_did"]])  # fmt: skip

        def provsap() -> None:
            resp = requests.get(f"{server.url}/provsap", params={"ID": next(dids), "DEPTH": "ALL"},
                                timeout=60)  # fmt: skip
            resp.raise_for_status()
            assert len(resp.json()["activity"]) == 100, "not the whole lineage"

        results["provsap_back_all_p50_ms"] = _p50(provsap, repeat)
        n_derived = len(table(derived))
    for key in ("provtap_derived_from_run_p50_ms", "provsap_back_all_p50_ms"):
        results[key.replace("_p50_ms", "_ratio_to_baseline")] = (
            results[key] / results["baseline_p50_ms"]
        )
    if args.no_dachs:
        results["dachs_not_measured"] = "--no-dachs"
    else:
        results.update(_on_dachs(db, baseline, derived, n_derived, repeat, args.dachs_wait))
    print(json.dumps(results, indent=2))
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "bench_publish.json").write_text(json.dumps(results, indent=2))
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)  # ~450 MB at 1,000 products


if __name__ == "__main__":
    main()
