"""AnalysisPanel: count/significance maps and a spectrum of the selected observations.

Parameters are prefilled from the selected rows (map centre and ON region on
their common target, else on their mean pointing; never on the search target,
which may be another source) and shown as editable YAML;
the steps are :mod:`ctanb.analysis.maps` and :mod:`ctanb.analysis.spectrum`
(imported when a button is pressed: gammapy is not loaded before). Plots are
shown inline as PNG; the products go to the provenance panel.
"""

from __future__ import annotations

import contextlib
import html
import io
import math
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ipywidgets as w
import numpy as np
import traitlets as t

from .._errors import AnalysisError, ConfigError, CtanbError
from ._errors import ErrorDisplay, guarded

__all__ = ["AnalysisPanel"]


def _figure_png(plot: Any) -> bytes:
    """PNG of what ``result.plot()`` drew (it returns axes, figures or nothing)."""
    import matplotlib.pyplot as plt

    figure = None
    for item in plot if isinstance(plot, list | tuple) else [plot]:
        figure = getattr(item, "figure", None) or getattr(item, "get_figure", lambda: None)()
        if figure is not None:
            break
    figure = figure or plt.gcf()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def _plot_map_result(result: Any) -> Any:
    """Counts, excess and significance summed over energy, with room for every colorbar.

    ``MapResult.plot`` packs three WCSAxes and their colorbars into a narrow figure
    (the colorbar labels run into the next map's axis); here each map gets its own
    column, the colorbars are horizontal below the maps and the layout is
    constrained, so no label overlaps at the panel's width.
    """
    import matplotlib.pyplot as plt

    maps = {"counts": result.dataset.counts, "excess": result.excess,
            "significance (sigma)": result.significance}  # fmt: skip
    figure = plt.figure(figsize=(13.5, 5.0), layout="constrained")
    for index, (title, sky_map) in enumerate(maps.items(), start=1):
        data = np.nan_to_num(
            np.asarray(sky_map.data, dtype=float).reshape(-1, *sky_map.data.shape[-2:])
        )
        # Counts and excess add up over energy; a summed sqrt(TS) is not a significance.
        data = data.max(axis=0) if title.startswith("significance") else data.sum(axis=0)
        ax = figure.add_subplot(1, len(maps), index, projection=sky_map.geom.to_image().wcs)
        shown = ax.imshow(data, origin="lower", cmap="afmhot")
        figure.colorbar(shown, ax=ax, orientation="horizontal", shrink=0.85, pad=0.02)
        ax.set_title(title)
        ax.coords[0].set_ticks(number=4)
        ax.coords[1].set_ticks(number=4)
        ax.coords[0].set_axislabel("Right Ascension" if index == 1 else " ")
        ax.coords[1].set_axislabel("Declination" if index == 1 else " ")
        if index > 1:
            ax.coords[1].set_ticklabel_visible(False)
    return figure


def _yaml_box() -> w.Textarea:
    """An editable YAML box: monospace, ~55 characters wide, resizable (ctanb-yaml CSS)."""
    box = w.Textarea(rows=14, layout=w.Layout(width="100%", height="auto"))
    box.add_class("ctanb-yaml")
    return box


def _titled(title: str, box: w.Textarea) -> w.VBox:
    return w.VBox([w.HTML(f"<b>{title}</b>"), box],
                  layout=w.Layout(width="56ch", min_width="36ch", max_width="100%"))  # fmt: skip


#: Monospace, resizable YAML boxes (ipywidgets has no font-family/resize layout keys).
_YAML_CSS = (
    "<style>.ctanb-yaml textarea{font-family:var(--jp-code-font-family,monospace);"
    "font-size:12px;resize:both;min-height:14em;white-space:pre}</style>"
)


def _mean_pointing(table) -> tuple[float, float]:
    x = y = z = 0.0
    for ra, dec in zip(table["s_ra"], table["s_dec"], strict=True):
        r, d = math.radians(float(ra)), math.radians(float(dec))
        x, y, z = x + math.cos(d) * math.cos(r), y + math.cos(d) * math.sin(r), z + math.sin(d)
    return math.degrees(math.atan2(y, x)) % 360, math.degrees(math.atan2(z, math.hypot(x, y)))


class AnalysisPanel(w.VBox):
    """Count map and spectrum of the rows selected in an :class:`~ctanb.widgets.App`.

    Parameters
    ----------
    app : App
        Gives the selection (``app.selected_results()``), the target and the
        provenance panel.
    out_dir : path, optional
        Where products go (default: ``CTANB_PRODUCTS``, else ``ctanb-products``
        in the notebook's folder, so the file browser shows them).
    **kwargs
        Passed to the ipywidgets base class (``layout``, ...).

    Attributes
    ----------
    map_config, spectrum_config : dict
        The step configurations (prefilled by :meth:`prefill`, editable as YAML).
    stage : str
        What is running (``""`` when idle); ``progress`` from 0 to 1.
    products : dict
        Product name -> file of the last runs.
    last_folder : str
        The folder of the last run's products: each run writes into a new folder
        ``<kind>/<time>_<target or first run>[+<more runs>]`` of ``out_dir``, so
        no run overwrites an earlier one's products.
    last_map, last_spectrum : StepResult
        The last :class:`~ctanb.analysis.maps.MapResult` and spectrum result (None before).
    """

    map_config = t.Dict()
    spectrum_config = t.Dict()
    stage = t.Unicode("")
    progress = t.Float(0.0)
    products = t.Dict()
    last_folder = t.Unicode("")
    last_map = t.Any(None, allow_none=True)
    last_spectrum = t.Any(None, allow_none=True)
    map_png = t.Bytes(b"")
    spectrum_png = t.Bytes(b"")
    error = t.Unicode("")

    def __init__(self, app: Any, *, out_dir: str | Path | None = None, **kwargs: Any) -> None:
        self.app = app
        self.out_dir = Path(out_dir) if out_dir else None
        self.error_display = ErrorDisplay()
        wide = w.Layout(width="auto", min_width="190px")
        self.prefill_button = w.Button(description="Prefill from selection", icon="magic",
                                       layout=wide)  # fmt: skip
        self.map_button = w.Button(description="Count map", icon="map", button_style="info",
                                   layout=wide)  # fmt: skip
        self.spectrum_button = w.Button(description="Spectrum", icon="line-chart",
                                        button_style="info", layout=wide)  # fmt: skip
        self.map_yaml = _yaml_box()
        self.spectrum_yaml = _yaml_box()
        self.progress_bar = w.FloatProgress(
            min=0, max=1, description="", layout=w.Layout(width="40%")
        )
        self.stage_label = w.HTML()
        self.map_image = w.Image(format="png", layout=w.Layout(max_width="100%", height="auto"))
        self.spectrum_image = w.Image(format="png",
                                      layout=w.Layout(max_width="720px", height="auto"))  # fmt: skip
        self.prefill_button.on_click(lambda _: guarded(self, self.prefill))
        self.map_button.on_click(lambda _: guarded(self, self.run_map))
        self.spectrum_button.on_click(lambda _: guarded(self, self.run_spectrum))
        self.map_yaml.observe(
            lambda ch: guarded(self, self._read_yaml, "map_config", ch["new"]), "value"
        )
        self.spectrum_yaml.observe(
            lambda ch: guarded(self, self._read_yaml, "spectrum_config", ch["new"]), "value"
        )
        super().__init__(
            children=[
                w.HTML(_YAML_CSS),
                w.HBox([self.prefill_button, self.map_button, self.spectrum_button]),
                w.HBox([self.progress_bar, self.stage_label]),
                self.error_display,
                w.HBox([_titled("Map configuration", self.map_yaml),
                        _titled("Spectrum configuration", self.spectrum_yaml)],
                       layout=w.Layout(flex_flow="row wrap", grid_gap="12px")),
                self.map_image,
                self.spectrum_image,
            ],
            **kwargs,
        )  # fmt: skip
        # Pages and tests find the analysis pictures by this class (the results panel
        # has pictures of its own: exposure charts, coverage).
        self.add_class("ctanb-analysis")

    # --- public methods ---------------------------------------------------------------------
    def prefill(self) -> None:
        """Fill both configurations from the selected rows (their target, else their pointing)."""
        import yaml

        table = self.app.selected_results().table
        ra, dec = self._selection_position(table)
        e_min = float(min(table["energy_min"])) if "energy_min" in table.colnames else 0.5
        e_max = float(max(table["energy_max"])) if "energy_max" in table.colnames else 100.0
        self.map_config = _map_defaults(ra, dec, e_min, e_max)
        self.spectrum_config = _spectrum_defaults(ra, dec, e_min, e_max)
        self.map_yaml.value = yaml.safe_dump(self.map_config, sort_keys=False)
        self.spectrum_yaml.value = yaml.safe_dump(self.spectrum_config, sort_keys=False)

    def run_map(self):
        """Counts, excess and significance maps of the selection; shows the plot.

        Returns
        -------
        MapResult or None
            The maps; None when it failed (the panel says why).
        """
        with self._failing("map"):
            return self._run_map()

    def _run_map(self):
        from ..analysis.maps import MapConfig, MapStep

        if not self.map_config:
            self.prefill()
        config = MapConfig.from_dict(self.map_config, source="map configuration")
        inputs = self._inputs()
        self._stage("reducing to a map dataset, then excess/significance", 0.3)
        result = MapStep(config).run(inputs, out=self._out("maps"))
        self._stage("plotting", 0.9)
        self.last_map = result
        self.map_png = _figure_png(_plot_map_result(result))
        self.map_image.value = self.map_png
        self._finish(result)
        return result

    def run_spectrum(self):
        """The spectrum of the selection in the ON region; shows the plot.

        Returns
        -------
        SpectrumResult or None
            The fit and flux points; None when it failed (the panel says why).
        """
        with self._failing("spectrum"):
            return self._run_spectrum()

    def _run_spectrum(self):
        try:
            from ..analysis.spectrum import SpectrumConfig, SpectrumStep
        except ImportError as exc:
            raise AnalysisError(f"spectra are not available in this installation: {exc}") from None
        if not self.spectrum_config:
            self.prefill()
        config = SpectrumConfig.from_dict(self.spectrum_config, source="spectrum configuration")
        inputs = self._inputs()
        self._stage("extracting and fitting the spectrum", 0.3)
        result = SpectrumStep(config).run(inputs, out=self._out("spectrum"))
        self._stage("plotting", 0.9)
        self.last_spectrum = result
        self.spectrum_png = _figure_png(result.plot())
        self.spectrum_image.value = self.spectrum_png
        self._finish(result)
        return result

    # --- plumbing ---------------------------------------------------------------------------
    def _selection_position(self, table) -> tuple[float, float]:
        """The selected rows' target when they share one, else their mean pointing."""
        names = set()
        if "target_name" in table.colnames:
            names = {(v.decode() if isinstance(v, bytes) else str(v)).strip()
                     for v in table["target_name"]} - {"", "--", "None"}  # fmt: skip
        if len(names) == 1:
            ra, dec = _mean_pointing(table)
            try:
                found = self.app.search.archive.resolve(names.pop())
            except CtanbError:
                return ra, dec
            # A target name resolved far from where the runs point is another source.
            if _separation(found.ra, found.dec, ra, dec) < 5.0:
                return found.ra, found.dec
            return ra, dec
        return _mean_pointing(table)

    @contextlib.contextmanager
    def _failing(self, kind: str) -> Iterator[None]:
        """A failed run leaves no stale plot, no "downloading ..." and no green label."""
        try:
            yield
        except BaseException:
            if kind == "map":
                self.last_map, self.map_png = None, b""
                self.map_image.value = b""
            else:
                self.last_spectrum, self.spectrum_png = None, b""
                self.spectrum_image.value = b""
            self.stage, self.progress = "", 0.0
            self.progress_bar.value = 0.0
            self.stage_label.value = (
                f'<span class="ctanb-failed" style="color:#b71c1c">the {kind} failed '
                "(see the message below)</span>"
            )
            raise

    def _inputs(self):
        from ..analysis.inputs import inputs_from_archive

        selection = self.app.selected_results()
        self._stage(f"downloading {len(selection)} observation(s)", 0.1)
        return inputs_from_archive(selection)

    def _out(self, kind: str) -> Path:
        """A new folder for this run's products (never one an earlier run wrote)."""
        if self.out_dir is None:
            self.out_dir = products_dir()
        folder = run_folder(self.out_dir / kind, self.app.selected_results().table)
        self.last_folder = str(folder)
        return folder

    def _stage(self, text: str, fraction: float) -> None:
        self.stage, self.progress = text, fraction
        self.progress_bar.value = fraction
        self.stage_label.value = f"<i>{text} ...</i>"

    def _finish(self, result: Any) -> None:
        products = {k: str(v) for k, v in result.products.items()}
        self.products = {**self.products, **products}
        for path in products.values():
            if path.endswith((".fits", ".fits.gz")):
                self.app.provenance.add_product(path)
        self.stage, self.progress = "", 1.0
        self.progress_bar.value = 1.0
        from ._tools import _shown_path

        shown = _shown_path(Path(self.last_folder)) if self.last_folder else ""
        self.stage_label.value = (f"done: {len(products)} product(s) in "
                                  f"<code class='ctanb-run-folder'>{html.escape(shown)}</code>")  # fmt: skip

    def _read_yaml(self, name: str, text: str) -> None:
        import yaml

        try:
            value = yaml.safe_load(text) if text.strip() else {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"the {name.replace('_', ' ')} is not valid YAML: {exc}") from None
        if not isinstance(value, dict):
            raise ConfigError(f"the {name.replace('_', ' ')} must be a mapping of settings")
        setattr(self, name, value)


def products_dir() -> Path:
    """Where the panels write products: ``CTANB_PRODUCTS``, else ``./ctanb-products``.

    The notebook's working folder, so the products appear in its file browser
    (never only in a temporary folder).
    """
    folder = Path(os.environ.get("CTANB_PRODUCTS") or Path.cwd() / "ctanb-products")
    folder = folder.expanduser().resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def run_folder(parent: str | Path, table: Any = None, *, when: float | None = None) -> Path:
    """Create and return a new folder for one analysis run's products.

    Named so a user recognises the run: ``<time>_<label>`` with the label the
    selection's common target, else its first run, and ``+N`` for the other
    runs (``2026-12-06T06-45-10_Crab_23523+3``). A folder that already exists is
    never reused (``-2``, ``-3``, ... are appended), so a run cannot overwrite the
    products of an earlier one.

    Parameters
    ----------
    parent : path
        The folder holding the runs' folders (e.g. ``ctanb-products/spectrum``).
    table : astropy.table.Table, optional
        The selected observations (ObsCore columns ``target_name``, ``obs_id``).
    when : float, optional
        The run's time (seconds since the epoch; default: now), in local time.

    Returns
    -------
    Path
        The new, empty folder.
    """
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y-%m-%dT%H-%M-%S", time.localtime(when))
    label = _run_label(table)
    base = f"{stamp}_{label}" if label else stamp
    for attempt in range(1, 10_000):
        folder = parent / (base if attempt == 1 else f"{base}-{attempt}")
        try:
            folder.mkdir()  # atomic: two runs at once never get the same folder
        except FileExistsError:
            continue
        return folder
    raise AnalysisError(
        f"cannot make a new products folder in {parent}: too many runs named {base}"
    )


def _run_label(table: Any) -> str:
    """``<target or first run>[_<first run>][+<other runs>]``, safe as a file name."""
    if table is None or len(table) == 0:
        return ""

    def column(name: str) -> list[str]:
        if name not in table.colnames:
            return []
        values = [(v.decode() if isinstance(v, bytes) else str(v)).strip() for v in table[name]]
        return [v for v in values if v not in ("", "--", "None")]

    targets, runs = set(column("target_name")), column("obs_id")
    parts = [targets.pop()] if len(targets) == 1 else []
    if runs:
        parts.append(runs[0])
    # Only letters, digits, '.', '+', '-' per part: no '/', '..' or spaces from a target name.
    parts = [re.sub(r"[^A-Za-z0-9.+-]+", "-", p).strip("-.")[:40] for p in parts]
    label = "_".join(p for p in parts if p)
    return f"{label}+{len(table) - 1}" if len(table) > 1 else label


def _separation(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    """Angular distance in degrees."""
    r1, d1, r2, d2 = (math.radians(x) for x in (ra1, dec1, ra2, dec2))
    cos = math.sin(d1) * math.sin(d2) + math.cos(d1) * math.cos(d2) * math.cos(r1 - r2)
    return math.degrees(math.acos(min(1.0, max(-1.0, cos))))


def _map_energy_axis(e_min: float, e_max: float) -> dict:
    """Reconstructed-energy bins of the count map: two per decade from 1 TeV (or above).

    SafeMaskMaker drops every bin not entirely inside an observation's safe energy
    range (H.E.S.S. DR1: ~0.4-1 TeV up to ~60-100 TeV), so one wide bin from the
    lowest threshold of the data is masked for every run and nothing is stacked
    (an empty map). Several log bins starting at 1 TeV keep most of them.
    """
    low = min(max(e_min, 1.0), 10.0)
    high = max(min(e_max, 100.0), 10 * low)
    nbins = max(2, math.ceil(2 * math.log10(high / low)))
    return {"min": f"{low:.3g} TeV", "max": f"{high:.3g} TeV", "nbins": nbins}


def _map_defaults(ra: float, dec: float, e_min: float, e_max: float) -> dict:
    """:class:`ctanb.analysis.maps.MapConfig` settings: 3 deg around the target."""
    return {
        "geom": {
            "wcs": {"skydir": {"frame": "icrs", "lon": f"{ra:.4f} deg", "lat": f"{dec:.4f} deg"},
                    "width": {"width": "3 deg", "height": "3 deg"}, "binsize": "0.04 deg"},
            "axes": {"energy": _map_energy_axis(e_min, e_max),
                     "energy_true": {"min": "0.3 TeV", "max": "200 TeV", "nbins": 14}},
            "selection": {"offset_max": "2.0 deg"},
        },
    }  # fmt: skip


def _spectrum_defaults(ra: float, dec: float, e_min: float, e_max: float) -> dict:
    """:class:`ctanb.analysis.spectrum.SpectrumConfig` settings: ON region on the target."""
    return {
        "ra_deg": round(ra, 4),
        "dec_deg": round(dec, 4),
        "on_radius_deg": 0.11,
        "energy_min_tev": round(max(e_min, 0.5), 3),
        "energy_max_tev": round(min(max(e_max, 2 * e_min), 40.0), 3),
        "model": "power-law",
    }
