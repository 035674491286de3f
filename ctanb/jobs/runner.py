"""The job runner: the code that runs *inside* a job's own process.

``python -m ctanb.jobs JOB_ID`` (the store URL in ``CTANB_JOBS_URL``)
reads the job, writes EXECUTING with its pid, host and process start time, runs
the kind's function in the job folder inside a ``ctanb-job`` provenance
activity, and writes COMPLETED with the results or ERROR with the message. Its
stdout and stderr are the job's log (the executor opened them on the log file),
so ``print``, ``logging`` and the output of programs it starts all land there,
and so does the traceback of a failure.

Every phase change is conditional (:meth:`JobStore.transition`): a runner that
finds its job ABORTED stops, and one that ends after an abort changes nothing.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._errors import CtanbError, JobError
from .model import JobProvenance, Phase, now
from .store import JobStore

__all__ = ["main", "process_start_time", "run_job"]

_log = logging.getLogger("ctanb.jobs")


def process_start_time(pid: int) -> float | None:
    """When process *pid* started (epoch seconds), or None if there is no such process."""
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def _as_results(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, Path):
        return {"file": value}
    return {"value": value}


def _call(record: Any, work_dir: Path) -> dict[str, Any]:
    from .executors import TARGET_ENV
    from .kinds import JobContext, allow_callable, import_target

    checked = os.environ.get(TARGET_ENV)  # what the launching process allowed
    if checked is not None and checked != record.target:
        raise JobError(
            f"refused to run {record.target}: the job was started for {checked} "
            "(its record was changed; nothing was imported)"
        )
    if checked is not None:
        func = import_target(allow_callable(checked))
    else:  # started by hand: only ctanb's own kinds
        func = import_target(record.target, record.kind)
    if record.kind == "callable":
        return _as_results(func(**record.parameters))
    context = JobContext(record.id, work_dir, logging.getLogger(f"ctanb.jobs.{record.kind}"))
    return _as_results(func(dict(record.parameters), context))


def _job_activity(record: Any) -> Any:
    """The provenance activity standing for the job; activities recorded inside are
    informed by it, which is how the job finds its provenance afterwards."""
    try:
        from ..provenance import Activity

        act = Activity(
            "ctanb-job",
            version=record.kind,
            description=record.name or f"{record.kind} job",
            parameters={"job_id": record.id, "job_target": record.target},
            attach=False,
        )
        act.__enter__()
        return act
    except Exception as exc:  # provenance is a bonus; never the reason a job fails
        _log.warning("no provenance for job %s: %s", record.id, exc)
        return None


def _finish_activity(act: Any, exc: BaseException | None) -> JobProvenance:
    if act is None:
        return JobProvenance()
    try:
        act.__exit__(type(exc) if exc else None, exc, None)
        return _collect_provenance(act)
    except Exception as error:
        _log.warning("provenance of the job could not be read back: %s", error)
        return JobProvenance(act.id)


def _collect_provenance(act: Any) -> JobProvenance:
    """Activities informed (transitively) by the job activity, and the files they generated."""
    store = act.store
    if store is None:
        return JobProvenance(act.id)
    known = {act.id}
    activities: list[str] = []
    products: list[str] = []
    frontier = [act.id]
    while frontier:
        graph = store.lineage(frontier, depth=1, direction="FORTH")
        frontier = []
        for record in graph.activities.values():
            if record.id not in known and known & set(record.informed_by):
                known.add(record.id)
                activities.append(record.id)
                frontier.append(record.id)
    if activities:
        graph = store.lineage(activities, depth=1, direction="FORTH")
        for record in graph.activities.values():
            if record.id not in activities:
                continue
            for rel in record.generated:
                entity = graph.entities.get(rel.entity_id)
                if entity is not None and entity.kind == "file" and entity.location:
                    if entity.location not in products:
                        products.append(entity.location)
    return JobProvenance(act.id, activities, products)


def run_job(job_id: str, store: JobStore) -> Phase:
    """Run job *job_id* in this process; returns the phase it ended in."""
    record = store.get(job_id)
    pid = os.getpid()
    started = store.transition(
        job_id,
        Phase.EXECUTING,
        allowed_from=[Phase.PENDING, Phase.QUEUED],
        started=now(),
        pid=pid,
        host=socket.gethostname(),
        pid_start=process_start_time(pid),
    )
    if not started:  # aborted (or run twice) before this process got going
        return store.get(job_id).phase
    work_dir = Path(record.work_dir or ".")
    work_dir.mkdir(parents=True, exist_ok=True)
    os.chdir(work_dir)
    _log.info("job %s (%s) started in %s", job_id, record.kind, work_dir)
    act = _job_activity(record)
    try:
        results = _call(record, work_dir)
    except BaseException as exc:
        details = traceback.format_exc()
        print(details, file=sys.stderr, flush=True)
        provenance = _finish_activity(act, exc)
        if isinstance(exc, CtanbError):
            message = exc.message
        elif isinstance(exc, KeyboardInterrupt | SystemExit):
            message = f"the job was interrupted ({type(exc).__name__})"
        else:
            message = f"{type(exc).__name__}: {exc}"
        store.transition(
            job_id,
            Phase.ERROR,
            allowed_from=[Phase.EXECUTING],
            ended=now(),
            error=message,
            error_type=type(exc).__name__,
            error_details=details,
            provenance=provenance,
        )
        _log.info("job %s failed: %s", job_id, message)
        return store.get(job_id).phase
    provenance = _finish_activity(act, None)
    store.transition(
        job_id,
        Phase.COMPLETED,
        allowed_from=[Phase.EXECUTING],
        ended=now(),
        results=results,
        provenance=provenance,
    )
    _log.info("job %s completed", job_id)
    return store.get(job_id).phase


def main(argv: list[str] | None = None) -> int:
    """Entry point of a job process: ``python -m ctanb.jobs JOB_ID``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m ctanb.jobs JOB_ID", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    try:
        store = JobStore(os.environ.get("CTANB_JOBS_URL"))
        phase = run_job(args[0], store)
    except JobError as exc:
        print(f"ctanb job runner: {exc.message}", file=sys.stderr)
        return 1
    sys.stdout.flush()
    return 0 if phase == Phase.COMPLETED else 1


if __name__ == "__main__":
    sys.exit(main())
