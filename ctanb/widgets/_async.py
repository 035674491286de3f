"""Following an asynchronous archive query (UWS job) from a panel.

The panel shows the phases as they happen with the time since the search was
sent (``QUEUED 0.0 s → EXECUTING 0.3 s``, the clock running), treats the user's
own Cancel as an outcome like any other (said in plain words, not as an error),
and lists every async search for the Jobs tab.
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable
from typing import Any

from .._uws import FINAL_PHASES

__all__ = ["FINAL_PHASES", "follow", "phases_text", "status_html"]

#: Status colours: grey for news and for the user's own cancel, never green for a failure.
_COLOURS = {"info": "#555555", "ok": "#2e7d32", "cancelled": "#8d6e63", "error": "#b71c1c"}


def follow(
    job: Any,
    started: float,
    on_update: Callable[[str, float], None],
    *,
    interval: float = 0.2,
    timeout: float = 3600.0,
) -> str:
    """Poll *job* until a final phase; ``on_update(phase, elapsed)`` at each poll.

    *started* is the ``time.monotonic()`` of the submission. Returns the final phase.
    """
    deadline = time.monotonic() + timeout
    while True:
        phase = job.phase
        on_update(phase, time.monotonic() - started)
        if phase in FINAL_PHASES or time.monotonic() > deadline:
            return phase
        time.sleep(interval)


def phases_text(log: list, elapsed: float) -> str:
    """``QUEUED 0.0 s → EXECUTING 0.4 s · 1.2 s`` from ``[[phase, seconds], ...]``."""
    steps = " → ".join(f"{phase} {seconds:.1f} s" for phase, seconds in log)
    return f"{steps} · {elapsed:.1f} s" if steps else f"{elapsed:.1f} s"


def status_html(text: str, kind: str = "info") -> str:
    """The panel's status line: *kind* is info, ok, cancelled or error."""
    colour = _COLOURS.get(kind, _COLOURS["info"])
    return (
        f"<span class='ctanb-status ctanb-status-{kind}' style='color:{colour}'>"
        f"{html.escape(text)}</span>"
    )
