"""The client's protocol layer against the embedded archive over real HTTP: an
asynchronous query waits with UWS 1.1 blocking (one request per phase, not a poll
loop), still works with a server that does not block, and the search panel's choice
lists go through the archive client (ctanb's errors, the history)."""

from __future__ import annotations

import socket
import threading
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from conftest import wait_for

import ctanb
from ctanb import ServiceError
from ctanb.client._protocol import server_message, status_error
from ctanb.client.query import AsyncQuery

TOP3 = "SELECT TOP 3 obs_id FROM ivoa.obscore ORDER BY obs_id"


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path):
    monkeypatch.setenv("CTANB_OFFLINE", "1")
    monkeypatch.setenv("CTANB_HOME", str(tmp_path))
    monkeypatch.delenv("CTANB_TOKEN", raising=False)


def _counting(archive):
    """Every request the archive client sends, as (method, url), once answered."""
    sent: list[tuple[str, str]] = []
    archive.session.hooks["response"].append(
        lambda r, *args, **kwargs: sent.append((r.request.method, r.request.url))
    )
    return sent


def _pending_job(archive) -> AsyncQuery:
    """A created job that is not running (PENDING until the test runs it)."""
    job = archive.service.submit_job(TOP3)
    return AsyncQuery(archive, job, TOP3)


def _run_elsewhere(job_url: str) -> None:
    """Start the job as another client would (not through the counted session)."""
    requests.post(job_url + "/phase", data={"PHASE": "RUN"}, timeout=30).raise_for_status()


def _waiting(query: AsyncQuery) -> tuple[threading.Thread, dict]:
    out: dict = {"phases": []}

    def run() -> None:
        try:
            out["final"] = query.wait(callback=out["phases"].append, progress=False)
        except Exception as exc:  # reported by the test, not lost in the thread
            out["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def test_wait_blocks_on_the_server_one_request_per_phase(archive_server):
    archive = ctanb.connect(archive_server.url, progress=False, record_history=False)
    query = _pending_job(archive)
    job_id = query.url.rsplit("/", 1)[1]
    sent = _counting(archive)
    thread, out = _waiting(query)
    # The client blocks in the server's WAIT (a waiter of this job on the server),
    # having sent one request before it: it does not poll while the job is PENDING.
    jobs = archive_server.app.state.archive.jobs
    wait_for(lambda: jobs._waiters.get(job_id), 30, "the client to block in WAIT")
    assert out["phases"] == ["PENDING"] and len(sent) == 1
    _run_elsewhere(query.url)
    thread.join(60)
    assert not thread.is_alive() and "error" not in out, out.get("error")
    assert out["final"] == "COMPLETED" and out["phases"][-1] == "COMPLETED"
    # One request per phase seen: the first reads the phase, each later one is a UWS
    # 1.1 blocking GET that the server answered when the phase changed.
    gets = [url for method, url in sent if method == "GET"]
    assert len(gets) == len(sent) == len(out["phases"]), sent
    for url, before in zip(gets[1:], out["phases"], strict=False):
        params = parse_qs(urlsplit(url).query)
        assert params["PHASE"] == [before] and int(params["WAIT"][0]) >= 1, url
    assert len(query.results()) == 3


def test_wait_polls_a_server_that_does_not_block(archive_db, tmp_path):
    # max_wait_s=0: the service answers WAIT at once, as a UWS 1.0 service would.
    from ctanb.archive.service import ArchiveServer

    with ArchiveServer(archive_db, max_wait_s=0.0, jobs_db=str(tmp_path / "jobs.db")) as server:
        archive = ctanb.connect(server.url, progress=False, record_history=False)
        query = _pending_job(archive)
        sent = _counting(archive)
        thread, out = _waiting(query)
        wait_for(lambda: len(sent) >= 3, 30, "the client to poll the PENDING job")
        assert thread.is_alive() and out["phases"] == ["PENDING"]
        _run_elsewhere(query.url)
        thread.join(60)
        assert not thread.is_alive() and "error" not in out, out.get("error")
        assert out["final"] == "COMPLETED" and out["phases"][0] == "PENDING"
        assert len(query.results()) == 3


def test_server_messages_are_read_from_votable_json_and_text():
    dali = (
        b'<?xml version="1.0"?><VOTABLE version="1.4" '
        b'xmlns="http://www.ivoa.net/xml/VOTable/v1.3"><RESOURCE type="results">'
        b'<INFO name="provider" value="ctanb">the embedded archive</INFO>'
        b'<INFO name="QUERY_STATUS" value="ERROR">no column &lt;x&gt; &amp; no table'
        b'</INFO><INFO name="request" value="sync">SELECT x</INFO></RESOURCE></VOTABLE>'
    )
    # the DALI status only, not the other INFOs around it
    assert server_message(dali) == "no column <x> & no table"
    assert server_message('{"message": "unknown collection"}') == "unknown collection"
    assert server_message("<html><body><h1>502</h1> Bad   Gateway</body></html>") == (
        "502 Bad Gateway"
    )
    assert server_message(b"") == ""
    error = status_error(400, "line 2, column 7: bad", url="http://x/tap/sync", adql="SELECT")
    assert isinstance(error, ctanb.QueryError) and error.position == (2, 7)
    assert isinstance(status_error(403, "no", url="http://x/tap"), ctanb.AuthError)
    error = status_error(503, "busy", url="http://x/tap")
    assert (
        isinstance(error, ServiceError) and error.status == 503 and "HTTP 503: busy" in str(error)
    )


def test_choice_lists_of_an_unreachable_archive_are_a_service_error_in_the_history():
    from ctanb.widgets import SearchPanel
    from ctanb.widgets._errors import guarded

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/tap"
    sock.close()
    archive = ctanb.connect(url, progress=False, record_history=True)
    panel = SearchPanel(archive)
    with pytest.raises(ServiceError, match=f"cannot reach the archive at {url}"):
        panel.load_choices()
    # What the panel shows when the lists are loaded in the background: the user's words.
    guarded(panel, panel.load_choices)
    assert panel.error.startswith(f"cannot reach the archive at {url}"), panel.error
    (entry, *_) = list(archive.history)
    assert entry.status == "ERROR" and entry.adql.startswith("SELECT DISTINCT")
