"""UWS 1.1 asynchronous TAP jobs (``/async``): owners, quotas, persistence, waiting.

Jobs run in a thread pool, each on its own read-only connection so that ABORT can
interrupt the running SQLite statement. Phases: PENDING -> QUEUED -> EXECUTING ->
COMPLETED / ERROR / ABORTED.

Owners
    A job belongs to the identity behind the request's token (the policy's group,
    see :meth:`~ctanb.archive.policy.AccessPolicy.identity_for_token`). Only the
    owner sees or changes an owned job (403 for anyone else) and the job list shows
    a client its own jobs only. An anonymous job is never listed: its URL, with a
    random 128-bit id, is the only way to it. A job's query runs with its owner's
    rights (the owner's groups and the groups they include, as the token gave them on
    ``/sync``); an anonymous job with public rights only.
Quotas
    Per owner (anonymous clients: per address), at most
    ``max_active_jobs`` unfinished jobs (403) and ``jobs_per_minute`` new jobs (429
    with ``Retry-After``).
Waiting
    ``WAIT`` blocks on an :class:`asyncio.Event` in the server's event loop, woken by
    the worker thread that changes the phase: a waiting client holds no thread.
Persistence
    Every change is written to a :class:`~.uws_store.UWSJobStore`; results live there,
    not in memory.
"""

from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
import logging
import secrets
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..._uws import UNFINISHED_PHASES, Phase
from .params import Params, ServiceFault
from .state import ArchiveState
from .tap import execute_query, validate_query_params
from .uws_store import INTERRUPTED, UWSJobStore, default_store_path
from .uws_xml import check_job_params

__all__ = [
    "Job",
    "QuotaFault",
    "UWSJobManager",
    "iso",
    "now_utc",
    "owner_groups",
    "parse_iso",
]

log = logging.getLogger("ctanb.archive.service")


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
        raise ServiceFault(f"{text[:40]!r} is not an ISO 8601 date-time") from None
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


class QuotaFault(ServiceFault):
    """A quota refusal; ``headers`` go into the answer (``Retry-After``)."""

    def __init__(self, message: str, status: int, headers: dict[str, str] | None = None):
        super().__init__(message, status)
        self.headers = headers or {}


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
    phase: Phase = Phase.PENDING
    creation: dt.datetime = field(default_factory=now_utc)
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    result_type: str = "application/x-votable+xml"
    result_size: int | None = None
    error: str | None = None
    client: str | None = None  # quota key of an anonymous job (not persisted)
    abort_requested: bool = False
    conn: Any = None

    @property
    def quote(self) -> dt.datetime:
        """Our estimate of completion: creation plus the execution duration limit."""
        return self.creation + dt.timedelta(seconds=self.execution_duration)

    @property
    def has_result(self) -> bool:
        return self.result_size is not None

    @property
    def quota_key(self) -> str:
        return f"user {self.owner}" if self.owner else f"anonymous clients from {self.client}"


def _job_from_row(data: dict) -> Job:
    pairs = [(k, v) for k, values in data.pop("params").items() for v in values]
    return Job(params=Params(pairs), **data)


def owner_groups(policy: Any, owner: str | None) -> frozenset[str]:
    """The groups a job's *owner* (an identity, ``"a+b"`` for several) acts for,
    with the groups they include: what the owner's token gave at creation."""
    groups = getattr(policy, "groups", None)
    if not owner or not isinstance(groups, dict):
        return frozenset()
    found: set[str] = set()
    todo = [name for name in owner.split("+") if name in groups]
    while todo:
        name = todo.pop()
        if name not in found:
            found.add(name)
            todo += list(getattr(groups[name], "includes", ()) or ())
    return frozenset(found)


class UWSJobManager:
    """The UWS jobs of one service (``/async``): their list, their store, the worker pool.

    Not :class:`ctanb.jobs.JobManager`, which runs ctanb's own analysis jobs.
    """

    def __init__(self, state: ArchiveState):
        self.state = state
        s = state.settings
        self.store = UWSJobStore(
            Path(s.jobs_db) if s.jobs_db else default_store_path(state.db_path)
        )
        self._lock = threading.RLock()
        self.jobs: dict[str, Job] = {j.job_id: j for j in self.store.load(_job_from_row)}
        self._waiters: dict[str, set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}
        self._created: dict[str, deque[float]] = {}
        self._closing = False
        self._purged = 0.0
        self.pool = ThreadPoolExecutor(max_workers=s.async_workers, thread_name_prefix="ctanb-uws")

    # -- lifecycle -------------------------------------------------------------------
    def create(
        self,
        params: Params,
        base_url: str,
        owner: str | None,
        client: str,
        *,
        execution_duration: int | None = None,
        destruction: dt.datetime | None = None,
    ) -> Job:
        """A new PENDING job of *owner* (None: anonymous, counted per *client* address),
        with the execution duration and destruction time the client asked for."""
        check_job_params(params)
        self._purge()
        s = self.state.settings
        job = Job(
            job_id=secrets.token_hex(16),
            params=params,
            base_url=base_url,
            execution_duration=execution_duration or s.execution_duration_s,
            destruction=destruction or now_utc() + dt.timedelta(seconds=s.retention_s),
            run_id=params.get("RUNID"),
            owner=owner,
            client=None if owner else client,
        )
        with self._lock:
            self._check_quota(job.quota_key)
            self.jobs[job.job_id] = job
        self.store.save(job)
        if (params.get("PHASE") or "").strip().upper() == "RUN":
            self.run(job)
        return job

    def _check_quota(self, key: str) -> None:
        s = self.state.settings
        now = time.monotonic()
        times = self._created.setdefault(key, deque())
        while times and times[0] <= now - 60:
            times.popleft()
        if len(times) >= s.jobs_per_minute:
            wait = int(times[0] + 60 - now) + 1
            raise QuotaFault(
                f"too many new jobs: {key} may create at most {s.jobs_per_minute} jobs a "
                f"minute; try again in {wait} s",
                429,
                {"Retry-After": str(wait)},
            )
        active = sum(
            1 for j in self.jobs.values() if j.quota_key == key and j.phase in UNFINISHED_PHASES
        )
        if active >= s.max_active_jobs:
            raise QuotaFault(
                f"too many unfinished jobs: {key} already has {active} (the limit is "
                f"{s.max_active_jobs}); wait for them to finish or delete pending ones",
                403,
            )
        times.append(now)

    def get(self, job_id: str, who: str | None) -> Job:
        """The job *job_id* as seen by *who*: unknown or destroyed -> 404, another
        owner's -> 403."""
        self._purge()
        job = self.jobs.get(job_id)
        if job is None or job.destruction <= now_utc():
            raise ServiceFault(f"no job {job_id[:64]!r} on this service (unknown or deleted)", 404)
        if job.owner is not None and job.owner != who:
            raise ServiceFault(f"job {job_id} belongs to another user", 403)
        return job

    def visible(self, who: str | None) -> list[Job]:
        """The jobs *who* may list (anonymous jobs are listed to nobody), oldest first."""
        self._purge()
        if who is None:
            return []
        with self._lock:
            mine = [j for j in self.jobs.values() if j.owner == who]
        return sorted(mine, key=lambda j: j.creation)

    def update(self, job: Job) -> None:
        """Store a change made to a PENDING job's parameters or limits."""
        with self._lock:
            self.store.save(job)

    def run(self, job: Job) -> None:
        """Queue a PENDING job (running twice is an error)."""
        with self._lock:
            if job.phase != Phase.PENDING:
                raise ServiceFault(f"job {job.job_id} is {job.phase}, only PENDING jobs can run")
            self._set_phase(job, Phase.QUEUED)
        # the job runs with the rights of the request that started it (its owner's
        # token: ctanb.archive.provtap.RightsMiddleware), not with none
        self.pool.submit(contextvars.copy_context().run, self._execute, job)

    def abort(self, job: Job) -> None:
        """Abort a job that has not finished (a running query is interrupted)."""
        with self._lock:
            if job.phase not in UNFINISHED_PHASES:
                return
            job.abort_requested = True
            if job.phase in (Phase.PENDING, Phase.QUEUED):
                self._finish(job, Phase.ABORTED)
            elif job.conn is not None:
                job.conn.interrupt()

    def delete(self, job: Job) -> None:
        """Abort and forget a job and its result."""
        self.abort(job)
        with self._lock:
            self.jobs.pop(job.job_id, None)
            self.store.delete([job.job_id])

    def result(self, job: Job) -> bytes | None:
        """The stored result of a COMPLETED job."""
        return self.store.result(job.job_id) if job.has_result else None

    async def wait(self, job: Job, seconds: float, phase: Phase | None) -> None:
        """UWS 1.1 blocking: wait up to *seconds* while the job is active (and in
        *phase*, if given), on an event of the running loop (no thread is held)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(max(seconds, 0.0), self.state.settings.max_wait_s)

        def settled() -> bool:
            if job.job_id not in self.jobs:  # deleted or destroyed meanwhile
                return True
            return job.phase not in UNFINISHED_PHASES or (phase is not None and job.phase != phase)

        while not settled():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            waiter = (loop, asyncio.Event())
            with self._lock:  # registered under the lock that phase changes take
                if settled():
                    return
                self._waiters.setdefault(job.job_id, set()).add(waiter)
            try:
                await asyncio.wait_for(waiter[1].wait(), remaining)
            except TimeoutError:
                return
            finally:
                with self._lock:
                    self._waiters.get(job.job_id, set()).discard(waiter)

    def shutdown(self) -> None:
        """Stop the workers; running and queued jobs end as interrupted (ERROR)."""
        with self._lock:
            self._closing = True
            for job in list(self.jobs.values()):
                if job.phase == Phase.QUEUED:
                    job.error = INTERRUPTED
                    self._finish(job, Phase.ERROR)
                elif job.phase == Phase.EXECUTING and job.conn is not None:
                    job.conn.interrupt()
        self.pool.shutdown(wait=False, cancel_futures=True)

    # -- internals ---------------------------------------------------------------------
    def _set_phase(self, job: Job, phase: Phase, result: bytes | None = None) -> None:
        """Change, store, and wake the waiters of *job* (caller holds the lock).

        Stored first, then shown: a reader without the lock (a result request, a WAIT
        just starting) that sees the new phase finds its result stored too.
        """
        if job.job_id in self.jobs:
            self.store.save(job, result, phase=phase)
        job.phase = phase
        self._wake(job)

    def _wake(self, job: Job) -> None:
        """Wake every client waiting on *job* (caller holds the lock)."""
        for loop, event in self._waiters.pop(job.job_id, set()):
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # that loop is closed: nobody waits any more
                pass

    def _finish(self, job: Job, phase: Phase, result: bytes | None = None) -> None:
        job.end = now_utc()
        self._set_phase(job, phase, result)

    def _purge(self) -> None:
        # A scan of every job at most once a second; get() checks its own job's time.
        if time.monotonic() - self._purged < 1.0:
            return
        self._purged = time.monotonic()
        now = now_utc()
        with self._lock:
            gone = [j for j in self.jobs.values() if j.destruction <= now]
            for job in gone:
                del self.jobs[job.job_id]
                self._wake(job)
                job.abort_requested = True
                if job.conn is not None:
                    job.conn.interrupt()
            self.store.delete([j.job_id for j in gone])

    def _execute(self, job: Job) -> None:
        with self._lock:
            if job.phase != Phase.QUEUED:
                return
            job.start = now_utc()
            self._set_phase(job, Phase.EXECUTING)
        conn = None
        try:
            conn = self.state.open_connection()
            job.conn = conn
            req = validate_query_params(job.params, self.state)
            # The job runs with its owner's rights (the provenance views read the groups
            # of "the current request"; a worker thread has none of its own).
            from ..provtap import run_as_groups

            with run_as_groups(owner_groups(self.state.policy, job.owner)):
                result = execute_query(
                    self.state,
                    req,
                    job.base_url,
                    conn=conn,
                    timeout_s=float(job.execution_duration),
                    cancelled=lambda: job.abort_requested or self._closing,
                )
        except ServiceFault as exc:
            with self._lock:
                self._end_failed(job, exc.message)
        except Exception as exc:  # a bug: keep the job list consistent, report cleanly
            log.exception("job %s failed", job.job_id)
            with self._lock:
                self._end_failed(
                    job, f"internal error while running the query ({type(exc).__name__})"
                )
        else:
            with self._lock:
                if job.abort_requested or self._closing:
                    self._end_failed(job, "")
                else:
                    job.result_type, job.result_size = result.media_type, len(result.body)
                    self._finish(job, Phase.COMPLETED, result.body)
        finally:
            job.conn = None
            if conn is not None:
                conn.close()

    def _end_failed(self, job: Job, message: str) -> None:
        if self._closing:
            job.error = INTERRUPTED
            self._finish(job, Phase.ERROR)
        elif job.abort_requested:
            self._finish(job, Phase.ABORTED)
        else:
            job.error = message
            self._finish(job, Phase.ERROR)
