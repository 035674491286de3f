"""What a job is: its UWS phase, its record in the store, its results and provenance link."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .._uws import FINAL_PHASES, RUNNING_PHASES, Phase

__all__ = ["ACTIVE_PHASES", "FINAL_PHASES", "JobProvenance", "JobRecord", "Phase", "now"]


# The UWS phases are defined once for the client, the server, the jobs and the panels;
# a ctanb job goes through ``LIFECYCLE``. ACTIVE_PHASES: handed to an executor.
ACTIVE_PHASES = RUNNING_PHASES


def now() -> str:
    """The current time as ISO 8601 UTC text (how every job time is stored)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class JobProvenance:
    """Where a job's provenance is: the activities recorded during the job, and its products.

    Attributes
    ----------
    job_activity : str or None
        The ``ctanb-job`` activity that stands for the job itself in the
        provenance store; every activity recorded inside the job was informed by it.
    activities : list of str
        Ids of the activities recorded during the job (``ctanb prov show`` takes them).
    products : list of str
        Paths of the files those activities generated.
    """

    job_activity: str | None = None
    activities: list[str] = field(default_factory=list)
    products: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form kept in the job store.

        Returns
        -------
        dict
            ``job_activity``, ``activities`` and ``products``.
        """
        return {
            "job_activity": self.job_activity,
            "activities": list(self.activities),
            "products": list(self.products),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> JobProvenance:
        """The inverse of :meth:`to_dict`.

        Parameters
        ----------
        data : dict or None
            What :meth:`to_dict` returned (None or empty: nothing recorded yet).

        Returns
        -------
        JobProvenance
            The job's provenance pointers.
        """
        data = data or {}
        return cls(
            data.get("job_activity"),
            list(data.get("activities", [])),
            list(data.get("products", [])),
        )


# Results are stored as JSON; a file result is tagged so that it comes back as a Path.
_PATH_TAG = "__path__"


def encode_results(results: dict[str, Any]) -> str:
    """Results as JSON: paths tagged, other values JSON (or their repr when they have none)."""

    def encode(value: Any) -> Any:
        if isinstance(value, Path):
            return {_PATH_TAG: str(value.resolve())}
        if isinstance(value, dict):
            return {str(k): encode(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [encode(v) for v in value]
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            return repr(value)
        return value

    return json.dumps({str(k): encode(v) for k, v in results.items()})


def decode_results(text: str | None) -> dict[str, Any]:
    """The inverse of :func:`encode_results`."""

    def decode(value: Any) -> Any:
        if isinstance(value, dict):
            if set(value) == {_PATH_TAG}:
                return Path(value[_PATH_TAG])
            return {k: decode(v) for k, v in value.items()}
        if isinstance(value, list):
            return [decode(v) for v in value]
        return value

    return decode(json.loads(text)) if text else {}


@dataclass
class JobRecord:
    """One row of the job store, as Python values (see :class:`~ctanb.jobs.Job` for the handle).

    Attributes
    ----------
    id, kind, target, name, owner : str
        The job's id, its kind, the ``module:qualname`` that runs it, the name shown
        in the job list and who submitted it.
    phase : Phase
        The UWS phase.
    parameters, results : dict
        What the job was given and what it returned (``Path`` values are files).
    error, error_type, error_details : str or None
        Why it failed: the message, the exception type and the traceback.
    created, started, ended : str or None
        ISO times (UTC).
    history : list of (str, str)
        Every phase the job went through, with its time.
    executor, host : str
        ``local`` or ``dask``, and the machine of a local job's process.
    pid, pid_start : int and float, or None
        A local job's process and its start time (to tell a reused pid).
    work_dir, log_path : str or None
        The job's own folder and its log file.
    provenance : JobProvenance
        Where the job's provenance is.
    rerun_of : str or None
        The job this one runs again.
    """

    id: str
    kind: str
    target: str
    name: str = ""
    owner: str = ""
    phase: Phase = Phase.PENDING
    parameters: dict[str, Any] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    error_type: str | None = None
    error_details: str | None = None
    created: str | None = None
    started: str | None = None
    ended: str | None = None
    history: list[tuple[str, str]] = field(default_factory=list)
    executor: str = "local"
    host: str | None = None
    pid: int | None = None
    pid_start: float | None = None
    work_dir: str | None = None
    log_path: str | None = None
    provenance: JobProvenance = field(default_factory=JobProvenance)
    rerun_of: str | None = None

    @property
    def duration(self) -> float | None:
        """Seconds between start and end (or now, while executing); None before the start."""
        if not self.started:
            return None
        end = datetime.fromisoformat(self.ended) if self.ended else datetime.now(UTC)
        return (end - datetime.fromisoformat(self.started)).total_seconds()
