"""Joint H.E.S.S. + MAGIC Crab fit with per-instrument energy-scale nuisance parameters,
as in the joint-crab analysis, against its published numbers and against plain gammapy.

Published values: Nigro et al. 2019, A&A 625, A10 ("Towards open and reproducible
multi-instrument analysis in gamma-ray astronomy"), Sect. 5 and Table 3, from the
paper's own results files in github.com/open-gamma-ray-astro/joint-crab:
``results/fit/fit_joint_systematics.yaml`` (joint fit of Fermi-LAT, MAGIC, VERITAS,
FACT and H.E.S.S. with energy-scale parameters z_i, Gaussian likelihood terms
(z_i / delta_i)**2, delta = 15 % per Cherenkov telescope and 5 % for Fermi-LAT, see
``joint_crab/fit_systematics.py``) and ``results/fit/fit_hess.yaml``,
``results/fit/fit_magic.yaml`` (single-instrument fits). Their log-parabola uses
log10 (``joint_crab/fit_models.py``: E^(-alpha - beta log10(E/E0))); gammapy's uses
ln, so their beta is divided by ln(10) here. Their analysis ranges (``joint_crab/
conf.py``): MAGIC 0.08-30 TeV, H.E.S.S. 0.66-30 TeV with an on radius of 0.11 deg
and containment correction; the same H.E.S.S. DL3 DR1 runs and the same two MAGIC
runs (5029747, 5029748; here in their RAD_MAX release).
"""

from __future__ import annotations

import math
import warnings
from typing import ClassVar

import numpy as np
import pytest

from ctanb import AnalysisError, ConfigError
from ctanb._settings import release_dir
from ctanb.analysis.inputs import inputs_from_datastore
from ctanb.analysis.sed import read_flux_points
from ctanb.analysis.spectrum import SpectrumConfig, SpectrumStep, joint_fit
from ctanb.provenance import read_provenance

LN10 = math.log(10)
#: fit_joint_systematics.yaml: value, error (amplitude in cm-2 s-1 TeV-1 at 1 TeV)
PUBLISHED_JOINT_SYST = {
    "amplitude": (3.880090613192832e-11, 3.536017240454298e-12),
    "alpha": (2.5107708282318706, 0.03763238331466029),
    "beta": (0.2423329850475452 / LN10, 0.02759517356915982 / LN10),
}
#: fit_hess.yaml and fit_magic.yaml (no energy scale)
PUBLISHED_SINGLE = {
    "hess": {
        "amplitude": (4.4744069583170896e-11, 2.869868477187477e-12),
        "alpha": (2.392902850866078, 0.18276744794413285),
        "beta": (0.37193003754897236 / LN10, 0.22400954440943124 / LN10),
    },
    "magic": {
        "amplitude": (4.1454515815544054e-11, 2.97146379277078e-12),
        "alpha": (2.600441405037648, 0.09503364140834047),
        "beta": (0.4424995170195457 / LN10, 0.11161059017634636 / LN10),
    },
}
SIGMAS = {"hess": 0.15, "magic": 0.15}  # joint-crab's delta for every Cherenkov telescope
CRAB = {"ra_deg": 83.633, "dec_deg": 22.0145, "source": "crab", "model": "log-parabola"}
COMMON = {"energy_max_tev": 30, "flux_points_edges_tev": [1, 10], "flux_points_optional": []}
HESS = SpectrumConfig(
    **CRAB,
    **COMMON,
    energy_min_tev=0.66,
    energy_true_min_tev=0.2,
    energy_true_max_tev=100,
    containment_correction=True,
)
MAGIC = SpectrumConfig(
    **CRAB,
    **COMMON,
    on_radius_deg=None,
    energy_min_tev=0.08,
    energy_true_min_tev=0.04,
    energy_true_max_tev=100,
)


@pytest.fixture(scope="module")
def single(prov_store_url, tmp_path_factory):
    runs = (23523, 23526, 23559, 23592)
    hess = SpectrumStep(HESS).run(
        inputs_from_datastore(release_dir("hess-dl3-dr1"), runs),
        out=tmp_path_factory.mktemp("hess"),
    )
    magic = SpectrumStep(MAGIC).run(
        inputs_from_datastore(release_dir("magic") / "rad_max" / "data"),
        out=tmp_path_factory.mktemp("magic"),
    )
    return {"hess": hess, "magic": magic}


@pytest.fixture(scope="module")
def joint(single, tmp_path_factory):
    config = MAGIC.model_copy(update={"energy_scale": SIGMAS})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MAGIC's 10-TeV edge etc. are tested elsewhere
        return joint_fit(
            [single["hess"], single["magic"]], tmp_path_factory.mktemp("joint"), config=config
        )


def _within(name, ours, published, n_sigma=1.0):
    value, error = ours
    pub, pub_error = published
    combined = math.hypot(error, pub_error)
    assert abs(value - pub) < n_sigma * combined, (
        f"{name}: {value:.4g} +- {error:.2g}, published {pub:.4g} +- {pub_error:.2g}"
    )


def test_single_instrument_fits_agree_with_joint_crab(single):
    for telescope, result in single.items():
        parameters = result.model.spectral_model
        for name, published in PUBLISHED_SINGLE[telescope].items():
            par = getattr(parameters, name)
            _within(f"{telescope} {name}", (par.value, par.error), published)


def test_joint_fit_with_energy_scales_agrees_with_joint_crab(joint):
    assert joint.fit_result.success
    # one sky model per instrument, sharing the intrinsic log-parabola, each with its z
    assert set(joint.models.names) == {"crab_hess", "crab_magic"}
    intrinsic = joint.model.spectral_model
    for name, published in PUBLISHED_JOINT_SYST.items():
        par = getattr(intrinsic, name)
        _within(f"joint {name}", (par.value, par.error), published)
    for model in joint.models:
        z = model.spectral_model.z
        assert z.prior.sigma.value == pytest.approx(0.15) and z.prior.mu.value == 0
        # the data constrain each scale a little beyond the 15 % prior, not to nothing
        assert 0.05 < z.error < 0.15 and abs(z.value) < 0.15
    # the nuisance parameters widen the flux error: a 15 % energy scale on an index ~2.5
    # spectrum moves the 1-TeV flux by ~20 %; without them the error is ~4 %
    amplitude = intrinsic.amplitude
    assert amplitude.error / amplitude.value > 0.1
    # the butterfly comes from the covariance of the intrinsic parameters
    assert joint.model.spectral_model.covariance.data[2, 2] == pytest.approx(
        intrinsic.alpha.error**2
    )


def test_energy_scales_are_in_the_models_file_and_the_provenance(joint):
    from gammapy.modeling.models import Models

    models = Models.read(joint.products["models"])
    assert models["crab_hess"].spectral_model.model.alpha is (
        models["crab_magic"].spectral_model.model.alpha
    ), "the intrinsic parameters stay linked in the file"
    for name in ("crab_hess", "crab_magic"):
        z = models[name].spectral_model.z
        assert z.value == pytest.approx(joint.models[name].spectral_model.z.value, rel=1e-12)
        assert z.prior.sigma.value == 0.15
    # each telescope's flux points use that telescope's model (its own energy scale)
    magic_points = read_flux_points(joint.products["flux_points_magic"])
    assert magic_points.reference_model.name == "crab_magic"
    graph = read_provenance(joint.products["flux_points"])
    fit = [a for a in graph.activities.values() if a.name == "spectrum-fit"]
    assert fit and fit[0].config["__model__"][1]["energy_scale"] == SIGMAS
    ax = joint.plot()
    assert ax.collections, "the intrinsic model's butterfly is drawn"


def test_energy_scale_fit_equals_plain_gammapy(joint):
    """The same fit written with gammapy alone: the datasets read from the DL4 files, the
    joint-crab energy-scale model written here from their Log10ParabolaEnergyScale, gammapy's
    GaussianPrior and Fit."""
    import astropy.units as u
    from gammapy.datasets import Datasets, SpectrumDatasetOnOff
    from gammapy.modeling import Fit, Parameter
    from gammapy.modeling.models import GaussianPrior, SkyModel, SpectralModel

    class ScaledLogParabola(SpectralModel):
        tag: ClassVar[list[str]] = ["ScaledLogParabolaTest"]
        amplitude = Parameter("amplitude", "1e-12 cm-2 s-1 TeV-1")
        reference = Parameter("reference", "1 TeV", frozen=True)
        alpha = Parameter("alpha", 2.0)
        beta = Parameter("beta", 0.1)
        z = Parameter("z", 0.0)

        @staticmethod
        def evaluate(energy, amplitude, reference, alpha, beta, z):
            scale = 1 + z
            xx = energy / scale / reference
            return amplitude * np.power(xx, -alpha - beta * np.log(xx)) / scale

    datasets = Datasets()
    for path in joint.dataset_files:
        name = path.stem.removeprefix("spectrum_obs")
        datasets.append(SpectrumDatasetOnOff.read(path, name=name))
    hess_model = ScaledLogParabola()
    magic_model = ScaledLogParabola()
    for name in ("amplitude", "reference", "alpha", "beta"):  # gammapy's parameter linking
        setattr(magic_model, name, getattr(hess_model, name))
    models = []
    for name, spectral, members in (
        ("hess", hess_model, ["23523", "23526", "23559", "23592"]),
        ("magic", magic_model, ["5029747", "5029748"]),
    ):
        spectral.z.prior = GaussianPrior(mu=0, sigma=SIGMAS[name])
        spectral.z.min, spectral.z.max = -0.5, 0.5
        models.append(SkyModel(spectral_model=spectral, name=name, datasets_names=members))
    datasets.models = models
    result = Fit().run(datasets)
    assert result.success
    assert result.total_stat == pytest.approx(joint.fit_result.total_stat, rel=1e-6)
    ours = joint.model.spectral_model
    for name in ("amplitude", "alpha", "beta"):
        theirs = getattr(hess_model, name)
        np.testing.assert_allclose(getattr(ours, name).value, theirs.value, rtol=1e-6)
        np.testing.assert_allclose(getattr(ours, name).error, theirs.error, rtol=1e-4)
    for name, theirs in (("hess", hess_model), ("magic", magic_model)):
        z = joint.models[f"crab_{name}"].spectral_model.z
        np.testing.assert_allclose(z.value, theirs.z.value, rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(z.error, theirs.z.error, rtol=1e-4)
    # the model really is the spectrum seen through the scale: phi(E / (1 + z)) / (1 + z)
    energy = [0.3, 1, 10] * u.TeV
    scaled = joint.models["crab_hess"].spectral_model
    expected = ours(energy / (1 + scaled.z.value)) / (1 + scaled.z.value)
    np.testing.assert_allclose(scaled(energy).value, expected.value, rtol=1e-12)


def test_energy_scale_bad_input_names_the_telescopes(single, tmp_path):
    files = [f for r in single.values() for f in r.dataset_files]
    config = MAGIC.model_copy(update={"energy_scale": {"hess": 0.15, "veritas": 0.15}})
    with pytest.raises(
        AnalysisError, match=r"no energy-scale prior for magic.*no dataset of veritas"
    ):
        SpectrumStep(config).fit(files, tmp_path)
    assert all(f.is_file() for f in files), "the datasets already made are kept"
    for bad in (0, -0.1, 0.8):
        with pytest.raises(ConfigError, match="energy_scale"):
            SpectrumConfig.from_dict({**CRAB, "energy_scale": {"hess": bad}})


def test_flux_points_are_drawn_in_the_scale_of_the_joint_model(joint):
    """Each telescope's points are estimated against its scaled model; drawn with the
    intrinsic model they are moved by its fitted z, so they follow the curve they are
    shown with (left in their own scale they sit z, ~10-20 %, away from it)."""
    import matplotlib

    matplotlib.use("Agg")
    import astropy.units as u

    intrinsic = joint.model.spectral_model
    moved = joint.flux_points_intrinsic
    assert set(moved) == set(joint.flux_points_by_telescope) == {"hess", "magic"}
    for telescope, raw in joint.flux_points_by_telescope.items():
        scaled = joint.models[f"crab_{telescope}"].spectral_model
        z = scaled.z.value
        assert abs(z) > 1e-3, "the test needs a fitted scale away from 0"
        e_raw = raw.energy_ref
        ok = np.isfinite(raw.dnde.quantity.ravel()) & (raw.dnde.quantity.ravel() > 0)
        ratio_raw = (raw.dnde.quantity.ravel() / scaled(e_raw)).to_value("")[ok]
        e_new = moved[telescope].energy_ref
        np.testing.assert_allclose(e_new.to_value(u.TeV), e_raw.to_value(u.TeV) / (1 + z))
        ratio_new = (moved[telescope].dnde.quantity.ravel() / intrinsic(e_new)).to_value("")
        np.testing.assert_allclose(ratio_new[ok], ratio_raw, rtol=1e-6)
    assert joint.plot() is not None
