"""The JobList panel, headless: list, details, abort, rerun, delete, errors, live updates."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import wait_for

from ctanb import JobError
from ctanb.jobs import JobManager, Phase
from ctanb.widgets.joblist import PHASE_COLORS, JobList

TESTS = Path(__file__).resolve().parent


@pytest.fixture
def manager(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])
    )
    with JobManager(tmp_path / "jobs.db", jobs_dir=tmp_path / "jobs") as jobs:
        yield jobs


def test_panel_lists_jobs_with_colored_phases_and_shows_details(manager):
    done = manager.submit("jobs_steps:add", {"a": 3, "b": 4}, name="three plus four").wait(60)
    panel = JobList(manager, interval=0)
    try:
        assert [j["id"] for j in panel.jobs] == [done.id]
        assert panel.jobs[0]["phase"] == "COMPLETED" and panel.jobs[0]["name"] == "three plus four"
        (row,) = panel.rows_box.children
        assert PHASE_COLORS["COMPLETED"] in row.children[0].value
        assert row.children[1].description == "three plus four"
        row.children[1].click()  # the name button selects the job
        assert panel.selected == done.id
        assert "three plus four" in panel.details and "sum" in panel.details
        assert "a = <code>3</code>" in panel.details and "b = <code>4</code>" in panel.details
        assert "adding 3 and 4" in panel.log
        assert panel.abort_button.disabled and not panel.rerun_button.disabled
    finally:
        panel.close()


def test_abort_a_running_job_from_the_panel(manager):
    job = manager.submit("jobs_steps:add", {"a": 1, "b": 1, "sleep": 60})
    wait_for(lambda: job.phase == Phase.EXECUTING)
    panel = JobList(manager, interval=0)
    try:
        panel.select(job.id)
        assert not panel.abort_button.disabled
        panel.abort_button.click()
        assert panel.error == ""
        assert manager.get(job.id).record.phase == Phase.ABORTED
        assert panel.jobs[0]["phase"] == "ABORTED"
        assert panel.abort_button.disabled
    finally:
        panel.close()


def test_failed_job_shows_its_message_and_expandable_traceback(manager):
    job = manager.submit("jobs_steps:fail", {"reason": "bad region"}).wait(60)
    panel = JobList(manager, interval=0)
    try:
        panel.select(job.id)
        assert panel.jobs[0]["error"] == "ValueError: bad region"
        message, _, details = panel.details.partition("<details>")
        assert "<b>ValueError: bad region</b>" in message and "Traceback" not in message
        assert "Traceback" in details and "raise ValueError(reason)" in details
        assert panel.error == ""  # the job failed, not the panel
    finally:
        panel.close()


def test_rerun_and_delete_from_the_panel(manager):
    first = manager.submit("jobs_steps:add", {"a": 2, "b": 2}).wait(60)
    panel = JobList(manager, interval=0)
    try:
        panel.select(first.id)
        panel.rerun_button.click()
        assert panel.selected != first.id
        second = manager.get(panel.selected)
        assert second.parameters == first.parameters and second.record.rerun_of == first.id
        second.wait(60)
        panel.delete(first.id)
        panel.refresh()
        assert [j["id"] for j in panel.jobs] == [second.id]
        panel.delete_button.click()  # deletes the selected (second) job
        assert panel.jobs == [] and panel.selected == ""
        assert manager.list() == []
    finally:
        panel.close()


def test_actions_without_a_job_show_a_clear_error(manager):
    panel = JobList(manager, interval=0)
    try:
        panel.abort_button.click()
        assert panel.error == "no job selected: click a job in the list first"
        assert "no job selected" in panel.error_display.value
        with pytest.raises(JobError, match="no job '0123'"):
            panel.select("0123")
        assert panel.selected == ""
    finally:
        panel.close()


def test_filters_and_live_updates_with_a_polling_thread(manager):
    panel = JobList(manager, interval=0.2)
    try:
        assert panel.polling and panel.jobs == []
        job = manager.submit("jobs_steps:add", {"a": 1, "b": 2, "sleep": 0.5})
        wait_for(lambda: panel.jobs and panel.jobs[0]["phase"] == "COMPLETED", timeout=60)
        assert panel.jobs[0]["id"] == job.id
        panel.phase_filter = "ERROR"
        assert panel.jobs == []
        panel.phase_box.value = "COMPLETED"
        assert [j["id"] for j in panel.jobs] == [job.id]
        panel.owner_filter = "somebody-else"
        assert panel.jobs == []
        thread = panel._thread
        panel.stop_polling()
        assert not panel.polling and not thread.is_alive()
    finally:
        panel.close()
