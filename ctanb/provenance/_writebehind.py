"""Write-behind for the provenance store: steps do not wait for the database.

An activity's rows are built when it ends (in the caller's thread, so nothing is
read while the caller goes on changing its objects) and committed by one writer
thread per process, in the order they were submitted. Every read of a store
waits for the pending writes first (:func:`flush`), so a process always reads
what it wrote; other processes see a write a few milliseconds later. Pending
writes are flushed at interpreter exit. A failed write is logged at once and
raised, naming the activity, by the next :func:`flush` (the products keep their
own provenance in their ``PROVENANCE`` HDU either way).

Why: a shared store on PostgreSQL next to the hub costs a network round trip
per statement, and even a local SQLite commit is ~5 ms, a few percent of a quick
step such as an excess map.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
from collections.abc import Callable
from multiprocessing.util import Finalize
from typing import Any

from .._errors import ProvenanceError

__all__ = ["flush", "submit"]

log = logging.getLogger(__name__)

_lock = threading.Lock()
_state: dict[str, Any] = {"pid": None, "queue": None, "thread": None}
_failures: list[str] = []


def _worker(jobs: queue.Queue) -> None:
    while True:
        label, work = jobs.get()
        try:
            work()
        except Exception as exc:  # kept for the next flush(); the thread goes on
            message = f"{label}: {exc}"
            log.warning("provenance store write failed: %s", message)
            _failures.append(message)
        finally:
            jobs.task_done()


def _queue() -> queue.Queue:
    """This process's queue, with its writer thread (a forked child starts its own)."""
    with _lock:
        thread = _state["thread"]
        if _state["pid"] != os.getpid() or thread is None or not thread.is_alive():
            jobs: queue.Queue = queue.Queue()
            thread = threading.Thread(
                target=_worker, args=(jobs,), name="ctanb-provenance-writer", daemon=True
            )
            thread.start()
            _state.update(pid=os.getpid(), queue=jobs, thread=thread)
            # A multiprocessing child ends with os._exit, skipping atexit; it runs
            # multiprocessing's own exit finalizers instead.
            Finalize(None, _flush_at_exit, exitpriority=100)
        return _state["queue"]


def submit(label: str, work: Callable[[], Any]) -> None:
    """Run *work* (a store write) in the writer thread, after every write before it."""
    _queue().put((label, work))


def flush() -> None:
    """Wait until every submitted write is committed.

    Raises
    ------
    ProvenanceError
        If a write failed since the last flush (each failure is reported once).
    """
    if _state["pid"] == os.getpid() and threading.current_thread() is not _state["thread"]:
        _state["queue"].join()
    if _failures:
        failed = list(_failures)
        _failures.clear()
        raise ProvenanceError(
            "the provenance store did not take every record (the products still carry "
            "their provenance in their PROVENANCE HDU): " + "; ".join(failed)
        )


def _flush_at_exit() -> None:
    try:
        flush()
    except ProvenanceError as exc:
        log.error("%s", exc)


atexit.register(_flush_at_exit)
