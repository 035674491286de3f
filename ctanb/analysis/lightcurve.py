"""Light curves per observation run or per night, with provenance.

The step reduces each run to an on/off spectrum dataset (as
:class:`~ctanb.analysis.spectrum.SpectrumStep` does), fixes the spectral shape
(a power law of the configured index) and runs gammapy's
:class:`~gammapy.estimators.LightCurveEstimator` on time intervals of one run
or one night (local noon to noon at the observatory)::

    from ctanb.analysis import LightCurveConfig, LightCurveStep
    config = LightCurveConfig(ra_deg=329.717, dec_deg=-30.226, spectral_index=3.4,
                              energy_edges_tev=[0.7, 10], time_bins="night")
    result = LightCurveStep(config).run(inputs, out="pks2155/")
    result.plot(); result.table

The light curve is written as FITS in gammapy's ``lightcurve`` format and
carries its provenance (the DL3 runs it used).
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator

from .._errors import AnalysisError
from ..provenance import current_activity, recorded
from ._base import Step, StepResult
from .spectrum_data import (
    OnOffConfig,
    describe_dl3,
    honoured_edges,
    make_exclusion,
    read_exclusion,
    read_observations,
    reduce_on_off,
    remember_obscore,
)

if TYPE_CHECKING:
    from gammapy.estimators import FluxPoints

__all__ = ["LightCurveConfig", "LightCurveResult", "LightCurveStep", "night_intervals"]

_VERSION = "1.0"


class LightCurveConfig(OnOffConfig):
    """Configuration of :class:`LightCurveStep`.

    Each time bin is one on/off extraction (the keys of
    :class:`~ctanb.analysis.spectrum_data.OnOffConfig`) fitted with a power law of
    fixed index: only the norm is free, so the flux of a bin with few counts is an
    upper limit rather than a failed fit.
    """

    source: str = Field("source", min_length=1, description="Name of the source model")
    spectral_index: float = Field(
        2.0, description="Fixed index of the power-law flux model (the spectrum's fitted index)"
    )
    reference_tev: float = Field(1.0, gt=0, description="Reference energy of the model, TeV")
    energy_edges_tev: list[float] = Field(
        default_factory=lambda: [1.0, 10.0],
        description="Energy bands of the light curve, TeV (increasing edges of the "
        "reconstructed axis; [1, 10]: one flux above 1 TeV up to 10 TeV per time bin)",
    )
    time_bins: Literal["run", "night"] = Field(
        "run",
        description="One point per observation run, or per night (local noon to noon "
        "at the observatory, see night_intervals)",
    )
    selection_optional: list[Literal["all", "errn-errp", "ul", "scan"]] = Field(
        default_factory=lambda: ["ul"],
        description="Optional quantities of gammapy's LightCurveEstimator: asymmetric "
        "errors, upper limits, likelihood scans ('all': every one)",
    )

    @field_validator("energy_edges_tev")
    @classmethod
    def _increasing(cls, value: list[float]) -> list[float]:
        if len(value) < 2 or any(b <= a for a, b in pairwise(value)):
            raise ValueError("give at least two increasing energy edges")
        return value

    def required_edges_tev(self) -> list[float]:
        """The light-curve energy edges: edges of the reconstructed energy axis.

        Returns
        -------
        list of float
            The energy edges in TeV.
        """
        return list(self.energy_edges_tev)


def night_intervals(observations: Any) -> list[Any]:
    """``[start, stop]`` Time pairs of the nights of *observations* (local noon to noon).

    The night of a run is the local solar day, shifted by half a day, in which it
    starts (longitude of the observatory from the run's metadata).
    """
    import numpy as np
    from astropy.time import Time

    nights: dict[int, list[Any]] = {}
    for obs in observations:
        location = obs.observatory_earth_location
        longitude = location.lon.deg if location is not None else 0.0
        start, stop = obs.gti.time_start[0], obs.gti.time_stop[-1]
        night = int(np.floor(start.mjd + longitude / 360.0 - 0.5))
        nights.setdefault(night, []).extend([start, stop])
    return [Time([min(t).utc, max(t).utc]) for _night, t in sorted(nights.items())]


def run_intervals(observations: Any) -> list[Any]:
    """``[start, stop]`` Time pairs, one per observation run."""
    from astropy.time import Time

    return [Time([obs.gti.time_start[0].utc, obs.gti.time_stop[-1].utc]) for obs in observations]


@dataclass
class LightCurveResult(StepResult):
    """What :class:`LightCurveStep` made: the light curve (gammapy FluxPoints with a time axis).

    Parameters
    ----------
    products : dict of str to Path
        The files written, by product name.
    inputs : list of DL3Input
        The observations used.
    config : LightCurveConfig, optional
        The configuration it was made with.
    lightcurve : gammapy.estimators.FluxPoints, optional
        The light curve.
    """

    config: LightCurveConfig | None = None
    lightcurve: FluxPoints | None = None

    @property
    def table(self) -> Any:
        """The light curve as a table (time bins, flux, errors, upper limits, TS).

        Raises
        ------
        AnalysisError
            The result has no light curve.
        """
        if self.lightcurve is None:
            raise AnalysisError("this result has no light curve")
        return self.lightcurve.to_table(sed_type="flux", format="lightcurve")

    def plot(self, ax: Any = None, **kwargs: Any) -> Any:
        """Plot the integral flux against time (gammapy's light-curve plot).

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
            Where to draw (default: a new figure).
        **kwargs
            Passed on to gammapy's ``FluxPoints.plot``.

        Returns
        -------
        matplotlib.axes.Axes
            The axes drawn on.

        Raises
        ------
        AnalysisError
            The result has no light curve.
        """
        import matplotlib.pyplot as plt

        if self.lightcurve is None:
            raise AnalysisError("this result has no light curve")
        ax = ax if ax is not None else plt.figure(figsize=(8, 4)).gca()
        kwargs.setdefault("marker", "o")
        return self.lightcurve.plot(ax=ax, sed_type="flux", axis_name="time", **kwargs)

    def _repr_html_(self) -> str:
        if self.lightcurve is None:
            return super()._repr_html_()
        table = self.table
        rows = "".join(
            f"<tr><td>{row['time_min']:.4f}</td><td>{row['time_max']:.4f}</td>"
            f"<td>{float(row['flux'][0]):.3e}</td><td>{float(row['flux_err'][0]):.2e}</td></tr>"
            for row in table
        )
        return (
            f"<b>LightCurveResult</b>: {len(table)} {html.escape(self.config.time_bins)} bin(s) "
            f"from {len(self.inputs)} observation(s)<table><tr><th>MJD start</th>"
            f"<th>MJD stop</th><th>flux (cm-2 s-1)</th><th>error</th></tr>{rows}</table>"
        )


class LightCurveStep(Step):
    """Light curve per run or per night from DL3 observations (gammapy style).

    Parameters
    ----------
    config : LightCurveConfig or mapping
    """

    config_class = LightCurveConfig
    config_source = "light-curve configuration"

    def run(self, inputs: Any, out: str | Path) -> LightCurveResult:
        """Reduce each run and estimate the light curve into folder *out*.

        Parameters
        ----------
        inputs : list of DL3Input, archive results, DataStore or event paths
            The observations (anything :func:`~ctanb.analysis.as_inputs` takes).
        out : str or Path
            Output folder (created).

        Returns
        -------
        LightCurveResult
            The light curve (flux points per time bin) and its files.

        Raises
        ------
        AnalysisError
            No observation, missing IRFs or an on region outside the field of view.
        """
        from .spectrum import _as_inputs

        observations = _as_inputs(inputs)
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        remember_obscore(observations)
        events = [str(item.events) for item in observations]
        irfs = (
            []
            if all(i.irf is None for i in observations)
            else [str(i.irf or i.events) for i in observations]
        )
        path = out / f"{self.config.source}_lightcurve_{self.config.time_bins}.fits"
        masks = make_exclusion(self.config, out)  # recorded; kept if the light curve fails
        lightcurve = self.make_lightcurve(events, irfs, str(path), exclusion_files=masks)
        from .sed import covariance_file, reference_model_file

        products = {"lightcurve": path, "reference_model": reference_model_file(path)}
        if covariance_file(products["reference_model"]).is_file():
            products["covariance"] = covariance_file(products["reference_model"])
        if masks:
            products["exclusion_mask"] = Path(masks[0])
        return LightCurveResult(
            products=products,
            inputs=observations,
            config=self.config,
            lightcurve=lightcurve,
        )

    @recorded(
        name="light-curve",
        version=_VERSION,
        inputs={"event_files": describe_dl3, "irf_files": None, "exclusion_files": None},
        outputs={"lightcurve_file": "lightcurve"},
        data_level="DL5",
    )
    def make_lightcurve(
        self,
        event_files: list[str],
        irf_files: list[str],
        lightcurve_file: str,
        exclusion_files: list[str] | None = None,
    ) -> FluxPoints:
        """Light curve of DL3 files in the configured time bins, written as FITS (DL5); off
        regions avoid the excluded pixels of the mask in ``exclusion_files`` (0 or 1).

        Parameters
        ----------
        event_files : list of str
            The DL3 event files, one per observation.
        irf_files : list of str
            Their IRF files (empty when the IRFs are in the event files).
        lightcurve_file : str
            Where the light curve is written.
        exclusion_files : list of str, optional
            Zero or one exclusion mask file.

        Returns
        -------
        gammapy.estimators.FluxPoints
            The light curve.

        Raises
        ------
        AnalysisError
            No time bin has data.
        """
        import astropy.units as u
        from gammapy.estimators import LightCurveEstimator
        from gammapy.modeling.models import PowerLawSpectralModel, SkyModel

        from .sed import covariance_file, reference_model_file, write_flux_points

        c = self.config
        observations = read_observations(event_files, irf_files)
        datasets = reduce_on_off(c, observations, read_exclusion(exclusion_files or []))
        datasets.models = [
            SkyModel(
                spectral_model=PowerLawSpectralModel(
                    index=c.spectral_index,
                    amplitude=1e-12 * u.Unit("cm-2 s-1 TeV-1"),
                    reference=c.reference_tev * u.TeV,
                ),
                name=c.source,
            )
        ]
        intervals = (
            night_intervals(observations)
            if c.time_bins == "night"
            else (run_intervals(observations))
        )
        axis = datasets[0].counts.geom.axes["energy"]
        estimator = LightCurveEstimator(
            energy_edges=honoured_edges(axis, c.energy_edges_tev, "light-curve energy edges"),
            source=c.source,
            time_intervals=intervals,
            selection_optional=list(c.selection_optional),
        )
        lightcurve = estimator.run(datasets)
        if lightcurve.geom.axes["time"].nbin == 0:
            raise AnalysisError("the light curve has no time bin with data")
        write_flux_points(lightcurve, lightcurve_file, sed_type="flux", format="lightcurve")
        act = current_activity()
        if act is not None:  # the reference model (the fixed spectral shape) and its covariance
            model = reference_model_file(lightcurve_file)
            for path, role in ((model, "reference_model"), (covariance_file(model), "covariance")):
                if path.is_file():
                    act.generated(path, role=role, data_level="DL5", product_type="lightcurve")
        return lightcurve
