"""UWS jobs survive a restart of the service, kill -9 included (real server processes)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx
import pytest

from ctanb.archive.synthetic import make_synthetic_db

UWS = "{http://www.ivoa.net/xml/UWS/v1.0}"
VELA = {"Authorization": "Bearer demo-token-vela"}
PKS = {"Authorization": "Bearer demo-token-pks2155"}
SLOW = (  # a triple self-join of 3000 rows: hours of work unless stopped
    "SELECT COUNT(*) AS n FROM ivoa.obscore AS a, ivoa.obscore AS b, ivoa.obscore AS c "
    "WHERE a.s_ra < b.s_ra AND b.t_min <> c.t_max"
)
QUICK = "SELECT TOP 3 obs_id, s_ra FROM ivoa.obscore ORDER BY obs_id"
SERVER = """
import sys, time
from ctanb.archive.policy import AccessPolicy
from ctanb.archive.service import ArchiveServer
srv = ArchiveServer(sys.argv[1], policy=AccessPolicy.demo(), jobs_db=sys.argv[2],
                    async_workers=1).start()
print(srv.url, flush=True)
while True:
    time.sleep(3600)
"""


def start(db: Path, jobs_db: Path) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(db), str(jobs_db)], stdout=subprocess.PIPE, text=True
    )
    url = proc.stdout.readline().strip()
    assert url.startswith("http://127.0.0.1:"), f"the server did not start (exit {proc.poll()})"
    return proc, url


def doc(url: str, headers: dict = VELA, **params: str) -> ET.Element:
    r = httpx.get(url, params=params, headers=headers, timeout=90)
    assert r.status_code == 200, r.text
    return ET.fromstring(r.content)


def job(url: str, query: str, headers: dict = VELA, **extra: str) -> str:
    r = httpx.post(f"{url}/async", data={"LANG": "ADQL", "QUERY": query, **extra}, headers=headers)
    assert r.status_code == 303, r.text
    return r.headers["location"].rsplit("/", 1)[1]


@pytest.fixture(scope="module")
def slow_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_synthetic_db(Path(tmp_path_factory.mktemp("synthetic")) / "s.db", 3000)


def test_kill_9_keeps_finished_jobs_and_marks_interrupted_ones(slow_db: Path, tmp_path) -> None:
    jobs_db = tmp_path / "jobs.db"
    proc, url = start(slow_db, jobs_db)
    try:
        done = job(url, QUICK, PHASE="RUN", RUNID="done")
        assert doc(f"{url}/async/{done}", WAIT="60").findtext(f"{UWS}phase") == "COMPLETED"
        result = httpx.get(f"{url}/async/{done}/results/result", headers=VELA).content
        anon_done = job(url, QUICK, headers={}, PHASE="RUN")
        assert doc(f"{url}/async/{anon_done}", {}, WAIT="60").findtext(f"{UWS}phase") == (
            "COMPLETED"
        )
        running = job(url, SLOW, PHASE="RUN")
        phase = doc(f"{url}/async/{running}", WAIT="60", PHASE="QUEUED").findtext(f"{UWS}phase")
        assert phase == "EXECUTING"
        queued = job(url, SLOW, PHASE="RUN")  # one worker: it waits behind the running one
        assert httpx.get(f"{url}/async/{queued}/phase", headers=VELA).text == "QUEUED"
        pending = job(url, QUICK, RUNID="later")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL

    proc, url = start(slow_db, jobs_db)
    try:
        # finished jobs are as before, results downloadable byte for byte
        d = doc(f"{url}/async/{done}")
        assert d.findtext(f"{UWS}phase") == "COMPLETED" and d.findtext(f"{UWS}runId") == "done"
        assert d.findtext(f"{UWS}ownerId") == "vela-team"
        r = httpx.get(f"{url}/async/{done}/results/result", headers=VELA)
        assert r.status_code == 200 and r.content == result
        r = httpx.get(f"{url}/async/{anon_done}/results/result")
        assert r.status_code == 200 and r.content == result
        # interrupted ones are ERROR with the reason, never 404
        for job_id in (running, queued):
            d = doc(f"{url}/async/{job_id}")
            assert d.findtext(f"{UWS}phase") == "ERROR"
            message = d.findtext(f"{UWS}errorSummary/{UWS}message")
            assert message == "interrupted by a service restart"
            err = httpx.get(f"{url}/async/{job_id}/error", headers=VELA)
            assert err.status_code == 200 and "interrupted by a service restart" in err.text
        # a pending job can still run
        assert doc(f"{url}/async/{pending}").findtext(f"{UWS}phase") == "PENDING"
        httpx.post(f"{url}/async/{pending}/phase", data={"PHASE": "RUN"}, headers=VELA)
        assert doc(f"{url}/async/{pending}", WAIT="60").findtext(f"{UWS}phase") == "COMPLETED"
        # owners still hold: listed to the owner, refused to others
        listing = doc(f"{url}/async")
        listed = {r.get("id") for r in listing.iter(f"{UWS}jobref")}
        assert listed == {done, running, queued, pending}
        assert httpx.get(f"{url}/async/{done}", headers=PKS).status_code == 403
    finally:
        proc.terminate()
        proc.wait(30)


def test_a_stopped_service_ends_running_jobs_as_interrupted(slow_db: Path, tmp_path) -> None:
    from ctanb.archive.policy import AccessPolicy
    from ctanb.archive.service import ArchiveServer

    jobs_db = str(tmp_path / "jobs.db")
    with ArchiveServer(slow_db, policy=AccessPolicy.demo(), jobs_db=jobs_db) as srv:
        running = job(srv.url, SLOW, PHASE="RUN")
        phase = doc(f"{srv.url}/async/{running}", WAIT="60", PHASE="QUEUED").findtext(f"{UWS}phase")
        assert phase == "EXECUTING"
    with ArchiveServer(slow_db, policy=AccessPolicy.demo(), jobs_db=jobs_db) as srv:
        d = doc(f"{srv.url}/async/{running}")
        assert d.findtext(f"{UWS}phase") == "ERROR"
        assert d.findtext(f"{UWS}errorSummary/{UWS}message") == "interrupted by a service restart"
