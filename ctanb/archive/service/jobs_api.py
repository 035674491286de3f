"""HTTP endpoints of the UWS job list ``/async`` and of each job resource."""

from __future__ import annotations

import math
import re
from datetime import timedelta

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from ..._uws import Phase
from .params import Params, ServiceFault, read_params
from .state import ArchiveState, identity
from .uws import Job, UWSJobManager, iso, now_utc, parse_iso
from .uws_xml import (
    check_job_params,
    job_document,
    job_list_document,
    parameters_document,
    results_document,
)
from .votable import VOTABLE_MIME, error_votable

__all__ = ["async_routes", "parse_seconds"]

_XML = "text/xml; charset=utf-8"
# A plain decimal number: ASCII digits only (Python's float() also takes 'nan', 'inf',
# '1_0' and non-ASCII digits, none of which a client means as seconds).
_NUMBER = re.compile(r"\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d{1,3})?\s*", re.ASCII)


def parse_seconds(name: str, text: str) -> float:
    """A finite number of seconds from a parameter, or a 400 naming the parameter."""
    shown = text[:40]
    if not _NUMBER.fullmatch(text):
        raise ServiceFault(f"{name}={shown!r} is not a number of seconds")
    value = float(text)
    if not math.isfinite(value):
        raise ServiceFault(f"{name}={shown!r} is too large a number of seconds")
    return value


def _duration(state: ArchiveState, text: str) -> int:
    """EXECUTIONDURATION in whole seconds, capped at the service limit (0: the limit)."""
    seconds = parse_seconds("EXECUTIONDURATION", text)
    if seconds < 0:
        raise ServiceFault(
            f"EXECUTIONDURATION={text[:40]!r} is negative; give seconds (0: no limit)"
        )
    limit = state.settings.execution_duration_s
    return limit if seconds == 0 else min(math.ceil(seconds), limit)


def _requested_times(state: ArchiveState, params: Params) -> dict[str, object]:
    """EXECUTIONDURATION and DESTRUCTION given when a job is created (UWS 1.1 lets a
    client set them then), checked like their own endpoints check them."""
    times: dict[str, object] = {}
    if params.get("EXECUTIONDURATION") is not None:
        times["execution_duration"] = _duration(state, params.get("EXECUTIONDURATION") or "")
    if params.get("DESTRUCTION") is not None:
        when = parse_iso(params.get("DESTRUCTION") or "")
        if when <= now_utc():
            raise ServiceFault("DESTRUCTION is in the past: give a future ISO 8601 time")
        times["destruction"] = min(when, now_utc() + timedelta(seconds=state.settings.retention_s))
    return times


def _ctx(request: Request) -> tuple[ArchiveState, UWSJobManager, str, str | None]:
    state: ArchiveState = request.app.state.archive
    return (
        state,
        state.jobs,
        state.public_base(str(request.base_url)),
        identity(state, request.headers),
    )


def _job(request: Request) -> tuple[ArchiveState, UWSJobManager, str, Job]:
    state, jobs, base, who = _ctx(request)
    return state, jobs, base, jobs.get(request.path_params["job_id"], who)


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


async def job_list(request: Request) -> Response:
    """GET: the client's own jobs; POST: create a job (303 to it)."""
    state, jobs, base, who = _ctx(request)
    params = await read_params(request)
    if request.method == "POST":
        # A bad query is not refused here: the job runs into ERROR with the message (UWS).
        client = request.client.host if request.client else "unknown"
        times = _requested_times(state, params)
        job = await run_in_threadpool(jobs.create, params, base, who, client, **times)
        return _see_other(f"{base}/async/{job.job_id}")
    listed = jobs.visible(who)
    phases = {_phase_name(p) for p in params.getall("PHASE")}
    # UWS 1.1: ARCHIVED jobs are hidden unless asked for (we have none)
    listed = [j for j in listed if (j.phase in phases if phases else j.phase != Phase.ARCHIVED)]
    after = params.get("AFTER")
    if after:
        t = parse_iso(after)
        listed = [j for j in listed if j.creation > t]
    last = params.get("LAST")
    if last:
        if not last.strip().isascii() or not last.strip().isdigit():
            raise ServiceFault(f"LAST={last[:40]!r} is not a non-negative integer")
        listed = sorted(listed, key=lambda j: j.creation, reverse=True)[: int(last)]
    return Response(job_list_document(listed, base), media_type=_XML)


def _phase_name(text: str) -> Phase:
    try:
        return Phase(text.strip().upper())
    except ValueError:
        phases = ", ".join(Phase)
        raise ServiceFault(f"PHASE={text[:40]!r} is not a UWS phase ({phases})") from None


async def job_resource(request: Request) -> Response:
    """GET the job (WAIT/PHASE blocking), DELETE it, or POST ACTION=DELETE / PHASE=..."""
    state, jobs, base, job = _job(request)
    params = await read_params(request)
    if request.method == "DELETE":
        await run_in_threadpool(jobs.delete, job)
        return _see_other(f"{base}/async")
    if request.method == "POST":
        action = (params.get("ACTION") or "").upper()
        if action == "DELETE":
            await run_in_threadpool(jobs.delete, job)
            return _see_other(f"{base}/async")
        if action:
            raise ServiceFault(f"ACTION={action[:40]!r} is not supported: use ACTION=DELETE")
        if "PHASE" in params:
            await run_in_threadpool(_change_phase, jobs, job, params.get("PHASE") or "")
        return _see_other(f"{base}/async/{job.job_id}")
    wait = params.get("WAIT")
    if wait is not None:
        seconds = parse_seconds("WAIT", wait)
        if seconds < 0:  # UWS 1.1: -1 means "as long as the server allows"
            seconds = state.settings.max_wait_s
        phase = params.get("PHASE")
        await jobs.wait(job, seconds, _phase_name(phase) if phase else None)
    return Response(job_document(job, base), media_type=_XML)


def _change_phase(jobs: UWSJobManager, job: Job, phase: str) -> None:
    phase = phase.strip().upper()
    if phase == "RUN":
        jobs.run(job)
    elif phase == "ABORT":
        jobs.abort(job)
    else:
        raise ServiceFault(f"PHASE={phase[:40]!r} is not supported: use PHASE=RUN or PHASE=ABORT")


async def job_phase(request: Request) -> Response:
    """GET the phase as text; POST PHASE=RUN or PHASE=ABORT."""
    _, jobs, base, job = _job(request)
    if request.method == "POST":
        params = await read_params(request)
        await run_in_threadpool(_change_phase, jobs, job, params.get("PHASE") or "")
        return _see_other(f"{base}/async/{job.job_id}")
    return PlainTextResponse(job.phase)


def _require_pending(job: Job, what: str) -> None:
    if job.phase != "PENDING":
        raise ServiceFault(f"the {what} of job {job.job_id} cannot change: it is {job.phase}")


async def job_execution_duration(request: Request) -> Response:
    """GET/POST EXECUTIONDURATION (seconds; capped at the service limit)."""
    state, jobs, base, job = _job(request)
    if request.method == "POST":
        value = (await read_params(request)).get("EXECUTIONDURATION") or ""
        duration = _duration(state, value)
        _require_pending(job, "execution duration")
        job.execution_duration = duration
        await run_in_threadpool(jobs.update, job)
        return _see_other(f"{base}/async/{job.job_id}")
    return PlainTextResponse(str(job.execution_duration))


async def job_destruction(request: Request) -> Response:
    """GET/POST DESTRUCTION (ISO 8601; never later than the retention limit)."""
    state, jobs, base, job = _job(request)
    if request.method == "POST":
        value = (await read_params(request)).get("DESTRUCTION") or ""
        latest = now_utc() + timedelta(seconds=state.settings.retention_s)
        job.destruction = min(parse_iso(value), latest)
        await run_in_threadpool(jobs.update, job)
        return _see_other(f"{base}/async/{job.job_id}")
    return PlainTextResponse(iso(job.destruction))


async def job_quote(request: Request) -> Response:
    """GET the quote (estimated completion time)."""
    return PlainTextResponse(iso(_job(request)[3].quote))


async def job_owner(request: Request) -> Response:
    """GET the owner (empty for an anonymous job)."""
    return PlainTextResponse(_job(request)[3].owner or "")


async def job_error(request: Request) -> Response:
    """GET the error document of a failed job."""
    job = _job(request)[3]
    if job.phase != "ERROR":
        raise ServiceFault(f"job {job.job_id} has no error: it is {job.phase}", 404)
    return Response(error_votable(job.error or "unknown error"), media_type=VOTABLE_MIME)


async def job_parameters(request: Request) -> Response:
    """GET the parameters; POST new ones while PENDING."""
    _state, jobs, base, job = _job(request)
    if request.method == "POST":
        new = await read_params(request)
        _require_pending(job, "parameters")
        merged = Params([(k, v) for k, _ in job.params.items() for v in job.params.getall(k)])
        merged.update(new)
        check_job_params(merged)
        job.params = merged
        job.run_id = merged.get("RUNID")
        await run_in_threadpool(jobs.update, job)
        return _see_other(f"{base}/async/{job.job_id}")
    return Response(parameters_document(job), media_type=_XML)


async def job_results(request: Request) -> Response:
    """GET the results list."""
    _, _, base, job = _job(request)
    return Response(results_document(job, base), media_type=_XML)


async def job_result(request: Request) -> Response:
    """GET the result table of a completed job."""
    _, jobs, _, job = _job(request)
    body = await run_in_threadpool(jobs.result, job) if job.phase == "COMPLETED" else None
    if body is None:
        raise ServiceFault(f"job {job.job_id} has no result: it is {job.phase}", 404)
    return Response(body, media_type=job.result_type)


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
