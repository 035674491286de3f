"""Benchmark of ctanb.provenance: recording overhead, hashing throughput, query latency.

Run ``.venv/bin/python bench/bench_provenance.py`` (``--quick`` for a short run).
Prints the figures and writes ``bench/results/provenance.json``.

- recording overhead per activity (no hashing): in memory only, and into SQLite;
- hashing throughput of :func:`sha256_file` against ``hashlib.sha256`` over the same
  bytes (target ratio <= 1.1);
- query latency with N recorded activities (100k; 10k with --quick), target <= 50 ms.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from ctanb.provenance import Activity, ProvenanceStore, sha256_file
from ctanb.provenance._agents import current_agents
from ctanb.provenance.records import ActivityRecord, EntityRecord, ProvenanceGraph, Relation


def recording_overhead(n: int, store: object) -> float:
    start = time.perf_counter()
    for index in range(n):
        with Activity("bench", version="1", store=store) as act:
            act.parameter("index", index)
            act.parameter("binsz", 0.02)
    return (time.perf_counter() - start) / n * 1e3


def hashing(path: Path, repeats: int) -> dict[str, float]:
    size = path.stat().st_size
    ours, ref = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        digest_ours = sha256_file(path)
        t1 = time.perf_counter()
        digest_ref = hashlib.sha256(path.read_bytes()).hexdigest()
        t2 = time.perf_counter()
        assert digest_ours == digest_ref
        ours.append(t1 - t0)
        ref.append(t2 - t1)
    best_ours, best_ref = min(ours), min(ref)
    return {
        "file_mib": size / 2**20,
        "ours_mib_s": size / 2**20 / best_ours,
        "hashlib_mib_s": size / 2**20 / best_ref,
        "time_ratio": best_ours / best_ref,
    }


def synthetic_graph(index: int, agents: list) -> ProvenanceGraph:
    act_id, out_id = f"ctanb:activity-{uuid.uuid4().hex}", f"ctanb:entity-{uuid.uuid4().hex}"
    run = 20000 + index % 5000
    raw = EntityRecord(
        id=f"ctanb:file-run{run}",
        kind="file",
        location=f"/data/run_{run}.fits",
        sha256="0" * 64,
        obs_id=str(run),
        data_level="DL3",
    )
    out = EntityRecord(
        id=out_id,
        kind="file",
        location=f"/products/p{index}.fits",
        data_level="DL4",
        product_type="counts",
    )
    act = ActivityRecord(
        id=act_id,
        name=f"step-{index % 20}",
        version=f"{index % 7}.0",
        status="completed",
        start_time=f"2024-01-01T00:00:{index % 60:02d}+00:00",
        callable="m:f",
        parameters={"binsz": round(0.01 * (index % 10), 2), "index": index},
        used=[Relation(raw.id, "events")],
        generated=[Relation(out_id, "out")],
        agents=agents,
    )
    return ProvenanceGraph(activities={act_id: act}, entities={raw.id: raw, out_id: out})


def fill(store: ProvenanceStore, n: int) -> tuple[float, str]:
    agents = current_agents()
    start, batch, last_product = time.perf_counter(), [], ""
    for index in range(n):
        graph = synthetic_graph(index, agents)
        batch.append(graph)
        last_product = next(iter(graph.activities.values())).generated[0].entity_id
        if len(batch) == 2000:
            store.write_graphs(batch)
            batch = []
    if batch:
        store.write_graphs(batch)
    return time.perf_counter() - start, last_product


def timed(func, repeats: int = 7) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        func()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="short run (10k activities, 64 MiB file)"
    )
    args = parser.parse_args()
    n_activities = 10_000 if args.quick else 100_000
    file_mib = 64 if args.quick else 512
    results: dict[str, object] = {"quick": args.quick}
    with tempfile.TemporaryDirectory(prefix="bench-prov-") as tmp:
        folder = Path(tmp)
        n = 200 if args.quick else 1000
        results["record_ms_per_activity_memory"] = recording_overhead(n, None)
        results["record_ms_per_activity_sqlite"] = recording_overhead(
            n, ProvenanceStore(folder / "rec.db")
        )
        print(
            f"recording overhead per activity (no hashing): in memory "
            f"{results['record_ms_per_activity_memory']:.3f} ms, into SQLite "
            f"{results['record_ms_per_activity_sqlite']:.3f} ms"
        )

        data = folder / "blob.bin"
        with open(data, "wb") as handle:
            for _ in range(file_mib):
                handle.write(os.urandom(2**20))
        results["hashing"] = hashing(data, 3)
        h = results["hashing"]
        print(
            f"hashing {h['file_mib']:.0f} MiB: sha256_file {h['ours_mib_s']:.0f} MiB/s, hashlib.sha256 over the "
            f"same bytes {h['hashlib_mib_s']:.0f} MiB/s, time ratio {h['time_ratio']:.3f} (target <= 1.1)"
        )
        data.unlink()

        store = ProvenanceStore(folder / "big.db")
        seconds, product = fill(store, n_activities)
        results["fill_seconds"] = seconds
        results["activities"] = store.count_activities()
        print(
            f"filled {results['activities']} activities in {seconds:.1f} s (batched write_graphs)"
        )
        queries = {
            "products_of_name_version": lambda: store.products(
                name="step-3", version="3.0", limit=100
            ),
            "derived_from_obs_id": lambda: store.derived_from(obs_id=21234),
            "activities_with_parameter": lambda: store.activities(
                parameters={"index": n_activities // 2}
            ),
            "activities_by_agent_limit100": lambda: store.activities(agent="gammapy", limit=100),
            "lineage_back_all": lambda: store.lineage(product, depth=None, direction="BACK"),
            "provsap_json_depth_all": lambda: store.provsap(product, DEPTH="ALL"),
        }
        latency = {name: timed(func) for name, func in queries.items()}
        results["query_ms"] = latency
        for name, ms in latency.items():
            flag = "ok" if ms <= 50 else "SLOW"
            print(f"query {name:32s} {ms:8.2f} ms  [{flag}, target <= 50 ms]")
    out = Path(__file__).resolve().parent / "results" / "provenance.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    sys.exit(main())
