"""What a tester found driving ``ctanb.App()`` (issue 15): superseded async searches never
reach the table, non-ObsCore results show all their columns, failures mark stale rows,
plain messages for an unreachable archive and unknown tokens. Embedded archive over HTTP."""

from __future__ import annotations

import time

import pytest
from conftest import wait_for

from ctanb.widgets import App

SLOW = "SELECT * FROM ivoa.obscore AS a, ivoa.obscore AS b, ivoa.obscore AS c"
#: Seconds, not minutes: it finishes while the test still watches the table.
MEDIUM = "SELECT TOP 9 a.obs_id FROM ivoa.obscore AS a, ivoa.obscore AS b ORDER BY a.obs_id"


@pytest.fixture(scope="module")
def archive(archive_url):
    import ctanb

    with ctanb.connect(archive_url, progress=False, offline=True) as archive:
        yield archive


def test_a_superseded_async_search_never_fills_the_table_after_cancel(archive):
    app = App(archive, use_aladin=False)
    search = app.search
    search.adql_text.value = "SELECT TOP 2 * FROM ivoa.obscore ORDER BY obs_id"
    search.search()
    assert app.table.row_count == 2
    search.async_box.value = True
    search.adql_text.value = MEDIUM
    search.search(wait=False)
    first = search.async_queries[0]["url"]
    wait_for(lambda: search.phase in ("QUEUED", "EXECUTING"), 30, "the first job", every=0.02)
    search.adql_text.value = SLOW
    search.search(wait=False)  # pressed again while the first one runs
    second = search.async_queries[0]["url"]
    assert second != first
    wait_for(lambda: search.phase == "EXECUTING", 60, "the second job running", every=0.02)
    assert search.cancel() == "ABORTED"
    # Long enough for the first job to have finished had it not been cancelled.
    started = time.monotonic()
    wait_for(lambda: time.monotonic() - started > 6, 10, "six seconds", every=0.2)
    assert app.table.row_count == 2, "a job that is not the current one filled the table"
    assert search.phase == "ABORTED" and "Cancelled after" in search.status.value
    assert [p for p, _ in search.phase_log] == ["QUEUED", "EXECUTING", "ABORTED"][
        -len(search.phase_log) :
    ] and search.phase_log[0][0] == "QUEUED"
    phases = {q["url"]: q["phase"] for q in search.async_queries}
    assert phases[second] == "ABORTED" and phases[first] == "ABORTED"
    # Back to sync: the status line is this search's, not an old job's clock.
    search.async_box.value = False
    search.adql_text.value = "SELECT TOP 1 * FROM ivoa.obscore"
    search.search()
    time.sleep(0.5)
    assert [p for p, _ in search.phase_log] == ["EXECUTING", "COMPLETED"]
    assert "1 row(s) in" in search.status.value and "EXECUTING" not in search.status.value


def test_a_non_obscore_result_shows_all_its_columns(archive):
    app = App(archive, use_aladin=False)
    search = app.search
    group = "SELECT obs_collection, COUNT(*) AS n FROM ivoa.obscore GROUP BY obs_collection"
    search.adql_text.value = group
    search.search()
    assert app.table.visible_columns == ["obs_collection", "n"]
    search.adql_text.value = "SELECT COUNT(*) AS n FROM ivoa.obscore"
    search.search()
    assert app.table.visible_columns == ["n"]
    search.adql_text.value = group  # the previous query's columns do not carry over
    search.search()
    assert app.table.visible_columns == ["obs_collection", "n"]
    # ObsCore rows still open on the principal columns.
    search.adql_text.value = "SELECT TOP 2 * FROM ivoa.obscore"
    search.search()
    assert "obs_publisher_did" not in app.table.visible_columns
    assert "obs_id" in app.table.visible_columns


def test_after_a_failure_the_rows_shown_are_said_to_be_the_previous_search(archive):
    app = App(archive, use_aladin=False)
    panel = app.search
    panel.set(target="Crab", radius=3)
    panel.resolve()
    panel.search()
    rows = app.table.row_count
    assert rows > 0 and app.results_note.value == "" and app.sky.target
    # A failed resolve: rows kept, marked old, no stale marker; a clear position line.
    panel.target_text.value = "Crabb Nebulla"
    assert "previous results" in app.results_note.value and app.table.row_count == rows
    assert app.sky.target == {}
    assert "no position: the name could not be resolved" in panel.position_label.value
    assert "not resolved yet" not in panel.position_label.value
    # A good search clears the note; a failed ADQL query puts it back.
    panel.adql_text.value = "SELECT TOP 3 * FROM ivoa.obscore"
    panel.search()
    assert app.results_note.value == "" and app.table.row_count == 3
    panel.adql_text.value = "SELECT TOP 3 * FROM ivoa.no_such_table"
    panel.search_button.click()
    assert panel.error and "previous results: the last search failed" in app.results_note.value
    assert app.table.row_count == 3


def test_an_unreachable_archive_is_said_in_plain_words():
    import socket

    with socket.socket() as sock:  # a free port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app = App(f"http://127.0.0.1:{port}/tap", use_aladin=False)
    app.search.adql_text.value = "SELECT TOP 1 * FROM ivoa.obscore"
    app.search.search_button.click()
    error = app.search.error
    assert f"cannot reach the archive at http://127.0.0.1:{port}" in error
    assert "connection refused (is it running?)" in error
    for internals in ("HTTPConnectionPool", "Errno", "Max retries", "ConnectionError"):
        assert internals not in error


def test_an_unknown_token_does_not_log_in(archive):
    app = App(archive, use_aladin=False)
    try:
        assert app.login("nonsense-token") is False
        status = app.login_box.status.value
        assert "not logged in" in status and "#b71c1c" in status and "#2e7d32" not in status
        assert "does not know this token" in status and "nonsense-token" not in status
        assert not app.search.archive.has_token
        # A token of the demo policy logs in, naming its group (never the token).
        assert app.login("demo-token-vela") is True
        status = app.login_box.status.value
        assert "logged in" in status and "vela-team" in status and "#2e7d32" in status
        assert "demo-token-vela" not in status
    finally:
        app.login("")


def test_form_messages_are_in_the_users_words(archive):
    from ctanb.widgets.search import SearchPanel

    panel = SearchPanel(archive)
    panel.set(time_start="yesterday-ish")
    panel.search_button.click()
    assert "Start" in panel.error and "is not a time" in panel.error
    assert "astropy" not in panel.error and "Time)" not in panel.error
    panel.set(time_start="")
    panel.set(limit="1e9")
    assert panel.adql == "" and "TOP 1000000000" not in panel.adql_text.value
    panel.search_button.click()
    assert "1,000,000" in panel.error and "Limit" in panel.error
    panel.set(limit="1e6")
    assert "TOP 1000000 " in panel.adql_text.value


def test_the_product_kind_flux_points_finds_published_flux_points(archive):
    from ctanb.widgets.search import SearchPanel

    panel = SearchPanel(archive)
    assert "flux_points" not in panel.products.kind.placeholder
    assert "flux" in panel.products.kind.placeholder
    panel.set(product_kind="flux_points", data_level="DL5")
    assert "'DL5-flux'" in panel.adql_text.value  # what SpectrumStep publishes
    panel.products.set_kinds(["DL3", "DL4-counts", "DL5-flux", "DL5-lightcurve"])
    assert list(panel.products.kind.options) == ["counts", "flux", "lightcurve"]
