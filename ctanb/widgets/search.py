"""SearchPanel: target and cone, the data-model fields, the ADQL, async progress, history.

Every action reads what is on screen when it runs: the Resolve, Search and Rebuild
buttons carry the form's held-back edits with their click (:class:`ActionButton`), a
target name committed in its box (Enter or leaving it) is resolved, and a failed
resolve clears the position and the query built from it. The position a query uses
is explicit: typed RA/Dec win over the target name until a name is resolved again,
and ``position_label`` says which one is used. The ADQL box follows the form until it
is edited by hand; an edited query is kept (and sent as edited) until the user
presses "Rebuild ADQL".

The form is generated from :data:`ctanb.datamodel.OBSCORE_COLUMNS`: every
enumerable ObsCore, ObsConfig and provenance column that
:class:`~ctanb.client.Criteria` can filter becomes a choice list, first filled
from the data model's ``choices`` and then (``load_choices``) from the archive's
own values (``SELECT DISTINCT``). The ADQL box follows the form
(:meth:`Archive.adql <ctanb.client.Archive.adql>`). The "Products" section searches
published DL4/DL5 products by kind and provenance (:mod:`._search_products`); sending
the query and showing its phases is :mod:`._search_run`.
"""

from __future__ import annotations

import contextlib
import html
import threading
import time
from collections.abc import Iterator
from typing import Any

import ipywidgets as w
import traitlets as t

from .._errors import CriteriaError, CtanbError
from ..datamodel import criterion_of
from . import _form
from ._action import ActionButton
from ._errors import ErrorDisplay, guarded
from ._form import ANY, FORM_GROUPS, NUMBERS, choice_columns, read_number
from ._search_products import ProductFields
from ._search_run import SearchRunning
from .during import attach_during

__all__ = ["FORM_GROUPS", "SearchPanel"]


#: The ADQL box: monospace, resizable by the user; the history list shows whole queries.
_STYLE = (
    "<style>.ctanb-adql textarea{font-family:var(--jp-code-font-family,monospace);"
    "font-size:12px;resize:vertical;min-height:6em;white-space:pre;overflow:auto}"
    ".ctanb-history select{font-family:var(--jp-code-font-family,monospace)}</style>"
)


class SearchPanel(SearchRunning, w.VBox):
    """Search form for an ObsCore archive.

    Parameters
    ----------
    archive : Archive or str, optional
        The archive (or its URL); connected on first use, so building the panel
        is instant. Default: :func:`ctanb.connect`'s default.
    **kwargs
        Passed to the ipywidgets base class (``layout``, ...).

    Attributes
    ----------
    criteria : dict
        The criteria the form holds (what :meth:`search` asks for).
    adql : str
        The query that will be sent (follows the form unless edited).
    adql_edited : bool
        True when the ADQL was edited by hand (kept until :meth:`rebuild_adql`).
    position_source : str
        Where the query's position comes from: ``"name"`` (the resolved target),
        ``"coordinates"`` (typed RA/Dec) or ``""`` (none).
    phase : str
        ``""``, then the query's phase (UWS phase for async queries).
    phase_log : list
        ``[[phase, seconds since the search was sent], ...]`` of the last search.
    elapsed : float
        Seconds since the last search was sent (running while it runs).
    async_queries : list of dict
        Every asynchronous search of this panel, newest first: ``url``, ``adql``,
        ``phase``, ``elapsed``, ``rows`` (what the Jobs tab lists).
    results : Results
        The last results (observe it: ``panel.observe(f, "results")``).
    error : str
        The message of the last error shown ("" when none).
    stale : str
        ``""`` while the results are the last search's; after a failed search or
        resolve, why the results shown are the previous search's.
    """

    criteria = t.Dict()
    adql = t.Unicode("")
    adql_edited = t.Bool(False)
    mode = t.Enum(["sync", "async"], "sync")
    phase = t.Unicode("")
    phase_log = t.List()
    elapsed = t.Float(0.0)
    async_queries = t.List(t.Dict())
    row_count = t.Int(-1)
    results = t.Any(None, allow_none=True)
    resolved = t.Dict()
    position_source = t.Enum(["", "name", "coordinates"], "")
    error = t.Unicode("")
    #: "" while the table shows this panel's last search; else why the rows are older.
    stale = t.Unicode("")

    def __init__(self, archive: Any = None, **kwargs: Any) -> None:
        self._archive = archive
        self._job = None
        self._run_lock = threading.RLock()  # which job is current: checked when rows arrive
        self._started = time.monotonic()
        self._updating = False
        # The choice lists are refilled on a thread (load_choices) while the form is in
        # use: the lock keeps a refill and a rebuild of the ADQL from interleaving.
        self._form_lock = threading.RLock()
        self._refilling = False
        self._quiet = 0  # >0 while the panel itself fills fields (no rebuild per field)
        self.error_display = ErrorDisplay()
        lay = w.Layout(width="170px")
        self.target_text = w.Text(description="Target", placeholder="e.g. Crab",
                                  continuous_update=False)  # fmt: skip
        self.resolve_button = ActionButton(description="Resolve", icon="crosshairs",
                                           tooltip="Resolve the target name to RA/Dec")  # fmt: skip
        self.position_label = w.HTML()
        self.numbers = {
            name: w.Text(description=label, tooltip=tip, placeholder=_form.PLACEHOLDERS[name], layout=lay,
                         continuous_update=False, style={"description_width": "70px"})
            for name, (label, tip) in NUMBERS.items()
        }  # fmt: skip
        self.choices = {
            c.name: w.Dropdown(description=c.name, options=[ANY, *c.choices], value=ANY,
                               tooltip=c.description, style={"description_width": "130px"},
                               layout=w.Layout(width="330px"))
            for c in choice_columns()
        }  # fmt: skip
        sections = {}
        for col in choice_columns():
            sections.setdefault(FORM_GROUPS[col.group], []).append(self.choices[col.name])
        self.products = ProductFields()
        self.sections = w.Accordion(
            children=[*(w.GridBox(v, layout=w.Layout(grid_template_columns="repeat(2, 340px)"))
                        for v in sections.values()), self.products.box],
            titles=(*sections, "Products (DL4/DL5) and provenance"),
        )  # fmt: skip
        for name, box in self.numbers.items():
            box.add_class(f"ctanb-{name.replace('_', '-')}")  # for tests and style sheets
        self.adql_text = w.Textarea(rows=5, layout=w.Layout(width="98%", height="auto"),
                                    placeholder="ADQL (follows the form; edit to send your own)")  # fmt: skip
        self.adql_text.add_class("ctanb-adql")  # resizable, monospace (_STYLE)
        self.reset_button = w.Button(description="Reset", icon="eraser",
                                     tooltip="Empty the form and the query")  # fmt: skip
        self.adql_note = w.HTML()
        self.rebuild_button = ActionButton(description="Rebuild ADQL", icon="refresh",
                                           tooltip="Build the ADQL from the form again "
                                           "(drops your edits)")  # fmt: skip
        self.async_box = w.Checkbox(description="asynchronous (UWS job)", indent=False)
        self.search_button = ActionButton(description="Search", button_style="primary",
                                          icon="search")  # fmt: skip
        self.cancel_button = w.Button(description="Cancel", icon="stop", disabled=True)
        self.status = w.HTML()
        self.history_list = w.Dropdown(description="History", options=[("", -1)],
                                       layout=w.Layout(width="98%"))  # fmt: skip
        self.history_list.add_class("ctanb-history")
        # The buttons carry what the form shows at the click (see ActionButton).
        inputs = [self.target_text, *self.numbers.values(), *self.choices.values(),
                  *self.products.widgets, self.adql_text, self.async_box]  # fmt: skip
        for button in (self.resolve_button, self.search_button, self.rebuild_button):
            button.inputs = inputs
        # Handlers are one-liners onto the public methods.
        self.resolve_button.on_click(lambda _: guarded(self, self.resolve))
        self.search_button.on_click(lambda _: guarded(self, self.search, wait=False))
        self.rebuild_button.on_click(lambda _: guarded(self, self.rebuild_adql))
        self.reset_button.on_click(lambda _: guarded(self, self.reset))
        self.cancel_button.on_click(lambda _: guarded(self, self.cancel))
        self.history_list.observe(lambda ch: guarded(self, self.use_history, ch["new"]), "value")
        self.async_box.observe(lambda ch: setattr(self, "mode", "async" if ch["new"] else "sync"),
                               "value")  # fmt: skip
        self.adql_text.observe(self._on_adql_typed, "value")
        # A committed name (Enter, or leaving the box) is resolved; typed RA/Dec take over.
        self.target_text.observe(lambda ch: guarded(self, self._on_target, ch["new"]), "value")
        for name in ("ra", "dec"):
            self.numbers[name].observe(lambda _: guarded(self, self._on_position_typed), "value")
        for box in [*self.numbers.values(), *self.choices.values(), *self.products.widgets]:
            box.observe(lambda _: guarded(self, self.update_adql), "value")
        n = self.numbers
        children = [
            w.HTML(_STYLE),
            w.HBox([self.target_text, self.resolve_button]),
            w.HBox([n["ra"], n["dec"], n["radius"]]),
            self.position_label,
            w.HBox([n["time_start"], n["time_end"], n["energy_min"], n["energy_max"]]),
            w.HBox([n["max_zenith"], n["limit"]]),
            self.sections,
            self.adql_text,
            w.HBox([self.rebuild_button, self.reset_button, self.adql_note]),
            w.HBox([self.search_button, self.cancel_button, self.async_box, self.status]),
            self.history_list,
            self.error_display,
        ]
        super().__init__(children=children, **kwargs)
        attach_during(self)  # the "During" input of a simultaneity search (issue 18)
        self._show_position()

    # --- archive --------------------------------------------------------------------------
    @property
    def archive(self):
        """The :class:`~ctanb.client.Archive` (connected on first use)."""
        from ..client import Archive, connect

        if not isinstance(self._archive, Archive):
            self._archive = connect(self._archive, progress=False)
        return self._archive

    # --- public methods (one per button) ----------------------------------------------------
    def set(self, **values: Any) -> None:
        """Fill the form: ``panel.set(target="Crab", radius=3, obs_collection="HESS-DL3-DR1")``.

        Parameters
        ----------
        **values
            ``target``, the numeric criteria (``ra``, ``dec``, ``radius``,
            ``time_start``, ...), the column names of the choice lists and the product
            criteria (``data_level``, ``product_kind``, ``derived_from_run``, ``software``,
            ``software_version``, ``step``, ``step_version``, ``parameter``).

        Raises
        ------
        CriteriaError
            A key the form does not have.
        """
        with self._form_lock:
            for key, value in values.items():
                text = "" if value is None else str(value)
                if key == "target":
                    self.target_text.value = text
                elif key in self.numbers:
                    self.numbers[key].value = text
                elif key in self.choices:
                    box = self.choices[key]
                    if text and text not in box.options:
                        box.options = [*box.options, text]
                    box.value = text or ANY
                elif key in self.products.names():
                    self.products.set(key, text)
                else:
                    raise CriteriaError(f"the search form has no field {key!r}", field=key)

    def form_criteria(self) -> dict[str, Any]:
        """The criteria of the form.

        Returns
        -------
        dict
            :class:`~ctanb.client.Criteria` keywords.
        """
        out: dict[str, Any] = {}
        if self.target_text.value.strip():
            out["target"] = self.target_text.value.strip()
        for name, box in self.numbers.items():
            text = box.value.strip()
            if not text:
                continue
            out[name] = read_number(name, text)
        for column_name, box in self.choices.items():
            if box.value not in (None, "", ANY):
                out[criterion_of(column_name)] = box.value
        out.update(self.products.read())
        # One position: the resolved name, or the typed RA/Dec (explicit, they win).
        if self.position_source == "name" and "target" in out:
            out.pop("ra", None), out.pop("dec", None)
        elif "ra" in out or "dec" in out:
            out.pop("target", None)
        return out

    def update_adql(self, *, force: bool = False) -> str:
        """Build the ADQL from the form; an ADQL edited by hand is kept unless *force*.

        When the form holds an error (a bad number, an unknown name), the query box
        is emptied, so no earlier query can be sent in its place.

        Parameters
        ----------
        force : bool
            Replace an ADQL edited by hand too.

        Returns
        -------
        str
            The ADQL in the box.
        """
        with self._form_lock:
            if self._refilling or self._quiet:  # the panel is filling fields: not yet
                return self.adql
            try:
                self.criteria = self.form_criteria()
                self._show_position()
                if self.adql_edited and not force:
                    self.adql_note.value = (
                        "<i>You edited the ADQL: it is sent as it is, without the form's "
                        "changes. Press <b>Rebuild ADQL</b> to build it from the form.</i>"
                    )
                    return self.adql
                adql = self.archive.adql(**self.criteria)
            except CtanbError:
                if not self.adql_edited or force:
                    self._set_adql("")
                raise
            self._set_adql(adql)
            return adql

    def rebuild_adql(self) -> str:
        """Build the ADQL from the form again, dropping edits (the "Rebuild ADQL" button).

        Returns
        -------
        str
            The ADQL in the box.
        """
        return self.update_adql(force=True)

    def resolve(self, name: str | None = None) -> dict:
        """Resolve the target name; fills RA/Dec and marks the target.

        Parameters
        ----------
        name : str, optional
            The name (default: the one in the Target box).

        Returns
        -------
        dict
            ``name``, ``ra``, ``dec`` and ``source`` (where the name was found).

        Raises
        ------
        CriteriaError
            No name to resolve.
        ResolveError
            The name is unknown.
        """
        if name is not None:
            with self._filling():
                self.target_text.value = name
        name = self.target_text.value.strip()
        if not name:
            raise CriteriaError("type a target name to resolve", field="target")
        try:
            found = self.archive.resolve(name)
        except CtanbError:
            self._failed_name = name
            self._disarm("the name could not be resolved")
            self._mark_stale("the name could not be resolved")
            raise
        self._load_choices_once()
        with self._filling():
            self.numbers["ra"].value = f"{found.ra:.5f}"
            self.numbers["dec"].value = f"{found.dec:.5f}"
            if not self.numbers["radius"].value.strip():
                self.numbers["radius"].value = "3"
            self.resolved = {"name": found.name, "ra": found.ra, "dec": found.dec,
                             "source": found.source}  # fmt: skip
            self.position_source = "name"
        self.status.value = html.escape(
            f"{found.name}: RA {found.ra:.4f}, Dec {found.dec:.4f} ({found.source})"
        )
        self.update_adql()
        return self.resolved

    def reset(self) -> None:
        """Empty the form and the query (the "Reset" button); results and history stay."""
        with self._filling():
            self.target_text.value = ""
            for box in self.numbers.values():
                box.value = ""
            for box in self.choices.values():
                box.value = ANY
            self.products.clear()
            self.resolved, self.position_source, self.criteria = {}, "", {}
            self._set_adql("")
        self.status.value = ""
        self.update_adql()

    # --- plumbing ---------------------------------------------------------------------------
    def _on_adql_typed(self, change: dict) -> None:
        if not self._updating:
            # An emptied box means "follow the form again".
            self.adql, self.adql_edited = change["new"], bool(change["new"].strip())
            if not self.adql_edited:
                self.adql_note.value = ""

    def _set_adql(self, adql: str) -> None:
        self._updating = True
        try:
            self.adql_text.rows = min(max(5, adql.count("\n") + 2), 30)  # the whole query shows
            self.adql_text.value = adql
        finally:
            self._updating = False
        self.adql, self.adql_edited = adql, False
        self.adql_note.value = ""

    @contextlib.contextmanager
    def _filling(self) -> Iterator[None]:
        # The panel fills several fields: no rebuild (nor position change) per field.
        with self._form_lock:
            self._quiet += 1
            try:
                yield
            finally:
                self._quiet -= 1

    def _on_target(self, name: str) -> None:
        if self._quiet:
            return
        if name.strip():
            self.resolve()
            return
        if self.position_source == "name":  # the name is gone: so is its position
            self._disarm("")
        self.update_adql()

    def _on_position_typed(self) -> None:
        if self._quiet:
            return
        typed = any(self.numbers[k].value.strip() for k in ("ra", "dec"))
        self.position_source = "coordinates" if typed else ""
        self._show_position()

    def _disarm(self, why: str) -> None:
        """A failed resolve: no position, no query built from it, no marker."""
        with self._filling():
            self.numbers["ra"].value = ""
            self.numbers["dec"].value = ""
            self.resolved = {}
            self.position_source = ""
            self.criteria = {}
            if not self.adql_edited:
                self._set_adql("")
        self.status.value = html.escape(f"no position: {why}") if why else ""
        self._show_position()

    def _show_position(self) -> None:
        target = self.target_text.value.strip()
        ra, dec = (self.numbers[k].value.strip() for k in ("ra", "dec"))
        text = _form.position_text(self.position_source, target, ra, dec, self.resolved)
        if target and target == getattr(self, "_failed_name", None) and not self.resolved:
            text = "no position: the name could not be resolved"
        self.position_label.value = (
            f'<span class="ctanb-position">Position used: {html.escape(text)}</span>'
        )
