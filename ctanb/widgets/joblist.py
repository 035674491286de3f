"""JobList: the jobs of a :class:`~ctanb.jobs.JobManager`, live, with abort, rerun and delete.

The list refreshes itself from the job store (a polling thread, stopped by
:meth:`JobList.stop_polling` or :meth:`JobList.close`), so jobs submitted by
another kernel or finished while the notebook was closed show up too. Every
button calls one public method; the state a test or a notebook reads is in
traitlets (``jobs``, ``selected``, ``details``, ``log``, ``error``).
"""

from __future__ import annotations

import html
import json
import threading
from typing import Any

import ipywidgets as w
import traitlets as t

from .._errors import JobError
from .._uws import LIFECYCLE, Phase
from ._errors import ErrorDisplay, guarded

__all__ = ["PHASE_COLORS", "JobList"]

#: Background colour of each UWS phase's badge.
PHASE_COLORS = {
    Phase.PENDING: "#9e9e9e",
    Phase.QUEUED: "#8d6e63",
    Phase.EXECUTING: "#1e88e5",
    Phase.COMPLETED: "#43a047",
    Phase.ERROR: "#e53935",
    Phase.ABORTED: "#fb8c00",
}
_PHASES = ("", *LIFECYCLE)
_LOG_TAIL = 20_000  # characters of the log shown (the file keeps everything)


def _badge(phase: str) -> str:
    color = PHASE_COLORS.get(phase, "#757575")
    return (
        f"<span class='ctanb-phase ctanb-phase-{phase.lower()}' style='background:{color};"
        "color:white;border-radius:3px;padding:1px 6px;font-size:11px;font-family:monospace'>"
        f"{phase}</span>"
    )


def _summary(job: Any) -> dict[str, Any]:
    r = job.record
    return {
        "id": r.id,
        "name": r.name,
        "kind": r.kind,
        "phase": str(r.phase),
        "owner": r.owner,
        "created": r.created or "",
        "started": r.started or "",
        "ended": r.ended or "",
        "duration": r.duration,
        "error": r.error or "",
    }


def _value_html(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, indent=1)
    return f"<code>{html.escape(str(text))}</code>"


def _details_html(job: Any) -> str:
    r = job.record
    rows = [
        ("Job", f"{html.escape(r.id)} &nbsp;{_badge(str(r.phase))}"),
        ("Name / kind", f"{html.escape(r.name)} / {html.escape(r.kind)} ({html.escape(r.target)})"),
        ("Owner", html.escape(r.owner)),
        ("Created / started / ended", html.escape(f"{r.created} / {r.started} / {r.ended}")),
    ]
    if r.duration is not None:
        rows.append(("Duration", f"{r.duration:.1f} s"))
    if r.rerun_of:
        rows.append(("Rerun of", html.escape(r.rerun_of)))
    rows.append(("Parameters", "<br>".join(
        f"{html.escape(k)} = {_value_html(v)}" for k, v in r.parameters.items()) or "none"))  # fmt: skip
    rows.append(("Results", "<br>".join(
        f"{html.escape(k)} = {_value_html(str(v))}" for k, v in r.results.items()) or "none"))  # fmt: skip
    prov = r.provenance
    if prov.job_activity:
        acts = "<br>".join(_value_html(a) for a in prov.activities) or "none recorded"
        prods = "<br>".join(_value_html(p) for p in prov.products) or "none"
        rows.append(("Provenance", f"job activity {_value_html(prov.job_activity)}<br>"
                                   f"activities:<br>{acts}<br>products:<br>{prods}"))  # fmt: skip
    body = "".join(
        f"<tr><th style='text-align:left;vertical-align:top;padding:1px 8px'>{k}</th>"
        f"<td style='padding:1px 6px'>{v}</td></tr>"
        for k, v in rows
    )
    error = ""
    if r.error:
        details = html.escape(r.error_details or "see the log")
        error = (
            "<div class='ctanb-job-error' role='alert' style='color:#b71c1c;border:1px solid "
            "#e57373;padding:4px 8px;border-radius:4px;background:#ffebee;margin-top:4px'>"
            f"<b>{html.escape(r.error)}</b><details><summary>Details</summary>"
            f"<pre style='white-space:pre-wrap;font-size:11px'>{details}</pre></details></div>"
        )
    return f"<table class='ctanb-job-details'>{body}</table>{error}"


class JobList(w.VBox):
    """The job list panel.

    Parameters
    ----------
    manager : JobManager, optional
        Whose jobs to show (default: a :class:`~ctanb.jobs.JobManager` on the default store).
    interval : float
        Seconds between refreshes of the live list; 0 disables polling.
    limit : int
        At most this many jobs are listed (newest first).

    Attributes
    ----------
    jobs : list of dict
        The listed jobs: ``id, name, kind, phase, owner, created, started, ended,
        duration, error``.
    selected : str
        Id of the job whose details are shown ("" for none).
    details : str
        HTML of the selected job's details (parameters, results, provenance, error).
    log : str
        The end of the selected job's log.
    phase_filter, owner_filter : str
        Show only jobs in this phase / of this owner ("" for all).
    """

    jobs = t.List(t.Dict())
    selected = t.Unicode("")
    details = t.Unicode("")
    log = t.Unicode("")
    phase_filter = t.Unicode("")
    owner_filter = t.Unicode("")
    polling = t.Bool(False)
    error = t.Unicode("")

    def __init__(
        self, manager: Any = None, *, interval: float = 2.0, limit: int = 200, **kwargs: Any
    ) -> None:
        if manager is None:
            from ..jobs import JobManager

            manager = JobManager()
        self.manager = manager
        self.limit = limit
        self.interval = interval
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._rows: dict[str, tuple[w.HBox, w.HTML, w.Button, w.HTML]] = {}
        self._signature: Any = None
        self.error_display = ErrorDisplay()
        self.phase_box = w.Dropdown(options=[(p or "all phases", p) for p in _PHASES],
                                    description="Phase", layout=w.Layout(width="200px"))  # fmt: skip
        self.owner_box = w.Text(description="Owner", placeholder="all owners",
                                layout=w.Layout(width="220px"))  # fmt: skip
        self.refresh_button = w.Button(description="Refresh", icon="refresh")
        self.abort_button = w.Button(description="Abort", icon="stop", button_style="warning")
        self.rerun_button = w.Button(description="Rerun", icon="repeat")
        self.delete_button = w.Button(description="Delete", icon="trash", button_style="danger")
        self.rows_box = w.VBox(layout=w.Layout(max_height="320px", overflow="auto"))
        self.details_view = w.HTML()
        self.log_view = w.HTML()
        self.log_section = w.Accordion(children=[self.log_view], titles=("Log",))
        self.refresh_button.on_click(lambda _: guarded(self, self.refresh))
        self.abort_button.on_click(lambda _: guarded(self, self.abort))
        self.rerun_button.on_click(lambda _: guarded(self, self.rerun))
        self.delete_button.on_click(lambda _: guarded(self, self.delete))
        t.link((self.phase_box, "value"), (self, "phase_filter"))
        t.link((self.owner_box, "value"), (self, "owner_filter"))
        super().__init__(
            children=[
                w.HBox([self.phase_box, self.owner_box, self.refresh_button]),
                self.error_display,
                self.rows_box,
                w.HBox([self.abort_button, self.rerun_button, self.delete_button]),
                self.details_view,
                self.log_section,
            ],
            **kwargs,
        )
        self.add_class("ctanb-joblist")
        guarded(self, self.refresh)
        if interval > 0:
            self.start_polling()

    # -- state -----------------------------------------------------------------------------
    @t.observe("phase_filter", "owner_filter")
    def _filters_changed(self, _change: Any) -> None:
        guarded(self, self.refresh)

    @t.observe("selected")
    def _selected_changed(self, _change: Any) -> None:
        self._signature = None
        guarded(self, self.refresh)

    def refresh(self) -> None:
        """Read the jobs from the store again and update the list and the selected job."""
        with self._lock:
            listed = self.manager.list(
                phase=self.phase_filter or None, owner=self.owner_filter or None, limit=self.limit
            )
            summaries = [_summary(job) for job in listed]
            selected = next((job for job in listed if job.id == self.selected), None)
            if selected is None and self.selected:
                try:
                    selected = self.manager.get(self.selected)
                except JobError:  # deleted elsewhere
                    selected = None
            log = selected.log[-_LOG_TAIL:] if selected is not None else ""
            signature = ([(s["id"], s["phase"], s["ended"]) for s in summaries], len(log))
            if signature == self._signature and summaries == self.jobs:
                return
            self._signature = signature
            self.jobs = summaries
            self._update_rows(summaries)
            self.details = _details_html(selected) if selected is not None else ""
            self.log = log
            self.details_view.value = self.details
            self.log_view.value = (
                f"<pre style='white-space:pre-wrap;font-size:11px;max-height:300px;overflow:auto'>"
                f"{html.escape(log)}</pre>"
            )
            final = selected is not None and selected.record.phase.is_final
            self.abort_button.disabled = selected is None or final
            self.rerun_button.disabled = selected is None
            self.delete_button.disabled = selected is None

    def _update_rows(self, summaries: list[dict[str, Any]]) -> None:
        children = []
        for s in summaries:
            if s["id"] not in self._rows:
                badge = w.HTML()
                name = w.Button(tooltip=s["id"], layout=w.Layout(width="220px"))
                info = w.HTML()
                job_id = s["id"]
                name.on_click(lambda _, job_id=job_id: guarded(self, self.select, job_id))
                self._rows[job_id] = (w.HBox([badge, name, info]), badge, name, info)
            box, badge, name, info = self._rows[s["id"]]
            badge.value = _badge(s["phase"])
            name.description = s["name"] or s["id"]
            name.button_style = "info" if s["id"] == self.selected else ""
            duration = f"{s['duration']:.1f} s" if s["duration"] is not None else ""
            info.value = html.escape(
                f"{s['kind']} · {s['owner']} · {s['created'][:19]} · {duration}"
            )
            children.append(box)
        for job_id in set(self._rows) - {s["id"] for s in summaries}:
            self._rows.pop(job_id)[0].close()
        if not children:  # say how jobs get here rather than show an empty box
            filtered = self.phase_filter or self.owner_filter
            children = [w.HTML(
                "<i class='ctanb-jobs-empty'>"
                + ("No job matches the filters." if filtered else
                   "No analysis jobs yet: an analysis submitted as a job (from a notebook "
                   "or the ctanb command line) appears here, live, with its phase, log "
                   "and products.")
                + "</i>"
            )]  # fmt: skip
        self.rows_box.children = children

    # -- actions ---------------------------------------------------------------------------
    def select(self, job_id: str) -> None:
        """Show the details and log of job *job_id*."""
        self.manager.get(job_id)  # an unknown id is a JobError shown in the panel
        self.selected = job_id

    def _target(self, job_id: str | None) -> str:
        job_id = job_id or self.selected
        if not job_id:
            raise JobError("no job selected: click a job in the list first")
        return job_id

    def abort(self, job_id: str | None = None) -> Any:
        """Abort the selected job (or *job_id*); returns the job."""
        job = self.manager.abort(self._target(job_id))
        self.refresh()
        return job

    def rerun(self, job_id: str | None = None) -> Any:
        """Submit the selected job again with the same parameters and select the new job."""
        job = self.manager.rerun(self._target(job_id))
        self.selected = job.id
        return job

    def delete(self, job_id: str | None = None) -> None:
        """Delete the selected job (or *job_id*), aborting it first if it runs."""
        target = self._target(job_id)
        self.manager.delete(target)
        if target == self.selected:
            self.selected = ""
        self.refresh()

    # -- live updates ----------------------------------------------------------------------
    def start_polling(self, interval: float | None = None) -> None:
        """Refresh every *interval* seconds in a background thread (until :meth:`stop_polling`)."""
        if interval is not None:
            self.interval = interval
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._poll, name="ctanb-joblist", daemon=True)
        self._thread.start()
        self.polling = True

    def _poll(self) -> None:
        while not self._stop.wait(self.interval):
            guarded(self, self.refresh)

    def stop_polling(self) -> None:
        """Stop the live updates and wait for the polling thread to end."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(5.0, 2 * self.interval))
        self._thread = None
        self.polling = False

    def close(self) -> None:
        """Stop polling and close the panel's widgets."""
        self.stop_polling()
        for box, *_ in self._rows.values():
            box.close()
        self._rows.clear()
        super().close()
