"""Small ipywidgets controls for SAMP: a client chooser and Send table/selected/image/spectrum.

The notebook panels embed :class:`SampControls`; every button handler is one call
of a public :class:`~ctanb.samp.SampLink` method, and any :class:`~ctanb.CtanbError`
is shown in the widget instead of a traceback. (Here "SAMP hub" is the desktop
message hub TOPCAT and Aladin talk through; "hub" alone means JupyterHub.)
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

from .._errors import CtanbError
from ..samp._messages import Delivery
from ..samp.link import SampLink

__all__ = ["ALL_CLIENTS", "SampControls"]

#: The chooser entry meaning "every application that accepts the message".
ALL_CLIENTS = "All applications"


def _current(source: Any) -> Any:
    """A value, or the result of calling it (panels pass getters of their current state)."""
    return source() if callable(source) else source


class SampControls:
    """Client chooser plus "Send table", "Send selected" and "Send image" buttons.

    Parameters
    ----------
    link : SampLink
        The connection to the SAMP hub.
    table : Table, Results or callable, optional
        What "Send table" sends, or a getter of the panel's current results.
    rows : sequence of int or callable, optional
        The selected rows for "Send selected" (default: the link's selection of
        that table).
    image : path, HDUList, gammapy Map or callable, optional
        What "Send image" sends (e.g. a count map).
    spectrum : callable, optional
        Returns what "Send spectrum" sends: ``{"source": flux points (path, bytes or
        table), "name", "target", "did"}``, or None when nothing selected is a spectrum.
    has_spectrum : callable, optional
        Cheap test whether a spectrum is selected: the "Send spectrum" button shows
        only then (:meth:`refresh_spectrum`).

    Attributes
    ----------
    widget : ipywidgets.VBox
        The controls to display (``display(controls.widget)`` or embed in a panel).
    """

    def __init__(
        self,
        link: SampLink,
        *,
        table: Any = None,
        rows: Any = None,
        image: Any = None,
        spectrum: Any = None,
        has_spectrum: Any = None,
    ) -> None:
        import ipywidgets as w

        self.link = link
        self.table, self.rows, self.image = table, rows, image
        self.spectrum, self.has_spectrum = spectrum, has_spectrum
        self.chooser = w.Dropdown(description="Send to", options=[ALL_CLIENTS])
        self.refresh_button = w.Button(
            icon="refresh", tooltip="Read the SAMP hub's client list again"
        )
        self.send_table_button = w.Button(description="Send table", icon="table")
        self.send_selected_button = w.Button(description="Send selected", icon="check-square")
        self.send_image_button = w.Button(description="Send image", icon="image")
        self.send_spectrum_button = w.Button(description="Send spectrum", icon="line-chart",
                                             tooltip="Send the selected flux points / SED "
                                             "to spectral tools (spectrum.load.ssa-generic)")  # fmt: skip
        self.status = w.HTML()
        for button in (self.send_table_button, self.send_selected_button, self.send_image_button,
                       self.send_spectrum_button):  # fmt: skip
            button.layout = w.Layout(width="auto")
        self.refresh_button.layout = w.Layout(width="2.5em")
        self.refresh_button.on_click(lambda _: self._run(self.refresh))
        self.send_table_button.on_click(lambda _: self._run(self.send_table))
        self.send_selected_button.on_click(lambda _: self._run(self.send_selected))
        self.send_image_button.on_click(lambda _: self._run(self.send_image))
        self.send_spectrum_button.on_click(lambda _: self._run(self.send_spectrum))
        row = w.HBox(
            [
                self.chooser,
                self.refresh_button,
                self.send_table_button,
                self.send_selected_button,
                self.send_image_button,
                self.send_spectrum_button,
            ]
        )
        self.widget = w.VBox([row, self.status])
        link.on_clients(self._set_clients)
        self._run(self.refresh)
        self.refresh_spectrum()

    # --- the public actions (one per button) ------------------------------------------------
    @property
    def target(self) -> str | None:
        """The chosen application name, or None for all."""
        value = self.chooser.value
        return None if value in (None, ALL_CLIENTS) else value

    def refresh(self) -> list[str]:
        """Read the SAMP hub's client list into the chooser."""
        names = self.link.client_names()
        self._set_clients(names)
        return names

    def send_table(self) -> Delivery:
        """Send the current table to the chosen application(s)."""
        table = _current(self.table)
        if table is None:
            raise CtanbError("no table to send: run a search first")
        return self._show(self.link.send_table(table, to=self.target, wait=False))

    def send_selected(self) -> Delivery:
        """Send the table (if not sent yet) and select the chosen rows in it."""
        table = _current(self.table)
        if table is None:
            raise CtanbError("no table to send: run a search first")
        if self.link.table_id(table) is None:
            self.link.send_table(table, to=self.target)
        rows = _current(self.rows)
        if rows is None:
            rows = self.link.selection_model.rows(self.link.table_id(table))
        if not len(rows):
            raise CtanbError("no rows selected: select rows in the results table first")
        return self._show(self.link.send_selection(table, rows, to=self.target, wait=False))

    def send_image(self) -> Delivery:
        """Send the current image (e.g. a count map) to the chosen application(s)."""
        image = _current(self.image)
        if image is None:
            raise CtanbError("no image to send: make a count map first")
        return self._show(self.link.send_image(image, to=self.target, wait=False))

    def send_spectrum(self) -> Delivery:
        """Send the selected flux points / SED as a spectrum (``spectrum.load.ssa-generic``)."""
        chosen = _current(self.spectrum)
        if not chosen:
            raise CtanbError("no spectrum selected: check one flux-point or SED product row")
        return self._show(self.link.send_spectrum(
            chosen["source"], to=self.target, name=chosen.get("name") or "spectrum",
            target=chosen.get("target", ""), did=chosen.get("did", ""), wait=False))  # fmt: skip

    def refresh_spectrum(self) -> bool:
        """Show the "Send spectrum" button only while a spectrum or SED is selected."""
        try:
            shown = bool(_current(self.has_spectrum)) if self.has_spectrum is not None else (
                self.spectrum is not None)  # fmt: skip
        except CtanbError:
            shown = False
        self.send_spectrum_button.layout.display = "" if shown else "none"
        return shown

    # --- plumbing ------------------------------------------------------------------------------
    def _set_clients(self, names: list[str]) -> None:
        current = self.chooser.value
        self.chooser.options = [ALL_CLIENTS, *names]
        self.chooser.value = current if current in self.chooser.options else ALL_CLIENTS

    def _run(self, action: Callable[[], Any]) -> Any:
        try:
            return action()
        except CtanbError as exc:
            self.status.value = _html_lines([exc.message], state="error")
            return None

    def _show(self, delivery: Delivery) -> Delivery:
        def render(d: Delivery) -> None:
            # Green only for a delivery some application accepted; nobody reached is a failure.
            failed = d.done and (not d.ok or not d.recipients)
            state = "error" if failed else ("ok" if d.done else "pending")
            self.status.value = _html_lines(d.summary().splitlines(), state=state)

        render(delivery)
        delivery.on_done(render)
        return delivery

    def _repr_mimebundle_(self, **kwargs: Any):
        return self.widget._repr_mimebundle_(**kwargs)


def _html_lines(lines: list[str], *, state: str) -> str:
    colour = {"error": "#c62828", "ok": "#2e7d32"}.get(state, "#555555")
    body = "<br>".join(html.escape(line) for line in lines)
    return f'<div class="ctanb-samp-status" style="color:{colour}">{body}</div>'
