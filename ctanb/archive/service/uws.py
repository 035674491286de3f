"""UWS 1.1 asynchronous TAP jobs (``/async``).

Jobs run in a thread pool, each on its own read-only connection so that ABORT can
interrupt the running SQLite statement. Results are kept in memory until the
job's destruction time. Phases: PENDING -> QUEUED -> EXECUTING -> COMPLETED /
ERROR / ABORTED.
"""

from __future__ import annotations

import datetime as dt
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from .params import Params, ServiceFault
from .state import ArchiveState
from .tap import execute_query, validate_query_params

__all__ = ["Job", "JobManager", "iso", "now_utc", "parse_iso"]

UWS_NS = "http://www.ivoa.net/xml/UWS/v1.0"
_XML_HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n'
_NS_ATTRS = (
    f'xmlns:uws="{UWS_NS}" xmlns:xlink="http://www.w3.org/1999/xlink" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
)
ACTIVE = ("PENDING", "QUEUED", "EXECUTING", "HELD", "SUSPENDED")


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def iso(t: dt.datetime | None) -> str:
    """UWS dateTime text (UTC, milliseconds)."""
    return "" if t is None else t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def parse_iso(text: str) -> dt.datetime:
    """Parse an ISO 8601 dateTime; naive times are UTC."""
    try:
        t = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ServiceFault(f"{text!r} is not an ISO 8601 date-time") from None
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


@dataclass
class Job:
    """One asynchronous query."""

    job_id: str
    params: Params
    base_url: str
    execution_duration: int
    destruction: dt.datetime
    run_id: str | None = None
    owner: str | None = None
    phase: str = "PENDING"
    creation: dt.datetime = field(default_factory=now_utc)
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    result: bytes | None = None
    result_type: str = "application/x-votable+xml"
    error: str | None = None
    abort_requested: bool = False
    conn: Any = None

    @property
    def quote(self) -> dt.datetime:
        """Our estimate of completion: creation plus the execution duration limit."""
        return self.creation + dt.timedelta(seconds=self.execution_duration)


class JobManager:
    """The job list and the worker pool of one service."""

    def __init__(self, state: ArchiveState):
        self.state = state
        self.jobs: dict[str, Job] = {}
        self.changed = threading.Condition()
        self.pool = ThreadPoolExecutor(
            max_workers=state.settings.async_workers, thread_name_prefix="ctanb-uws"
        )

    # -- lifecycle -------------------------------------------------------------------
    def create(self, params: Params, base_url: str) -> Job:
        """A new PENDING job (the query is validated now so errors show early)."""
        self._purge()
        s = self.state.settings
        run_id = params.get("RUNID")
        job = Job(
            job_id=secrets.token_hex(8),
            params=params,
            base_url=base_url,
            execution_duration=s.execution_duration_s,
            destruction=now_utc() + dt.timedelta(seconds=s.retention_s),
            run_id=run_id,
        )
        with self.changed:
            self.jobs[job.job_id] = job
        if (params.get("PHASE") or "").upper() == "RUN":
            self.run(job)
        return job

    def get(self, job_id: str) -> Job:
        """The job *job_id*; unknown or destroyed -> 404."""
        self._purge()
        job = self.jobs.get(job_id)
        if job is None:
            raise ServiceFault(f"no job {job_id!r} on this service (unknown or deleted)", 404)
        return job

    def run(self, job: Job) -> None:
        """Queue a PENDING job (running twice is an error)."""
        with self.changed:
            if job.phase != "PENDING":
                raise ServiceFault(f"job {job.job_id} is {job.phase}, only PENDING jobs can run")
            job.phase = "QUEUED"
            self.changed.notify_all()
        self.pool.submit(self._execute, job)

    def abort(self, job: Job) -> None:
        """Abort a job that has not finished (a running query is interrupted)."""
        with self.changed:
            if job.phase in ("COMPLETED", "ERROR", "ABORTED"):
                return
            job.abort_requested = True
            if job.phase in ("PENDING", "QUEUED"):
                self._finish(job, "ABORTED")
            elif job.conn is not None:
                job.conn.interrupt()

    def delete(self, job: Job) -> None:
        """Abort and forget a job."""
        self.abort(job)
        with self.changed:
            self.jobs.pop(job.job_id, None)
            self.changed.notify_all()

    def wait(self, job: Job, seconds: float, phase: str | None) -> None:
        """UWS 1.1 blocking: wait while the job is active (and in *phase*, if given)."""
        seconds = min(max(seconds, 0.0), self.state.settings.max_wait_s)
        phase = phase.upper() if phase else None

        def settled() -> bool:
            if job.phase not in ACTIVE:
                return True
            return phase is not None and job.phase != phase

        with self.changed:
            self.changed.wait_for(settled, timeout=seconds)

    def shutdown(self) -> None:
        """Abort everything and stop the workers."""
        for job in list(self.jobs.values()):
            self.abort(job)
        self.pool.shutdown(wait=False, cancel_futures=True)

    def _finish(self, job: Job, phase: str) -> None:
        job.phase = phase
        job.end = now_utc()
        self.changed.notify_all()

    def _purge(self) -> None:
        now = now_utc()
        with self.changed:
            for job_id in [j.job_id for j in self.jobs.values() if j.destruction <= now]:
                job = self.jobs.pop(job_id)
                job.abort_requested = True
                if job.conn is not None:
                    job.conn.interrupt()

    def _execute(self, job: Job) -> None:
        with self.changed:
            if job.phase != "QUEUED":
                return
            job.phase = "EXECUTING"
            job.start = now_utc()
            self.changed.notify_all()
        conn = None
        try:
            conn = self.state.open_connection()
            job.conn = conn
            req = validate_query_params(job.params, self.state)
            result = execute_query(
                self.state,
                req,
                job.base_url,
                conn=conn,
                timeout_s=float(job.execution_duration),
                cancelled=lambda: job.abort_requested,
            )
        except ServiceFault as exc:
            with self.changed:
                if job.abort_requested:
                    self._finish(job, "ABORTED")
                else:
                    job.error = exc.message
                    self._finish(job, "ERROR")
        except Exception as exc:  # a bug: keep the job list consistent, report cleanly
            import logging

            logging.getLogger("ctanb.archive.service").exception("job %s failed", job.job_id)
            with self.changed:
                job.error = f"internal error while running the query ({type(exc).__name__})"
                self._finish(job, "ERROR")
        else:
            with self.changed:
                if job.abort_requested:
                    self._finish(job, "ABORTED")
                else:
                    job.result, job.result_type = result.body, result.media_type
                    self._finish(job, "COMPLETED")
        finally:
            job.conn = None
            if conn is not None:
                conn.close()

    # -- XML -----------------------------------------------------------------------
    def job_list_xml(self, base: str, phases: list[str], after: str | None,
                     last: str | None) -> str:  # fmt: skip
        """The ``uws:jobs`` document (filters PHASE, AFTER, LAST of UWS 1.1)."""
        self._purge()
        jobs = sorted(self.jobs.values(), key=lambda j: j.creation)
        if phases:
            wanted = {p.upper() for p in phases}
            jobs = [j for j in jobs if j.phase in wanted]
        else:  # UWS 1.1: ARCHIVED jobs are hidden by default (we have none)
            jobs = [j for j in jobs if j.phase != "ARCHIVED"]
        if after:
            t = parse_iso(after)
            jobs = [j for j in jobs if j.creation > t]
        if last:
            try:
                n = int(last)
            except ValueError:
                raise ServiceFault(f"LAST={last!r} is not an integer") from None
            if n < 0:
                raise ServiceFault(f"LAST={n} is negative")
            jobs = sorted(jobs, key=lambda j: j.creation, reverse=True)[:n]
        refs = "".join(
            f'<uws:jobref id="{j.job_id}" xlink:href={quoteattr(f"{base}/async/{j.job_id}")}>'
            f"<uws:phase>{j.phase}</uws:phase>"
            + (f"<uws:runId>{escape(j.run_id)}</uws:runId>" if j.run_id else "")
            + f"<uws:creationTime>{iso(j.creation)}</uws:creationTime></uws:jobref>\n"
            for j in jobs
        )
        return f'{_XML_HEAD}<uws:jobs version="1.1" {_NS_ATTRS}>\n{refs}</uws:jobs>\n'

    @staticmethod
    def parameters_xml(job: Job, standalone: bool = True) -> str:
        """The ``uws:parameters`` element."""
        items = "".join(
            f"<uws:parameter id={quoteattr(k.lower())}>{escape(v)}</uws:parameter>"
            for k, v in job.params.items()
        )
        ns = f" {_NS_ATTRS}" if standalone else ""
        text = f"<uws:parameters{ns}>{items}</uws:parameters>"
        return _XML_HEAD + text + "\n" if standalone else text

    @staticmethod
    def results_xml(job: Job, base: str, standalone: bool = True) -> str:
        """The ``uws:results`` element."""
        items = ""
        if job.phase == "COMPLETED" and job.result is not None:
            href = f"{base}/async/{job.job_id}/results/result"
            items = f'<uws:result id="result" xlink:href={quoteattr(href)} mime-type={quoteattr(job.result_type.split(";")[0])}/>'
        ns = f" {_NS_ATTRS}" if standalone else ""
        text = f"<uws:results{ns}>{items}</uws:results>"
        return _XML_HEAD + text + "\n" if standalone else text

    def job_xml(self, job: Job, base: str) -> str:
        """The ``uws:job`` document (element order of the UWS 1.1 schema)."""

        def opt(name: str, t: dt.datetime | None) -> str:
            if t is None:
                return f'<uws:{name} xsi:nil="true"/>'
            return f"<uws:{name}>{iso(t)}</uws:{name}>"

        error = ""
        if job.phase == "ERROR" and job.error:
            error = (
                '<uws:errorSummary type="fatal" hasDetail="true">'
                f"<uws:message>{escape(job.error)}</uws:message></uws:errorSummary>"
            )
        return (
            f'{_XML_HEAD}<uws:job version="1.1" {_NS_ATTRS}>'
            f"<uws:jobId>{job.job_id}</uws:jobId>"
            + (f"<uws:runId>{escape(job.run_id)}</uws:runId>" if job.run_id else "")
            + (
                f"<uws:ownerId>{escape(job.owner)}</uws:ownerId>"
                if job.owner
                else '<uws:ownerId xsi:nil="true"/>'
            )
            + f"<uws:phase>{job.phase}</uws:phase>"
            + f"<uws:quote>{iso(job.quote)}</uws:quote>"
            + f"<uws:creationTime>{iso(job.creation)}</uws:creationTime>"
            + opt("startTime", job.start)
            + opt("endTime", job.end)
            + f"<uws:executionDuration>{job.execution_duration}</uws:executionDuration>"
            + opt("destruction", job.destruction)
            + self.parameters_xml(job, standalone=False)
            + self.results_xml(job, base, standalone=False)
            + error
            + "</uws:job>\n"
        )
