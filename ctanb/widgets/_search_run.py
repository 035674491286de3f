"""Sending the search form's query: sync or async (UWS), its phases, cancel, results;
the history of queries and the choice lists filled from the archive.

A mixin of :class:`~ctanb.widgets.search.SearchPanel` (the form lives in ``search.py``).
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

import numpy as np

from .._errors import CtanbError
from ..client.during import DURING_COLUMN, exact_overlaps
from . import _form
from ._async import FINAL_PHASES, follow, phases_text, status_html
from ._errors import guarded
from ._form import ANY

__all__ = ["SearchRunning"]


class SearchRunning:
    """The Search and Cancel buttons of the search panel, what a search shows, its history."""

    def use_history(self, index: int) -> None:
        """Put the ADQL of a history entry in the box.

        Parameters
        ----------
        index : int
            The entry, newest first (None or negative: nothing chosen).
        """
        if index is None or index < 0:
            return
        self.adql_text.value = _form.history_entries(self.archive)[index].adql

    def refresh_history(self, limit: int | None = None) -> None:
        """Reload the history list, newest first.

        Parameters
        ----------
        limit : int, optional
            Show only the *limit* newest queries (default: every query).
        """
        self.history_list.options = _form.history_options(
            _form.history_entries(self.archive)[:limit]
        )

    def load_choices(self) -> dict[str, list[str]]:
        """Fill the choice lists with the archive's values (``SELECT DISTINCT``).

        A value already chosen stays chosen (and listed, even if the archive lacks it),
        so refilling never changes the query.

        Returns
        -------
        dict
            Column name -> the archive's distinct values.
        """
        found = _form.distinct_values(self.archive, list(self.choices))
        with self._form_lock:
            # New options reset a Dropdown to its first entry before the value is put
            # back; the rebuilds that would trigger must not reach the ADQL box.
            self._refilling = True
            try:
                for column_name, box in self.choices.items():
                    current = box.value
                    kept = [] if current in (ANY, *found[column_name]) else [current]
                    box.options = [ANY, *found[column_name], *kept]
                    box.value = current
                self.products.set_kinds(found.get("dataproduct_subtype", []))
            finally:
                self._refilling = False
        return found

    def _load_choices_once(self) -> None:
        # The archive is connected now: fill the choice lists in the background, once.
        if not getattr(self, "_choices_loading", False):
            self._choices_loading = True
            threading.Thread(target=guarded, args=(self, self.load_choices), daemon=True).start()

    def search(self, *, wait: bool = True):
        """Send the ADQL (as shown, edited or not).

        Parameters
        ----------
        wait : bool
            Block until the answer (async queries run in a thread when False, so
            the Cancel button stays live).

        Returns
        -------
        Results or None
            The results; None while an asynchronous query runs on without waiting.
        """
        # The query follows the form at this moment, unless the user edited it.
        try:
            return self._search(wait)
        except CtanbError:
            self._mark_stale("the last search failed")
            raise

    def _mark_stale(self, why: str) -> None:
        """The table keeps the previous rows (the user's work), marked as such."""
        if self.results is not None:
            self.stale = f"previous results: {why}"

    def _search(self, wait: bool):
        edited = self.adql_edited and self.adql_text.value.strip()
        try:
            adql = self.adql_text.value.strip() if edited else self.update_adql(force=True)
        except CtanbError as exc:
            # no query to send: the status says so, and search() marks the rows still
            # shown as the previous search's (they are the user's work: kept)
            self.row_count = -1
            self.status.value = status_html(f"not searched: {exc}", "error")
            raise
        # A new search supersedes the running one: it is cancelled, and whatever it
        # still reports (phases, rows) never reaches the status or the table.
        self._supersede()
        self._started, self.phase_log, self.elapsed = time.monotonic(), [], 0.0
        if self.mode == "sync":
            self._phase("EXECUTING", 0.0)
            try:
                results = self.archive.query(adql, _criteria=self.criteria or None)
            except CtanbError:
                self._phase("ERROR", time.monotonic() - self._started)
                self.status.value = status_html(f"failed after {self.elapsed:.1f} s", "error")
                raise
            return self._done(results)
        job = self.archive.submit(adql, _criteria=self.criteria or None)
        with self._run_lock:
            self._job = job
        # The job was created and told to run (UWS PHASE=RUN): it is queued until
        # the server picks it up; polling reports the phases from here on.
        self.async_queries = [{"url": job.url, "adql": adql, "phase": "QUEUED",
                               "elapsed": 0.0, "rows": None}, *self.async_queries]  # fmt: skip
        self._phase("QUEUED", time.monotonic() - self._started)
        self.cancel_button.disabled = False
        if wait:
            return self._wait(job)
        threading.Thread(target=guarded, args=(self, self._wait, job), daemon=True).start()
        return None

    def _supersede(self) -> None:
        """Forget (and cancel) the running asynchronous query, if any."""
        with self._run_lock:
            job, self._job = self._job, None
        if job is not None:
            self.cancel_button.disabled = True
            with contextlib.suppress(CtanbError):
                job.cancel()
            self._update_async(job, phase="ABORTED")

    def cancel(self) -> str:
        """Abort the running asynchronous query.

        A cancel is the user's choice, not a failure: the status says so, and the
        table keeps the previous results.

        Returns
        -------
        str
            The query's final phase.

        Raises
        ------
        CtanbError
            No asynchronous query is running.
        """
        job = self._job
        if job is None:
            raise CtanbError("no asynchronous query is running")
        self.cancel_button.disabled = True
        phase = job.cancel()
        self._phase(phase, time.monotonic() - self._started, job)
        if phase == "ABORTED":
            with self._run_lock:
                if self._job is job:  # its late answers are no longer the table's
                    self._job = None
            self._cancelled()
        return phase

    def _wait(self, job: Any):
        started = self._started
        try:
            phase = follow(job, started, lambda p, s: self._phase(p, s, job))
            if self._job is not job:  # superseded or cancelled: nothing of it is shown
                return None
            if phase == "ABORTED":  # cancelled (here or elsewhere): an outcome, not an error
                self._cancelled()
                return None
            try:
                results = job.results(timeout=10)
            except CtanbError:
                if self._job is job:
                    self._mark_stale("the last search failed")
                    self._phase("ERROR", time.monotonic() - started, job)
                    self.status.value = status_html(f"failed after {self.elapsed:.1f} s", "error")
                raise
        finally:
            with self._run_lock:
                if self._job is job:
                    self.cancel_button.disabled = True
        self._update_async(job, rows=len(results))
        with self._run_lock:
            if self._job is not job:  # a newer search or Cancel came while rows downloaded
                return None
            self._job = None
            return self._done(results)

    def _phase(self, phase: str, elapsed: float, job: Any = None) -> None:
        """A new poll: the phase (logged when it changes) and the running clock."""
        if job is not None and job is not self._job:
            # A superseded job: only its own line in the Jobs list follows it.
            self._update_async(job, phase=phase, elapsed=round(elapsed, 2))
            return
        if not self.phase_log or self.phase_log[-1][0] != phase:
            self.phase_log = [*self.phase_log, [phase, round(elapsed, 2)]]
        self.phase, self.elapsed = phase, round(elapsed, 2)
        if phase not in FINAL_PHASES:
            self.status.value = status_html(phases_text(self.phase_log, elapsed))
        if job is not None:
            self._update_async(job, phase=phase, elapsed=round(elapsed, 2))

    def _update_async(self, job: Any, **values: Any) -> None:
        self.async_queries = [{**q, **values} if q["url"] == job.url else q
                              for q in self.async_queries]  # fmt: skip

    def _cancelled(self) -> None:
        self.status.value = status_html(
            f"Cancelled after {self.elapsed:.1f} s, as you asked; "
            "the table still shows the previous results.",
            "cancelled",
        )

    def _done(self, results):
        if (self.criteria or {}).get("during") and DURING_COLUMN in results.colnames:
            # the server's answer may come from a coarser time MOC: make it exact
            results = exact_overlaps(results, np.asarray(self.criteria["during"], dtype=float))
        self._phase("COMPLETED", time.monotonic() - self._started)
        self.row_count = len(results)
        rows = f"{len(results)} row(s)" + (" (truncated)" if results.overflow else "")
        self.status.value = status_html(f"{rows} in {self.elapsed:.1f} s", "ok")
        self.results = results
        self.stale = ""
        guarded(self, self.refresh_history)
        return results
