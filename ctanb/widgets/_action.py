"""ActionButton: a button whose click brings the current values of the form with it.

A plain ``ipywidgets.Button`` sends its click at once, while the front end holds back
the updates of a text box until the kernel is idle: a name typed and Resolve clicked
at once reached the kernel as "click, then the new name", and the previous name was
resolved. The front end of this button (``widgets/action/action.js``) sends, with the
click, the edits of the listed inputs that ipywidgets still holds back (never copies of
values the kernel set, which may be older than the kernel's own); the kernel puts them
in the inputs first, then runs the action, so an action sees what is on screen.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anywidget
import ipywidgets as w
import traitlets as t

from ._base import static_file

__all__ = ["ActionButton"]


class ActionButton(anywidget.AnyWidget):
    """A button (same traits as ``ipywidgets.Button``) that syncs *inputs* before acting.

    Parameters
    ----------
    inputs : list of ipywidgets.Widget
        Widgets with a ``value`` (Text, Textarea, Checkbox) or an ``index``
        (Dropdown) whose held-back edits the click carries.
    """

    _esm = static_file("ctanb_action.js")

    description = t.Unicode("").tag(sync=True)
    icon = t.Unicode("").tag(sync=True)
    button_style = t.Unicode("").tag(sync=True)
    tooltip = t.Unicode("").tag(sync=True)
    disabled = t.Bool(False).tag(sync=True)
    inputs = t.List(t.Instance(w.Widget)).tag(sync=True, **w.widget_serialization)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._callbacks: list[Callable[[ActionButton], Any]] = []
        self.on_msg(self._on_front_end_msg)

    def on_click(self, callback: Callable[[ActionButton], Any]) -> None:
        """Call ``callback(button)`` on each click (after the inputs were updated)."""
        self._callbacks.append(callback)

    def click(self, values: dict[str, dict] | None = None) -> None:
        """Click: first set the inputs to *values* (model id -> ``{"value"|"index": ...}``)."""
        if self.disabled:
            return
        self.apply_values(values or {})
        for callback in list(self._callbacks):
            callback(self)

    def apply_values(self, values: dict[str, dict]) -> None:
        """Put the front end's values into the inputs (unknown ids and stale values skipped)."""
        by_id = {widget.model_id: widget for widget in self.inputs}
        # Only what differs from the kernel's state *before* any is applied is the user's
        # own edit: the other values are copies, and setting one input may change
        # others (a resolved name fills RA/Dec) that the copies must not undo.
        edits = []
        for model_id, state in values.items():
            widget = by_id.get(model_id)
            if widget is None or not isinstance(state, dict):
                continue
            name = "index" if "index" in state and hasattr(widget, "index") else "value"
            if name in state and getattr(widget, name) != state[name]:
                edits.append((widget, name, state[name]))
        for widget, name, value in edits:
            try:
                # As if the input's own (held-back) update had arrived: set_state does
                # not send the value back, which would overwrite what the user typed
                # since (the browser shows it already).
                widget.set_state({name: value})
            except (t.TraitError, ValueError, TypeError):  # e.g. options refilled meanwhile
                continue

    def _on_front_end_msg(self, _widget: Any, content: Any, _buffers: list) -> None:
        if isinstance(content, dict) and content.get("command") == "click":
            values = content.get("values")
            self.click(values if isinstance(values, dict) else {})
