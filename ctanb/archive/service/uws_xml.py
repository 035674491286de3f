"""UWS 1.1 documents of the job list and jobs, built with ``vo-models`` (pydantic-xml).

Everything a client sent and a document echoes (parameter names and values, the
RUNID) is checked when it arrives (:func:`check_job_params`): XML 1.0 cannot
carry most control characters nor U+FFFE/U+FFFF, and a single such character
made the whole job list unreadable for every client. Refusing them (400) keeps
what the client asked for intact instead of silently altering it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from pydantic_xml import BaseXmlModel, element
from vo_models.uws.models import (
    NSMAP,
    ErrorSummary,
    Jobs,
    JobSummary,
    Parameter,
    ResultReference,
    Results,
    ShortJobDescription,
)
from vo_models.uws.types import ErrorType, ExecutionPhase

from .params import MAX_QUERY_CHARS, Params, ServiceFault

if TYPE_CHECKING:
    from .uws import Job

__all__ = [
    "MAX_PARAMS",
    "MAX_PARAM_CHARS",
    "MAX_RUNID_CHARS",
    "TapJob",
    "TapParameters",
    "check_job_params",
    "job_document",
    "job_list_document",
    "parameters_document",
    "results_document",
]

#: Longest RUNID accepted (it is a label for the client's own use).
MAX_RUNID_CHARS = 256
#: Longest value of any other parameter except QUERY (which has its own limit).
MAX_PARAM_CHARS = 4096
#: Most parameters a job may have.
MAX_PARAMS = 64
_MAX_NAME_CHARS = 64

# Characters XML 1.0 cannot carry (Char production; surrogates cannot be encoded either).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.\-]*")


def check_text(what: str, text: str, limit: int) -> None:
    """Refuse *text* (400) when it is longer than *limit* or XML 1.0 cannot carry it."""
    if len(text) > limit:
        raise ServiceFault(f"{what} is {len(text)} characters long; the limit is {limit}")
    bad = _NOT_XML.search(text)
    if bad:
        raise ServiceFault(
            f"{what} contains the control character U+{ord(bad.group()):04X} at position "
            f"{bad.start() + 1}, which cannot be stored in a UWS document: remove it"
        )


def check_job_params(params: Params) -> None:
    """Validate what a job will echo: names, values, RUNID (raises a 400 :class:`ServiceFault`)."""
    items = params.items()
    if len(items) > MAX_PARAMS:
        raise ServiceFault(f"a job takes at most {MAX_PARAMS} parameters, {len(items)} were sent")
    for name, _ in items:
        if len(name) > _MAX_NAME_CHARS or not _NAME.fullmatch(name):
            shown = name[:40].encode("unicode_escape").decode()
            raise ServiceFault(
                f"parameter name {shown!r} is not accepted: use letters, digits, '_', '.' or '-', "
                f"at most {_MAX_NAME_CHARS} characters, starting with a letter"
            )
    for name in {n for n, _ in items}:
        limit = {"RUNID": MAX_RUNID_CHARS, "QUERY": MAX_QUERY_CHARS}.get(name, MAX_PARAM_CHARS)
        for value in params.getall(name):
            check_text(name, value, limit)


class TapParameters(BaseXmlModel, tag="parameters", ns="uws", nsmap=NSMAP):
    """The ``uws:parameters`` of a TAP job: any parameter names, in request order."""

    parameter: list[Parameter] = element(tag="parameter", default_factory=list)


#: The ``uws:job`` document of a TAP job (parses one too: ``TapJob.from_xml(text)``).
TapJob = JobSummary[TapParameters]


def _xml(model: BaseXmlModel) -> bytes:
    return model.to_xml(encoding="UTF-8", xml_declaration=True) + b"\n"


def _parameters(job: Job) -> TapParameters:
    return TapParameters(
        parameter=[Parameter(id=k.lower(), value=v) for k, v in job.params.items()]
    )


def _results(job: Job, base: str) -> Results:
    if job.phase != "COMPLETED" or not job.has_result:
        return Results()
    ref = ResultReference(
        id="result",
        href=f"{base}/async/{job.job_id}/results/result",
        mime_type=job.result_type.split(";")[0],
        size=job.result_size,
    )
    return Results(results=[ref])


def parameters_document(job: Job) -> bytes:
    """The ``uws:parameters`` document of *job*."""
    return _xml(_parameters(job))


def results_document(job: Job, base: str) -> bytes:
    """The ``uws:results`` document of *job*."""
    return _xml(_results(job, base))


def job_document(job: Job, base: str) -> bytes:
    """The ``uws:job`` document of *job* (UWS 1.1)."""
    error = None
    if job.phase == "ERROR" and job.error:
        error = ErrorSummary(message=job.error, type=ErrorType.FATAL, has_detail=True)
    doc = TapJob(
        job_id=job.job_id,
        run_id=job.run_id,
        owner_id=job.owner,
        phase=ExecutionPhase(job.phase),
        quote=job.quote,
        creation_time=job.creation,
        start_time=job.start,
        end_time=job.end,
        execution_duration=job.execution_duration,
        destruction=job.destruction,
        parameters=_parameters(job),
        results=_results(job, base),
        error_summary=error,
    )
    return _xml(doc)


def job_list_document(jobs: list[Job], base: str) -> bytes:
    """The ``uws:jobs`` document listing *jobs*."""
    refs = [
        ShortJobDescription(
            job_id=j.job_id,
            href=f"{base}/async/{j.job_id}",
            phase=ExecutionPhase(j.phase),
            run_id=j.run_id,
            owner_id=j.owner,
            creation_time=j.creation,
        )
        for j in jobs
    ]
    return _xml(Jobs(jobref=refs))
