"""The result of a spectral analysis (:class:`~ctanb.analysis.SpectrumStep`): datasets,
fitted model, flux points, and how they are drawn and summarised.

Kept apart from the step so that each module stays readable; import it from
:mod:`ctanb.analysis` (or :mod:`ctanb.analysis.spectrum`, which re-exports it).
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._errors import AnalysisError
from ._base import StepResult

if TYPE_CHECKING:  # pragma: no cover
    from gammapy.datasets import Datasets
    from gammapy.estimators import FluxPoints
    from gammapy.modeling import FitResult
    from gammapy.modeling.models import Models, SkyModel

    from .spectrum import SpectrumConfig

__all__ = ["SpectrumResult"]


@dataclass
class SpectrumResult(StepResult):
    """What :class:`SpectrumStep` made: datasets, fitted model, fit result and flux points.

    Parameters
    ----------
    products : dict of str to Path
        The files written, by product name.
    inputs : list of DL3Input
        The observations used.
    config : SpectrumConfig, optional
        The configuration it was made with.
    datasets : gammapy.datasets.Datasets, optional
        The on/off spectrum datasets.
    models : gammapy.modeling.models.Models, optional
        The fitted models.
    fit_result : gammapy.modeling.FitResult, optional
        The fit's result.
    flux_points : gammapy.estimators.FluxPoints, optional
        The flux points.
    flux_points_by_telescope : dict of str to FluxPoints
        Flux points per telescope (joint fits).
    fit_ranges : dict
        Dataset name -> energy range of its fit (the edges really used).
    dataset_files : list of Path
        The dataset files written.
    """

    config: SpectrumConfig | None = None
    datasets: Datasets | None = None
    models: Models | None = None
    fit_result: FitResult | None = None
    flux_points: FluxPoints | None = None
    flux_points_by_telescope: dict[str, FluxPoints] = field(default_factory=dict)
    #: dataset name -> energy range of its fit (Quantity [lo, hi]), the edges really used
    fit_ranges: dict[str, Any] = field(default_factory=dict)
    dataset_files: list[Path] = field(default_factory=list)

    @property
    def model(self) -> SkyModel:
        """The fitted source model.

        Raises
        ------
        AnalysisError
            The result has no fitted model.
        """
        if self.models is None:
            raise AnalysisError("this result has no fitted model")
        source = self.config.source if self.config else self.models[0].name
        if source not in self.models.names:  # per-telescope energy scales: the intrinsic model
            from .energy_scale import intrinsic_model

            return intrinsic_model(self.models, source)
        return self.models[source]

    @property
    def flux_points_intrinsic(self) -> dict[str, FluxPoints]:
        """Each telescope's flux points in the energy scale of :attr:`model`.

        With ``energy_scale`` nuisance parameters the points are estimated in each
        telescope's own scale (their files say so: ``MODELNAM``); here they are moved to
        the intrinsic scale of the joint model, so that they can be drawn with it.
        Without energy scales these are :attr:`flux_points_by_telescope` as they are.

        Returns
        -------
        dict
            Telescope name -> gammapy ``FluxPoints``.
        """
        points = dict(self.flux_points_by_telescope) or (
            {"": self.flux_points} if self.flux_points is not None else {}
        )
        source = self.config.source if self.config else None
        if self.models is None or source is None or source in self.models.names:
            return points
        from .energy_scale import points_in_intrinsic_scale, scale_model_name

        moved = {}
        for telescope, found in points.items():
            name = scale_model_name(source, telescope)
            if name not in self.models.names:
                moved[telescope] = found
                continue
            z = self.models[name].spectral_model.z.value
            moved[telescope] = points_in_intrinsic_scale(found, z)
        return moved

    def plot(self, ax: Any = None, *, sed_type: str = "e2dnde", **kwargs: Any) -> Any:
        """SED plot: flux points and the fitted model with its error butterfly.

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
            Where to draw (default: a new figure).
        sed_type : str
            gammapy SED type of the y axis.
        **kwargs
            Passed to :func:`~ctanb.analysis.plot_sed`.

        Returns
        -------
        matplotlib.axes.Axes
            The axes drawn on (points of joint energy-scale fits in the model's scale).
        """
        from .sed import plot_sed

        if len(self.flux_points_by_telescope) < 2:
            points = next(iter(self.flux_points_intrinsic.values()), self.flux_points)
            return plot_sed(points, self.model, ax=ax, sed_type=sed_type, **kwargs)
        for index, (telescope, points) in enumerate(self.flux_points_intrinsic.items()):
            ax = plot_sed(
                points,
                self.model if index == 0 else None,
                ax=ax,
                sed_type=sed_type,
                label=telescope,
                **kwargs,
            )
        return ax

    def _repr_html_(self) -> str:
        from .sed import fit_summary_html

        head = (
            f"<b>SpectrumResult</b>: {len(self.dataset_files)} dataset(s) from "
            f"{len(self.inputs)} observation(s)"
        )
        body = fit_summary_html(self.models, self.fit_result, self.flux_points)
        rows = "".join(
            f"<tr><td>{html.escape(k)}</td><td><code>{html.escape(str(v))}</code></td></tr>"
            for k, v in self.products.items()
        )
        return f"{head}{body}<table><tr><th>product</th><th>file</th></tr>{rows}</table>"
