"""The results of the map steps (:mod:`ctanb.analysis.maps`): the stacked dataset,
the excess and significance maps, and how they are drawn and summarised.

Kept apart from the steps so that each module stays readable; import them from
:mod:`ctanb.analysis` (or :mod:`ctanb.analysis.maps`, which re-exports them).
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._base import StepResult
from .masks import draw_exclusion

__all__ = ["ExcessMapResult", "MapDatasetResult", "MapResult"]


def _plot_maps(maps: dict[str, Any], **kwargs: Any) -> Any:
    """Each map summed over energy, side by side on WCSAxes; returns the figure."""
    import matplotlib.pyplot as plt

    figure = plt.figure(figsize=(4.5 * len(maps), 4))
    for index, (title, sky_map) in enumerate(maps.items(), start=1):
        image = sky_map.sum_over_axes(keepdims=False) if sky_map.geom.axes else sky_map
        ax = figure.add_subplot(1, len(maps), index, projection=image.geom.wcs)
        image.plot(ax=ax, add_cbar=True, stretch=kwargs.get("stretch", "linear"))
        ax.set_title(title)
    return figure


def _products_table(products: dict[str, Path]) -> str:
    """The product -> file table every map result's summary ends with."""
    files = "".join(
        f"<tr><td>{k}</td><td><code>{html.escape(str(v))}</code></td></tr>"
        for k, v in products.items()
    )
    return f"<table><tr><th>product</th><th>file</th></tr>{files}</table>"


def _summary_html(title: str, rows: dict[str, Any], products: dict[str, Path]) -> str:
    cells = "".join(f"<tr><td>{k}</td><td>{html.escape(str(v))}</td></tr>" for k, v in rows.items())
    return f"<b>{html.escape(title)}</b><table>{cells}</table>{_products_table(products)}"


class _ExcessMaps:
    """The excess and significance accessors of a result holding gammapy ``FluxMaps``
    (from :class:`~gammapy.estimators.ExcessMapEstimator`) in ``flux_maps``."""

    flux_maps: Any

    @property
    def excess(self) -> Any:
        """The excess counts map (``npred_excess``)."""
        return self.flux_maps["npred_excess"]

    @property
    def significance(self) -> Any:
        """The significance map (``sqrt_ts``, Li & Ma for on/off)."""
        return self.flux_maps["sqrt_ts"]


class _OutlinedMapsPlot:
    """A result whose ``plot`` draws its maps (``_maps()``) side by side on WCSAxes,
    the excluded regions of its ``exclusion_mask`` product outlined."""

    products: dict[str, Path]

    def _maps(self) -> dict[str, Any]:
        raise NotImplementedError

    def plot(self, **kwargs: Any) -> Any:
        """The result's maps on WCSAxes (summed over energy), excluded regions outlined.

        Parameters
        ----------
        **kwargs
            Plot options (``stretch``: ``linear``, ``sqrt``, ...).

        Returns
        -------
        matplotlib.figure.Figure
            The figure (one WCSAxes panel per map).
        """
        figure = _plot_maps(self._maps(), **kwargs)
        return draw_exclusion(figure, self.products.get("exclusion_mask"))


class _CountsExcessMaps(_OutlinedMapsPlot, _ExcessMaps):
    """Excess and significance of a stacked ``dataset``, drawn beside its counts."""

    dataset: Any

    def _maps(self) -> dict[str, Any]:
        """What :meth:`plot` draws: counts, excess and significance."""
        return {
            "counts": self.dataset.counts,
            "excess": self.excess,
            "significance": self.significance,
        }


@dataclass
class MapDatasetResult(_OutlinedMapsPlot, StepResult):
    """The stacked MapDataset and its counts, background and exposure map files.

    Parameters
    ----------
    products : dict of str to Path
        The files written, by product name.
    inputs : list of DL3Input
        The observations used.
    dataset : gammapy.datasets.MapDataset
        The stacked dataset.
    obs_ids : list of str
        The observations stacked.
    """

    dataset: Any = None
    obs_ids: list[str] = field(default_factory=list)

    def _maps(self) -> dict[str, Any]:
        """What :meth:`plot` draws: counts, background and exposure."""
        d = self.dataset
        return {"counts": d.counts, "background": d.background, "exposure": d.exposure}

    def _summary_rows(self) -> dict[str, Any]:
        return {"observations": len(self.obs_ids), "counts": int(self.dataset.counts.data.sum())}

    def _repr_html_(self) -> str:
        d = self.dataset
        rows = {
            **self._summary_rows(),
            "background": f"{float(np.nansum(d.background.data)):.1f}",
            "geometry": f"{d.counts.geom.data_shape} bins",
        }
        return _summary_html("MapDatasetResult", rows, self.products)


@dataclass
class ExcessMapResult(_OutlinedMapsPlot, _ExcessMaps, StepResult):
    """Excess and significance maps (gammapy FluxMaps) and their files.

    Parameters
    ----------
    products : dict of str to Path
        The files written, by product name.
    inputs : list of DL3Input
        The observations used.
    flux_maps : gammapy.estimators.FluxMaps
        The excess (``npred_excess``) and significance (``sqrt_ts``) maps.
    """

    flux_maps: Any = None

    def _maps(self) -> dict[str, Any]:
        """What :meth:`plot` draws: excess and significance."""
        return {"excess": self.excess, "significance": self.significance}

    def _repr_html_(self) -> str:
        rows = {"max significance": f"{float(np.nanmax(self.significance.data)):.2f}"}
        return _summary_html("ExcessMapResult", rows, self.products)


@dataclass
class MapResult(_CountsExcessMaps, MapDatasetResult):
    """A whole map analysis: the dataset maps and the excess/significance maps.

    Parameters
    ----------
    products : dict of str to Path
        The files written, by product name.
    inputs : list of DL3Input
        The observations used.
    dataset : gammapy.datasets.MapDataset
        The stacked dataset.
    obs_ids : list of str
        The observations stacked.
    flux_maps : gammapy.estimators.FluxMaps
        The excess and significance maps.
    """

    flux_maps: Any = None

    def _repr_html_(self) -> str:
        rows = {
            **self._summary_rows(),
            "excess": f"{float(np.nansum(self.excess.data)):.1f}",
            "max significance": f"{float(np.nanmax(self.significance.data)):.2f}",
        }
        return _summary_html("MapResult", rows, self.products)
