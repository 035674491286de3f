"""Configuration and spectral models of :class:`~ctanb.analysis.spectrum.SpectrumStep`.

Re-exported by :mod:`ctanb.analysis.spectrum`. The keys shared with the light curve
(target, on region, energy axes, safe mask, exclusion) are those of
:class:`~ctanb.analysis.spectrum_data.OnOffConfig`; the fit and the flux points are
configured here, and so are the fixed start values of the fitted models.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import Field

from .spectrum_data import OnOffConfig

if TYPE_CHECKING:
    from gammapy.modeling.models import SkyModel

__all__ = ["SpectrumConfig", "spectral_model"]

SpectralModelName = Literal["power-law", "log-parabola", "exp-cutoff-power-law"]
FluxPointsOption = Literal["all", "errn-errp", "ul", "scan", "sensitivity"]


class SpectrumConfig(OnOffConfig):
    """Configuration of :class:`~ctanb.analysis.SpectrumStep` (extraction, fit and flux points).

    The start values of the fit are fixed by the model name (see
    :func:`spectral_model`), so a run is reproducible. ``flux_points_edges_tev``
    defaults to the reconstructed energy axis over the fit range, two bins per flux
    point (the top bin kept). The fit range and the flux-point edges are edges of the
    reconstructed axis (see :func:`~ctanb.analysis.spectrum_data.energy_axes`), so
    they are used exactly as given; they must lie within the analysis energy range.

    ``energy_scale`` (joint fits) gives each telescope of the datasets (``hess``,
    ``magic``: TELESCOP, lower case) a free energy-scale nuisance parameter ``z``
    with a Gaussian prior of that sigma, as in the joint-crab analysis (Nigro et
    al. 2019, A&A 625, A10: 15 % for each Cherenkov telescope), e.g.
    ``energy_scale={"hess": 0.15, "magic": 0.15}``; see
    :mod:`ctanb.analysis.energy_scale` (``z`` is bounded to +-0.5). Empty (default): no
    nuisance parameter.
    """

    #: The name provenance recorded before the class left spectrum.py (redo of older products).
    _recorded_as: ClassVar[tuple[str, ...]] = ("ctanb.analysis.spectrum:SpectrumConfig",)

    source: str = Field("source", min_length=1, description="Name of the fitted source model")
    model: SpectralModelName = Field(
        "power-law",
        description="Spectral model fitted: power law, log parabola or power law with an "
        "exponential cutoff (gammapy's models; start index 2, amplitude 1e-12 cm-2 s-1 TeV-1)",
    )
    reference_tev: float = Field(1.0, gt=0, description="Reference energy of the model, TeV")
    fit_energy_min_tev: float | None = Field(
        None, gt=0, description="Lower bound of the fit range (mask_fit), TeV; None: energy_min_tev"
    )
    fit_energy_max_tev: float | None = Field(
        None, gt=0, description="Upper bound of the fit range, TeV; None: energy_max_tev"
    )
    flux_points_edges_tev: list[float] | None = Field(
        None,
        description="Flux-point energy edges, TeV (edges of the reconstructed axis); None: "
        "two reconstructed bins per point over the fit range",
    )
    flux_points_optional: list[FluxPointsOption] = Field(
        default_factory=lambda: ["ul", "scan"],
        description="Optional quantities of gammapy's FluxPointsEstimator: asymmetric "
        "errors, upper limits, likelihood scans, sensitivity ('all': every one)",
    )
    scan_min: float = Field(0.2, gt=0, description="Lowest norm of the likelihood scans")
    scan_max: float = Field(5.0, gt=0, description="Highest norm of the likelihood scans")
    scan_n_values: int = Field(11, ge=2, description="Number of norm values per likelihood scan")
    dataset_format: Literal["gadf", "ogip"] = Field(
        "gadf",
        description="File format of the per-observation spectra: gammapy's GADF or OGIP "
        "PHA with BKG, ARF and RMF files (for XSPEC/Sherpa)",
    )
    fit_max_calls: int | None = Field(
        None, ge=1, description="Cap on MIGRAD function calls; None: iminuit's default"
    )
    energy_scale: dict[str, Annotated[float, Field(gt=0, le=0.5)]] = Field(
        default_factory=dict,
        description="Joint fits: telescope (TELESCOP, lower case) -> sigma of the Gaussian "
        "prior on its energy scale, as a fraction (0.15: 15 %); empty: no nuisance parameter",
    )

    def required_edges_tev(self) -> list[float]:
        """The fit range and flux-point edges: edges of the reconstructed energy axis.

        Returns
        -------
        list of float
            The energy edges in TeV.
        """
        fit = [e for e in (self.fit_energy_min_tev, self.fit_energy_max_tev) if e]
        return [*fit, *(self.flux_points_edges_tev or [])]

    def fit_range_tev(self) -> tuple[float, float]:
        """The energy range of the fit (TeV): the fit bounds, else the analysis range.

        Returns
        -------
        tuple of float
            Minimum and maximum energy in TeV.
        """
        return (
            self.fit_energy_min_tev or self.energy_min_tev,
            self.fit_energy_max_tev or self.energy_max_tev,
        )


def spectral_model(config: SpectrumConfig) -> SkyModel:
    """The sky model to fit, with ctanb's fixed start values (same as the tests' plain gammapy)."""
    import astropy.units as u
    from gammapy.modeling.models import (
        ExpCutoffPowerLawSpectralModel,
        LogParabolaSpectralModel,
        PowerLawSpectralModel,
        SkyModel,
    )

    amplitude = 1e-12 * u.Unit("cm-2 s-1 TeV-1")
    reference = config.reference_tev * u.TeV
    if config.model == "power-law":
        model = PowerLawSpectralModel(index=2.0, amplitude=amplitude, reference=reference)
    elif config.model == "log-parabola":
        model = LogParabolaSpectralModel(
            alpha=2.0, beta=0.1, amplitude=amplitude, reference=reference
        )
    else:
        model = ExpCutoffPowerLawSpectralModel(
            index=2.0, lambda_=0.1 / u.TeV, amplitude=amplitude, reference=reference
        )
    return SkyModel(spectral_model=model, name=config.source)


def _flux_point_edges(config: SpectrumConfig) -> Any:
    """The configured flux-point edges, else the reconstructed axis over the fit range,
    two bins per point (the last point one bin when the count is odd: the top is kept)."""
    import astropy.units as u

    from .spectrum_data import energy_axes

    if config.flux_points_edges_tev:
        return sorted(config.flux_points_edges_tev) * u.TeV
    lo, hi = config.fit_range_tev()
    edges = energy_axes(config)[0].edges.to_value("TeV")
    inside = edges[(edges >= lo * (1 - 1e-9)) & (edges <= hi * (1 + 1e-9))]
    grouped = list(inside[::2])
    if grouped[-1] != inside[-1]:
        grouped.append(inside[-1])
    return grouped * u.TeV
