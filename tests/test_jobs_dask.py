"""Query jobs against the real embedded archive, locally and on a Dask cluster."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import psutil
import pytest
from astropy.table import Table
from conftest import wait_for

from ctanb.jobs import DaskExecutor, JobManager, Phase

TESTS = Path(__file__).resolve().parent
ADQL = (
    "SELECT obs_id, s_ra, s_dec, t_exptime FROM ivoa.obscore "
    "WHERE obs_collection = 'HESS-DL3-DR1' ORDER BY obs_id"
)


@pytest.fixture(scope="module")
def dask_executor():
    executor = DaskExecutor(n_workers=1, threads_per_worker=2, processes=False)
    yield executor
    executor.close()


@pytest.fixture
def job_env(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])
    )


def test_query_job_against_the_embedded_archive_gives_a_votable(archive_url, tmp_path):
    jobs = JobManager(tmp_path / "jobs.db", jobs_dir=tmp_path / "jobs")
    job = jobs.submit("query", {"adql": ADQL, "url": archive_url}, name="DR1 runs").wait(120)
    assert job.phase == Phase.COMPLETED, job.log
    votable = job.results["votable"]
    assert votable.suffix == ".xml" and votable.parent == job.work_dir
    table = Table.read(votable, format="votable")
    assert len(table) == job.results["rows"] == 105
    assert list(table.colnames) == ["obs_id", "s_ra", "s_dec", "t_exptime"]
    assert job.parameters == {
        "adql": ADQL,
        "url": archive_url,
        "mode": "sync",
        "maxrec": None,
        "output": "result.xml",
    }


def test_query_job_with_bad_adql_is_error_with_the_server_message(archive_url, tmp_path):
    jobs = JobManager(tmp_path / "jobs.db", jobs_dir=tmp_path / "jobs")
    job = jobs.submit("query", {"adql": "SELEC obs_id FROM ivoa.obscore", "url": archive_url})
    assert job.wait(120).phase == Phase.ERROR
    assert "SELEC" in job.error or "syntax" in job.error.lower()
    assert "Traceback" not in job.error and "Traceback" in job.log


def test_dask_job_gives_the_same_result_as_a_local_one(
    archive_url, tmp_path, dask_executor, job_env
):
    local = JobManager(tmp_path / "jobs.db", jobs_dir=tmp_path / "jobs")
    on_dask = JobManager(tmp_path / "jobs.db", executor=dask_executor, jobs_dir=tmp_path / "jobs")
    params = {"adql": ADQL, "url": archive_url}
    a = local.submit("query", params).wait(120)
    b = on_dask.submit("query", params).wait(120)
    assert a.phase == b.phase == Phase.COMPLETED, b.log
    assert b.record.executor == "dask" and a.record.executor == "local"
    assert [p for p, _ in b.record.history] == ["PENDING", "QUEUED", "EXECUTING", "COMPLETED"]
    ta = Table.read(a.results["votable"], format="votable")
    tb = Table.read(b.results["votable"], format="votable")
    assert ta.colnames == tb.colnames
    for name in ta.colnames:
        assert np.array_equal(ta[name], tb[name])
    c = on_dask.submit("jobs_steps:add", {"a": 1.5, "b": 2}).wait(60)
    assert c.results == local.submit("jobs_steps:add", {"a": 1.5, "b": 2}).wait(60).results


def test_abort_of_a_dask_job_kills_its_process(tmp_path, dask_executor, job_env):
    jobs = JobManager(tmp_path / "jobs.db", executor=dask_executor, jobs_dir=tmp_path / "jobs")
    job = jobs.submit("jobs_steps:add", {"a": 1, "b": 1, "sleep": 60})
    wait_for(lambda: job.phase == Phase.EXECUTING)
    pid = job.record.pid
    job.abort()
    assert job.phase == Phase.ABORTED
    wait_for(lambda: _gone(pid), timeout=10)


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
