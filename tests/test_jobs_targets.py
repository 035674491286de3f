"""Jobs run only code ctanb ships or the user submitted: a crafted job record is refused
before its module is imported (in the notebook, on rerun, and in the job process).

The "crafted" module writes a marker file when it is imported: the tests check that
the marker never appears, so a refusal that came after the import would fail them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ctanb import JobError
from ctanb.jobs import JobManager, Phase
from ctanb.jobs.executors import launch_runner
from ctanb.jobs.kinds import check_target, import_target

TESTS = Path(__file__).resolve().parent
CRAFTED = "ctanb_crafted_payload"


@pytest.fixture
def crafted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An importable module that leaves a marker file when imported; returns the marker."""
    marker = tmp_path / "imported.marker"
    modules = tmp_path / "modules"
    modules.mkdir()
    (modules / f"{CRAFTED}.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).write_text('imported')\n"
        "def run(*args, **kwargs):\n    return {'owned': True}\n"
    )
    path = os.pathsep.join([str(modules), str(TESTS), os.environ.get("PYTHONPATH", "")])
    monkeypatch.setenv("PYTHONPATH", path)
    monkeypatch.syspath_prepend(str(TESTS))
    monkeypatch.syspath_prepend(str(modules))
    monkeypatch.delitem(sys.modules, CRAFTED, raising=False)
    return marker


@pytest.fixture
def manager(tmp_path: Path, crafted: Path):
    with JobManager(tmp_path / "jobs.db", jobs_dir=tmp_path / "jobs") as jobs:
        yield jobs


def test_a_name_never_submitted_is_refused_without_importing_it(crafted: Path) -> None:
    for kind in ("callable", "query", "no-such-kind"):
        with pytest.raises(JobError, match=rf"refused to run {CRAFTED}:run.*nothing was imported"):
            import_target(f"{CRAFTED}:run", kind)
    with pytest.raises(JobError, match="not of the form 'module:qualname'"):
        check_target("os:system; rm -rf /")
    assert CRAFTED not in sys.modules and not crafted.exists()
    # The kinds ctanb ships resolve, and only to their own function.
    assert import_target("ctanb.jobs.kinds:run_query", "query").__name__ == "run_query"
    with pytest.raises(JobError, match=r"'redo' jobs run ctanb\.jobs\.kinds:run_redo"):
        import_target("ctanb.jobs.kinds:run_query", "redo")


def test_a_changed_record_is_not_started_nor_rerun(manager: JobManager, crafted: Path) -> None:
    pending = manager.submit("jobs_steps:add", {"a": 1, "b": 2}, run=False)
    manager.store.update(pending.id, target=f"{CRAFTED}:run")
    with pytest.raises(JobError, match=rf"refused to run {CRAFTED}:run"):
        pending.run()
    assert manager.get(pending.id).phase == Phase.PENDING

    done = manager.submit("query", {"adql": "SELECT 1", "url": "http://127.0.0.1:9/tap"}, run=False)
    manager.store.update(done.id, target=f"{CRAFTED}:run")  # a "query" job naming other code
    with pytest.raises(JobError, match=r"'query' jobs run ctanb\.jobs\.kinds:run_query"):
        done.rerun()
    assert [j.id for j in manager.list()] == [done.id, pending.id]  # no new job left behind
    assert CRAFTED not in sys.modules and not crafted.exists()


def test_the_job_process_refuses_a_record_changed_after_it_was_checked(
    manager: JobManager, crafted: Path, tmp_path: Path
) -> None:
    job = manager.submit("jobs_steps:add", {"a": 1, "b": 2}, run=False)
    record = manager.store.get(job.id)
    manager.store.update(job.id, target=f"{CRAFTED}:run")
    # Started for the function the user submitted; the store now names another one.
    launch_runner(
        job.id, manager.store.url, record.work_dir, record.log_path, target="jobs_steps:add"
    ).wait(60)
    assert job.phase == Phase.ERROR
    assert f"refused to run {CRAFTED}:run" in job.error
    # Started by hand (no checked target): only ctanb's own kinds run.
    again = manager.submit("jobs_steps:add", {"a": 1, "b": 2}, run=False)
    env = dict(os.environ, CTANB_JOBS_URL=manager.store.url)
    env.pop("CTANB_JOB_TARGET", None)
    subprocess.run(
        [sys.executable, "-m", "ctanb.jobs", again.id], env=env, cwd=tmp_path, timeout=120
    )
    assert again.phase == Phase.ERROR
    assert "refused to run jobs_steps:add" in again.error
    assert not crafted.exists()


def test_a_submitted_function_still_runs_and_reruns(manager: JobManager) -> None:
    job = manager.submit("jobs_steps:add", {"a": 2, "b": 3}).wait(60)
    assert job.results == {"sum": 5}
    assert job.rerun().wait(60).results == {"sum": 5}
