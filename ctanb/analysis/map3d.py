"""3D likelihood analysis: stacked MapDataset, sky models, fit, residuals, flux points.

The standard CTA analysis of extended sources, as gammapy's ``analysis_3d``
tutorial does it and only with gammapy's classes: per observation
:class:`~gammapy.makers.MapDatasetMaker` (counts, exposure, background, PSF,
energy dispersion), :class:`~gammapy.makers.SafeMaskMaker` and
:class:`~gammapy.makers.FoVBackgroundMaker` with an exclusion mask
(:mod:`ctanb.analysis.masks`), stacked; then sky models (a gammapy model YAML
file, or sources picked from a catalog as starting points) plus a
:class:`~gammapy.modeling.models.FoVBackgroundModel`, fitted with
:class:`~gammapy.modeling.Fit`; residual maps; flux points of one source from
the 3D model (:class:`~gammapy.estimators.FluxPointsEstimator`); optionally a TS
map with peak finding (:mod:`ctanb.analysis.detection`)::

    from ctanb.analysis.map3d import Map3DConfig, Map3DStep

    result = Map3DStep(Map3DConfig.read("msh1552_3d.yaml")).run(runs, out="3d/")
    result.models["HESS J1514-591"].spatial_model.position

Recorded activities: ``exclusion-mask``, ``map-dataset`` (the mask a used
entity) and ``map3d-fit`` (dataset file + starting models file -> fitted
models, parameters table, residual maps, flux points); ``ts-map`` when asked.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gammapy.utils.types import AngleType
from gammapy.workflow.config import EnergyAxisConfig
from pydantic import ConfigDict, Field, model_validator

from .._errors import AnalysisError, ConfigError
from ..provenance import recorded
from ._base import DL3Input, Step, StepConfig, StepResult
from .detection import TSMapConfig, TSMapStep
from .map_results import _OutlinedMapsPlot, _products_table
from .maps import MaskedDatasetConfig, _reduce_with_exclusion
from .models3d import FitConfig, ModelsConfig, starting_models

__all__ = [
    "FitConfig",
    "Map3DConfig",
    "Map3DFitConfig",
    "Map3DFitStep",
    "Map3DResult",
    "Map3DStep",
    "ModelsConfig",
    "starting_models",
]

STEP_VERSION = "1.0"
_3D_SELECTION = ["counts", "exposure", "background", "psf", "edisp"]


class FluxPointsConfig(StepConfig):
    """Flux points of one source from the 3D model (FluxPointsEstimator)."""

    source: str | None = None
    energy_edges: EnergyAxisConfig = EnergyAxisConfig(min="1 TeV", max="10 TeV", nbins=3)
    selection_optional: list[str] = Field(default_factory=list)


class ResidualConfig(StepConfig):
    """Residual significance map: ExcessMapEstimator with the fitted models as background."""

    model_config = ConfigDict(
        **StepConfig.model_config, arbitrary_types_allowed=True, validate_default=True
    )

    correlation_radius: AngleType = "0.1 deg"


class Map3DFitConfig(StepConfig):
    """The part of a 3D analysis after the reduction: fit, residuals, flux points."""

    fit: FitConfig = Field(
        FitConfig(),
        description="Fit backend and options (gammapy Fit: 'minuit' or 'scipy', optimize_opts)",
    )
    flux_points: FluxPointsConfig | None = Field(
        FluxPointsConfig(),
        description="Flux points of one fitted source (FluxPointsEstimator; default: "
        "the first source, 3 bins from 1 to 10 TeV); None: no flux points",
    )
    residuals: ResidualConfig = Field(
        ResidualConfig(),
        description="Residual significance map with the fitted models as background "
        "(correlation_radius, default 0.1 deg)",
    )


class Map3DConfig(MaskedDatasetConfig, Map3DFitConfig):
    """A whole 3D analysis: reduction (:class:`~ctanb.analysis.MapDatasetConfig`, FoV
    background with ``exclusion``), ``models``, ``fit``, ``residuals``, ``flux_points``
    and an optional ``ts_map``."""

    map_selection: list[str] = Field(
        default_factory=lambda: list(_3D_SELECTION),
        description="Maps MapDatasetMaker computes: a 3D fit needs psf and edisp as well",
    )
    models: ModelsConfig = Field(
        description="The sky models to fit: a gammapy Models YAML file, or catalog "
        "sources (hgps, gamma-cat, 3fhl, 3fgl) as starting points (required)",
    )
    ts_map: TSMapConfig | None = Field(
        None, description="A TS map of the residuals (TSMapEstimator); None: none"
    )

    @model_validator(mode="before")
    @classmethod
    def _fov_background(cls, data: Any) -> Any:
        # Before the reduction's own checks, whose ring-background advice does not apply here.
        background = data.get("background") if isinstance(data, dict) else None
        method = background.get("method") if isinstance(background, dict) else None
        if method not in (None, "fov_background"):
            raise ValueError("a 3D analysis needs background.method: fov_background")
        return data

    @model_validator(mode="after")
    def _check_3d(self) -> Map3DConfig:
        if self.background.method != "fov_background":
            raise ValueError("a 3D analysis needs background.method: fov_background")
        missing = [n for n in ("psf", "edisp") if n not in self.map_selection]
        if missing:
            raise ValueError(f"a 3D analysis needs map_selection to include {', '.join(missing)}")
        return self

    def fit_config(self) -> Map3DFitConfig:
        """The fit part of this configuration.

        Returns
        -------
        Map3DFitConfig
            The settings the fit step is configured with.
        """
        return Map3DFitConfig.model_validate(
            self.model_dump(include=set(Map3DFitConfig.model_fields))
        )


@dataclass
class Map3DResult(_OutlinedMapsPlot, StepResult):
    """A fitted 3D analysis: dataset, models, fit result, residual maps, flux points, TS map.

    Parameters
    ----------
    products : dict of str to Path
        The files written, by product name.
    inputs : list of DL3Input
        The observations used.
    dataset : gammapy.datasets.MapDataset
        The stacked dataset, with the fitted models.
    models : gammapy.modeling.models.Models
        The fitted models.
    fit_result : gammapy.modeling.FitResult
        The fit's result.
    residuals, residual_significance : gammapy.maps.Map
        Residual counts and their significance.
    flux_points : gammapy.estimators.FluxPoints, optional
        Flux points of the source, when configured.
    ts_map : gammapy.estimators.FluxMaps, optional
        The TS map of the residuals, when configured.
    obs_ids : list of str, optional
        The observations stacked.
    """

    dataset: Any = None
    models: Any = None
    fit_result: Any = None
    residuals: Any = None
    residual_significance: Any = None
    flux_points: Any = None
    ts_map: Any = None
    obs_ids: list[str] | None = None

    def _maps(self) -> dict[str, Any]:
        """What :meth:`plot` draws: counts, residual counts, residual significance (and TS)."""
        maps = {
            "counts": self.dataset.counts,
            "residuals (counts - npred)": self.residuals,
            "residual significance": self.residual_significance,
        }
        if self.ts_map is not None:
            maps["sqrt(TS)"] = self.ts_map.sqrt_ts
        return maps

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{html.escape(p.name)}</td><td>{p.value:.5g}</td>"
            f"<td>{p.error:.2g}</td><td>{html.escape(str(p.unit))}</td></tr>"
            for p in self.models.parameters.free_parameters
        )
        return (
            f"<b>Map3DResult</b>: {len(self.obs_ids or [])} observation(s), fit "
            f"{'converged' if self.fit_result.success else 'did not converge'}"
            f"<table><tr><th>parameter</th><th>value</th><th>error</th><th>unit</th></tr>"
            f"{rows}</table>{_products_table(self.products)}"
        )


class Map3DFitStep(Step):
    """Stacked MapDataset file + starting models file -> fitted models, residuals, flux points.

    Parameters
    ----------
    config : Map3DFitConfig or mapping
    """

    config_class = Map3DFitConfig

    @recorded(
        name="map3d-fit",
        version=STEP_VERSION,
        inputs=["dataset_file", "models_file"],
        outputs={
            "fitted_models_file": "fit",
            "parameters_file": "fit",
            "residuals_file": "excess",
            "residual_significance_file": "significance",
            "flux_points_file": "flux",
        },
        data_level="DL5",
    )
    def fit(
        self,
        dataset_file: str,
        models_file: str,
        fitted_models_file: str,
        parameters_file: str,
        residuals_file: str,
        residual_significance_file: str,
        flux_points_file: list[str],
    ) -> dict[str, Any]:
        """Fit the models of *models_file* (plus a FoV background norm) to the dataset.

        Parameters
        ----------
        dataset_file : str
            The stacked ``map_dataset.fits``.
        models_file : str
            The starting models (YAML).
        fitted_models_file, parameters_file : str
            Where the fitted models (YAML) and their parameter table are written.
        residuals_file, residual_significance_file : str
            Where the residual counts and their significance are written.
        flux_points_file : list of str
            Zero or one path (no flux points: empty).

        Returns
        -------
        dict
            ``dataset``, ``models``, ``fit_result``, ``residuals``,
            ``residual_significance`` and ``flux_points``.

        Raises
        ------
        AnalysisError
            The fit fails or does not converge.
        ConfigError
            ``flux_points.source`` is not one of the models.
        """
        from gammapy.datasets import MapDataset
        from gammapy.estimators import ExcessMapEstimator, FluxPointsEstimator
        from gammapy.modeling import Fit
        from gammapy.modeling.models import FoVBackgroundModel, Models
        from gammapy.workflow.steps import make_energy_axis

        c = self.config
        dataset = MapDataset.read(dataset_file, name="stacked")
        models = Models.read(models_file)
        if not any(isinstance(m, FoVBackgroundModel) for m in models):
            models.append(FoVBackgroundModel(dataset_name=dataset.name))
        dataset.models = models
        try:
            fit = Fit(backend=c.fit.backend, optimize_opts=dict(c.fit.optimize_opts))
            result = fit.run([dataset])
        except (ValueError, FloatingPointError, ArithmeticError) as exc:
            # Absurd starting values send the fit off the sky (WCS errors) or to NaN.
            raise AnalysisError(
                f"the 3D fit of {', '.join(m.name for m in models)} failed ({exc}): check the "
                "starting values (models: amplitude, position, size) and the map; the "
                f"dataset is kept in {dataset_file}"
            ) from None
        if not result.success:
            raise AnalysisError(
                f"the 3D fit of {', '.join(m.name for m in models)} did not converge "
                f"({result.message}): start from better values or a simpler model (models), "
                f"or use more observations; the dataset is kept in {dataset_file}"
            )
        dataset.models.write(fitted_models_file, overwrite=True, write_covariance=False)
        table = dataset.models.to_parameters_table()
        for name in table.colnames:  # FITS has no column of Python objects
            if table[name].dtype.kind == "O":
                table[name] = [str(v) for v in table[name]]
        table.write(parameters_file, format="fits", overwrite=True)
        residuals = dataset.residuals(method="diff").sum_over_axes(keepdims=False)
        residuals.write(residuals_file, overwrite=True)
        estimator = ExcessMapEstimator(
            correlation_radius=c.residuals.correlation_radius, selection_optional=[]
        )
        significance = estimator.run(dataset)["sqrt_ts"]
        significance.write(residual_significance_file, overwrite=True)
        points = None
        if c.flux_points is not None and flux_points_file:
            source = c.flux_points.source or next(
                m.name for m in dataset.models if not isinstance(m, FoVBackgroundModel)
            )
            if source not in dataset.models.names:
                raise ConfigError(
                    f"flux_points.source {source!r} is not one of the models "
                    f"({', '.join(dataset.models.names)})"
                )
            points = FluxPointsEstimator(
                energy_edges=make_energy_axis(c.flux_points.energy_edges).edges,
                source=source,
                selection_optional=list(c.flux_points.selection_optional),
                n_jobs=1,
            ).run([dataset])
            points.write(flux_points_file[0], sed_type="dnde", format="gadf-sed", overwrite=True)
        return {
            "dataset": dataset,
            "models": dataset.models,
            "fit_result": result,
            "residuals": residuals,
            "residual_significance": significance,
            "flux_points": points,
        }


class Map3DStep(Step):
    """A whole 3D likelihood analysis of DL3 observations (see the module docstring).

    Parameters
    ----------
    config : Map3DConfig or mapping
    """

    config_class = Map3DConfig

    def run(
        self, inputs: list[DL3Input] | Any, out: str | Path, *, parallel: Any = None
    ) -> Map3DResult:
        """Reduce *inputs*, fit the models and write every product into folder *out*.

        Parameters
        ----------
        inputs : list of DL3Input, archive results, DataStore or event paths
            The observations (anything :func:`~ctanb.analysis.as_inputs` takes).
        out : str or Path
            Output folder (created).
        parallel : ParallelConfig or distributed.Client, optional
            Where to reduce (default: the current :func:`~ctanb.analysis.parallel`
            block, else serially).

        Returns
        -------
        Map3DResult
            The fitted models, residual maps, flux points and every product file.

        Raises
        ------
        AnalysisError
            A model outside the map, no catalog source in it, a mask that excludes
            everything, a fit that does not converge (products already made are kept).
        """
        c = self.config
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        # The models are read and checked against the map before the (long) reduction
        # and the mask, so that a bad models file is reported at once.
        reference = c.dataset_config().reference_dataset()
        models = starting_models(c.models, reference.counts.geom)
        products, reduced = _reduce_with_exclusion(c, inputs, out, parallel=parallel)
        products.update(reduced.products)
        products["models_start"] = out / "models_start.yaml"
        models.write(products["models_start"], overwrite=True, write_covariance=False)
        fit_products = {
            "models": out / "models_fitted.yaml",
            "parameters": out / "fit_parameters.fits",
            "residuals": out / "residuals.fits",
            "residual_significance": out / "residual_significance.fits",
        }
        points_file = [str(out / "flux_points.fits")] if c.flux_points is not None else []
        fitted = Map3DFitStep(c.fit_config()).fit(
            dataset_file=str(reduced.products["dataset"]),
            models_file=str(products["models_start"]),
            fitted_models_file=str(fit_products["models"]),
            parameters_file=str(fit_products["parameters"]),
            residuals_file=str(fit_products["residuals"]),
            residual_significance_file=str(fit_products["residual_significance"]),
            flux_points_file=points_file,
        )
        products.update(fit_products)
        if points_file:
            products["flux_points"] = Path(points_file[0])
        ts = None
        if c.ts_map is not None:
            ts = TSMapStep(c.ts_map).run(reduced, out)
            products.update(ts.products)
        return Map3DResult(
            products=products,
            inputs=reduced.inputs,
            dataset=fitted["dataset"],
            models=fitted["models"],
            fit_result=fitted["fit_result"],
            residuals=fitted["residuals"],
            residual_significance=fitted["residual_significance"],
            flux_points=fitted["flux_points"],
            ts_map=ts,
            obs_ids=reduced.obs_ids,
        )
