"""Asynchronous searches in the panels: phases as they happen with the time, Cancel as
an outcome, the searches in the Jobs tab, and an empty Jobs tab that says how jobs get
there (issue 15, deliver item 4). Against the embedded archive over real HTTP."""

from __future__ import annotations

import re

import pytest
from conftest import wait_for

from ctanb.widgets import App

SLOW = "SELECT * FROM ivoa.obscore AS a, ivoa.obscore AS b, ivoa.obscore AS c"


@pytest.fixture(scope="module")
def archive(archive_url):
    import ctanb

    with ctanb.connect(archive_url, progress=False, offline=True) as archive:
        yield archive


def test_async_search_shows_phases_with_times_and_is_listed_in_the_jobs_tab(archive):
    app = App(archive, use_aladin=False)
    search = app.search
    assert "No asynchronous searches yet" in app.search_jobs.value
    shown = []
    search.status.observe(lambda ch: shown.append(ch["new"]), "value")
    search.async_box.value = True
    search.adql_text.value = "SELECT TOP 3 * FROM ivoa.obscore ORDER BY obs_id"
    search.search()
    phases = [p for p, _ in search.phase_log]
    assert phases[0] == "QUEUED" and phases[-1] == "COMPLETED"
    seconds = [s for _, s in search.phase_log]
    assert seconds == sorted(seconds) and search.elapsed >= seconds[-1] >= 0
    # Each phase as it happened, with the time since the search was sent.
    assert any(re.search(r"QUEUED \d+\.\d s", text) for text in shown), shown
    assert "3 row(s) in" in search.status.value and "#2e7d32" in search.status.value
    (query,) = search.async_queries
    assert query["phase"] == "COMPLETED" and query["rows"] == 3 and query["url"].startswith("http")
    assert "COMPLETED" in app.search_jobs.value and "SELECT TOP 3" in app.search_jobs.value
    assert app.table.row_count == 3


def test_cancel_is_an_outcome_not_an_error(archive):
    app = App(archive, use_aladin=False)
    search = app.search
    search.adql_text.value = "SELECT TOP 2 * FROM ivoa.obscore ORDER BY obs_id"
    search.search()
    assert app.table.row_count == 2
    search.async_box.value = True
    search.adql_text.value = SLOW
    search.search_button.click()  # returns at once: the job runs, Cancel is live
    wait_for(
        lambda: not search.cancel_button.disabled and search.async_queries,
        60,
        "a running job",
        every=0.02,
    )
    ticks = []
    search.observe(lambda ch: ticks.append(ch["new"]), "elapsed")
    wait_for(lambda: len(ticks) >= 2, 60, "the clock running", every=0.02)
    search.cancel_button.click()
    wait_for(lambda: search._job is None, 60, "the search thread to end", every=0.02)
    assert search.error == "" and search.error_display.value == ""
    assert search.phase == "ABORTED" and search.phase_log[-1][0] == "ABORTED"
    assert "Cancelled after" in search.status.value and "http" not in search.status.value
    assert "#b71c1c" not in search.status.value and "#2e7d32" not in search.status.value
    assert app.table.row_count == 2  # the previous results stay
    assert search.async_queries[0]["phase"] == "ABORTED" and "ABORTED" in app.search_jobs.value


def test_an_empty_jobs_tab_says_how_jobs_get_there(archive, tmp_path, monkeypatch):
    monkeypatch.setenv("CTANB_HOME", str(tmp_path))  # a job store with no job
    app = App(archive, use_aladin=False)
    app.tabs.selected_index = list(app.tabs.titles).index("Jobs")
    jobs = app.jobs
    try:
        assert jobs is not None and jobs.jobs == []
        (empty,) = jobs.rows_box.children
        assert "No analysis jobs yet" in empty.value and "appears here" in empty.value
        assert "tick" in app.search_jobs.value and "asynchronous" in app.search_jobs.value
    finally:
        jobs.close()
