"""A bounded load test of the embedded archive: 50 concurrent clients mixing /sync
queries, /async jobs, DataLink and file downloads against a real server process.

Bounded in count (50 clients x 16 operations) and time (90 s); it prints the
request count, errors and p50/p99 latencies per kind, and asserts no error and no
HTTP 500. Speed targets live in bench/; the bounds here only catch hangs.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx
import pytest

CLIENTS = 50
OPERATIONS = 16  # per client
DEADLINE_S = 90.0
UWS = "{http://www.ivoa.net/xml/UWS/v1.0}"
SERVER = """
import sys, time
from ctanb.archive.policy import AccessPolicy
from ctanb.archive.service import ArchiveServer
# 50 users behind one address: quotas sized for them (the defaults would refuse some)
srv = ArchiveServer(sys.argv[1], policy=AccessPolicy.demo(), jobs_db=sys.argv[2],
                    max_active_jobs=200, jobs_per_minute=10000).start()
print(srv.url, flush=True)
while True:
    time.sleep(3600)
"""
QUERIES = (
    "SELECT TOP 20 obs_id, s_ra, s_dec, t_min FROM ivoa.obscore ORDER BY obs_id",
    "SELECT obs_id, access_url FROM ivoa.obscore WHERE CONTAINS(POINT('ICRS', s_ra, s_dec), "
    "CIRCLE('ICRS', 83.63, 22.01, 3)) = 1",
    "SELECT obs_collection, COUNT(*) AS n FROM ivoa.obscore GROUP BY obs_collection",
    "SELECT TOP 5 target_name, target_class FROM ivoa.obscore WHERE target_class = 'blazar'",
)


@pytest.fixture(scope="module")
def server(archive_db: Path, tmp_path_factory: pytest.TempPathFactory):
    jobs_db = tmp_path_factory.mktemp("load") / "jobs.db"
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(archive_db), str(jobs_db)],
        stdout=subprocess.PIPE,
        text=True,
    )
    url = proc.stdout.readline().strip()
    assert url.startswith("http://"), f"the server did not start (exit {proc.poll()})"
    yield url
    proc.terminate()
    proc.wait(30)


class Tally:
    def __init__(self) -> None:
        self.times: dict[str, list[float]] = {}
        self.errors: list[str] = []
        self.status: dict[int, int] = {}

    async def call(self, kind: str, coro, ok: tuple[int, ...] = (200,)) -> httpx.Response | None:
        t0 = time.monotonic()
        try:
            resp = await coro
        except httpx.HTTPError as exc:
            self.errors.append(f"{kind}: {type(exc).__name__} {exc}")
            return None
        self.times.setdefault(kind, []).append(time.monotonic() - t0)
        self.status[resp.status_code] = self.status.get(resp.status_code, 0) + 1
        if resp.status_code not in ok:
            self.errors.append(f"{kind}: HTTP {resp.status_code} {resp.text[:200]}")
            return None
        return resp


async def _sync(c: httpx.AsyncClient, url: str, t: Tally, i: int, _: list) -> None:
    data = {"LANG": "ADQL", "QUERY": QUERIES[i % len(QUERIES)]}
    await t.call("sync", c.post(f"{url}/sync", data=data))


async def _async(c: httpx.AsyncClient, url: str, t: Tally, i: int, _: list) -> None:
    data = {"LANG": "ADQL", "QUERY": QUERIES[i % len(QUERIES)], "PHASE": "RUN"}
    created = await t.call("async-create", c.post(f"{url}/async", data=data), (303,))
    if created is None:
        return
    job = created.headers["location"]
    doc = await t.call("async-wait", c.get(job, params={"WAIT": "30"}))
    if doc is None:
        return
    phase = ET.fromstring(doc.content).findtext(f"{UWS}phase")
    if phase != "COMPLETED":
        t.errors.append(f"async: job ended {phase}")
        return
    await t.call("async-result", c.get(f"{job}/results/result"))
    await t.call("async-delete", c.delete(job), (303,))


async def _datalink(c: httpx.AsyncClient, url: str, t: Tally, i: int, rows: list) -> None:
    did = rows[i % len(rows)][0]
    await t.call("datalink", c.get(f"{url}/datalink", params={"ID": did}))


async def _file(c: httpx.AsyncClient, url: str, t: Tally, i: int, rows: list) -> None:
    resp = await t.call("file", c.get(rows[i % len(rows)][1]))
    if resp is not None and len(resp.content) != int(resp.headers["content-length"]):
        t.errors.append("file: truncated")


KINDS = (_sync, _async, _datalink, _file)


async def _client(n: int, url: str, t: Tally, rows: list, deadline: float) -> int:
    done = 0
    limits = httpx.Limits(max_connections=4)
    async with httpx.AsyncClient(timeout=60, limits=limits) as c:
        for k in range(OPERATIONS):
            if time.monotonic() > deadline:
                break
            await KINDS[(n + k) % len(KINDS)](c, url, t, n * OPERATIONS + k, rows)
            done += 1
    return done


def _pct(values: list[float], q: float) -> float:
    return (
        statistics.quantiles(values, n=100, method="inclusive")[q - 1]
        if len(values) > 1
        else values[0]
    )


def test_50_clients_mixed_load(server: str) -> None:
    r = httpx.post(
        f"{server}/sync",
        data={"LANG": "ADQL", "RESPONSEFORMAT": "csv", "QUERY": "SELECT TOP 30 "
              "obs_publisher_did, access_url FROM ivoa.obscore WHERE data_rights = 'public' "
              "AND obs_collection = 'HESS-DL3-DR1' ORDER BY obs_id"},
        timeout=60,
    )  # fmt: skip
    assert r.status_code == 200, r.text
    rows = [line.split(",") for line in r.text.strip().splitlines()[1:]]
    assert len(rows) == 30
    tally = Tally()

    async def main() -> list[int]:
        deadline = time.monotonic() + DEADLINE_S
        return await asyncio.gather(
            *(_client(n, server, tally, rows, deadline) for n in range(CLIENTS))
        )

    t0 = time.monotonic()
    done = asyncio.run(main())
    elapsed = time.monotonic() - t0
    every = [x for v in tally.times.values() for x in v]
    print(
        f"\nload: {CLIENTS} clients, {sum(done)} operations, {len(every)} requests in "
        f"{elapsed:.1f} s; errors {len(tally.errors)}; status counts {tally.status}"
    )
    for kind, values in sorted(tally.times.items()):
        print(
            f"  {kind:13s} n={len(values):4d}  p50={_pct(values, 50) * 1000:7.0f} ms  "
            f"p99={_pct(values, 99) * 1000:7.0f} ms"
        )
    print(f"  {'all':13s} n={len(every):4d}  p50={_pct(every, 50) * 1000:7.0f} ms  "
          f"p99={_pct(every, 99) * 1000:7.0f} ms")  # fmt: skip
    assert tally.status.get(500, 0) == 0
    assert tally.errors == [], tally.errors[:5]
    assert sum(done) == CLIENTS * OPERATIONS, "the load did not finish within its time bound"
