"""The IVOA UWS 1.1 execution phases: the one definition shared by the archive client
(asynchronous queries), the embedded archive's ``/async`` service, ctanb's own jobs
(:mod:`ctanb.jobs`) and the panels that show them.

It sits at the bottom of the package (it imports nothing of ctanb at import time),
so that the client, the server, the jobs and the widgets can all use it without
importing each other.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["FINAL_PHASES", "LIFECYCLE", "RUNNING_PHASES", "UNFINISHED_PHASES", "Phase"]


class Phase(StrEnum):
    """A UWS 1.1 execution phase (a ``str``: ``Phase.COMPLETED == "COMPLETED"``).

    ctanb's jobs and the embedded archive's jobs go through the first six
    (:data:`LIFECYCLE`); the last four only come from other UWS services.
    """

    PENDING = "PENDING"  # created, not yet handed to an executor
    QUEUED = "QUEUED"  # handed to an executor, not started yet
    EXECUTING = "EXECUTING"
    COMPLETED = "COMPLETED"
    ERROR = "ERROR"
    ABORTED = "ABORTED"
    HELD = "HELD"  # waiting for resources the service does not have at the moment
    SUSPENDED = "SUSPENDED"  # stopped by the service, may resume
    UNKNOWN = "UNKNOWN"  # the service does not know the phase
    ARCHIVED = "ARCHIVED"  # finished, its results deleted

    @classmethod
    def parse(cls, text: str) -> Phase:
        """The phase named *text* (any case, surrounding blanks ignored).

        Parameters
        ----------
        text : str
            A phase name, e.g. ``"completed"``.

        Returns
        -------
        Phase
            The phase.

        Raises
        ------
        JobError
            Not a phase; the message names the valid ones.

        Examples
        --------
        >>> Phase.parse(" executing ")
        <Phase.EXECUTING: 'EXECUTING'>
        """
        from ._errors import JobError

        try:
            return cls(str(text).strip().upper())
        except ValueError:
            raise JobError(
                f"unknown job phase {text!r}; phases: {', '.join(p.value for p in cls)}"
            ) from None

    @property
    def is_final(self) -> bool:
        """True for COMPLETED, ERROR, ABORTED and ARCHIVED: the job will not change any more."""
        return self in FINAL_PHASES


#: The job will not change any more.
FINAL_PHASES = frozenset({Phase.COMPLETED, Phase.ERROR, Phase.ABORTED, Phase.ARCHIVED})
#: Handed to a worker: queued for it or running.
RUNNING_PHASES = frozenset({Phase.QUEUED, Phase.EXECUTING})
#: Not finished: the job may still change (by itself, or by a client's RUN or ABORT).
UNFINISHED_PHASES = frozenset(
    {Phase.PENDING, Phase.QUEUED, Phase.EXECUTING, Phase.HELD, Phase.SUSPENDED}
)
#: The phases ctanb's own jobs and the embedded archive's jobs take, in order.
LIFECYCLE = (
    Phase.PENDING,
    Phase.QUEUED,
    Phase.EXECUTING,
    Phase.COMPLETED,
    Phase.ERROR,
    Phase.ABORTED,
)
