"""Benchmark of ctanb.jobs: job start latency, overhead against a plain call, list latency.

Run ``.venv/bin/python bench/bench_jobs.py`` (``--quick`` for a short run). Prints
the figures and writes ``bench/results/jobs.json``.

- submit -> EXECUTING latency (a new Python process importing the runner) and
  submit -> COMPLETED of a trivial function, against calling it in the kernel
  and against a bare ``python -c pass`` process start (the floor);
- ``JobManager.list()`` latency with N jobs in the store (what the panel polls).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from ctanb.jobs import JobManager, JobRecord, Phase

BENCH = Path(__file__).resolve().parent


def trivial(x: int = 1) -> dict:
    """The job run: nothing but a return value."""
    return {"x": x}


def _seconds(a: str, b: str) -> float:
    return (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds()


def job_latency(jobs: JobManager, n: int) -> dict[str, float]:
    to_exec, to_done, wall = [], [], []
    for _ in range(n):
        start = time.perf_counter()
        job = jobs.submit("bench_jobs:trivial", {"x": 1}).wait(120)
        wall.append(time.perf_counter() - start)
        assert job.record.phase == Phase.COMPLETED, job.log
        history = dict(job.record.history)
        to_exec.append(_seconds(history["PENDING"], history["EXECUTING"]))
        to_done.append(_seconds(history["PENDING"], history["COMPLETED"]))
    return {
        "submit_to_executing_s": statistics.median(to_exec),
        "submit_to_completed_s": statistics.median(to_done),
        "submit_wait_wall_s": statistics.median(wall),
    }


def plain_call(n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        trivial(1)
    return (time.perf_counter() - start) / n


def bare_process(n: int) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def list_latency(jobs: JobManager, n_jobs: int, repeats: int) -> float:
    records = [
        JobRecord(
            id=f"bench{i:08d}",
            kind="callable",
            target="x:y",
            name=f"job {i}",
            owner="bench",
            phase=Phase.COMPLETED,
            parameters={"i": i},
            results={"sum": i},
        )
        for i in range(n_jobs)
    ]
    for record in records:
        jobs.store.add(record)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        listed = jobs.list(limit=200)
        times.append(time.perf_counter() - start)
    assert len(listed) == 200
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="short run")
    args = parser.parse_args()
    n = 3 if args.quick else 10
    n_jobs = 500 if args.quick else 5000
    sys.path.insert(0, str(BENCH))

    os.environ["PYTHONPATH"] = os.pathsep.join([str(BENCH), os.environ.get("PYTHONPATH", "")])
    with tempfile.TemporaryDirectory() as tmp:
        jobs = JobManager(Path(tmp) / "jobs.db", jobs_dir=Path(tmp) / "jobs")
        figures = job_latency(jobs, n)
        figures["plain_call_s"] = plain_call(10_000)
        figures["bare_python_process_s"] = bare_process(n)
        figures["overhead_vs_plain_call"] = (
            figures["submit_to_completed_s"] / figures["plain_call_s"]
        )
        figures["start_vs_bare_process"] = (
            figures["submit_to_executing_s"] / figures["bare_python_process_s"]
        )
        figures[f"list_200_of_{n_jobs}_jobs_ms"] = list_latency(jobs, n_jobs, 20) * 1e3
    for key, value in figures.items():
        print(f"{key:36s} {value:12.6g}")
    out = BENCH / "results" / "jobs.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"quick": args.quick, **figures}, indent=1))
    print(f"written {out}")


if __name__ == "__main__":
    main()
