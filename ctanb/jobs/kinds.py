"""Job kinds: what a job runs, registered by name.

A kind is a function ``run(params: dict, job: JobContext) -> mapping of results``
that is importable (``module:qualname``), because it runs in the job's own
process, and an optional strict pydantic model of its parameters, checked when
the job is submitted so that bad input fails in the notebook, not later.

Built in:

``query``
    ADQL against a TAP service; the answer is saved as a VOTable file.
``workflow``
    A ``ctanb run`` configuration (:mod:`ctanb.analysis.workflow`).
``redo``
    Re-execute the recorded chain of a product (:func:`ctanb.provenance.redo`).
``callable``
    An importable function ``module:qualname`` the user submits, called with
    the JSON parameters as keyword arguments.

A job record names its function, but a record is never trusted on its own: a
registered kind runs only the function it was registered with, and a ``callable``
job only a function the user submitted in the same session
(:func:`check_target`, checked before anything is imported).
"""

from __future__ import annotations

import logging
import pkgutil
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .._errors import JobError
from .._validation import describe_errors

__all__ = [
    "JobContext",
    "JobKind",
    "QueryParams",
    "RedoParams",
    "WorkflowParams",
    "allow_callable",
    "check_target",
    "get_kind",
    "import_target",
    "kinds",
    "register_kind",
    "target_name",
]


@dataclass(frozen=True)
class JobContext:
    """What a running job knows about itself.

    Attributes
    ----------
    job_id : str
        The job's id.
    work_dir : Path
        The job's own folder (the current directory while it runs); files
        written here are kept with the job and removed by ``delete``.
    log : logging.Logger
        A logger whose records go to the job's log.
    """

    job_id: str
    work_dir: Path
    log: logging.Logger


@dataclass(frozen=True)
class JobKind:
    """A registered kind of job.

    Parameters
    ----------
    name : str
        What ``JobManager.submit(name, params)`` is given.
    target : str
        The ``module:qualname`` of the function that runs it.
    params : pydantic model class, optional
        The model its parameters are checked against.
    description : str
        One line for the job list.
    """

    name: str
    target: str
    params: type[BaseModel] | None = None
    description: str = ""

    def validate(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The parameters checked against the kind's model, as JSON values.

        Parameters
        ----------
        params : mapping
            The parameters given to ``submit``.

        Returns
        -------
        dict
            The checked parameters (defaults filled in), as JSON values.

        Raises
        ------
        JobError
            A parameter is missing, unknown or invalid (named in the message).
        """
        if self.params is None:
            return dict(params)
        try:
            return self.params.model_validate(dict(params)).model_dump(mode="json")
        except ValidationError as exc:
            problems = describe_errors(exc, unknown="unknown parameter")
            raise JobError(f"invalid parameters for a {self.name!r} job: {problems}") from None


_KINDS: dict[str, JobKind] = {}


def target_name(func: Callable[..., Any]) -> str:
    """``module:qualname`` of an importable function; :class:`~ctanb.JobError` if it is not."""
    module = getattr(func, "__module__", None)
    qualname = getattr(func, "__qualname__", None)
    if not module or not qualname:
        raise JobError(f"{func!r} has no module and name, so a job process cannot import it")
    if "<" in qualname or module == "__main__":
        raise JobError(
            f"{module}:{qualname} cannot be imported by a job process: a job runs a function "
            "defined in a module (not a lambda, a nested function or a notebook cell); "
            "put it in a .py file and import it"
        )
    return f"{module}:{qualname}"


#: ``module:qualname`` made of Python names only (nothing else is ever resolved).
_TARGET_FORM = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")

#: Functions the user submitted as ``callable`` jobs in this process (by name or object).
_CALLABLES: set[str] = set()


def allow_callable(target: str) -> str:
    """Let this process run *target* as a ``callable`` job (the user named it).

    Parameters
    ----------
    target : str
        ``module:qualname`` of the function the user submits.

    Returns
    -------
    str
        *target*, checked for its form.

    Raises
    ------
    JobError
        *target* is not of the form ``module:qualname``.
    """
    if not _TARGET_FORM.fullmatch(target):
        raise JobError(f"{target!r} is not of the form 'module:qualname'")
    _CALLABLES.add(target)
    return target


def check_target(target: str, kind: str = "callable") -> str:
    """*target* if a job of *kind* may run it; nothing is imported.

    The allow-list: a registered kind runs only the function it was registered
    with, and a ``callable`` job only a function the user submitted in this
    process. A target read from a job record is never trusted on its own.

    Parameters
    ----------
    target : str
        The ``module:qualname`` a job record names.
    kind : str
        The job's kind.

    Returns
    -------
    str
        *target*, allowed.

    Raises
    ------
    JobError
        The target is not allowed for that kind (the message says nothing was run).
    """
    if not _TARGET_FORM.fullmatch(target):
        raise JobError(f"{target!r} is not of the form 'module:qualname'")
    if kind == "callable":
        if target in _CALLABLES:
            return target
        why = "it is not a function submitted in this session"
    elif kind not in _KINDS:
        why = f"job kind {kind!r} is not registered in this session"
    elif _KINDS[kind].target != target:
        why = f"{kind!r} jobs run {_KINDS[kind].target}"
    else:
        return target
    raise JobError(
        f"refused to run {target}: {why} (nothing was imported); submit it with JobManager.submit"
    )


def import_target(target: str, kind: str = "callable") -> Callable[..., Any]:
    """The function *target* names, once :func:`check_target` allows it.

    Parameters
    ----------
    target : str
        ``module:qualname``.
    kind : str
        The job's kind (what decides whether *target* may be imported).

    Returns
    -------
    callable
        The function.

    Raises
    ------
    JobError
        Not allowed (nothing imported), not importable, or not callable.
    """
    check_target(target, kind)  # before anything is imported
    module_name, _, qualname = target.partition(":")
    try:
        obj = pkgutil.resolve_name(target)
    except ImportError as exc:
        raise JobError(f"cannot import module {module_name!r} for {target}: {exc}") from None
    except AttributeError:
        raise JobError(f"module {module_name!r} has no {qualname!r}") from None
    if not callable(obj):
        raise JobError(f"{target} is not callable")
    return obj


def register_kind(
    name: str,
    run: Callable[[dict[str, Any], JobContext], Mapping[str, Any] | None] | str,
    *,
    params: type[BaseModel] | None = None,
    description: str = "",
) -> JobKind:
    """Register a kind of job under *name* (replacing any kind of that name).

    Parameters
    ----------
    name : str
        What ``JobManager.submit(name, params)`` is given.
    run : callable or str
        ``run(params, job)`` returning the results (a mapping: ``Path`` values
        are result files, other values small JSON values); importable, or its
        ``module:qualname``.
    params : pydantic model class, optional
        The strict model of the parameters, checked at submission.
    description : str
        One line shown in the job list.

    Returns
    -------
    JobKind
        The kind registered.
    """
    target = run if isinstance(run, str) else target_name(run)
    kind = JobKind(name, target, params, description)
    _KINDS[name] = kind
    return kind


def get_kind(name: str) -> JobKind:
    """The kind registered as *name*; :class:`~ctanb.JobError` listing the known ones."""
    try:
        return _KINDS[name]
    except KeyError:
        raise JobError(
            f"unknown job kind {name!r}; known kinds: {', '.join(sorted(_KINDS))} "
            "(or give an importable function)"
        ) from None


def kinds() -> dict[str, JobKind]:
    """Every registered kind, by name.

    Returns
    -------
    dict of str to JobKind
        A copy: registering a kind later does not change it.
    """
    return dict(_KINDS)


# -- built-in kinds ------------------------------------------------------------------------
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _default_tap_url() -> str:
    from ..client.archive import default_url

    return default_url()


class QueryParams(_Strict):
    """Parameters of a ``query`` job."""

    adql: str = Field(min_length=1, description="the ADQL query")
    url: str = Field(default_factory=_default_tap_url, description="TAP root URL")
    mode: Literal["sync", "async"] = "sync"
    maxrec: int | None = Field(default=None, ge=0)
    output: str = Field(default="result.xml", description="VOTable file (in the job folder)")


def run_query(params: dict[str, Any], job: JobContext) -> dict[str, Any]:
    """Run ADQL against a TAP service and save the answer as a VOTable."""
    from ..client.archive import Archive

    p = QueryParams.model_validate(params)
    job.log.info("query %s (%s): %s", p.url, p.mode, p.adql)
    with Archive(p.url, progress=False, record_history=False) as archive:
        results = archive.query(p.adql, mode=p.mode, maxrec=p.maxrec)
    path = (job.work_dir / p.output).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    results.table.write(path, format="votable", overwrite=True)
    job.log.info("%d rows written to %s", len(results), path)
    return {"votable": path, "rows": len(results), "overflow": bool(results.overflow)}


class WorkflowParams(_Strict):
    """Parameters of a ``workflow`` job: a ``ctanb run`` configuration and an output folder."""

    config: str | dict[str, Any] = Field(description="YAML file, or the configuration itself")
    out: str | None = Field(default=None, description="default: <job folder>/products")
    archive_url: str | None = Field(default=None, description="overrides observations.archive.url")


def run_workflow(params: dict[str, Any], job: JobContext) -> dict[str, Any]:
    """Run a ``ctanb run`` workflow configuration."""
    from .workflow_kind import run_workflow_config

    p = WorkflowParams.model_validate(params)
    out = Path(p.out) if p.out else job.work_dir / "products"
    return run_workflow_config(p.config, out, job, archive_url=p.archive_url)


class RedoParams(_Strict):
    """Parameters of a ``redo`` job: a product with provenance and where to redo it."""

    product: str
    out_dir: str | None = Field(default=None, description="default: <job folder>/redo")


def run_redo(params: dict[str, Any], job: JobContext) -> dict[str, Any]:
    """Re-execute the recorded chain of a product and compare the new one with it."""
    from ..provenance import redo

    p = RedoParams.model_validate(params)
    out_dir = Path(p.out_dir) if p.out_dir else job.work_dir / "redo"
    report = redo(p.product, out_dir)
    job.log.info("%s", report)
    return {
        "new_product": Path(report.new_product) if report.new_product else None,
        "ok": report.ok,
        "identical": report.identical,
        "differences": list(report.differences),
        "rerun": list(report.rerun),
        "report": str(report),
    }


register_kind("query", run_query, params=QueryParams, description="ADQL query -> VOTable")
register_kind("workflow", run_workflow, params=WorkflowParams, description="ctanb run CONFIG")
register_kind("redo", run_redo, params=RedoParams, description="redo a product")
