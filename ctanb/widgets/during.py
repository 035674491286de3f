"""The search panel's "during" input: a simultaneity search from the form.

The user types either the path of a file (a time MOC in FITS or ASCII, or an
observation file with a GTI table, e.g. an X-ray event list) or intervals, one per
``;``: ``2006-07-29T21:00 2006-07-29T21:45; 53946.06 53946.09`` (ISO times are UTC,
numbers MJD in TT). The search then keeps the datasets whose good time overlaps
them (:mod:`ctanb.client.during`) and the results get the overlap in seconds.

:func:`attach_during` adds the input to a :class:`~ctanb.widgets.search.SearchPanel`
(one line in the panel). The parsing is :func:`ctanb.client.during.intervals_from_text`.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as w
import traitlets as t

from ..client.during import intervals_from_text
from ._errors import guarded

__all__ = ["DuringInput", "attach_during"]


class DuringInput(w.HBox):
    """Text box for the time intervals of a simultaneity search.

    Attributes
    ----------
    text : str
        What the box holds (a file path or intervals).
    intervals : list of [float, float]
        The intervals it stands for, MJD (TT); empty when the box is empty.
    """

    text = t.Unicode("")
    intervals = t.List()

    def __init__(self, **kwargs: Any) -> None:
        self.text_box = w.Text(
            description="During",
            placeholder="TMOC/GTI file, or start stop; start stop (ISO in UTC, or MJD in TT)",
            tooltip=(
                "Keep datasets observed during these times (simultaneity search): "
                "ISO times are UTC, MJD numbers are TT"
            ),
            continuous_update=False,
            layout=w.Layout(width="690px"),
            style={"description_width": "70px"},
        )
        self.clear_button = w.Button(icon="times", tooltip="Clear the time intervals",
                                     layout=w.Layout(width="36px"))  # fmt: skip
        self.clear_button.on_click(lambda _: self.clear())
        self.text_box.observe(lambda ch: setattr(self, "text", ch["new"]), "value")
        super().__init__([self.text_box, self.clear_button], **kwargs)

    def set_text(self, text: str) -> list:
        """Type *text* into the box; returns the intervals (raises on bad input)."""
        self.text_box.value = text
        return self.read()

    def read(self) -> list:
        """Parse the box into :attr:`intervals`.

        Raises
        ------
        TimeCoverageError
            Naming the interval, the time scale or the file that is wrong.
        """
        self.intervals = []
        if self.text.strip():
            self.intervals = intervals_from_text(self.text).tolist()
        return self.intervals

    def clear(self) -> None:
        """Empty the box (the "x" button)."""
        self.text_box.value = ""
        self.intervals = []


def attach_during(panel: Any) -> DuringInput:
    """Add a :class:`DuringInput` to *panel* below its time fields.

    The panel's criteria get ``during`` (the intervals) when the box is filled, so
    its ADQL, its search and its history follow; a bad entry shows in the panel's
    error display and empties the query, like any other bad field.
    """
    box = DuringInput()
    children = list(panel.children)
    times = next((i for i, c in enumerate(children)
                  if isinstance(c, w.HBox) and "time_start" in getattr(panel, "numbers", {})
                  and panel.numbers["time_start"] in c.children), len(children) - 1)  # fmt: skip
    panel.children = (*children[: times + 1], box, *children[times + 1 :])
    form_criteria, reset = panel.form_criteria, panel.reset

    def criteria() -> dict:
        out = form_criteria()
        if box.read():
            out["during"] = box.intervals
        return out

    def reset_all() -> None:
        box.clear()
        reset()

    panel.form_criteria, panel.reset = criteria, reset_all
    box.observe(lambda _: guarded(panel, panel.update_adql), "text")
    panel.during_input = box
    return box
