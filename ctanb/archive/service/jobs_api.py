"""HTTP endpoints of the UWS job list ``/async`` and of each job resource."""

from __future__ import annotations

from datetime import timedelta

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from .params import Params, ServiceFault, read_params
from .state import ArchiveState
from .uws import Job, JobManager, iso, now_utc, parse_iso
from .votable import VOTABLE_MIME, error_votable

__all__ = ["async_routes"]

_XML = "text/xml; charset=utf-8"


def _ctx(request: Request) -> tuple[ArchiveState, JobManager, str]:
    state: ArchiveState = request.app.state.archive
    return state, state.jobs, state.public_base(str(request.base_url))


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


async def job_list(request: Request) -> Response:
    """GET: the job list; POST: create a job (303 to it)."""
    _state, jobs, base = _ctx(request)
    params = await read_params(request)
    if request.method == "POST":
        # A bad query is not refused here: the job runs into ERROR with the message (UWS).
        job = jobs.create(params, base)
        return _see_other(f"{base}/async/{job.job_id}")
    body = jobs.job_list_xml(base, params.getall("PHASE"), params.get("AFTER"), params.get("LAST"))
    return Response(body, media_type=_XML)


async def job_resource(request: Request) -> Response:
    """GET the job (WAIT/PHASE blocking), DELETE it, or POST ACTION=DELETE / PHASE=..."""
    state, jobs, base = _ctx(request)
    job = jobs.get(request.path_params["job_id"])
    params = await read_params(request)
    if request.method == "DELETE":
        jobs.delete(job)
        return _see_other(f"{base}/async")
    if request.method == "POST":
        action = (params.get("ACTION") or "").upper()
        if action == "DELETE":
            jobs.delete(job)
            return _see_other(f"{base}/async")
        if action:
            raise ServiceFault(f"ACTION={action!r} is not supported: use ACTION=DELETE")
        if "PHASE" in params:
            _change_phase(jobs, job, params.get("PHASE") or "")
        return _see_other(f"{base}/async/{job.job_id}")
    wait = params.get("WAIT")
    if wait is not None:
        try:
            seconds = float(wait)
        except ValueError:
            raise ServiceFault(f"WAIT={wait!r} is not a number") from None
        if seconds < 0:  # UWS 1.1: -1 means "as long as the server allows"
            seconds = state.settings.max_wait_s
        await run_in_threadpool(jobs.wait, job, seconds, params.get("PHASE"))
    return Response(jobs.job_xml(job, base), media_type=_XML)


def _change_phase(jobs: JobManager, job: Job, phase: str) -> None:
    phase = phase.strip().upper()
    if phase == "RUN":
        jobs.run(job)
    elif phase == "ABORT":
        jobs.abort(job)
    else:
        raise ServiceFault(f"PHASE={phase!r} is not supported: use PHASE=RUN or PHASE=ABORT")


async def job_phase(request: Request) -> Response:
    """GET the phase as text; POST PHASE=RUN or PHASE=ABORT."""
    _, jobs, base = _ctx(request)
    job = jobs.get(request.path_params["job_id"])
    if request.method == "POST":
        params = await read_params(request)
        _change_phase(jobs, job, params.get("PHASE") or "")
        return _see_other(f"{base}/async/{job.job_id}")
    return PlainTextResponse(job.phase)


def _require_pending(job: Job, what: str) -> None:
    if job.phase != "PENDING":
        raise ServiceFault(f"the {what} of job {job.job_id} cannot change: it is {job.phase}")


async def job_execution_duration(request: Request) -> Response:
    """GET/POST EXECUTIONDURATION (seconds; capped at the service limit)."""
    state, jobs, base = _ctx(request)
    job = jobs.get(request.path_params["job_id"])
    if request.method == "POST":
        value = (await read_params(request)).get("EXECUTIONDURATION") or ""
        try:
            seconds = int(float(value))
        except ValueError:
            raise ServiceFault(f"EXECUTIONDURATION={value!r} is not a number") from None
        _require_pending(job, "execution duration")
        limit = state.settings.execution_duration_s
        job.execution_duration = limit if seconds <= 0 else min(seconds, limit)
        return _see_other(f"{base}/async/{job.job_id}")
    return PlainTextResponse(str(job.execution_duration))


async def job_destruction(request: Request) -> Response:
    """GET/POST DESTRUCTION (ISO 8601; never later than the retention limit)."""
    state, jobs, base = _ctx(request)
    job = jobs.get(request.path_params["job_id"])
    if request.method == "POST":
        value = (await read_params(request)).get("DESTRUCTION") or ""
        latest = now_utc() + timedelta(seconds=state.settings.retention_s)
        job.destruction = min(parse_iso(value), latest)
        return _see_other(f"{base}/async/{job.job_id}")
    return PlainTextResponse(iso(job.destruction))


async def job_quote(request: Request) -> Response:
    """GET the quote (estimated completion time)."""
    _, jobs, _ = _ctx(request)
    return PlainTextResponse(iso(jobs.get(request.path_params["job_id"]).quote))


async def job_owner(request: Request) -> Response:
    """GET the owner (empty: jobs are anonymous)."""
    _, jobs, _ = _ctx(request)
    return PlainTextResponse(jobs.get(request.path_params["job_id"]).owner or "")


async def job_error(request: Request) -> Response:
    """GET the error document of a failed job."""
    _, jobs, _ = _ctx(request)
    job = jobs.get(request.path_params["job_id"])
    if job.phase != "ERROR":
        raise ServiceFault(f"job {job.job_id} has no error: it is {job.phase}", 404)
    return Response(error_votable(job.error or "unknown error"), media_type=VOTABLE_MIME)


async def job_parameters(request: Request) -> Response:
    """GET the parameters; POST new ones while PENDING."""
    _state, jobs, base = _ctx(request)
    job = jobs.get(request.path_params["job_id"])
    if request.method == "POST":
        new = await read_params(request)
        _require_pending(job, "parameters")
        merged = Params(job.params.items())
        merged.update(new)
        job.params = merged
        return _see_other(f"{base}/async/{job.job_id}")
    return Response(jobs.parameters_xml(job), media_type=_XML)


async def job_results(request: Request) -> Response:
    """GET the results list."""
    _, jobs, base = _ctx(request)
    return Response(
        jobs.results_xml(jobs.get(request.path_params["job_id"]), base), media_type=_XML
    )


async def job_result(request: Request) -> Response:
    """GET the result table of a completed job."""
    _, jobs, _ = _ctx(request)
    job = jobs.get(request.path_params["job_id"])
    if job.phase != "COMPLETED" or job.result is None:
        raise ServiceFault(f"job {job.job_id} has no result: it is {job.phase}", 404)
    return Response(job.result, media_type=job.result_type)


_GP = ["GET", "POST"]


def async_routes() -> list[Route]:
    """The routes below ``/async``."""
    p = "/async/{job_id}"
    return [
        Route("/async", job_list, methods=_GP),
        Route(p, job_resource, methods=["GET", "POST", "DELETE"]),
        Route(p + "/phase", job_phase, methods=_GP),
        Route(p + "/executionduration", job_execution_duration, methods=_GP),
        Route(p + "/destruction", job_destruction, methods=_GP),
        Route(p + "/quote", job_quote, methods=["GET"]),
        Route(p + "/owner", job_owner, methods=["GET"]),
        Route(p + "/error", job_error, methods=["GET"]),
        Route(p + "/parameters", job_parameters, methods=_GP),
        Route(p + "/results", job_results, methods=["GET"]),
        Route(p + "/results/result", job_result, methods=["GET"]),
    ]
