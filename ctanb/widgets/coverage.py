"""CoverageLayers: the archive's coverage per collection, and the results', on the sky.

The archive serves its space MOCs (``Archive.coverage``); the results' coverage is
built here from their footprints with the archive's own rule
(:func:`ctanb.archive.coverage.footprint_moc`). Each layer drawn is a dict in
:attr:`CoverageLayers.layers` with the MOC as MOC-JSON (what Aladin Lite's
``A.MOCFromJSON`` reads) and its HEALPix cells as polygons (what the plain sky
plot and :meth:`CoverageLayers.plot` draw), so the sky view needs neither the
network nor WebGL to show coverage. Toggling a collection is a public method
(:meth:`~CoverageLayers.toggle`), and its checkbox calls it.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as w
import numpy as np
import traitlets as t

from .._errors import CtanbError
from ._errors import ErrorDisplay, guarded

__all__ = ["RESULTS_LAYER", "CoverageLayers", "moc_cells"]

#: Name of the layer of the current results' coverage.
RESULTS_LAYER = "results"
#: At most this many cells per layer are drawn (the MOC is degraded until it fits).
MAX_CELLS = 3000
_COLOURS = ("#3cb44b", "#f58231", "#911eb4", "#46f0f0", "#f032e6", "#bcf60c", "#008080")
_RESULTS_COLOUR = "#ffe119"


def moc_cells(moc: Any, limit: int = MAX_CELLS) -> list[list[list[float]]]:
    """The cells of a space MOC as ``[[ra, dec] x 4]`` polygons, at most *limit* of them.

    The MOC is degraded (coarser cells, never fewer covered places) until it fits.
    """
    import cdshealpix

    if moc.empty():
        return []
    order = int(moc.max_order)
    while order > 0 and len(moc.flatten() if order == moc.max_order else
                            moc.degrade_to_order(order).flatten()) > limit:  # fmt: skip
        order -= 1
    coarse = moc if order == moc.max_order else moc.degrade_to_order(order)
    ipix = np.asarray(coarse.flatten(), dtype=np.uint64)
    lon, lat = cdshealpix.nested.vertices(ipix, order)
    ra, dec = np.round(lon.deg, 4), np.round(lat.deg, 4)
    return [[[float(a), float(b)] for a, b in zip(r, d, strict=True)]
            for r, d in zip(ra, dec, strict=True)]  # fmt: skip


def _layer(name: str, moc: Any, colour: str) -> dict:
    return {
        "name": name,
        "color": colour,
        "moc": {str(k): [int(i) for i in v] for k, v in moc.serialize(format="json").items()},
        "cells": moc_cells(moc),
        "sky_fraction": float(moc.sky_fraction),
    }


def _results_rows(results: Any) -> list[tuple]:
    """``(s_ra, s_dec, s_fov, s_region vertex list)`` of each result row."""
    from ..client.results import parse_polygon
    from .sky import _regions

    table = getattr(results, "table", results)
    if table is None or "s_ra" not in table.colnames or "s_dec" not in table.colnames:
        return []
    ra = np.ma.filled(np.ma.asanyarray(table["s_ra"], dtype=float), np.nan)
    dec = np.ma.filled(np.ma.asanyarray(table["s_dec"], dtype=float), np.nan)
    fov = (np.ma.filled(np.ma.asanyarray(table["s_fov"], dtype=float), np.nan)
           if "s_fov" in table.colnames else np.full(len(ra), np.nan))  # fmt: skip
    regions = _regions(table["s_region"]) if "s_region" in table.colnames else [None] * len(ra)
    rows = []
    for i in np.flatnonzero(np.isfinite(ra) & np.isfinite(dec)).tolist():
        polygon = parse_polygon(regions[i]) if regions[i] is not None else []
        text = " ".join(f"{a} {b}" for a, b in polygon) if len(polygon) >= 3 else None
        rows.append((ra[i], dec[i], fov[i] if np.isfinite(fov[i]) else None, text))
    return rows


class CoverageLayers(w.VBox):
    """Checkboxes for the archive's coverage per collection and the results' coverage.

    Parameters
    ----------
    archive : Archive or callable, optional
        The archive (or a function returning it, called on :meth:`load`).
    sky : SkyView, optional
        The sky view that draws :attr:`layers` (its ``coverage`` trait).

    Attributes
    ----------
    collections : list of str
        The collections whose coverage is loaded (one checkbox each).
    shown : list of str
        The layers drawn: collection names and/or ``"results"``.
    layers : list of dict
        What is drawn, in order: ``{"name", "color", "moc", "cells", "sky_fraction"}``.
    message : str
        What the panel has to say (e.g. the archive could not be reached).
    """

    collections = t.List(t.Unicode())
    shown = t.List(t.Unicode(), default_value=[RESULTS_LAYER])
    layers = t.List(t.Dict())
    message = t.Unicode("")

    def __init__(self, archive: Any = None, *, sky: Any = None, **kwargs: Any) -> None:
        self._archive = archive
        self._mocs: dict[str, Any] = {}
        self.sky = sky
        self.error_display = ErrorDisplay()
        self._boxes = w.HBox()
        self._load_button = w.Button(description="Archive coverage", icon="globe",
                                     tooltip="Load the archive's coverage per collection")  # fmt: skip
        self._load_button.on_click(lambda _b: guarded(self, self.load))
        self._note = w.HTML()
        super().__init__([w.HBox([self._load_button, self._boxes]), self._note,
                          self.error_display], **kwargs)  # fmt: skip
        self.add_class("ctanb-coverage")
        self._render_boxes()

    # --- public methods --------------------------------------------------------------------
    def load(self, archive: Any = None, *, collections: list[str] | None = None) -> list[str]:
        """Fetch the space coverage of every collection (or *collections*) from the archive.

        Returns the collections loaded; the results layer is kept.
        """
        archive = archive or self._archive
        if callable(archive) and not hasattr(archive, "coverage"):
            archive = archive()
        if archive is None or not hasattr(archive, "coverage"):
            raise CtanbError("no archive to load coverage from: connect to one first")
        if collections is None:
            table = archive.query("SELECT DISTINCT obs_collection FROM ivoa.obscore").table
            collections = sorted(str(c) for c in table["obs_collection"])
        mocs = {name: archive.coverage(collection=name, kind="space") for name in collections}
        for name, moc in mocs.items():
            self._mocs[name] = moc
        with self.hold_trait_notifications():
            self.collections = sorted(set(self.collections) | set(mocs))
            self.shown = sorted(set(self.shown) | set(mocs))
        self._update()
        return list(mocs)

    def set_results(self, results: Any) -> None:
        """Compute the coverage of *results* (their footprints) as the ``results`` layer."""
        from ..archive.coverage import footprint_moc

        rows = _results_rows(results)
        if rows:
            self._mocs[RESULTS_LAYER] = footprint_moc(rows)
        else:
            self._mocs.pop(RESULTS_LAYER, None)
        self._update()

    def show(self, name: str) -> None:
        """Draw layer *name* (a collection or ``"results"``)."""
        self._known(name)
        self.shown = sorted(set(self.shown) | {name})

    def hide(self, name: str) -> None:
        """Stop drawing layer *name*."""
        self._known(name)
        self.shown = sorted(set(self.shown) - {name})

    def toggle(self, name: str) -> None:
        """Draw layer *name* if hidden, else hide it (its checkbox)."""
        (self.hide if name in self.shown else self.show)(name)

    def moc(self, name: str) -> Any:
        """The mocpy MOC of layer *name*."""
        self._known(name)
        if name not in self._mocs:
            raise CtanbError(f"layer {name!r} has no coverage yet (no results with positions)")
        return self._mocs[name]

    def plot(self, ax: Any = None) -> Any:
        """The layers drawn on a plain RA/Dec plot (matplotlib; no network needed)."""
        import matplotlib.pyplot as plt
        from matplotlib.collections import PolyCollection

        if ax is None:
            _fig, ax = plt.subplots(figsize=(8, 4.5))
        for layer in self.layers:
            polys = [np.asarray(c) for c in layer["cells"]]
            # Cells across RA 0/360 would stretch over the whole plot: draw them twice.
            polys = [p if np.ptp(p[:, 0]) < 180 else np.c_[np.where(p[:, 0] > 180, p[:, 0] - 360,
                     p[:, 0]), p[:, 1]] for p in polys]  # fmt: skip
            ax.add_collection(PolyCollection(polys, facecolor=layer["color"], alpha=0.45,
                                             edgecolor=layer["color"], label=layer["name"]))  # fmt: skip
        ax.set_xlim(360, 0)
        ax.set_ylim(-90, 90)
        ax.set_xlabel("RA (deg)")
        ax.set_ylabel("Dec (deg)")
        ax.set_title("Coverage (MOC)")
        if self.layers:
            ax.legend(loc="lower left", fontsize=8)
        return ax

    # --- internals -------------------------------------------------------------------------
    def _known(self, name: str) -> None:
        if name != RESULTS_LAYER and name not in self.collections:
            known = ", ".join([RESULTS_LAYER, *self.collections])
            raise CtanbError(f"no coverage layer {name!r}: the layers are {known}")

    @t.observe("shown")
    def _on_shown(self, _change: dict) -> None:
        self._update()

    def _update(self) -> None:
        layers = []
        names = [RESULTS_LAYER, *self.collections]
        for i, name in enumerate(names):
            if name in self.shown and name in self._mocs:
                colour = _RESULTS_COLOUR if name == RESULTS_LAYER else _COLOURS[(i - 1) % 7]
                layers.append(_layer(name, self._mocs[name], colour))
        # Collections under the results, so that the results' coverage stays visible.
        self.layers = [*layers[1:], *layers[:1]] if RESULTS_LAYER in self.shown else layers
        if self.sky is not None:
            self.sky.coverage = self.layers
        self._render_boxes()

    def _render_boxes(self) -> None:
        boxes = []
        for name in [RESULTS_LAYER, *self.collections]:
            box = w.Checkbox(value=name in self.shown, description=name, indent=False,
                             layout=w.Layout(width="auto"))  # fmt: skip
            box.observe(lambda ch, n=name: ch["new"] != (n in self.shown)
                        and guarded(self, self.toggle, n), "value")  # fmt: skip
            boxes.append(box)
        self._boxes.children = boxes
        parts = [f"{x['name']}: {100 * x['sky_fraction']:.2f} % of the sky" for x in self.layers]
        self._note.value = "<small>" + "; ".join(parts) + "</small>" if parts else ""
