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


def _summary_html(title: str, rows: dict[str, Any], products: dict[str, Path]) -> str:
    cells = "".join(f"<tr><td>{k}</td><td>{html.escape(str(v))}</td></tr>" for k, v in rows.items())
    files = "".join(
        f"<tr><td>{k}</td><td><code>{html.escape(str(v))}</code></td></tr>"
        for k, v in products.items()
    )
    return (
        f"<b>{html.escape(title)}</b><table>{cells}</table>"
        f"<table><tr><th>product</th><th>file</th></tr>{files}</table>"
    )


@dataclass
class MapDatasetResult(StepResult):
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

    def plot(self, **kwargs: Any) -> Any:
        """Counts, background and exposure maps on WCSAxes.

        Parameters
        ----------
        **kwargs
            Plot options (``stretch``: ``linear``, ``sqrt``, ...).

        Returns
        -------
        matplotlib.figure.Figure
            The figure (one WCSAxes panel per map).
        """
        d = self.dataset
        return _plot_maps({"counts": d.counts, "background": d.background, "exposure": d.exposure})

    def _repr_html_(self) -> str:
        d = self.dataset
        rows = {
            "observations": len(self.obs_ids),
            "counts": int(d.counts.data.sum()),
            "background": f"{float(np.nansum(d.background.data)):.1f}",
            "geometry": f"{d.counts.geom.data_shape} bins",
        }
        return _summary_html("MapDatasetResult", rows, self.products)


@dataclass
class ExcessMapResult(StepResult):
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

    @property
    def excess(self) -> Any:
        """The excess counts map (``npred_excess``)."""
        return self.flux_maps["npred_excess"]

    @property
    def significance(self) -> Any:
        """The significance map (``sqrt_ts``, Li & Ma for on/off)."""
        return self.flux_maps["sqrt_ts"]

    def plot(self, **kwargs: Any) -> Any:
        """Excess and significance maps on WCSAxes.

        Parameters
        ----------
        **kwargs
            Plot options (``stretch``: ``linear``, ``sqrt``, ...).

        Returns
        -------
        matplotlib.figure.Figure
            The figure (one WCSAxes panel per map).
        """
        return _plot_maps({"excess": self.excess, "significance": self.significance})

    def _repr_html_(self) -> str:
        rows = {"max significance": f"{float(np.nanmax(self.significance.data)):.2f}"}
        return _summary_html("ExcessMapResult", rows, self.products)


@dataclass
class MapResult(MapDatasetResult):
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

    excess = ExcessMapResult.excess
    significance = ExcessMapResult.significance

    def plot(self, **kwargs: Any) -> Any:
        """Counts, excess and significance maps on WCSAxes (excluded regions outlined).

        Parameters
        ----------
        **kwargs
            Plot options (``stretch``: ``linear``, ``sqrt``, ...).

        Returns
        -------
        matplotlib.figure.Figure
            The figure (one WCSAxes panel per map).
        """
        maps = {"counts": self.dataset.counts, "excess": self.excess}
        figure = _plot_maps({**maps, "significance": self.significance})
        return draw_exclusion(figure, self.products.get("exclusion_mask"))

    def _repr_html_(self) -> str:
        d = self.dataset
        rows = {
            "observations": len(self.obs_ids),
            "counts": int(d.counts.data.sum()),
            "excess": f"{float(np.nansum(self.excess.data)):.1f}",
            "max significance": f"{float(np.nanmax(self.significance.data)):.2f}",
        }
        return _summary_html("MapResult", rows, self.products)
