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
    Any importable function ``module:qualname``, called with the JSON
    parameters as keyword arguments.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .._errors import JobError

__all__ = [
    "JobContext",
    "JobKind",
    "QueryParams",
    "RedoParams",
    "WorkflowParams",
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
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}"
                for err in exc.errors()
            )
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


def import_target(target: str) -> Callable[..., Any]:
    """Import ``module:qualname``; :class:`~ctanb.JobError` naming what is missing."""
    module_name, _, qualname = target.partition(":")
    if not module_name or not qualname:
        raise JobError(f"{target!r} is not of the form 'module:qualname'")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise JobError(f"cannot import module {module_name!r} for {target}: {exc}") from None
    for part in qualname.split("."):
        try:
            obj = getattr(obj, part)
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
