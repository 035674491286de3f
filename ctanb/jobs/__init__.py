"""Jobs: run queries, workflows, redo and any importable function as UWS-style jobs.

A job goes through the IVOA UWS 1.1 phases PENDING -> QUEUED -> EXECUTING ->
COMPLETED | ERROR | ABORTED, and has parameters, results (files and small JSON
values), a log (its stdout, stderr and logging), start and end times, an owner
and a link to the provenance recorded while it ran::

    from ctanb.jobs import JobManager

    jobs = JobManager()                          # executor="dask" for a Dask cluster
    job = jobs.submit("query", {"adql": "SELECT TOP 10 * FROM ivoa.obscore"})
    job.wait()
    job.phase, job.results["votable"], job.log
    jobs.submit("mypkg.fit:fit_crab", {"emin": 1.0}, name="Crab fit").wait().results
    jobs.list(phase="EXECUTING")
    job.rerun(); job.abort(); job.delete()

Jobs live in a job store (SQLite ``<home_dir>/jobs.db``, or ``CTANB_JOBS_URL``),
so the list survives a kernel restart. Each job runs in its own detached process
(``python -m ctanb.jobs``) that writes its own phase changes, so a running
job survives a kernel restart too; a job whose process died is shown ERROR the
next time the list is read (pid, host and process start time are checked).

Kinds: ``query``, ``workflow``, ``redo``, ``callable``; add more with
:func:`register_kind`. The panel is :class:`ctanb.widgets.joblist.JobList`.
"""

from __future__ import annotations

from .executors import DaskExecutor, LocalExecutor
from .kinds import JobContext, JobKind, kinds, register_kind
from .manager import Job, JobManager, current_owner
from .model import FINAL_PHASES, JobProvenance, JobRecord, Phase
from .store import JobStore, default_store_url

__all__ = [
    "FINAL_PHASES",
    "DaskExecutor",
    "Job",
    "JobContext",
    "JobKind",
    "JobManager",
    "JobProvenance",
    "JobRecord",
    "JobStore",
    "LocalExecutor",
    "Phase",
    "current_owner",
    "default_store_url",
    "kinds",
    "register_kind",
]
