"""Spectrum step on real data: H.E.S.S. DR1 and MAGIC RAD_MAX Crab spectra equal plain gammapy,
joint fit, provenance and redo of the flux points, and clear errors on bad input."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
import yaml
from astropy.io import fits

from ctanb import AnalysisError, ConfigError
from ctanb._settings import release_dir
from ctanb.analysis import EXAMPLES
from ctanb.analysis.inputs import inputs_from_datastore
from ctanb.analysis.sed import read_flux_points
from ctanb.analysis.spectrum import SpectrumConfig, SpectrumStep, joint_fit
from ctanb.analysis.spectrum_data import EnergyRangeWarning
from ctanb.provenance import ProvenanceStore, read_provenance

CRAB_RUNS = (23523, 23526, 23559, 23592)
CRAB = {"ra_deg": 83.633, "dec_deg": 22.0145, "source": "crab"}
HESS = SpectrumConfig(
    **CRAB,
    energy_min_tev=10**-0.5,
    energy_max_tev=100,
    energy_bins_per_decade=4,
    energy_true_min_tev=0.1,
    energy_true_max_tev=200,
    energy_true_bins_per_decade=6,
    flux_points_edges_tev=[1, 10**0.5, 10, 10**1.5],
    flux_points_optional=["scan"],
    scan_n_values=5,
)
MAGIC = SpectrumConfig(
    **CRAB,
    on_radius_deg=None,
    model="log-parabola",
    energy_min_tev=0.1,
    energy_max_tev=10,
    energy_bins_per_decade=4,
    energy_true_min_tev=0.05,
    energy_true_max_tev=20,
    energy_true_bins_per_decade=6,
    flux_points_edges_tev=[0.1, 10**-0.5, 1, 10**0.5, 10],
    flux_points_optional=["scan"],
    scan_n_values=5,
)


@pytest.fixture(scope="module")
def store_url(prov_store_url: str) -> str:
    return prov_store_url


@pytest.fixture(scope="module")
def hess(store_url, tmp_path_factory):
    inputs = inputs_from_datastore(release_dir("hess-dl3-dr1"), CRAB_RUNS, obscore=True)
    return SpectrumStep(HESS).run(inputs, out=tmp_path_factory.mktemp("hess"))


@pytest.fixture(scope="module")
def magic(store_url, tmp_path_factory):
    inputs = inputs_from_datastore(release_dir("magic") / "rad_max" / "data")
    return SpectrumStep(MAGIC).run(inputs, out=tmp_path_factory.mktemp("magic"))


def plain_gammapy(
    files, *, point_like, model, e_reco, e_true, edges, optional=("scan",), scan_n_values=5
):
    """The same analysis written directly with gammapy (as in the gammapy tutorials)."""
    from astropy.coordinates import SkyCoord
    from gammapy.data import Observation
    from gammapy.datasets import Datasets, SpectrumDataset
    from gammapy.estimators import FluxPointsEstimator
    from gammapy.makers import (
        ReflectedRegionsBackgroundMaker,
        SafeMaskMaker,
        SpectrumDatasetMaker,
        WobbleRegionsFinder,
    )
    from gammapy.maps import RegionGeom
    from gammapy.modeling import Fit
    from gammapy.modeling.models import SkyModel
    from regions import CircleSkyRegion, PointSkyRegion

    target = SkyCoord(83.633, 22.0145, unit="deg")
    region = PointSkyRegion(target) if point_like else CircleSkyRegion(target, 0.11 * u.deg)
    geom = RegionGeom.create(region=region, axes=[e_reco])
    empty = SpectrumDataset.create(geom=geom, energy_axis_true=e_true)
    maker = SpectrumDatasetMaker(selection=["counts", "exposure", "edisp"])
    bkg = (
        ReflectedRegionsBackgroundMaker(region_finder=WobbleRegionsFinder(n_off_regions=3))
        if point_like
        else ReflectedRegionsBackgroundMaker()
    )
    safe = SafeMaskMaker(methods=["aeff-max"], aeff_percent=10, offset_max=2.5 * u.deg)
    datasets = Datasets()
    for path in files:
        obs = Observation.read(path)
        dataset = maker.run(empty.copy(name=str(obs.obs_id)), obs)
        datasets.append(safe.run(bkg.run(dataset, obs), obs))
    datasets.models = [SkyModel(spectral_model=model, name="crab")]
    result = Fit().run(datasets)
    assert result.success
    points = FluxPointsEstimator(
        energy_edges=edges,
        source="crab",
        selection_optional=list(optional),
        norm={"scan_min": 0.2, "scan_max": 5, "scan_n_values": scan_n_values},
    ).run(datasets)
    return datasets.models, points


def assert_same(result, models, points):
    for ours, theirs in zip(result.models.parameters, models.parameters, strict=True):
        assert ours.name == theirs.name
        np.testing.assert_allclose(ours.value, theirs.value, rtol=1e-6, err_msg=ours.name)
        np.testing.assert_allclose(ours.error, theirs.error, rtol=1e-5, err_msg=ours.name)
    # a bin without excess (norm 0, an upper limit) has no meaningful Hessian error: its
    # norm_err is compared only where there is a signal; its upper limit everywhere
    signal = points.ts.data > 4
    for column in ("norm", "norm_err", "ts", "stat_scan"):
        ours, theirs = getattr(result.flux_points, column).data, getattr(points, column).data
        if column == "norm_err":
            ours, theirs = ours[signal], theirs[signal]
        np.testing.assert_allclose(
            ours,
            theirs,
            rtol=1e-6,
            atol=1e-9,  # a bin without excess has a norm of 0 up to rounding (1e-16)
            err_msg=column,
        )


def test_hess_crab_power_law_equals_plain_gammapy(hess):
    from gammapy.maps import MapAxis
    from gammapy.modeling.models import PowerLawSpectralModel

    files = [str(item.events) for item in hess.inputs]
    model = PowerLawSpectralModel(index=2, amplitude="1e-12 cm-2 s-1 TeV-1", reference="1 TeV")
    models, points = plain_gammapy(
        files,
        point_like=False,
        model=model,
        e_reco=MapAxis.from_energy_bounds(10**-0.5, 100, nbin=10, unit="TeV", name="energy"),
        e_true=MapAxis.from_energy_bounds(0.1, 200, nbin=20, unit="TeV", name="energy_true"),
        edges=[1, 10**0.5, 10, 10**1.5] * u.TeV,
    )
    assert_same(hess, models, points)
    assert 2.4 < hess.model.spectral_model.index.value < 2.8
    assert [d.name for d in hess.datasets] == [str(r) for r in CRAB_RUNS]


def test_magic_rad_max_log_parabola_equals_plain_gammapy(magic):
    from gammapy.maps import MapAxis
    from gammapy.modeling.models import LogParabolaSpectralModel

    files = [str(item.events) for item in magic.inputs]
    model = LogParabolaSpectralModel(
        alpha=2, beta=0.1, amplitude="1e-12 cm-2 s-1 TeV-1", reference="1 TeV"
    )
    models, points = plain_gammapy(
        files,
        point_like=True,
        model=model,
        e_reco=MapAxis.from_energy_bounds(0.1, 10, nbin=8, unit="TeV", name="energy"),
        e_true=MapAxis.from_energy_bounds(0.05, 20, nbin=16, unit="TeV", name="energy_true"),
        edges=[0.1, 10**-0.5, 1, 10**0.5, 10] * u.TeV,
    )
    assert_same(magic, models, points)


@pytest.fixture(scope="module")
def example(store_url, tmp_path_factory):
    """The spectrum section of the packaged Crab example (log-parabola, 0.7-40 TeV)."""
    section = yaml.safe_load(EXAMPLES["crab_spectrum_hess"].read_text())["spectrum"]
    inputs = inputs_from_datastore(release_dir("hess-dl3-dr1"), CRAB_RUNS)
    with warnings.catch_warnings():
        warnings.simplefilter("error", EnergyRangeWarning)  # every range is used as asked
        result = SpectrumStep(section).run(inputs, out=tmp_path_factory.mktemp("example"))
    return section, result


def test_example_crab_spectrum_equals_plain_gammapy_over_the_requested_range(example):
    from gammapy.datasets import SpectrumDatasetOnOff
    from gammapy.maps import MapAxis
    from gammapy.modeling.models import LogParabolaSpectralModel

    section, result = example
    e_min, e_max, per_decade = (
        section[key] for key in ("energy_min_tev", "energy_max_tev", "energy_bins_per_decade")
    )
    assert (e_min, e_max, per_decade, section["model"]) == (0.7, 40, 5, "log-parabola")
    # what the user asked for, in plain gammapy: 0.7-40 TeV with at least 5 bins per
    # decade (9 bins), true energy 0.3-100 TeV at 8 per decade (the defaults), and flux
    # points of two bins each over the whole fitted range, the top bin included
    nbin = int(np.ceil(np.log10(e_max / e_min) * per_decade))
    e_reco = MapAxis.from_energy_bounds(e_min, e_max, nbin=nbin, unit="TeV", name="energy")
    e_true = MapAxis.from_energy_bounds(0.3, 100, nbin=21, unit="TeV", name="energy_true")
    edges = e_reco.edges[[*range(0, nbin, 2), nbin]]
    model = LogParabolaSpectralModel(
        alpha=2, beta=0.1, amplitude="1e-12 cm-2 s-1 TeV-1", reference="1 TeV"
    )
    models, points = plain_gammapy(
        [str(item.events) for item in result.inputs],
        point_like=False,
        model=model,
        e_reco=e_reco,
        e_true=e_true,
        edges=edges,
        optional=("ul", "scan"),
        scan_n_values=11,
    )
    assert_same(result, models, points)
    np.testing.assert_allclose(result.flux_points.dnde_ul.data, points.dnde_ul.data, rtol=1e-6)
    # the datasets written and the flux points start and end at the requested bounds (up to
    # float rounding: gammapy keeps edges in log space)
    for path in result.dataset_files:
        axis = SpectrumDatasetOnOff.read(path).counts.geom.axes["energy"]
        np.testing.assert_allclose(axis.bounds.to_value("TeV"), [e_min, e_max], rtol=1e-12)
    points_file = result.products["flux_points"]
    fitted = [fits.getheader(points_file)[key] for key in ("FIT_EMIN", "FIT_EMAX")]
    np.testing.assert_allclose(fitted, [e_min, e_max], rtol=1e-12)
    for used in result.fit_ranges.values():
        np.testing.assert_allclose(used.to_value("TeV"), [e_min, e_max], rtol=1e-12)
    again = read_flux_points(points_file)
    for fp in (result.flux_points, again):
        np.testing.assert_allclose(fp.energy_min[0].to_value("TeV"), e_min, rtol=1e-12)
        np.testing.assert_allclose(fp.energy_max[-1].to_value("TeV"), e_max, rtol=1e-12)


def test_models_keep_their_covariance_and_flux_points_their_reference_model(example):
    from gammapy.estimators import FluxPoints
    from gammapy.modeling.models import Models

    _, result = example
    models_file = result.products["models"]
    covariance = result.products["covariance"]
    assert covariance.parent == models_file.parent and covariance.is_file()
    assert yaml.safe_load(models_file.read_text())["covariance"] == covariance.name

    def alpha_beta_correlation(spectral):
        matrix = spectral.covariance.get_subcovariance(["alpha", "beta"]).data
        return matrix[0, 1] / np.sqrt(matrix[0, 0] * matrix[1, 1])

    ours = result.model.spectral_model
    read = Models.read(models_file)["crab"].spectral_model
    correlation = alpha_beta_correlation(ours)
    assert -0.95 < correlation < -0.75, correlation  # the Crab log-parabola: about -0.86
    np.testing.assert_allclose(alpha_beta_correlation(read), correlation, rtol=1e-6)
    energy = np.geomspace(0.7, 40, 25) * u.TeV
    # the butterfly rebuilt from the files is the one of the fit
    np.testing.assert_allclose(
        read.evaluate_error(energy).value, ours.evaluate_error(energy).value, rtol=1e-6
    )
    # flux points: ctanb's reader, and plain gammapy given the model the file names, give
    # back the same dN/dE, integral fluxes and model butterfly as in memory
    points_file = result.products["flux_points"]
    assert fits.getheader(points_file)["MODEL"] == models_file.name
    plain = FluxPoints.read(points_file, reference_model=Models.read(models_file)["crab"])
    for again in (read_flux_points(points_file), plain):
        for name in ("dnde", "dnde_err", "dnde_ul", "flux", "e2dnde"):
            np.testing.assert_allclose(
                getattr(again, name).data,
                getattr(result.flux_points, name).data,
                rtol=1e-6,
                err_msg=name,
            )
        np.testing.assert_allclose(
            again.reference_spectral_model.evaluate_error(energy).value,
            result.flux_points.reference_spectral_model.evaluate_error(energy).value,
            rtol=1e-6,
        )
    # the covariance is a product of the fit activity, so verify and redo cover it
    graph = read_provenance(points_file)
    generated = {e.location for e in graph.entities.values() if e.location}
    assert str(covariance.resolve()) in generated


def test_products_are_gadf_sed_ogip_yaml_with_provenance(hess):
    from gammapy.datasets import SpectrumDatasetOnOff
    from gammapy.modeling.models import Models

    from ctanb.analysis.sed import read_flux_points

    points_file = hess.products["flux_points"]
    header = fits.getheader(points_file, "FLUXPOINTS")
    assert header["SED_TYPE"] == "likelihood"
    again = read_flux_points(points_file)
    # the norm scan (likelihood profile, 5 values per energy bin) is kept
    assert again.stat_scan.data.size == 5 * again.norm.data.size
    np.testing.assert_allclose(again.norm.data, hess.flux_points.norm.data, rtol=1e-6)
    primary = fits.getheader(points_file)
    assert primary["PROV_DL"] == "DL5" and primary["PROV_TYP"] == "flux"
    # the ObsCore provenance keywords of the DL3 inputs reach the DL5 product
    assert primary["RECO_VER"] == hess.inputs[0].obscore["reco_version"]
    assert primary["APPCUTS"] == hess.inputs[0].obscore["applied_cuts"] == "standard"
    dataset_file = hess.products["dataset_spectrum_obs23523"]
    assert fits.getheader(dataset_file)["PROV_DL"] == "DL4"
    assert SpectrumDatasetOnOff.read(dataset_file).counts_off.data.sum() > 0
    models = Models.read(hess.products["models"])
    assert models["crab"].spectral_model.index.value == pytest.approx(
        hess.model.spectral_model.index.value
    )


def test_flux_points_provenance_names_the_runs_and_redo_reproduces_them(hess, store_url, tmp_path):
    graph = read_provenance(hess.products["flux_points"])
    runs = {e.obs_id for e in graph.entities.values() if e.data_level == "DL3"}
    assert runs == {str(r) for r in CRAB_RUNS}
    names = {a.name for a in graph.activities.values()}
    assert names == {"spectrum-datasets", "spectrum-fit"}
    out = tmp_path / "redo"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "ctanb",
            "prov",
            "redo",
            str(hess.products["flux_points"]),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "CTANB_PROV_URL": store_url},
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "identical" in done.stdout or "equal within" in done.stdout, done.stdout
    assert (out / hess.products["flux_points"].name).is_file()


def test_joint_hess_magic_fit_uses_both_instruments(hess, magic, tmp_path):
    top = 10**1.25  # an edge of the H.E.S.S. datasets, above the MAGIC ones (0.1-10 TeV)
    config = HESS.model_copy(update={"fit_energy_min_tev": 1.0, "fit_energy_max_tev": top})
    # the joint fit range and flux-point edges reach above the MAGIC datasets' 10 TeV: the
    # step says so, fits MAGIC up to 10 TeV and its points stop there, and records that
    with pytest.warns(EnergyRangeWarning) as caught:
        joint = joint_fit([hess, magic], tmp_path / "joint", config=config)
    messages = [str(w.message) for w in caught if w.category is EnergyRangeWarning]
    assert any(
        re.search(r"fit range of dataset 5029747 \[1, 17.78\] TeV .* used \[1, 10\]", m)
        for m in messages
    ), messages
    assert any(
        re.search(r"\[1, 3.162, 10, 31.62\] TeV .* used \[1, 3.162, 10\]", m) for m in messages
    )
    assert not any("dataset 23523" in m for m in messages)  # H.E.S.S.: used as asked
    for name, used in joint.fit_ranges.items():
        expected = [1, 10] if name.startswith("50297") else [1, top]
        np.testing.assert_allclose(used.to_value("TeV"), expected, rtol=1e-12, err_msg=name)
    magic_file = joint.products["flux_points_magic"]
    magic_points = read_flux_points(magic_file)
    np.testing.assert_allclose(magic_points.energy_max.to_value("TeV")[-1], 10, rtol=1e-12)
    np.testing.assert_allclose(joint.flux_points.energy_max.to_value("TeV")[-1], 10**1.5)
    header = fits.getheader(magic_file)
    np.testing.assert_allclose([header["FIT_EMIN"], header["FIT_EMAX"]], [1, 10], rtol=1e-12)
    header = fits.getheader(joint.products["flux_points"])
    np.testing.assert_allclose([header["FIT_EMIN"], header["FIT_EMAX"]], [1, top], rtol=1e-12)
    assert joint.fit_result.success
    assert 2.4 < joint.model.spectral_model.index.value < 2.7
    names = {d.name for d in joint.datasets}
    assert names == {str(r) for r in CRAB_RUNS} | {"5029747", "5029748"}
    # both instruments contribute to the likelihood in the fit range
    for dataset in joint.datasets:
        assert dataset.mask.data.any() and dataset.npred_signal().data[dataset.mask].sum() > 10
    assert len(joint.flux_points_by_telescope) == 2
    assert all(path.is_file() for key, path in joint.products.items() if "flux_points" in key)
    assert len(joint.inputs) == 6
    html = joint._repr_html_()
    assert "index" in html and "±" in html and "converged" in html
    ax = joint.plot()
    assert ax.collections, "the model butterfly is drawn"


def test_fit_that_does_not_converge_keeps_the_datasets_and_records_failure(
    hess, store_url, tmp_path
):
    step = SpectrumStep(HESS.model_copy(update={"fit_max_calls": 3}))
    with pytest.raises(AnalysisError, match=r"did not converge: .*Call limit"):
        step.fit(hess.dataset_files, tmp_path)
    assert all(path.is_file() for path in hess.dataset_files)
    failed = ProvenanceStore(store_url).activities(name="spectrum-fit", status="failed")
    assert failed and "Call limit" in failed[-1].message


@pytest.mark.parametrize(
    ("bounds", "per_decade", "nbin"),
    [
        ([0.7, 40], 5, 9),  # the Crab example: 8.8 bins' worth, rounded up
        ([1, 3], 5, 3),  # 2.4 rounded up, not to 2
        ([10**-0.5, 1, 10**0.5, 10, 10**1.5, 100], 4, 10),  # on a decade grid: no extra bin
        (
            [0.08, 0.7, 20],
            5,
            13,
        ),  # 4.7 + 7.3 bins, each rounded up; 0.7 TeV (H.E.S.S. threshold) kept as an edge
        ([0.7, 10, 10 * (1 + 1e-12)], 5, 6),  # a bound given twice up to rounding
    ],
)
def test_energy_edges_keep_every_requested_bound(bounds, per_decade, nbin):
    from ctanb.analysis.spectrum_data import log_edges

    edges = log_edges(bounds, per_decade)
    assert len(edges) == nbin + 1
    assert edges[0] == bounds[0] and edges[-1] in (bounds[-1], bounds[-2])
    assert set(bounds[:-1]) <= set(edges.tolist())
    widths = np.diff(np.log10(edges))
    assert widths.min() > 0 and widths.max() <= 1 / per_decade + 1e-12


def test_bad_inputs_give_clear_errors(tmp_path, data_dir):
    step = SpectrumStep(HESS)
    with pytest.raises(AnalysisError, match="no observation selected"):
        step.run([], out=tmp_path)
    inputs = inputs_from_datastore(release_dir("hess-dl3-dr1"), [23523])
    far = SpectrumStep(HESS.model_copy(update={"ra_deg": 120.0, "dec_deg": -10.0}))
    with pytest.raises(
        AnalysisError, match=r"ra=120 deg.*outside the field of view.*23523: offset"
    ):
        far.run(inputs, out=tmp_path)
    events_only = tmp_path / "events_only.fits"
    with fits.open(inputs[0].events) as hdus:
        fits.HDUList([hdus[0], hdus["EVENTS"], hdus["GTI"]]).writeto(events_only)
    with pytest.raises(AnalysisError, match="missing IRF"):
        step.run([events_only], out=tmp_path)
    with pytest.raises(ConfigError, match="radius"):
        SpectrumConfig.from_dict({**CRAB, "radius": 0.1})
    with pytest.raises(ConfigError, match=r"20 TeV lie outside the analysis energy range 0.5-10"):
        SpectrumConfig.from_dict({**CRAB, "energy_max_tev": 10, "fit_energy_max_tev": 20})
    # a configuration changed without validation is refused when the step runs
    wide = SpectrumStep(HESS.model_copy(update={"flux_points_edges_tev": [0.1, 1]}))
    with pytest.raises(AnalysisError, match=r"energies 0.1 TeV lie outside"):
        wide.run(inputs, out=tmp_path)
    config = tmp_path / "spectrum.yaml"
    MAGIC.write(config)
    assert SpectrumConfig.read(config) == MAGIC


def test_query_by_run_lists_only_products_that_used_it(hess, store_url):
    """Each per-run dataset derives from its own run; the fit and flux points from all."""
    ProvenanceStore(store_url).flush()
    found = subprocess.run(
        [sys.executable, "-m", "ctanb", "prov", "query", "--obs-id", "23523"],
        capture_output=True,
        text=True,
        env={**os.environ, "CTANB_PROV_URL": store_url},
        timeout=120,
        check=False,
    )
    assert found.returncode == 0, found.stderr
    listed = {Path(line.split("\t")[-1]).name for line in found.stdout.splitlines()}
    assert {"spectrum_obs23523.fits", hess.products["flux_points"].name} <= listed, listed
    others = {f"spectrum_obs{run}.fits" for run in CRAB_RUNS if run != 23523}
    assert not listed & others, listed & others
