"""Per-instrument energy-scale nuisance parameters of a joint fit (joint-crab style).

Nigro et al. 2019 (A&A 625, A10, Sect. 5) fit one Crab spectrum to Fermi-LAT,
MAGIC, VERITAS, FACT and H.E.S.S. data, each instrument seeing the spectrum
through its own energy scale: instrument *i* measures

    phi_i(E) = phi(E / (1 + z_i)) / (1 + z_i)

with ``z_i`` free and a Gaussian likelihood term ``(z_i / delta_i)**2``, where
``delta_i`` is the instrument's systematic energy-scale uncertainty (they used
15 % for every IACT and 5 % for Fermi-LAT).

In ctanb this is ``SpectrumConfig(energy_scale={"hess": 0.15, "magic": 0.15})``.
gammapy 2.1 has the likelihood part built in: each ``z_i`` carries a
:class:`gammapy.modeling.models.GaussianPrior` (mu 0, sigma ``delta_i``), which
gammapy's ``Datasets.stat_sum`` adds to the fit statistic (``-2 ln prior`` =
``(z/delta)**2`` + a constant). gammapy 2.1 has no model of an energy scale
(the ``IRFModels`` / ``ERecoIRFModel`` energy-bias models of some development
branches were never released), so the one piece ctanb adds is
:class:`EnergyScaleSpectralModel`, a wrapper registered with gammapy's spectral
model registry (models YAML files round-trip once this module is imported:
``import ctanb.analysis.energy_scale`` before gammapy's ``Models.read`` of a joint
fit's models file). The intrinsic model's parameters are shared (linked, gammapy's
way) between the instruments' sky models.

The fit statistic then includes the priors' constant, ``2 ln(delta_i sqrt(2 pi))``
per instrument: compare statistics (likelihood-ratio tests) only between fits with
the same priors, or subtract it.

Flux points are estimated per instrument against its own scaled model (the files
say which: ``MODELNAM``); :attr:`ctanb.analysis.SpectrumResult.flux_points_intrinsic`
moves them into the scale of the joint model for plotting with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from gammapy.modeling import Parameter, Parameters
from gammapy.modeling.models import (
    SPECTRAL_MODEL_REGISTRY,
    GaussianPrior,
    Models,
    SkyModel,
    SpectralModel,
)

from .._errors import AnalysisError

__all__ = [
    "EnergyScaleSpectralModel",
    "energy_scale_models",
    "intrinsic_model",
    "points_in_intrinsic_scale",
    "scale_model_name",
]


#: Bound of every energy-scale parameter (|z| <= 0.5), so also the largest prior sigma.
Z_LIMIT = 0.5


class EnergyScaleSpectralModel(SpectralModel):
    """A spectral model seen through an instrument's energy scale: ``model(E/(1+z))/(1+z)``.

    Parameters
    ----------
    model : SpectralModel
        The intrinsic spectrum (its parameters are shared, not copied).
    z : float
        Relative energy-scale offset of the instrument (0: none).
    """

    tag: ClassVar[list[str]] = ["EnergyScaleSpectralModel", "energy-scale"]
    z = Parameter("z", 0.0, unit="")

    def __init__(self, model: SpectralModel, z: Any = z.quantity) -> None:
        self.model = model
        super().__init__(z=z)

    @property
    def _models(self) -> list[SpectralModel]:
        # gammapy walks _models to re-link shared parameters when reading a models file
        return [self.model]

    @property
    def parameters(self) -> Parameters:
        """The intrinsic model's parameters, then ``z``."""
        return self.model.parameters + Parameters([self.z])

    @property
    def parameters_unique_names(self) -> list[str]:
        """Names of :attr:`parameters`, the intrinsic model's prefixed with ``model.``.

        Returns
        -------
        list of str
            One name per parameter, in the order of :attr:`parameters`.
        """
        return [f"model.{name}" for name in self.model.parameters_unique_names] + ["z"]

    def __call__(self, energy: Any) -> Any:
        scale = 1 + self.z.value
        return self.model(energy / scale) / scale

    def evaluate(self, energy: Any, *args: Any) -> Any:
        """``model(E / (1 + z)) / (1 + z)`` for parameter values given in order.

        Parameters
        ----------
        energy : Quantity
            Energies.
        *args
            The intrinsic model's parameter values, then ``z``.

        Returns
        -------
        Quantity
            Differential flux at *energy*.
        """
        *inner, z = args
        scale = 1 + z
        return self.model.evaluate(energy / scale, *inner) / scale

    def to_dict(self, full_output: bool = False) -> dict[str, Any]:
        """The model as gammapy's model YAML writes it (``z`` and the intrinsic model).

        Parameters
        ----------
        full_output : bool
            Write every parameter attribute (gammapy's option).

        Returns
        -------
        dict
            ``{"spectral": {"type", "parameters", "model"}}``.
        """
        # the base class would pair the intrinsic model's parameters with z's defaults
        return {
            self._type: {
                "type": self.tag[0],
                "parameters": Parameters([self.z]).to_dict(),
                "model": self.model.to_dict(full_output)["spectral"],
            }
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], **kwargs: Any) -> EnergyScaleSpectralModel:
        """The model written by :meth:`to_dict` (the intrinsic model by its gammapy tag).

        Parameters
        ----------
        data : mapping
            What :meth:`to_dict` wrote.
        **kwargs
            Ignored (gammapy's signature).

        Returns
        -------
        EnergyScaleSpectralModel
            With ``z``'s value, bounds, prior and error.
        """
        data = data["spectral"]
        inner_cls = SPECTRAL_MODEL_REGISTRY.get_cls(data["model"]["type"])
        inner = inner_cls.from_dict({"spectral": data["model"]})
        from gammapy.modeling.models.core import _build_parameters_from_dict

        params = _build_parameters_from_dict(data.get("parameters", []), cls.default_parameters)
        model = cls(inner, z=params["z"])  # with its bounds, prior and error
        return model


if EnergyScaleSpectralModel not in SPECTRAL_MODEL_REGISTRY:
    SPECTRAL_MODEL_REGISTRY.append(EnergyScaleSpectralModel)


def scale_model_name(source: str, telescope: str) -> str:
    """Name of the sky model of *source* as *telescope* sees it."""
    return f"{source}_{telescope}"


def energy_scale_models(
    intrinsic: SpectralModel,
    source: str,
    groups: Mapping[str, list[Any]],
    sigmas: Mapping[str, float],
) -> Models:
    """One sky model per telescope: *intrinsic* through a free energy scale with a prior.

    Parameters
    ----------
    intrinsic : SpectralModel
        The spectrum fitted jointly (shared by every telescope's model).
    source : str
        Source name; the models are named ``<source>_<telescope>``.
    groups : mapping
        Telescope name -> its datasets (see ``spectrum._telescope_groups``).
    sigmas : mapping
        Telescope name -> sigma of the Gaussian prior on its energy scale ``z``
        (a fraction: 0.15 is 15 %).

    Raises
    ------
    AnalysisError
        A telescope of the datasets has no prior, or a prior names no telescope.
    """
    missing = [name for name in groups if name not in sigmas]
    unused = [name for name in sigmas if name not in groups]
    if missing or unused:
        problems = []
        if missing:
            problems.append(f"no energy-scale prior for {', '.join(missing)}")
        if unused:
            problems.append(f"no dataset of {', '.join(unused)}")
        raise AnalysisError(
            f"energy_scale: {'; '.join(problems)}. The datasets come from "
            f"{', '.join(groups)}: give one sigma per telescope, e.g. energy_scale: "
            "{" + ", ".join(f"{name}: 0.15" for name in groups) + "}"
        )
    models = []
    for telescope, members in groups.items():
        scaled = EnergyScaleSpectralModel(intrinsic)
        scaled.z.prior = GaussianPrior(mu=0.0, sigma=float(sigmas[telescope]))
        # unbounded, MIGRAD can walk to z = -1 (every energy scaled to infinity) from the
        # fixed start values; a scale off by half is far outside any stated systematic
        scaled.z.min, scaled.z.max = -Z_LIMIT, Z_LIMIT
        models.append(
            SkyModel(
                spectral_model=scaled,
                name=scale_model_name(source, telescope),
                datasets_names=[dataset.name for dataset in members],
            )
        )
    return Models(models)


def intrinsic_model(models: Models, source: str) -> SkyModel:
    """The jointly fitted intrinsic spectrum as a sky model named *source*, with the
    covariance of its parameters from the joint fit (for butterflies)."""
    scaled = [m for m in models if isinstance(m.spectral_model, EnergyScaleSpectralModel)]
    if not scaled:
        raise AnalysisError("these models have no energy-scale nuisance parameter")
    spectral = scaled[0].spectral_model.model
    try:
        covariance = models.covariance.get_subcovariance(spectral.parameters)
    except ValueError:  # parameters read back from YAML: matched by position below
        covariance = None
    model = SkyModel(spectral_model=spectral, name=source)
    if covariance is not None:
        model.spectral_model.covariance = covariance.data
    return model


def points_in_intrinsic_scale(points: Any, z: float) -> Any:
    """Flux points of one telescope moved to the intrinsic energy scale of a joint fit.

    The points are estimated against the telescope's model ``phi(E/(1+z))/(1+z)``; the
    intrinsic spectrum ``phi`` then passes through ``(E/(1+z), (1+z) dN/dE)``. Plotted
    with the joint (intrinsic) model, points left in their own scale sit ``z`` away from
    it (tens of per cent for a 15 % prior), which reads as a bad fit.

    Parameters
    ----------
    points : gammapy.estimators.FluxPoints
        One telescope's flux points (its energy scale).
    z : float
        That telescope's fitted energy scale.

    Returns
    -------
    gammapy.estimators.FluxPoints
        The same points, as ``dnde``, in the intrinsic scale (no likelihood profiles).
    """
    from gammapy.estimators import FluxPoints

    table = points.to_table(sed_type="dnde", format="gadf-sed")
    scale = 1.0 + float(z)
    for name in ("e_ref", "e_min", "e_max"):
        if name in table.colnames:
            table[name] = table[name] / scale
    for name in ("dnde", "dnde_err", "dnde_errp", "dnde_errn", "dnde_ul"):
        if name in table.colnames:
            table[name] = table[name] * scale
    table.meta["ESCALEZ"] = float(z)
    return FluxPoints.from_table(table, sed_type="dnde", format="gadf-sed")
