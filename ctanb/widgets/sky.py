"""SkyView: the results' footprints, pointings and the target on the sky.

Our own anywidget over Aladin Lite (npm ``aladin-lite``, bundled into
``ctanb/static/aladin/aladin.js`` by ``widgets/build.py``) rather than a patched
ipyaladin: ipyaladin imports Aladin Lite from esm.sh when the view is drawn,
which fails offline, and its ``_esm`` is not meant to be replaced. Here the
front end asks the kernel for the bundled file (one binary message per page),
so it works in JupyterLab, Notebook 7 and Voila with no server extension and no
network. Next to Aladin, a tangent-plane plot of the same footprints is always
drawn: it is what stays useful when HiPS tiles cannot be fetched or WebGL is
missing. Clicking a footprint in either view toggles its row; a spot where several
footprints overlap offers the runs there to choose from. Without a survey (offline:
``CTANB_OFFLINE=1``, or ``survey=""``) or when the survey cannot be loaded, Aladin
draws on a plain all-sky image made in the page: nothing is fetched, nothing spins.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

import anywidget
import numpy as np
import traitlets as t

from ._base import CommandMixin, static_file
from ._errors import ErrorDisplay

__all__ = ["SkyView", "aladin_module_path"]


def aladin_module_path():
    """Where ``widgets/build.py`` put Aladin Lite (``ctanb/static/aladin/aladin.js``)."""
    return static_file("aladin/aladin.js")


def _texts(column: Any) -> list[str]:
    values = np.ma.asanyarray(column)
    filled = values.filled("" if values.dtype.kind in "SUO" else 0).tolist()
    return [v.decode() if isinstance(v, bytes) else str(v) for v in filled]


def _regions(column: Any) -> list[Any]:
    """Each row's s_region as text or a plain float array (masked cells -> None)."""
    values = np.ma.asanyarray(column)
    mask = np.ma.getmaskarray(values)
    if values.ndim > 1:  # fixed-length arrays of vertices
        data = np.ma.filled(values.astype(float), np.nan)
        return [None if m.all() else d for d, m in zip(data, mask, strict=True)]
    return [None if m else v for v, m in zip(values.data.tolist(), mask.tolist(), strict=True)]


def _fitted_fov(footprints: list[dict]) -> float:
    """A field of view (deg) holding every footprint: twice the largest distance from
    their mean direction, with a margin; 6 deg for one field, 180 for all-sky results."""
    if not footprints:
        return 6.0
    points = [(f["ra"], f["dec"]) for f in footprints]
    points += [tuple(v) for f in footprints for v in f["polygon"]]
    ra, dec = np.radians(np.array(points, dtype=float).T)
    vectors = np.array([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)])
    mean = vectors.mean(axis=1)
    norm = np.linalg.norm(mean)
    if norm < 1e-6:
        return 180.0
    cos = np.clip((mean / norm) @ vectors, -1.0, 1.0)
    radius = float(np.degrees(np.arccos(cos)).max())
    return float(min(180.0, max(2.0, 2.4 * radius)))


class SkyView(CommandMixin, anywidget.AnyWidget):
    """Footprints (``s_region``), pointing markers and the target, with selection.

    Parameters
    ----------
    results : Results or astropy.table.Table, optional
        What to draw at once.
    **kwargs
        Passed to the ipywidgets base class (``layout``, ...).

    Attributes
    ----------
    footprints : list of dict
        ``{"row", "label", "ra", "dec", "polygon": [[ra, dec], ...]}`` per result row.
    target : dict
        ``{"name", "ra", "dec"}`` of the search target, or empty.
    selected_rows : list of int
        Selected rows (linked to :class:`~ctanb.widgets.ResultsTable`).
    message : str
        What the view has to say about the results (e.g. that they hold no
        positions, so there is nothing to draw); ``""`` otherwise.
    mode : str
        Set by the front end: ``"aladin"`` when Aladin Lite runs, ``"plot"`` when
        only the plain sky plot could be drawn; ``status`` says why.
    """

    _esm = static_file("ctanb_skyview.js")
    _css = static_file("ctanb_skyview.css")
    _commands: ClassVar[dict[str, str]] = {
        "toggle": "toggle",
        "select": "select",
        "aladin_source": "send_aladin",
    }

    footprints = t.List(t.Dict()).tag(sync=True)
    target = t.Dict().tag(sync=True)
    selected_rows = t.List(t.Int()).tag(sync=True)
    fov = t.Float(6.0).tag(sync=True)
    #: The HiPS behind the overlays; "" for a plain sky (the default offline).
    survey = t.Unicode().tag(sync=True)
    use_aladin = t.Bool(True).tag(sync=True)
    mode = t.Unicode("").tag(sync=True)
    status = t.Unicode("").tag(sync=True)
    message = t.Unicode("").tag(sync=True)
    #: The row of the footprint clicked last (the App shows it in the table).
    clicked_row = t.Int(-1)
    error = t.Unicode("").tag(sync=True)
    #: Coverage layers drawn under the footprints (set by :class:`~ctanb.widgets.coverage.CoverageLayers`).
    coverage = t.List(t.Dict()).tag(sync=True)

    def __init__(self, results: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.error_display = ErrorDisplay()
        self.on_msg(self._handle_command)
        if results is not None:
            self.set_results(results)

    @t.default("survey")
    def _default_survey(self) -> str:
        # CTANB_SKY_SURVEY names another HiPS; offline there is none to fetch.
        if os.environ.get("CTANB_OFFLINE", "").strip().lower() in ("1", "true", "yes"):
            return os.environ.get("CTANB_SKY_SURVEY", "")
        return os.environ.get("CTANB_SKY_SURVEY", "P/DSS2/color")

    def set_results(self, results: Any) -> None:
        """Show the footprints of *results*.

        Parameters
        ----------
        results : Results or astropy.table.Table
            Rows with ``s_ra``/``s_dec`` (and ``s_region`` for footprints).
        """
        from ..client.results import parse_polygon

        table = getattr(results, "table", results)
        missing = [c for c in ("s_ra", "s_dec") if c not in table.colnames]
        if missing:
            # Any valid query is a result (a COUNT, chosen columns): nothing to draw.
            with self.hold_sync():
                self.selected_rows = []
                self.footprints = []
                self.fov = _fitted_fov([])
                self.message = "Nothing to draw: the results have no positions (s_ra, s_dec)."
            return
        # Whole columns at once: indexing masked columns row by row costs ~1 ms a row.
        ra = np.ma.filled(np.ma.asanyarray(table["s_ra"], dtype=float), np.nan)
        dec = np.ma.filled(np.ma.asanyarray(table["s_dec"], dtype=float), np.nan)
        ids = _texts(table["obs_id"]) if "obs_id" in table.colnames else None
        regions = _regions(table["s_region"]) if "s_region" in table.colnames else None
        out = []
        for row in np.flatnonzero(np.isfinite(ra) & np.isfinite(dec)).tolist():
            polygon = parse_polygon(regions[row]) if regions is not None else []
            out.append({"row": row, "label": ids[row] if ids is not None else str(row),
                        "ra": float(ra[row]), "dec": float(dec[row]),
                        "polygon": [[round(a, 5), round(b, 5)] for a, b in polygon]})  # fmt: skip
        with self.hold_sync():
            self.selected_rows = []
            self.footprints = out
            self.fov = _fitted_fov(out)
            self.message = (
                "" if out or not len(table) else "Nothing to draw: no row has a position."
            )

    def set_target(self, name: str, ra: float, dec: float) -> None:
        """Mark the target (and centre the view on it).

        Parameters
        ----------
        name : str
            The target's name.
        ra, dec : float
            ICRS position in degrees.
        """
        self.target = {"name": str(name), "ra": float(ra), "dec": float(dec)}

    def clear_target(self) -> None:
        """Remove the target marker (its name no longer gives the position)."""
        self.target = {}

    def select(self, rows: list[int]) -> None:
        """Select exactly *rows*.

        Parameters
        ----------
        rows : list of int
            Result row indices.
        """
        self.selected_rows = sorted({int(r) for r in rows})

    def toggle(self, row: int) -> None:
        """Select *row* if not selected, else unselect it (a click on its footprint).

        Parameters
        ----------
        row : int
            Result row index.
        """
        self.select(sorted(set(self.selected_rows) ^ {int(row)}))
        self.clicked_row = -1  # a click on the same footprint again is news too
        self.clicked_row = int(row)

    def send_aladin(self) -> None:
        """Send the bundled Aladin Lite module to the front end (it asks once per page)."""
        path = aladin_module_path()
        if not path.is_file():
            self.send({"kind": "aladin_source", "error": f"{path} is missing: run "
                       "`npm ci --prefix widgets && python widgets/build.py`"})  # fmt: skip
            return
        self.send({"kind": "aladin_source"}, buffers=[path.read_bytes()])
