"""AnalysisPanel: count/significance maps and a spectrum of the selected observations.

Parameters are prefilled from the data (map centre and ON region on the search
target, else on the mean pointing of the selection) and shown as editable YAML;
the steps are :mod:`ctanb.analysis.maps` and :mod:`ctanb.analysis.spectrum`
(imported when a button is pressed: gammapy is not loaded before). Plots are
shown inline as PNG; the products go to the provenance panel.
"""

from __future__ import annotations

import io
import math
import tempfile
from pathlib import Path
from typing import Any

import ipywidgets as w
import traitlets as t

from .._errors import AnalysisError, ConfigError
from ._errors import ErrorDisplay, guarded

__all__ = ["AnalysisPanel"]


def _figure_png(plot: Any) -> bytes:
    """PNG of what ``result.plot()`` drew (it returns axes, figures or nothing)."""
    import matplotlib

    matplotlib.use("Agg", force=False) if matplotlib.get_backend() == "" else None
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
        Where products go (default: a new temporary folder).

    Attributes
    ----------
    map_config, spectrum_config : dict
        The step configurations (prefilled by :meth:`prefill`, editable as YAML).
    stage : str
        What is running (``""`` when idle); ``progress`` from 0 to 1.
    products : dict
        Product name -> file of the last runs.
    """

    map_config = t.Dict()
    spectrum_config = t.Dict()
    stage = t.Unicode("")
    progress = t.Float(0.0)
    products = t.Dict()
    map_png = t.Bytes(b"")
    spectrum_png = t.Bytes(b"")
    error = t.Unicode("")

    def __init__(self, app: Any, *, out_dir: str | Path | None = None, **kwargs: Any) -> None:
        self.app = app
        self.out_dir = Path(out_dir) if out_dir else None
        self.error_display = ErrorDisplay()
        self.prefill_button = w.Button(description="Prefill from selection", icon="magic")
        self.map_button = w.Button(description="Count map", icon="map", button_style="info")
        self.spectrum_button = w.Button(description="Spectrum", icon="line-chart",
                                        button_style="info")  # fmt: skip
        self.map_yaml = w.Textarea(layout=w.Layout(width="48%", height="160px"))
        self.spectrum_yaml = w.Textarea(layout=w.Layout(width="48%", height="160px"))
        self.progress_bar = w.FloatProgress(
            min=0, max=1, description="", layout=w.Layout(width="40%")
        )
        self.stage_label = w.HTML()
        self.map_image = w.Image(format="png", layout=w.Layout(max_width="100%"))
        self.spectrum_image = w.Image(format="png", layout=w.Layout(max_width="100%"))
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
                w.HBox([self.prefill_button, self.map_button, self.spectrum_button]),
                w.HBox([self.progress_bar, self.stage_label]),
                self.error_display,
                w.HBox([w.VBox([w.HTML("<b>Map configuration</b>"), self.map_yaml]),
                        w.VBox([w.HTML("<b>Spectrum configuration</b>"), self.spectrum_yaml])]),
                w.HBox([self.map_image, self.spectrum_image]),
            ],
            **kwargs,
        )  # fmt: skip

    # --- public methods ---------------------------------------------------------------------
    def prefill(self) -> None:
        """Fill both configurations from the selection and the search target."""
        import yaml

        table = self.app.selected_results().table
        target = self.app.search.resolved
        ra, dec = (target["ra"], target["dec"]) if target else _mean_pointing(table)
        e_min = max(float(min(table["energy_min"])) if "energy_min" in table.colnames else 0.5, 0.3)
        e_max = min(float(max(table["energy_max"])) if "energy_max" in table.colnames else 100, 100)
        self.map_config = {
            "geom": {
                "wcs": {"skydir": {"frame": "icrs", "lon": f"{ra:.4f} deg", "lat": f"{dec:.4f} deg"},
                        "width": {"width": "3 deg", "height": "3 deg"}, "binsize": "0.04 deg"},
                "axes": {"energy": {"min": f"{e_min:.3g} TeV", "max": f"{e_max:.3g} TeV", "nbins": 1},
                         "energy_true": {"min": "0.3 TeV", "max": "100 TeV", "nbins": 12}},
                "selection": {"offset_max": "2.0 deg"},
            },
        }  # fmt: skip
        self.spectrum_config = _spectrum_defaults(ra, dec, e_min, e_max)
        self.map_yaml.value = yaml.safe_dump(self.map_config, sort_keys=False)
        self.spectrum_yaml.value = yaml.safe_dump(self.spectrum_config, sort_keys=False)

    def run_map(self):
        """Counts, excess and significance maps of the selection; shows the plot."""
        from ..analysis.maps import MapConfig, MapStep

        if not self.map_config:
            self.prefill()
        config = MapConfig.from_dict(self.map_config, source="map configuration")
        inputs = self._inputs()
        self._stage("reducing to a map dataset, then excess/significance", 0.3)
        result = MapStep(config).run(inputs, out=self._out("maps"))
        self._stage("plotting", 0.9)
        self.map_png = _figure_png(result.plot())
        self.map_image.value = self.map_png
        self._finish(result)
        return result

    def run_spectrum(self):
        """The spectrum of the selection in the ON region; shows the plot."""
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
        self.spectrum_png = _figure_png(result.plot())
        self.spectrum_image.value = self.spectrum_png
        self._finish(result)
        return result

    # --- plumbing ---------------------------------------------------------------------------
    def _inputs(self):
        from ..analysis.inputs import inputs_from_archive

        selection = self.app.selected_results()
        self._stage(f"downloading {len(selection)} observation(s)", 0.1)
        return inputs_from_archive(selection)

    def _out(self, name: str) -> Path:
        if self.out_dir is None:
            self.out_dir = Path(tempfile.mkdtemp(prefix="ctanb-analysis-"))
        folder = self.out_dir / name
        folder.mkdir(parents=True, exist_ok=True)
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
        self.stage_label.value = f"done: {len(products)} product(s)"

    def _read_yaml(self, name: str, text: str) -> None:
        import yaml

        try:
            value = yaml.safe_load(text) if text.strip() else {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"the {name.replace('_', ' ')} is not valid YAML: {exc}") from None
        if not isinstance(value, dict):
            raise ConfigError(f"the {name.replace('_', ' ')} must be a mapping of settings")
        setattr(self, name, value)


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
