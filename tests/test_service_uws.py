"""UWS 1.1 asynchronous TAP jobs of the embedded service, over real HTTP."""

from __future__ import annotations

import io
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx
import pytest
from astropy.io.votable import parse_single_table

from ctanb.archive.service import ArchiveServer
from ctanb.archive.synthetic import make_synthetic_db

UWS = "{http://www.ivoa.net/xml/UWS/v1.0}"
QUERY = "SELECT TOP 5 obs_id, obs_publisher_did, access_url FROM ivoa.obscore ORDER BY obs_id"
SLOW = (  # a triple self-join of 3000 rows: hours of work unless stopped
    "SELECT COUNT(*) AS n FROM ivoa.obscore AS a, ivoa.obscore AS b, ivoa.obscore AS c "
    "WHERE a.s_ra < b.s_ra AND b.t_min <> c.t_max"
)


VELA = {"Authorization": "Bearer demo-token-vela"}  # demo policy: group vela-team


def create(url: str, query: str = QUERY, headers: dict | None = None, **extra: str) -> str:
    data = {"LANG": "ADQL", "QUERY": query, **extra}
    resp = httpx.post(f"{url}/async", data=data, headers=headers)
    assert resp.status_code == 303, resp.text
    job_url = resp.headers["location"]
    assert job_url.startswith(f"{url}/async/")
    return job_url


def job_doc(job_url: str, headers: dict | None = None, **params: str) -> ET.Element:
    resp = httpx.get(job_url, params=params, timeout=90, headers=headers)
    assert resp.status_code == 200, resp.text
    return ET.fromstring(resp.content)


def phase_of(job_url: str) -> str:
    return httpx.get(f"{job_url}/phase").text


def test_job_lifecycle(archive_url: str) -> None:
    job_url = create(archive_url, headers=VELA, RUNID="lifecycle-test")
    doc = job_doc(job_url, VELA)
    assert doc.findtext(f"{UWS}phase") == "PENDING"
    assert doc.findtext(f"{UWS}runId") == "lifecycle-test"
    assert doc.findtext(f"{UWS}ownerId") == "vela-team"
    params = {p.get("id"): p.text for p in doc.iter(f"{UWS}parameter")}
    assert params["query"] == QUERY
    # the owner's job list shows it; nobody else's does
    job_id = job_url.rsplit("/", 1)[1]
    listing = ET.fromstring(httpx.get(f"{archive_url}/async", headers=VELA).content)
    assert job_id in [r.get("id") for r in listing.iter(f"{UWS}jobref")]
    assert job_id not in httpx.get(f"{archive_url}/async").text
    get = lambda path="", **kw: httpx.get(f"{job_url}{path}", headers=VELA, **kw)  # noqa: E731
    post = lambda path, **kw: httpx.post(f"{job_url}{path}", headers=VELA, **kw)  # noqa: E731
    # small resources
    assert int(get("/executionduration").text) > 0
    assert get("/quote").text.endswith("Z")
    assert get("/destruction").text.endswith("Z")
    assert get("/owner").text == "vela-team"
    r = post("/executionduration", data={"EXECUTIONDURATION": "120"})
    assert r.status_code == 303 and get("/executionduration").text == "120"
    # run and block until done (UWS 1.1 WAIT)
    r = post("/phase", data={"PHASE": "RUN"})
    assert r.status_code == 303
    doc = job_doc(job_url, VELA, WAIT="30")
    assert doc.findtext(f"{UWS}phase") == "COMPLETED"
    assert doc.find(f"{UWS}startTime").text and doc.find(f"{UWS}endTime").text
    (result,) = doc.iter(f"{UWS}result")
    href = result.get("{http://www.w3.org/1999/xlink}href")
    assert href == f"{job_url}/results/result"
    table = parse_single_table(io.BytesIO(httpx.get(href, headers=VELA).content)).to_table()
    assert len(table) == 5
    assert all(str(u).startswith(archive_url + "/files/") for u in table["access_url"])
    # phase filter of the job list
    done = httpx.get(f"{archive_url}/async", params={"PHASE": "COMPLETED"}, headers=VELA).text
    assert job_id in done
    # delete: 303 to the list, then 404
    r = httpx.delete(job_url, headers=VELA)
    assert r.status_code == 303 and r.headers["location"] == f"{archive_url}/async"
    assert get().status_code == 404


def test_run_on_creation_and_post_action_delete(archive_url: str) -> None:
    job_url = create(archive_url, PHASE="RUN")
    assert job_doc(job_url, WAIT="30").findtext(f"{UWS}phase") == "COMPLETED"
    r = httpx.post(job_url, data={"ACTION": "DELETE"})
    assert r.status_code == 303
    assert httpx.get(job_url).status_code == 404


def test_bad_query_ends_in_error_with_message(archive_url: str) -> None:
    job_url = create(archive_url, "SELECT no_such_column FROM ivoa.obscore", PHASE="RUN")
    doc = job_doc(job_url, WAIT="30")
    assert doc.findtext(f"{UWS}phase") == "ERROR"
    assert "no_such_column" in doc.findtext(f"{UWS}errorSummary/{UWS}message")
    err = httpx.get(f"{job_url}/error")
    assert err.status_code == 200 and "no_such_column" in err.text
    assert httpx.get(f"{job_url}/results/result").status_code == 404


def test_unknown_job_and_bad_phase(archive_url: str) -> None:
    for path in ("", "/phase", "/results/result", "/error", "/parameters"):
        r = httpx.get(f"{archive_url}/async/doesnotexist{path}")
        assert r.status_code == 404, path
        assert "doesnotexist" in r.text and "Traceback" not in r.text
    job_url = create(archive_url)
    r = httpx.post(f"{job_url}/phase", data={"PHASE": "EXPLODE"})
    assert r.status_code == 400 and "PHASE" in r.text
    httpx.delete(job_url)


@pytest.fixture(scope="module")
def slow_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3000 synthetic rows, where a triple self-join runs for hours."""
    return make_synthetic_db(Path(tmp_path_factory.mktemp("synthetic")) / "s.db", 3000)


@pytest.fixture(scope="module")
def slow_server(slow_db: Path):
    with ArchiveServer(slow_db) as server:
        yield server


def test_abort_interrupts_a_running_query(slow_server: ArchiveServer) -> None:
    job_url = create(slow_server.url, SLOW, PHASE="RUN")
    doc = job_doc(job_url, WAIT="30", PHASE="QUEUED")
    assert doc.findtext(f"{UWS}phase") == "EXECUTING"
    time.sleep(0.5)
    assert phase_of(job_url) == "EXECUTING"
    t0 = time.monotonic()
    r = httpx.post(f"{job_url}/phase", data={"PHASE": "ABORT"})
    assert r.status_code == 303
    doc = job_doc(job_url, WAIT="30")
    assert doc.findtext(f"{UWS}phase") == "ABORTED"
    assert time.monotonic() - t0 < 30  # the query alone would run for hours
    assert httpx.get(f"{job_url}/results/result").status_code == 404


def test_sync_query_over_the_time_limit_is_stopped(slow_db: Path) -> None:
    with ArchiveServer(slow_db, sync_timeout_s=1.0) as server:
        t0 = time.monotonic()
        r = httpx.post(f"{server.url}/sync", data={"LANG": "ADQL", "QUERY": SLOW}, timeout=60)
        assert time.monotonic() - t0 < 30  # the query alone would run for hours
        assert r.status_code == 400 and "limit" in r.text and "/async" in r.text
