"""ExposurePlots: when and in which energy band the results were observed, as pictures.

Two charts of the current results, both following the table's selection (one
``selected_rows`` list, linked by the App):

- a time-coverage plot: one line per source, one mark per observation night
  (the night's date is the UTC date 12 h before the run, so a run after
  midnight counts for the evening it started), nights holding a selected row
  highlighted;
- an energy-coverage chart: one bar per dataset from ``energy_min`` to
  ``energy_max`` (TeV, log scale), selected datasets highlighted.

The state (:attr:`ExposurePlots.nights`, :attr:`ExposurePlots.bands`) is
computed in Python; the charts are matplotlib PNGs in ``ipywidgets.Image``
(nothing to load from the network). :meth:`select_night` selects the rows of a
night, as the night drop-down does.
"""

from __future__ import annotations

import io
from typing import Any

import ipywidgets as w
import numpy as np
import traitlets as t

from .._errors import CtanbError
from ._errors import ErrorDisplay, guarded

__all__ = ["ExposurePlots"]

_NIGHT_SHIFT_DAYS = 0.5  # runs before local noon belong to the previous evening's night


def _texts(table: Any, name: str, default: str = "") -> list[str]:
    if name not in table.colnames:
        return [default] * len(table)
    values = np.ma.asanyarray(table[name])
    filled = np.ma.filled(values, default if values.dtype.kind in "SUO" else np.nan).tolist()
    return [v.decode() if isinstance(v, bytes) else str(v) for v in filled]


def _floats(table: Any, name: str) -> np.ndarray:
    if name not in table.colnames:
        return np.full(len(table), np.nan)
    return np.ma.filled(np.ma.asanyarray(table[name], dtype=float), np.nan)


class ExposurePlots(w.VBox):
    """Time coverage (nights per source) and energy coverage (per dataset) of the results.

    Attributes
    ----------
    nights : list of dict
        ``{"source", "night" (YYYY-MM-DD), "mjd", "rows", "hours"}`` per source and night.
    bands : list of dict
        ``{"row", "label", "energy_min", "energy_max"}`` per dataset with both energies.
    selected_rows : list of int
        The selected rows (linked to the table's).
    selected_nights : list of str
        ``"source|night"`` of the nights holding a selected row (highlighted).
    """

    nights = t.List(t.Dict())
    bands = t.List(t.Dict())
    selected_rows = t.List(t.Int())
    selected_nights = t.List(t.Unicode())
    message = t.Unicode("")

    def __init__(self, results: Any = None, **kwargs: Any) -> None:
        self.error_display = ErrorDisplay()
        self.time_chart = w.Image(format="png", layout=w.Layout(max_width="720px"))
        self.energy_chart = w.Image(format="png", layout=w.Layout(max_width="720px"))
        self.night_picker = w.Dropdown(description="Select night", options=[("-", "")],
                                       layout=w.Layout(width="360px"))  # fmt: skip
        self.night_picker.observe(self._on_pick, "value")
        self._note = w.HTML()
        super().__init__([self._note, self.night_picker, self.time_chart, self.energy_chart,
                          self.error_display], **kwargs)  # fmt: skip
        self.add_class("ctanb-exposure")
        if results is not None:
            self.set_results(results)

    # --- public methods --------------------------------------------------------------------
    def set_results(self, results: Any) -> None:
        """Compute the nights and energy bands of *results* and draw both charts."""
        from astropy.time import Time

        table = getattr(results, "table", results)
        t_min, t_max = _floats(table, "t_min"), _floats(table, "t_max")
        sources = _texts(table, "target_name", "?")
        labels = _texts(table, "obs_id") if "obs_id" in table.colnames else [
            str(i) for i in range(len(table))]  # fmt: skip
        good = np.flatnonzero(np.isfinite(t_min))
        nights: dict[tuple[str, str], dict] = {}
        if len(good):
            days = Time(t_min[good] - _NIGHT_SHIFT_DAYS, format="mjd", scale="tt").utc.iso
            for row, day in zip(good.tolist(), np.atleast_1d(days), strict=True):
                key = (sources[row] or "?", str(day)[:10])
                entry = nights.setdefault(key, {"source": key[0], "night": key[1],
                                                "mjd": float(np.floor(t_min[row] - 0.5)),
                                                "rows": [], "hours": 0.0})  # fmt: skip
                entry["rows"].append(row)
                if np.isfinite(t_max[row]):
                    entry["hours"] += max(0.0, float(t_max[row] - t_min[row]) * 24)
        e_min, e_max = _floats(table, "energy_min"), _floats(table, "energy_max")
        bands = [{"row": i, "label": labels[i], "energy_min": float(e_min[i]),
                  "energy_max": float(e_max[i])}
                 for i in np.flatnonzero(np.isfinite(e_min) & np.isfinite(e_max)
                                         & (e_min > 0)).tolist()]  # fmt: skip
        with self.hold_trait_notifications():
            self.selected_rows = []
            self.nights = sorted(nights.values(), key=lambda n: (n["source"], n["night"]))
            self.bands = bands
            self.message = "" if self.nights or not len(table) else (
                "No times in the results (t_min): nothing to draw.")  # fmt: skip
        self.night_picker.options = [("-", "")] + [
            (f"{n['source']} {n['night']} ({len(n['rows'])} run(s))", f"{n['source']}|{n['night']}")
            for n in self.nights
        ]
        self._redraw()

    def select(self, rows: list[int]) -> None:
        """Select exactly *rows*."""
        self.selected_rows = sorted({int(r) for r in rows})

    def select_night(self, source: str, night: str) -> None:
        """Select the rows of *source* observed on *night* (``YYYY-MM-DD``)."""
        for n in self.nights:
            if n["source"] == source and n["night"] == night:
                self.select(n["rows"])
                return
        raise CtanbError(f"no observation of {source!r} on the night of {night} in the results")

    def time_figure(self) -> Any:
        """The time-coverage plot (matplotlib Figure): nights per source, selection highlighted."""
        from matplotlib.figure import Figure

        sources = sorted({n["source"] for n in self.nights})
        fig = Figure(figsize=(7.2, 0.6 + 0.35 * max(1, len(sources))))
        ax = fig.add_subplot()
        on = set(self.selected_nights)
        for picked in (False, True):
            pts = [n for n in self.nights if (f"{n['source']}|{n['night']}" in on) == picked]
            ax.scatter([n["mjd"] for n in pts], [sources.index(n["source"]) for n in pts],
                       s=[20 + 25 * n["hours"] for n in pts], marker="s",
                       color="#ffb000" if picked else "#4a7fd0", edgecolor="k" if picked else "none",
                       zorder=3 if picked else 2, label="selected" if picked else "night observed")  # fmt: skip
        ax.set_yticks(range(len(sources)), sources)
        ax.set_xlabel("night (MJD)")
        ax.set_title("Observation nights per source (size: hours)")
        ax.grid(axis="x", alpha=0.3)
        if self.nights:
            # Outside the axes: inside it hid the first nights of the top source.
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7)
        fig.tight_layout()
        return fig

    def energy_figure(self) -> Any:
        """The energy-coverage chart (matplotlib Figure): one bar per dataset, selection highlighted."""
        from matplotlib.figure import Figure

        bands = self.bands[:200]  # more bars than pixels help no one
        fig = Figure(figsize=(7.2, 0.8 + 0.12 * max(4, len(bands))))
        ax = fig.add_subplot()
        chosen = set(self.selected_rows)
        for i, b in enumerate(bands):
            picked = b["row"] in chosen
            ax.plot([b["energy_min"], b["energy_max"]], [i, i], lw=4 if picked else 2,
                    color="#ffb000" if picked else "#4a7fd0", solid_capstyle="butt")  # fmt: skip
        ax.set_xscale("log")
        ax.set_xlabel("energy (TeV)")
        ax.set_ylabel("dataset")
        ax.set_title("Energy coverage per dataset (energy_min - energy_max)")
        if len(bands) <= 30:
            ax.set_yticks(range(len(bands)), [b["label"] for b in bands], fontsize=6)
        fig.tight_layout()
        return fig

    # --- internals -------------------------------------------------------------------------
    @t.observe("selected_rows")
    def _on_selection(self, _change: dict) -> None:
        chosen = set(self.selected_rows)
        self.selected_nights = [f"{n['source']}|{n['night']}" for n in self.nights
                                if chosen & set(n["rows"])]  # fmt: skip
        self._redraw()

    def _on_pick(self, change: dict) -> None:
        if change["new"]:
            source, _, night = change["new"].partition("|")
            guarded(self, self.select_night, source, night)

    def _redraw(self) -> None:
        self._note.value = f"<i>{self.message}</i>" if self.message else ""
        for image, make in ((self.time_chart, self.time_figure),
                            (self.energy_chart, self.energy_figure)):  # fmt: skip
            buf = io.BytesIO()
            make().savefig(buf, format="png", dpi=80)
            image.value = buf.getvalue()
