"""Jobs: UWS phases, logs, errors, abort, rerun, persistence, dead processes, provenance.

Every job runs in a real detached process (``python -m ctanb.jobs``) and the
store is a real SQLite file; the functions the jobs call are in jobs_steps.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from conftest import wait_for

from ctanb import JobError
from ctanb.jobs import JobManager, Phase
from ctanb.provenance import default_store

TESTS = Path(__file__).resolve().parent


@pytest.fixture
def manager(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # Job processes import jobs_steps by name, as they would a user's module.
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])
    )
    monkeypatch.syspath_prepend(str(TESTS))
    with JobManager(tmp_path / "jobs.db", jobs_dir=tmp_path / "jobs") as jobs:
        yield jobs


def test_phases_progress_to_completed_with_results_log_and_times(manager):
    job = manager.submit("jobs_steps:add", {"a": 1, "b": 2, "sleep": 2.0}, run=False)
    assert job.phase == Phase.PENDING
    job.run()
    assert job.phase in (Phase.QUEUED, Phase.EXECUTING)
    job.wait(timeout=60)
    assert job.phase == Phase.COMPLETED
    assert [phase for phase, _ in job.record.history] == [
        "PENDING",
        "QUEUED",
        "EXECUTING",
        "COMPLETED",
    ]
    assert job.results == {"sum": 3}
    assert job.record.started < job.record.ended
    assert job.record.duration >= 0.3
    assert job.owner and job.kind == "callable" and job.name == "add"
    assert "adding 1 and 2" in job.log and "logged from the job" in job.log


def test_failing_job_is_error_with_message_and_traceback_in_log(manager):
    job = manager.submit("jobs_steps:fail", {"reason": "no events in the region"}).wait(60)
    assert job.phase == Phase.ERROR
    assert job.error == "ValueError: no events in the region"
    assert "Traceback (most recent call last)" in job.log
    assert "in inner\n    raise ValueError(reason)" in job.log
    assert "raise ValueError" in job.record.error_details
    with pytest.raises(JobError, match="no events in the region"):
        job.raise_if_error()


def test_abort_kills_the_job_process_group(manager, tmp_path):
    pid_file = tmp_path / "child.pid"
    job = manager.submit("jobs_steps:sleep_with_child", {"seconds": 60, "pid_file": str(pid_file)})
    wait_for(lambda: pid_file.is_file() and pid_file.read_text().strip())
    assert job.phase == Phase.EXECUTING
    runner, child = job.record.pid, int(pid_file.read_text())
    assert psutil.pid_exists(runner) and psutil.pid_exists(child)
    job.abort()
    assert job.phase == Phase.ABORTED
    assert job.record.ended and "aborted" in job.error

    def gone(pid: int) -> bool:
        try:
            return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    wait_for(lambda: gone(runner) and gone(child), timeout=10)
    assert job.abort().phase == Phase.ABORTED  # aborting again changes nothing


def test_rerun_makes_a_new_job_with_the_same_parameters(manager):
    first = manager.submit("jobs_steps:add", {"a": 2, "b": 5}, name="sum").wait(60)
    second = first.rerun().wait(60)
    assert second.id != first.id
    assert second.parameters == first.parameters and second.name == "sum"
    assert second.record.rerun_of == first.id
    assert second.results == first.results == {"sum": 7}
    assert {j.id for j in manager.list()} == {first.id, second.id}


def test_job_list_survives_a_kernel_restart(manager, tmp_path):
    # A "kernel" submits a long job and exits; the job keeps running in its own process.
    script = f"""
import json, sys
from ctanb.jobs import JobManager
jobs = JobManager({str(tmp_path / "jobs.db")!r}, jobs_dir={str(tmp_path / "jobs")!r})
job = jobs.submit("jobs_steps:add", {{"a": 40, "b": 2, "sleep": 5}}, name="survivor")
print(json.dumps({{"id": job.id, "phase": str(job.phase)}}))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    submitted = json.loads(out.stdout)
    assert submitted["phase"] in ("QUEUED", "EXECUTING")
    # A new manager (the restarted kernel) sees it, running, then completed.
    again = JobManager(tmp_path / "jobs.db", jobs_dir=tmp_path / "jobs")
    (job,) = again.list()
    assert job.id == submitted["id"] and job.name == "survivor"
    assert job.record.phase in (Phase.QUEUED, Phase.EXECUTING)
    assert job.wait(60).results == {"sum": 42}
    assert again.list(phase="COMPLETED")[0].id == job.id
    assert again.list(phase="EXECUTING") == []


def test_a_killed_job_process_shows_error_process_died(manager):
    job = manager.submit("jobs_steps:add", {"a": 1, "b": 1, "sleep": 60})
    wait_for(lambda: job.phase == Phase.EXECUTING)
    os.kill(job.record.pid, signal.SIGKILL)
    wait_for(lambda: manager.get(job.id).record.phase == Phase.ERROR, timeout=10)
    (listed,) = manager.list(phase="ERROR")
    assert listed.id == job.id
    assert f"the job process {job.record.pid}" in listed.error and "died" in listed.error


def test_bad_input_gives_clear_job_errors(manager):
    with pytest.raises(JobError, match=r"unknown job kind 'fit'.*query.*redo.*workflow"):
        manager.submit("fit", {})
    with pytest.raises(JobError, match=r"lambda|nested|notebook"):
        manager.submit(lambda: 1, {})
    with pytest.raises(JobError, match="cannot import module 'no_such_module'"):
        manager.submit("no_such_module:run", {})
    with pytest.raises(JobError, match="adql"):
        manager.submit("query", {"url": "http://127.0.0.1:1/tap"})
    with pytest.raises(JobError, match="mode"):
        manager.submit("query", {"adql": "SELECT 1", "url": "http://x/tap", "mode": "later"})
    with pytest.raises(JobError, match="JSON"):
        manager.submit("jobs_steps:add", {"a": object(), "b": 1})
    with pytest.raises(JobError, match="no job 'nope'"):
        manager.get("nope")
    with pytest.raises(JobError, match="unknown job phase 'done'; phases: PENDING"):
        manager.list(phase="done")
    assert manager.list() == []


def test_delete_removes_the_job_and_its_folder(manager):
    job = manager.submit("jobs_steps:add", {"a": 1, "b": 1}).wait(60)
    assert job.work_dir.is_dir()
    job.delete()
    assert not job.work_dir.exists()
    with pytest.raises(JobError):
        manager.get(job.id)


def test_job_links_to_the_provenance_of_a_recorded_step(manager):
    job = manager.submit("jobs_steps:write_table", {"n_rows": 5, "out": "table.fits"}).wait(60)
    assert job.phase == Phase.COMPLETED, job.log
    prov = job.provenance
    product = str(job.work_dir / "table.fits")
    assert prov.products == [product]
    (activity_id,) = prov.activities
    store = default_store()
    activity = store.get_activity(activity_id)
    assert activity.name == "jobs-test-table" and activity.status == "completed"
    assert prov.job_activity in activity.informed_by
    assert store.get_activity(prov.job_activity).parameters["job_id"] == job.id
