"""Light curves of PKS 2155-304 from H.E.S.S. DR1 runs, per run and per night, with provenance."""

from __future__ import annotations

import warnings

import astropy.units as u
import numpy as np
import pytest
import yaml
from astropy.io import fits

from ctanb import AnalysisError, ConfigError
from ctanb._settings import release_dir
from ctanb.analysis import EXAMPLES
from ctanb.analysis.inputs import inputs_from_datastore
from ctanb.analysis.lightcurve import LightCurveConfig, LightCurveStep
from ctanb.analysis.sed import read_flux_points
from ctanb.analysis.spectrum_data import EnergyRangeWarning
from ctanb.provenance import read_provenance

# Two runs on the night of MJD 54705 and one on the next night.
RUNS = (47802, 47803, 47827)
PKS2155 = LightCurveConfig(
    ra_deg=329.71694,
    dec_deg=-30.22559,
    source="pks2155",
    spectral_index=3.4,
    energy_edges_tev=[0.7, 10],
    energy_min_tev=10**-0.5,
    energy_max_tev=31.6,
    energy_bins_per_decade=4,
    energy_true_min_tev=0.2,
    energy_true_max_tev=50,
    energy_true_bins_per_decade=5,
)


@pytest.fixture(scope="module")
def inputs(prov_store_url):
    return inputs_from_datastore(release_dir("hess-dl3-dr1"), RUNS)


def test_light_curve_per_run_has_sensible_fluxes_and_provenance(inputs, tmp_path):
    from gammapy.estimators import FluxPoints

    result = LightCurveStep(PKS2155).run(inputs, out=tmp_path)
    table = result.table
    assert len(table) == len(RUNS)
    flux = np.asarray(table["flux"]).ravel()
    error = np.asarray(table["flux_err"]).ravel()
    # PKS 2155-304 in 2008 above 0.7 TeV: a few 1e-12 cm-2 s-1, detected in every run
    assert np.all((flux > 5e-13) & (flux < 5e-11)), flux
    assert np.all((error > 0) & (error < flux)), error
    assert np.all(np.asarray(table["time_max"]) > np.asarray(table["time_min"]))
    path = result.products["lightcurve"]
    again = FluxPoints.read(path, format="lightcurve")
    np.testing.assert_allclose(np.ravel(again.flux.data), flux, rtol=1e-6)
    assert fits.getheader(path)["PROV_TYP"] == "lightcurve"
    graph = read_provenance(path)
    assert {e.obs_id for e in graph.entities.values() if e.data_level == "DL3"} == {
        str(r) for r in RUNS
    }
    assert "3 run bin(s)" in result._repr_html_()
    ax = result.plot()
    assert ax.lines or ax.collections


def test_light_curve_per_night_groups_runs_by_night(inputs, tmp_path):
    result = LightCurveStep(PKS2155.model_copy(update={"time_bins": "night"})).run(
        inputs, out=tmp_path
    )
    table = result.table
    assert len(table) == 2
    first, second = table[0], table[1]
    assert int(first["time_min"]) == 54705 and int(second["time_min"]) == 54706
    # the first night spans both of its runs (about 2 x 28 min)
    assert (first["time_max"] - first["time_min"]) * 24 * 60 > 50
    assert "2 night bin(s)" in result._repr_html_()


def test_light_curve_of_a_target_outside_the_field_names_the_offsets(inputs, tmp_path):
    step = LightCurveStep(PKS2155.model_copy(update={"dec_deg": -40.0}))
    with pytest.raises(AnalysisError, match=r"outside the field of view.*47802: offset"):
        step.run(inputs[:1], out=tmp_path)


# -- the packaged example: the energy range asked for, and products that keep their model ---
@pytest.fixture(scope="module")
def example(inputs, tmp_path_factory):
    """The light_curve section of the packaged PKS 2155-304 example, on three of its runs."""
    section = yaml.safe_load(EXAMPLES["pks2155_lightcurve"].read_text())["light_curve"]
    config = LightCurveConfig.from_dict(section)
    with warnings.catch_warnings():
        warnings.simplefilter("error", EnergyRangeWarning)  # the range is used as asked
        result = LightCurveStep(config).run(inputs, out=tmp_path_factory.mktemp("pks"))
    return section, result


def plain_gammapy_light_curve(section, runs, exclusion_mask=None):
    """The example's light curve written directly with gammapy, from the YAML values and
    the defaults documented for a light curve (0.5-40 TeV, 5 bins per decade, true energy
    0.3-100 TeV at 8 per decade, 0.11 deg on region, aeff-max 10 % safe mask)."""
    from astropy.coordinates import SkyCoord
    from astropy.time import Time
    from gammapy.data import Observation
    from gammapy.datasets import Datasets, SpectrumDataset
    from gammapy.estimators import LightCurveEstimator
    from gammapy.makers import ReflectedRegionsBackgroundMaker, SafeMaskMaker, SpectrumDatasetMaker
    from gammapy.maps import MapAxis, RegionGeom
    from gammapy.modeling.models import PowerLawSpectralModel, SkyModel
    from regions import CircleSkyRegion

    e_min, e_max = section["energy_edges_tev"]  # 0.7-10 TeV, the light curve's band
    # only the bins inside the band enter the light curve: 5 per decade, rounded up
    e_reco = MapAxis.from_energy_bounds(
        e_min, e_max, nbin=int(np.ceil(np.log10(e_max / e_min) * 5)), unit="TeV", name="energy"
    )
    e_true = MapAxis.from_energy_bounds(0.3, 100, nbin=21, unit="TeV", name="energy_true")
    target = SkyCoord(section["ra_deg"], section["dec_deg"], unit="deg")
    region = CircleSkyRegion(target, section["on_radius_deg"] * u.deg)
    empty = SpectrumDataset.create(
        RegionGeom.create(region, axes=[e_reco]), energy_axis_true=e_true
    )
    maker = SpectrumDatasetMaker(selection=["counts", "exposure", "edisp"])
    safe = SafeMaskMaker(methods=["aeff-max"], aeff_percent=10, offset_max=2.5 * u.deg)
    datasets, observations = Datasets(), []
    for run in runs:
        obs = Observation.read(run.events)
        dataset = maker.run(empty.copy(name=str(obs.obs_id)), obs)
        background = ReflectedRegionsBackgroundMaker(exclusion_mask=exclusion_mask)
        datasets.append(safe.run(background.run(dataset, obs), obs))
        observations.append(obs)
    model = PowerLawSpectralModel(
        index=section["spectral_index"], amplitude="1e-12 cm-2 s-1 TeV-1", reference="1 TeV"
    )
    datasets.models = [SkyModel(spectral_model=model, name=section["source"])]
    # one bin per night: runs 47802 and 47803 on MJD 54705, run 47827 on the next night
    first, second = observations[:2], observations[2:]
    intervals = [
        Time([min(o.gti.time_start[0] for o in night), max(o.gti.time_stop[-1] for o in night)])
        for night in (first, second)
    ]
    return LightCurveEstimator(
        energy_edges=[e_min, e_max] * u.TeV,
        source=section["source"],
        time_intervals=intervals,
        selection_optional=["ul"],
    ).run(datasets)


def test_example_light_curve_equals_plain_gammapy_over_the_requested_energy_range(inputs, example):
    section, result = example
    assert section["time_bins"] == "night" and section["energy_edges_tev"] == [0.7, 10.0]
    theirs = plain_gammapy_light_curve(section, inputs)
    ours = result.lightcurve
    for name in ("flux", "flux_err", "flux_ul", "ts", "dnde"):
        np.testing.assert_allclose(
            getattr(ours, name).data, getattr(theirs, name).data, rtol=1e-6, err_msg=name
        )
    # the band integrated is the band asked for, in memory and in the product (1e-12:
    # gammapy keeps log-interpolated edges, 10 comes back as 10.000000000000002)
    again = read_flux_points(result.products["lightcurve"])
    for points in (ours, again):
        np.testing.assert_allclose(points.energy_min.to_value("TeV"), [0.7], rtol=1e-12)
        np.testing.assert_allclose(points.energy_max.to_value("TeV"), [10.0], rtol=1e-12)


def test_light_curve_product_keeps_its_reference_model(example, tmp_path):
    from gammapy.estimators import FluxPoints
    from gammapy.modeling.models import Models

    _, result = example
    path = result.products["lightcurve"]
    model_file = result.products["reference_model"]
    assert model_file.parent == path.parent and fits.getheader(path)["MODEL"] == model_file.name
    assert result.products["covariance"].is_file()
    ours = result.lightcurve
    energy = np.geomspace(0.7, 10, 9) * u.TeV
    # ctanb's reader and plain gammapy with the written model give back the same dN/dE
    # (index 3.4, not gammapy's default index 2) and the same model error band
    reference = Models.read(model_file)[0]
    plain = FluxPoints.read(path, format="lightcurve", reference_model=reference)
    for again in (read_flux_points(path), plain):
        for name in ("dnde", "dnde_err", "flux", "e2dnde"):
            np.testing.assert_allclose(
                getattr(again, name).data, getattr(ours, name).data, rtol=1e-6, err_msg=name
            )
        np.testing.assert_allclose(
            again.reference_spectral_model.evaluate_error(energy),
            ours.reference_spectral_model.evaluate_error(energy),
            rtol=1e-6,
        )
        assert again.reference_spectral_model.index.value == pytest.approx(3.4)
    # the model file is a product of the light-curve activity (so verify/redo see it)
    graph = read_provenance(path)
    generated = {e.location for e in graph.entities.values() if e.location}
    assert str(model_file.resolve()) in generated
    assert str(result.products["covariance"].resolve()) in generated
    # without its model beside it the product says so instead of guessing a shape
    lonely = tmp_path / path.name
    lonely.write_bytes(path.read_bytes())
    with pytest.raises(AnalysisError, match=f"reference model {model_file.name}.*missing"):
        read_flux_points(lonely)


def test_light_curve_energy_edges_outside_the_analysis_range_are_refused():
    with pytest.raises(ConfigError, match=r"0\.3 TeV lie outside the analysis energy range"):
        LightCurveConfig.from_dict({**PKS2155.model_dump(), "energy_edges_tev": [0.3, 10]})
