"""UWS jobs under hostile and heavy use, over real HTTP: WAIT that holds no worker,
well-formed documents whatever the client sends, owners and quotas."""

from __future__ import annotations

import asyncio
import io
import logging
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx
import pytest
import pyvo
import requests
from astropy.io.votable import parse_single_table

from ctanb.archive.policy import AccessPolicy
from ctanb.archive.service import ArchiveServer
from ctanb.archive.synthetic import make_synthetic_db

UWS = "{http://www.ivoa.net/xml/UWS/v1.0}"
VELA = {"Authorization": "Bearer demo-token-vela"}  # demo policy: group vela-team
PKS = {"Authorization": "Bearer demo-token-pks2155"}  # another group
SLOW = (  # a triple self-join of 3000 rows: hours of work unless stopped
    "SELECT COUNT(*) AS n FROM ivoa.obscore AS a, ivoa.obscore AS b, ivoa.obscore AS c "
    "WHERE a.s_ra < b.s_ra AND b.t_min <> c.t_max"
)
TRIVIAL = "SELECT TOP 1 obs_id FROM ivoa.obscore"


@pytest.fixture(scope="module")
def slow_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_synthetic_db(Path(tmp_path_factory.mktemp("synthetic")) / "s.db", 3000)


@pytest.fixture(scope="module")
def server(slow_db: Path, tmp_path_factory: pytest.TempPathFactory):
    jobs_db = str(tmp_path_factory.mktemp("jobs") / "jobs.db")
    with ArchiveServer(
        slow_db, policy=AccessPolicy.demo(), jobs_db=jobs_db, max_wait_s=60.0,
        max_active_jobs=5, jobs_per_minute=1000,
    ) as srv:  # fmt: skip
        yield srv


def create(url: str, query: str = TRIVIAL, headers: dict | None = None, **extra: str):
    return httpx.post(
        f"{url}/async", data={"LANG": "ADQL", "QUERY": query, **extra}, headers=headers
    )


def new_job(url: str, query: str = TRIVIAL, headers: dict | None = None, **extra: str) -> str:
    resp = create(url, query, headers, **extra)
    assert resp.status_code == 303, resp.text
    return resp.headers["location"]


def parse(resp: httpx.Response) -> ET.Element:
    assert resp.status_code == 200, resp.text
    return ET.fromstring(resp.content)  # raises on any XML that is not well-formed


@pytest.mark.parametrize("wait", ["nan", "NaN", "inf", "-inf", "1e999", "soon", "", "1_0",
                                  "\u0663", "0x10", "5 s"])  # fmt: skip
def test_bad_wait_is_refused_at_once(server: ArchiveServer, wait: str) -> None:
    job_url = new_job(server.url, SLOW)  # PENDING: a WAIT would block on it
    try:
        t0 = time.monotonic()
        r = httpx.get(job_url, params={"WAIT": wait}, timeout=30)
        elapsed = time.monotonic() - t0
        assert r.status_code == 400, (wait, r.text)
        assert "WAIT" in r.text and "Traceback" not in r.text
        assert elapsed < 5, f"WAIT={wait!r} took {elapsed:.1f} s"
    finally:
        httpx.delete(job_url)


@pytest.mark.parametrize("value", ["inf", "nan", "1e999", "-inf", "later", "\u0663"])
def test_bad_execution_duration_is_refused(server: ArchiveServer, value: str) -> None:
    job_url = new_job(server.url)
    r = httpx.post(f"{job_url}/executionduration", data={"EXECUTIONDURATION": value})
    assert r.status_code == 400 and "EXECUTIONDURATION" in r.text, r.text
    assert int(httpx.get(f"{job_url}/executionduration").text) > 0
    httpx.delete(job_url)


def test_wait_is_bounded_and_negative_means_the_server_maximum(slow_db: Path, tmp_path) -> None:
    with ArchiveServer(slow_db, jobs_db=str(tmp_path / "j.db"), max_wait_s=1.0) as srv:
        job_url = new_job(srv.url, SLOW)
        for wait in ("-1", "3600", "1e300"):
            t0 = time.monotonic()
            doc = parse(httpx.get(job_url, params={"WAIT": wait}, timeout=30))
            elapsed = time.monotonic() - t0
            assert doc.findtext(f"{UWS}phase") == "PENDING"
            assert 0.8 < elapsed < 10, f"WAIT={wait} took {elapsed:.1f} s, the maximum is 1 s"
        r = httpx.get(job_url, params={"WAIT": "5", "PHASE": "BOGUS"}, timeout=30)
        assert r.status_code == 400 and "PHASE" in r.text


async def _waiters(job_url: str, n: int, wait: int) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=n + 10, max_keepalive_connections=n + 10)
    async with httpx.AsyncClient(limits=limits, timeout=120) as client:
        return await asyncio.gather(
            *(client.get(job_url, params={"WAIT": str(wait)}) for _ in range(n))
        )


def test_200_waiters_hold_no_worker(server: ArchiveServer) -> None:
    job_url = new_job(server.url, SLOW, PHASE="RUN")
    job_id = job_url.rsplit("/", 1)[1]
    manager = server.app.state.archive.jobs
    box: dict = {}

    def run() -> None:
        box["answers"] = asyncio.run(_waiters(job_url, 200, 50))

    import threading

    thread = threading.Thread(target=run)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while len(manager._waiters.get(job_id, ())) < 200:  # every client is waiting now
            assert time.monotonic() < deadline, "the 200 clients never all waited"
            time.sleep(0.05)
        t0 = time.monotonic()
        r = httpx.post(f"{server.url}/sync", data={"LANG": "ADQL", "QUERY": TRIVIAL}, timeout=60)
        latency = time.monotonic() - t0
        assert r.status_code == 200, r.text
        assert len(parse_single_table(io.BytesIO(r.content)).to_table()) == 1
        print(f"\n/sync latency while 200 clients wait on a job: {latency * 1000:.0f} ms")
        assert latency < 10, f"a trivial /sync query took {latency:.1f} s beside 200 waiters"
    finally:
        t1 = time.monotonic()
        httpx.post(f"{job_url}/phase", data={"PHASE": "ABORT"})
        thread.join(120)
    woke = time.monotonic() - t1
    answers = box["answers"]
    assert len(answers) == 200
    phases = {ET.fromstring(a.content).findtext(f"{UWS}phase") for a in answers}
    assert {a.status_code for a in answers} == {200} and phases == {"ABORTED"}
    print(f"200 waiters answered {woke * 1000:.0f} ms after the abort")
    assert woke < 30  # woken by the phase change, not by their 50 s WAIT
    httpx.delete(job_url)


@pytest.mark.parametrize("runid", ["a\x01b", "\x00", "x\x1b[31m", "end\uffff", "\ufffe",
                                   "r" * 300])  # fmt: skip
def test_runid_that_xml_cannot_carry_is_refused(server: ArchiveServer, runid: str) -> None:
    r = create(server.url, RUNID=runid)
    assert r.status_code == 400, r.text
    assert "RUNID" in r.text and "Traceback" not in r.text
    ET.fromstring(r.content)
    # the job list stays readable for every client, pyvo included
    parse(httpx.get(f"{server.url}/async"))
    pyvo.dal.TAPService(server.url).get_job_list()


def test_bad_parameter_names_and_values_are_refused(server: ArchiveServer) -> None:
    r = httpx.post(f"{server.url}/async", data={"QUERY": TRIVIAL, "LANG": "ADQL\x07"})
    assert r.status_code == 400 and "LANG" in r.text and "U+0007" in r.text
    r = httpx.post(f"{server.url}/async", data={"QUERY": TRIVIAL, "a\x02b": "1"})
    assert r.status_code == 400 and "parameter name" in r.text
    r = httpx.post(f"{server.url}/async", data={"QUERY": "SELECT 1\x0c FROM ivoa.obscore"})
    assert r.status_code == 400 and "QUERY" in r.text
    job_url = new_job(server.url, RUNID="fine")
    r = httpx.post(f"{job_url}/parameters", data={"RUNID": "bad\x10"})
    assert r.status_code == 400 and "RUNID" in r.text
    assert parse(httpx.get(job_url)).findtext(f"{UWS}runId") == "fine"
    httpx.delete(job_url)


def test_every_uws_and_vosi_document_is_well_formed(server: ArchiveServer) -> None:
    from vo_models.uws.models import Jobs

    from ctanb.archive.service.uws_xml import TapJob

    job_url = new_job(server.url, headers=VELA, RUNID="<&'\"> ünïcode ☃ \t tab")
    doc = parse(httpx.get(job_url, params={"WAIT": "0"}, headers=VELA))
    assert doc.findtext(f"{UWS}runId") == "<&'\"> ünïcode ☃ \t tab"
    httpx.post(f"{job_url}/phase", data={"PHASE": "RUN"}, headers=VELA)
    done = httpx.get(job_url, params={"WAIT": "30"}, headers=VELA)
    assert parse(done).findtext(f"{UWS}phase") == "COMPLETED"
    assert TapJob.from_xml(done.content).phase == "COMPLETED"
    listing = httpx.get(f"{server.url}/async", headers=VELA)
    assert job_url.rsplit("/", 1)[1] in [j.job_id for j in Jobs.from_xml(listing.content).jobref]
    for path in ("/parameters", "/results"):
        parse(httpx.get(job_url + path, headers=VELA))
    for path in ("/capabilities", "/availability", "/tables", "/async"):
        parse(httpx.get(server.url + path))
    httpx.delete(job_url, headers=VELA)


def test_jobs_belong_to_their_owner(server: ArchiveServer) -> None:
    mine = new_job(server.url, headers=VELA, RUNID="vela's")
    anon = new_job(server.url, RUNID="anonymous")
    mine_id, anon_id = mine.rsplit("/", 1)[1], anon.rsplit("/", 1)[1]
    try:
        # another owner and anonymous clients neither see nor touch an owned job
        for headers in (PKS, {}):
            for path in ("", "/phase", "/parameters", "/results", "/owner"):
                assert httpx.get(mine + path, headers=headers).status_code == 403, path
            assert httpx.delete(mine, headers=headers).status_code == 403
            r = httpx.post(f"{mine}/phase", data={"PHASE": "ABORT"}, headers=headers)
            assert r.status_code == 403 and "another user" in r.text
            assert mine_id not in httpx.get(f"{server.url}/async", headers=headers).text
        assert httpx.get(mine, headers=VELA).status_code == 200
        # HTTP Basic group:token is the same owner
        basic = httpx.get(mine, auth=("vela-team", "demo-token-vela"))
        assert parse(basic).findtext(f"{UWS}ownerId") == "vela-team"
        # the owner's list has their job only; an anonymous job is listed to nobody
        listed = httpx.get(f"{server.url}/async", headers=VELA).text
        assert mine_id in listed and anon_id not in listed
        assert anon_id not in httpx.get(f"{server.url}/async").text
        # pyvo, unmodified, lists and reads the owner's jobs (filters and full descriptions)
        session = requests.Session()
        session.headers.update(VELA)
        service = pyvo.dal.TAPService(server.url, session=session)
        for kwargs in ({}, {"short_description": False}, {"phases": ["PENDING"], "last": 5},
                       {"after": "2000-01-01T00:00:00Z"}):  # fmt: skip
            listed = service.get_job_list(**kwargs)
            assert mine_id in [j.jobid for j in listed], kwargs
            assert anon_id not in [j.jobid for j in listed]
        (job,) = [j for j in service.get_job_list(short_description=False) if j.jobid == mine_id]
        assert job.runid == "vela's" and job.ownerid == "vela-team"
        # an anonymous job is reached through its URL
        doc = parse(httpx.get(anon))
        assert doc.findtext(f"{UWS}runId") == "anonymous"
        assert doc.find(f"{UWS}ownerId").get("{http://www.w3.org/2001/XMLSchema-instance}nil")
    finally:
        assert httpx.delete(mine, headers=VELA).status_code == 303
        assert httpx.delete(anon).status_code == 303
    assert httpx.get(mine, headers=VELA).status_code == 404


def test_quotas_per_owner(slow_db: Path, tmp_path) -> None:
    with ArchiveServer(
        slow_db, policy=AccessPolicy.demo(), jobs_db=str(tmp_path / "j.db"),
        max_active_jobs=3, jobs_per_minute=5,
    ) as srv:  # fmt: skip
        jobs = [new_job(srv.url, SLOW) for _ in range(3)]
        r = create(srv.url, SLOW)
        assert r.status_code == 403, r.text
        assert "too many unfinished jobs" in r.text and "limit is 3" in r.text
        assert new_job(srv.url, SLOW, headers=VELA)  # another owner has a quota of its own
        httpx.delete(jobs.pop())
        jobs.append(new_job(srv.url, SLOW))  # room again (4 created this minute)
        httpx.delete(jobs.pop())
        jobs.append(new_job(srv.url, SLOW))  # the 5th
        httpx.delete(jobs.pop())  # room for an unfinished job, but not for a 6th this minute
        r = create(srv.url, SLOW)
        assert r.status_code == 429, r.text
        assert "at most 5 jobs a minute" in r.text
        assert 0 < int(r.headers["retry-after"]) <= 61


def _xml_char(cp: int) -> bool:
    """XML 1.0 Char production, written from the spec (independent of the service)."""
    return (
        cp in (0x9, 0xA, 0xD)
        or 0x20 <= cp <= 0xD7FF
        or 0xE000 <= cp <= 0xFFFD
        or 0x10000 <= cp <= 0x10FFFF
    )


def test_every_code_point_is_refused_or_round_trips() -> None:
    """Every code point of the BMP and every 101st beyond it as a RUNID: refused exactly when
    XML 1.0 cannot carry it; otherwise the job and job-list documents parse and give it
    back unchanged."""
    import datetime as dt

    from ctanb.archive.service.params import Params, ServiceFault
    from ctanb.archive.service.uws import Job
    from ctanb.archive.service.uws_xml import check_job_params, job_document, job_list_document

    legal: list[str] = []
    for cp in [*range(0x10000), *range(0x10000, 0x110000, 101), 0x10FFFF]:
        params = Params([("QUERY", TRIVIAL), ("RUNID", chr(cp))])
        try:
            check_job_params(params)
            accepted = True
        except ServiceFault as exc:
            accepted = False
            assert "RUNID" in exc.message and f"U+{cp:04X}" in exc.message
        assert accepted == _xml_char(cp), hex(cp)
        if accepted:
            legal.append(chr(cp))
    now = dt.datetime.now(dt.UTC)
    for start in range(0, len(legal), 250):  # 250 characters per RUNID, as one job each
        runid = "".join(legal[start : start + 250])
        params = Params([("QUERY", TRIVIAL), ("RUNID", runid)])
        check_job_params(params)
        job = Job("j", params, "http://h", 60, now, run_id=runid)
        doc = ET.fromstring(job_document(job, "http://h"))
        expected = runid  # a CR too: the documents write it as &#13;, which parsers keep
        assert doc.findtext(f"{UWS}runId") == expected
        assert {p.get("id"): p.text for p in doc.iter(f"{UWS}parameter")}["runid"] == expected
        listing = ET.fromstring(job_list_document([job], "http://h"))
        assert listing.find(f"{UWS}jobref").findtext(f"{UWS}runId") == expected


def test_execution_duration_and_destruction_given_at_creation_are_applied(server) -> None:
    """UWS 1.1 lets a client set both when it creates a job (a fresh-eyes trial found
    them ignored); bad values are 400s, as on their own endpoints."""
    import datetime as dt

    import requests

    later = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    query = {"LANG": "ADQL", "QUERY": "SELECT TOP 1 obs_id FROM ivoa.obscore"}
    resp = requests.post(
        f"{server.url}/async",
        data={**query, "EXECUTIONDURATION": "7", "DESTRUCTION": later},
        timeout=30,
    )
    assert resp.status_code == 200 and "/async/" in resp.url, resp.text
    assert requests.get(f"{resp.url}/executionduration", timeout=30).text.strip() == "7"
    assert requests.get(f"{resp.url}/destruction", timeout=30).text.strip().startswith(later[:16])
    for bad in ({"EXECUTIONDURATION": "-1"}, {"EXECUTIONDURATION": "nan"},
                {"DESTRUCTION": "1970-01-01T00:00:00Z"}):  # fmt: skip
        refused = requests.post(f"{server.url}/async", data={**query, **bad}, timeout=30)
        assert refused.status_code == 400, (bad, refused.status_code, refused.text[:300])
    job = requests.post(f"{server.url}/async", data=query, timeout=30).url
    negative = requests.post(
        f"{job}/executionduration", data={"EXECUTIONDURATION": "-1"}, timeout=30
    )
    assert negative.status_code == 400, negative.text[:300]


def test_a_client_leaving_mid_request_is_not_an_internal_error(server, caplog) -> None:
    """A client that announces a body and hangs up half-way is a client leaving, not a bug."""
    import socket
    from urllib.parse import urlsplit

    where = urlsplit(server.url)
    caplog.set_level(logging.INFO, logger="ctanb.archive.service")
    for _ in range(3):
        with socket.create_connection((where.hostname, where.port), timeout=10) as sock:
            head = (
                f"POST {where.path}/sync HTTP/1.1\r\nHost: {where.netloc}\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\n"
                "Content-Length: 50000\r\n\r\nLANG=ADQL&QUERY=SELECT"
            )
            sock.sendall(head.encode())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and "client left" not in caplog.text:
        time.sleep(0.1)
    assert "client left" in caplog.text
    assert "internal error" not in caplog.text
    assert httpx.post(f"{server.url}/sync", data={"LANG": "ADQL", "QUERY": TRIVIAL}).is_success
