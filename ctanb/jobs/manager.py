"""The job manager and the :class:`Job` handle (pyvo-like: submit, phase, wait, results)."""

from __future__ import annotations

import getpass
import html
import os
import shutil
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from .._errors import ConfigError, JobError
from .executors import DaskExecutor, LocalExecutor, kill_process_group, process_alive
from .kinds import allow_callable, check_target, get_kind, import_target, target_name
from .model import ACTIVE_PHASES, FINAL_PHASES, JobProvenance, JobRecord, Phase, now
from .runner import process_start_time
from .store import JobStore

__all__ = ["Job", "JobManager", "current_owner"]


def current_owner() -> str:
    """Who owns new jobs: ``JUPYTERHUB_USER`` on a hub, else the login name.

    Returns
    -------
    str
        The owner's name.
    """
    return os.environ.get("JUPYTERHUB_USER") or getpass.getuser()


class Job:
    """A handle on one job of a :class:`JobManager` (its state lives in the job store).

    Attribute reads of the changing state (``phase``, ``results``, ``error``,
    ``log``, ``provenance``) read the store again; :attr:`record` is the last
    row read.

    Parameters
    ----------
    manager : JobManager
        The manager the job belongs to.
    record : JobRecord
        The job's row in the store.
    """

    def __init__(self, manager: JobManager, record: JobRecord) -> None:
        self.manager = manager
        self.record = record

    # -- identity --------------------------------------------------------------------------
    @property
    def id(self) -> str:
        """The job's id."""
        return self.record.id

    @property
    def kind(self) -> str:
        """``query``, ``workflow``, ``redo``, ``callable`` or a registered kind."""
        return self.record.kind

    @property
    def name(self) -> str:
        """The name given at submission (or the kind)."""
        return self.record.name

    @property
    def owner(self) -> str:
        """Who submitted the job."""
        return self.record.owner

    @property
    def parameters(self) -> dict[str, Any]:
        """The job's parameters (JSON values), as validated at submission."""
        return dict(self.record.parameters)

    # -- state -----------------------------------------------------------------------------
    def refresh(self) -> Job:
        """Read the job's row again (noticing a dead job process).

        Returns
        -------
        Job
            This job.
        """
        self.record = self.manager._checked(self.manager.store.get(self.id))
        return self

    @property
    def phase(self) -> Phase:
        """The UWS phase now."""
        return self.refresh().record.phase

    @property
    def results(self) -> dict[str, Any]:
        """Result name -> value: ``Path`` for files, small JSON values otherwise."""
        return dict(self.refresh().record.results)

    @property
    def error(self) -> str | None:
        """The error message of a job in ERROR (the traceback is in :attr:`log`)."""
        return self.refresh().record.error

    @property
    def log(self) -> str:
        """The job's log: its stdout, stderr and logging output ("" before it starts)."""
        path = self.record.log_path
        if not path or not Path(path).is_file():
            return ""
        return Path(path).read_text(errors="replace")

    @property
    def provenance(self) -> JobProvenance:
        """The activities recorded during the job and the product paths they generated."""
        return self.refresh().record.provenance

    @property
    def work_dir(self) -> Path | None:
        """The job's own folder."""
        return Path(self.record.work_dir) if self.record.work_dir else None

    # -- actions ---------------------------------------------------------------------------
    def run(self) -> Job:
        """Start a PENDING job (submitted with ``run=False``).

        Returns
        -------
        Job
            This job.
        """
        self.manager.start(self.id)
        return self.refresh()

    def wait(self, timeout: float | None = None, *, poll: float = 0.05) -> Job:
        """Wait until the job is COMPLETED, ERROR or ABORTED.

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait at most (default: no limit).
        poll : float
            Seconds between two reads of the store.

        Returns
        -------
        Job
            This job.

        Raises
        ------
        JobError
            The job is still not finished after *timeout* seconds, or it is
            PENDING (never started).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            phase = self.phase
            if phase in FINAL_PHASES:
                return self
            if phase == Phase.PENDING:
                raise JobError(f"job {self.id} is PENDING: start it with job.run()")
            if deadline is not None and time.monotonic() > deadline:
                raise JobError(f"job {self.id} is still {phase} after {timeout:g} s")
            time.sleep(poll)
            poll = min(poll * 1.5, 1.0)

    def raise_if_error(self) -> Job:
        """Raise the job's error if it ended in ERROR or ABORTED.

        Returns
        -------
        Job
            This job, when it did not fail.

        Raises
        ------
        JobError
            With the job's error message.
        """
        phase = self.phase
        if phase in (Phase.ERROR, Phase.ABORTED):
            raise JobError(f"job {self.id} ({self.name}) {phase}: {self.record.error}")
        return self

    def abort(self) -> Job:
        """Abort the job: mark it ABORTED and kill its process group (no-op once finished).

        Returns
        -------
        Job
            This job.
        """
        self.manager.abort(self.id)
        return self.refresh()

    def rerun(self) -> Job:
        """Submit a new job with the same kind and parameters.

        Returns
        -------
        Job
            The new job.
        """
        return self.manager.rerun(self.id)

    def delete(self) -> None:
        """Abort the job if running, then remove it and its folder."""
        self.manager.delete(self.id)

    def __repr__(self) -> str:
        return f"<Job {self.id} {self.kind} {self.name!r} {self.record.phase}>"

    def _repr_html_(self) -> str:
        r = self.record
        return (
            f"<b>Job {html.escape(r.id)}</b> {html.escape(r.kind)} "
            f"<i>{html.escape(r.name)}</i>: <b>{r.phase}</b>"
            + (f"<br><span style='color:#b71c1c'>{html.escape(r.error)}</span>" if r.error else "")
        )


class JobManager:
    """Submit, list, abort, rerun and delete jobs.

    Parameters
    ----------
    store : JobStore, str or path, optional
        The job store (default ``CTANB_JOBS_URL`` or ``<home_dir>/jobs.db``).
    executor : {"local", "dask"} or executor object
        ``local`` runs each job as a detached process on this machine; ``dask``
        runs them on a Dask cluster (``dask_address``, or a LocalCluster).
    dask_address : str, optional
        Scheduler address for ``executor="dask"``.
    jobs_dir : path, optional
        Where the job folders go (default ``<home_dir>/jobs``).

    Examples
    --------
    >>> from ctanb.jobs import JobManager
    >>> jobs = JobManager()
    >>> job = jobs.submit("query", {"adql": "SELECT TOP 5 * FROM ivoa.obscore"})
    >>> job.wait(timeout=300).results["votable"]
    PosixPath('.../result.xml')

    Any importable function is a job kind (not run by the doctests: ``mypkg`` is yours):

    >>> jobs.submit("mypkg.steps:fit_spectrum", {"obs_ids": [23523]}, name="Crab fit")  # doctest: +SKIP
    """

    def __init__(
        self,
        store: JobStore | str | Path | None = None,
        executor: str | LocalExecutor | DaskExecutor = "local",
        dask_address: str | None = None,
        *,
        jobs_dir: str | Path | None = None,
    ) -> None:
        from .._settings import home_dir

        self.store = store if isinstance(store, JobStore) else JobStore(store)
        if isinstance(executor, LocalExecutor | DaskExecutor):
            self.executor = executor
        elif executor == "local":
            self.executor = LocalExecutor()
        elif executor == "dask":
            self.executor = DaskExecutor(dask_address)
        else:
            raise ConfigError(f"executor must be 'local' or 'dask', not {executor!r}")
        self.jobs_dir = Path(jobs_dir) if jobs_dir else home_dir() / "jobs"

    def __repr__(self) -> str:
        return f"JobManager({self.store.safe_url!r}, executor={self.executor.name!r})"

    def __enter__(self) -> JobManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the executor (running local jobs keep running)."""
        self.executor.close()

    # -- submit ----------------------------------------------------------------------------
    def submit(
        self,
        kind: str | Callable[..., Any],
        params: Mapping[str, Any] | None = None,
        *,
        name: str | None = None,
        run: bool = True,
    ) -> Job:
        """Create a job and (unless ``run=False``) start it.

        Parameters
        ----------
        kind : str or callable
            A registered kind (``"query"``, ``"workflow"``, ``"redo"``), or a
            function to call: the function itself or ``"module:qualname"``
            (a ``callable`` job; it must be importable by another process).
        params : mapping
            The kind's parameters, or the function's keyword arguments (JSON values).
        name : str, optional
            A name to show in the job list.
        run : bool
            Start at once (default); otherwise the job stays PENDING until ``job.run()``.

        Returns
        -------
        Job
            The new job (QUEUED or EXECUTING, or PENDING with ``run=False``).

        Raises
        ------
        JobError
            Unknown kind, a function that cannot be imported, or invalid parameters.
        """
        if params is not None and not isinstance(params, Mapping):
            raise JobError(f"params: give the parameters as a dict (name: value), not {params!r}")
        params = dict(params or {})
        if callable(kind) or (isinstance(kind, str) and ":" in kind):
            target = allow_callable(kind if isinstance(kind, str) else target_name(kind))
            import_target(target)  # fail now, in the notebook, if it cannot be imported
            kind_name, values = "callable", _json_params(params)
            default_name = target.rpartition(":")[2]
        else:
            spec = get_kind(kind)
            target, kind_name, values = spec.target, spec.name, spec.validate(params)
            default_name = kind_name
        record = self._create(kind_name, target, values, name or default_name)
        if run:
            self.start(record.id)
        return self.get(record.id)

    def _create(
        self, kind: str, target: str, params: dict[str, Any], name: str, rerun_of: str | None = None
    ) -> JobRecord:
        job_id = uuid.uuid4().hex[:16]
        work_dir = (self.jobs_dir / job_id).resolve()
        record = JobRecord(
            id=job_id,
            kind=kind,
            target=target,
            name=name,
            owner=current_owner(),
            parameters=params,
            executor=self.executor.name,
            work_dir=str(work_dir),
            log_path=str(work_dir / "job.log"),
            rerun_of=rerun_of,
        )
        self.store.add(record)
        return record

    def start(self, job_id: str) -> None:
        """Hand a PENDING job to the executor (QUEUED until its process starts).

        Parameters
        ----------
        job_id : str
            The job.

        Raises
        ------
        JobError
            The job is not PENDING, names a function it may not run, or the
            executor could not start it.
        """
        record = self.store.get(job_id)
        check_target(record.target, record.kind)  # a record may have been changed in the store
        if not self.store.transition(job_id, Phase.QUEUED, allowed_from=[Phase.PENDING]):
            raise JobError(f"job {job_id} is {record.phase}, only a PENDING job can be started")
        work_dir, log_path = str(record.work_dir), str(record.log_path)
        try:
            pid = self.executor.start(
                job_id, self.store.url, work_dir, log_path, target=record.target
            )
        except Exception as exc:
            self.store.transition(
                job_id,
                Phase.ERROR,
                allowed_from=[Phase.QUEUED],
                ended=now(),
                error=f"the {self.executor.name} executor could not start the job: {exc}",
                error_type=type(exc).__name__,
            )
            raise JobError(f"could not start job {job_id}: {exc}") from None
        if pid is not None:  # a local process: known at once, so a crash is noticed at once
            self.store.update(
                job_id, pid=pid, host=socket.gethostname(), pid_start=process_start_time(pid)
            )

    # -- read ------------------------------------------------------------------------------
    def get(self, job_id: str) -> Job:
        """The job *job_id*.

        Parameters
        ----------
        job_id : str
            The job's id.

        Returns
        -------
        Job
            A handle on the job.

        Raises
        ------
        JobError
            There is no such job.
        """
        return Job(self, self._checked(self.store.get(job_id)))

    def list(
        self,
        phase: str | Iterable[str] | None = None,
        owner: str | None = None,
        *,
        kind: str | None = None,
        limit: int | None = 500,
    ) -> list[Job]:
        """Jobs, newest first, optionally of some phases, one owner or one kind.

        A running job whose process is gone is turned into ERROR here.

        Parameters
        ----------
        phase : str or iterable of str, optional
            Only jobs in these phases.
        owner : str, optional
            Only this owner's jobs.
        kind : str, optional
            Only jobs of this kind.
        limit : int, optional
            At most this many (None: all).

        Returns
        -------
        list of Job
            Newest first.
        """
        records = self.store.list(phase=phase, owner=owner, kind=kind, limit=limit)
        checked = [self._checked(r) for r in records]
        if phase is not None:  # a job just found dead may no longer match
            wanted = {Phase.parse(p) for p in ([phase] if isinstance(phase, str) else phase)}
            checked = [r for r in checked if r.phase in wanted]
        return [Job(self, r) for r in checked]

    def _checked(self, record: JobRecord) -> JobRecord:
        """The record, with a running job whose process died turned into ERROR."""
        self.executor.reap()
        if record.phase not in ACTIVE_PHASES:
            return record
        reason = None
        alive = process_alive(record.pid, record.pid_start, record.host)
        if alive is False:
            reason = (
                f"the job process {record.pid} on {record.host} died without reporting a result "
                "(killed, out of memory, or the machine restarted); see the job log"
            )
        elif record.executor == self.executor.name:
            reason = self.executor.failure(record.id)
        if reason is None:
            return record
        self.store.transition(
            record.id,
            Phase.ERROR,
            allowed_from=ACTIVE_PHASES,
            ended=now(),
            error=reason,
            error_type="ProcessDied",
        )
        return self.store.get(record.id)

    # -- act -------------------------------------------------------------------------------
    def abort(self, job_id: str) -> Job:
        """Mark the job ABORTED and kill its process group (no-op for a finished job).

        Parameters
        ----------
        job_id : str
            The job.

        Returns
        -------
        Job
            The job, ABORTED (or as it ended).
        """
        record = self.store.get(job_id)
        if record.phase in FINAL_PHASES:
            return Job(self, record)
        self.store.transition(
            job_id,
            Phase.ABORTED,
            allowed_from=[Phase.PENDING, *ACTIVE_PHASES],
            ended=now(),
            error=f"aborted by {current_owner()}",
        )
        if record.executor == self.executor.name:
            self.executor.cancel(job_id)
        record = self.store.get(job_id)
        if record.pid is not None and process_alive(record.pid, record.pid_start, record.host):
            kill_process_group(record.pid)
        self.executor.reap()
        return Job(self, self.store.get(job_id))

    def rerun(self, job_id: str) -> Job:
        """Submit a new job with the kind, target, parameters and name of *job_id*.

        Parameters
        ----------
        job_id : str
            The job to run again.

        Returns
        -------
        Job
            The new job.

        Raises
        ------
        JobError
            No such job, or its record names a function this session may not run
            (a registered kind's own function, or one submitted in this session).
        """
        old = self.store.get(job_id)
        check_target(old.target, old.kind)  # never code a stored record names on its own
        record = self._create(old.kind, old.target, dict(old.parameters), old.name, old.id)
        self.start(record.id)
        return self.get(record.id)

    def delete(self, job_id: str) -> None:
        """Abort the job if it runs, then remove its row and its folder.

        Parameters
        ----------
        job_id : str
            The job.
        """
        record = self.store.get(job_id)
        if record.phase not in FINAL_PHASES:
            self.abort(job_id)
        self.store.delete(job_id)
        work_dir = Path(record.work_dir) if record.work_dir else None
        # Only a folder the manager made (<jobs_dir>/<id>) is removed, never a user's path.
        if work_dir is not None and work_dir.name == job_id and work_dir.is_dir():
            shutil.rmtree(work_dir, ignore_errors=True)


def _json_params(params: dict[str, Any]) -> dict[str, Any]:
    import json

    try:
        json.dumps(params)
    except (TypeError, ValueError) as exc:
        raise JobError(
            f"the parameters of a job must be JSON values (they go to another process): {exc}"
        ) from None
    return params
