"""3D likelihood analysis, TS map/detection and exclusion masks on real H.E.S.S. DR1 data,
each compared with the same analysis written directly in gammapy (the reference).

MSH 15-52 (three runs, a small map): the exclusion mask from HGPS plus a DS9 region,
the stacked dataset, the fitted Gaussian + power law + FoV background norm, the
residual maps, the flux points from the 3D model and the TS map with its candidates
must equal plain gammapy to 1e-6. The packaged example ``msh1552_3d`` is run with
``ctanb run`` and its fitted position compared with the published HGPS position.
Bad input gives one clear AnalysisError/ConfigError and keeps what was made.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
import yaml

from ctanb import AnalysisError, ConfigError
from ctanb.analysis import inputs_from_datastore
from ctanb.analysis.map3d import Map3DConfig, Map3DStep
from ctanb.provenance import default_store, read_provenance
from ctanb.provenance._hashing import fits_product_sha256

RUNS = [20136, 20137, 20282]
#: HGPS (H.E.S.S. Collaboration 2018, A&A 612, A1), HESS J1514-591 = MSH 15-52:
#: RAJ2000, DEJ2000 = 228.4988, -59.1613 deg, Pos_Err_68 = 0.020 deg (read from the
#: catalog file in the test below, these numbers are only the documentation).
MSH_NAME = "HESS J1514-591"
REGION = "icrs;circle(229.5,-58.6,0.2)"
#: A field without any HGPS source (PKS 2155-304).
PKS2155 = {"frame": "icrs", "lon": "329.7 deg", "lat": "-30.2 deg"}

CONFIG = {
    "geom": {
        "wcs": {
            "skydir": {"frame": "icrs", "lon": "228.53 deg", "lat": "-59.16 deg"},
            "binsize": "0.05 deg",
            "width": {"width": "2 deg", "height": "2 deg"},
            "binsize_irf": "0.25 deg",
        },
        "selection": {"offset_max": "2.5 deg"},
        "axes": {
            "energy": {"min": "1 TeV", "max": "10 TeV", "nbins": 2},
            "energy_true": {"min": "0.5 TeV", "max": "20 TeV", "nbins": 6},
        },
    },
    "safe_mask": {
        "methods": ["aeff-default", "offset-max"],
        "parameters": {"offset_max": "2.5 deg"},
    },
    "exclusion": {"catalogs": ["hgps"], "radius": "0.4 deg", "regions": [REGION]},
    "models": {"catalog": "hgps", "sources": [MSH_NAME], "spatial": "gaussian", "size": "0.1 deg"},
    "flux_points": {"energy_edges": {"min": "1 TeV", "max": "10 TeV", "nbins": 2}},
    "residuals": {"correlation_radius": "0.1 deg"},
    "ts_map": {
        "kernel": "point",
        "kernel_width": "0.5 deg",
        "threshold": 4,
        "min_distance": "0.3 deg",
    },
}


def hgps(data_dir: Path):
    from gammapy.catalog import SourceCatalogHGPS

    return SourceCatalogHGPS(str(data_dir / "catalogs" / "hgps_catalog_v1.fits.gz"))


def plain_gammapy_3d(data_dir: Path) -> dict:
    """The same 3D analysis written directly with gammapy (gammapy's analysis_3d tutorial)."""
    from astropy.coordinates import SkyCoord
    from gammapy.data import DataStore
    from gammapy.datasets import MapDataset
    from gammapy.estimators import ExcessMapEstimator, FluxPointsEstimator, TSMapEstimator
    from gammapy.estimators.utils import find_peaks
    from gammapy.makers import DatasetsMaker, FoVBackgroundMaker, MapDatasetMaker, SafeMaskMaker
    from gammapy.maps import MapAxis, WcsGeom
    from gammapy.modeling import Fit
    from gammapy.modeling.models import (
        FoVBackgroundModel,
        GaussianSpatialModel,
        PointSpatialModel,
        PowerLawSpectralModel,
        SkyModel,
    )
    from regions import CircleSkyRegion, Regions

    centre = SkyCoord(228.53, -59.16, unit="deg", frame="icrs")
    energy = MapAxis.from_energy_bounds(1, 10, 2, unit="TeV")
    geom = WcsGeom.create(skydir=centre, binsz=0.05, width=(2, 2), frame="icrs", axes=[energy])
    true = MapAxis.from_energy_bounds(0.5, 20, 6, unit="TeV", name="energy_true")
    stacked = MapDataset.create(geom, energy_axis_true=true, binsz_irf=0.25, name="stacked")
    # Exclusion: a 0.4 deg circle around every HGPS source near the map, and the DS9 region.
    catalog = hgps(data_dir)
    near = catalog.positions.separation(centre).deg < 3
    regions = [CircleSkyRegion(p, 0.4 * u.deg) for p in catalog.positions[near]]
    regions += list(Regions.parse(REGION, format="ds9"))
    exclusion = ~geom.to_image().region_mask(regions)
    maker = DatasetsMaker(
        [
            MapDatasetMaker(selection=["counts", "exposure", "background", "psf", "edisp"]),
            SafeMaskMaker(methods=["aeff-default", "offset-max"], offset_max=2.5 * u.deg),
            FoVBackgroundMaker(exclusion_mask=exclusion),
        ],
        stack_datasets=True,
        cutout_width=5 * u.deg,
        n_jobs=1,
    )
    observations = DataStore.from_dir(data_dir / "hess-dl3-dr1").get_observations(RUNS)
    dataset = maker.run(stacked, observations)[0]
    # TS map of the reduced dataset (no source model).
    ts_maps = TSMapEstimator(
        kernel_model=SkyModel(
            spatial_model=PointSpatialModel(), spectral_model=PowerLawSpectralModel(index=2)
        ),
        kernel_width=0.5 * u.deg,
        selection_optional=[],
        n_jobs=1,
    ).run(dataset)
    peaks = find_peaks(ts_maps["sqrt_ts"], threshold=4, min_distance=0.3 * u.deg)
    # The model: Gaussian at the HGPS position, power law, FoV background norm.
    source = catalog[MSH_NAME]
    ra, dec = source.data["RAJ2000"], source.data["DEJ2000"]
    spatial = GaussianSpatialModel(lon_0=ra, lat_0=dec, sigma=0.1 * u.deg, frame="icrs")
    spatial.lon_0.min, spatial.lon_0.max = ra.value - 0.5, ra.value + 0.5
    spatial.lat_0.min, spatial.lat_0.max = dec.value - 0.5, dec.value + 0.5
    spatial.sigma.min, spatial.sigma.max = 0.005, 1.0
    spectral = PowerLawSpectralModel(index=2.3, amplitude="1e-12 cm-2 s-1 TeV-1")
    model = SkyModel(spectral_model=spectral, spatial_model=spatial, name=MSH_NAME)
    dataset.models = [model, FoVBackgroundModel(dataset_name="stacked")]
    fit_result = Fit().run([dataset])
    points = FluxPointsEstimator(
        energy_edges=[1, np.sqrt(10), 10] * u.TeV, source=MSH_NAME, selection_optional=[]
    ).run([dataset])
    return {
        "exclusion": exclusion,
        "dataset": dataset,
        "fit_result": fit_result,
        "residuals": dataset.residuals(method="diff").sum_over_axes(keepdims=False),
        "residual_significance": ExcessMapEstimator(
            correlation_radius=0.1 * u.deg, selection_optional=[]
        ).run(dataset)["sqrt_ts"],
        "flux_points": points,
        "ts": ts_maps,
        "peaks": peaks,
    }


@pytest.fixture(scope="module")
def result(data_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    runs = inputs_from_datastore(data_dir / "hess-dl3-dr1", RUNS)
    return Map3DStep(Map3DConfig.from_dict(CONFIG)).run(runs, out=tmp_path_factory.mktemp("3d"))


@pytest.fixture(scope="module")
def plain(data_dir: Path) -> dict:
    return plain_gammapy_3d(data_dir)


def read_map(path: Path):
    from gammapy.maps import Map

    return Map.read(path)


# -- each product equals plain gammapy ------------------------------------------------------
def test_exclusion_mask_equals_plain_gammapy(result, plain) -> None:
    mask = read_map(result.products["exclusion_mask"])
    np.testing.assert_array_equal(mask.data.astype(bool), plain["exclusion"].data)
    # MSH 15-52 itself and the user region are excluded, most of the map is not.
    assert 0.1 < 1 - mask.data.mean() < 0.5
    assert not mask.get_by_coord({"skycoord": plain["dataset"].counts.geom.center_skydir})[0]


def test_stacked_dataset_equals_plain_gammapy(result, plain) -> None:
    from gammapy.datasets import MapDataset

    written = MapDataset.read(result.products["dataset"])
    reference = plain["dataset"]
    np.testing.assert_array_equal(written.counts.data, reference.counts.data)
    for name in ("background", "exposure"):
        np.testing.assert_allclose(
            getattr(written, name).data, getattr(reference, name).data, rtol=1e-6
        )
    np.testing.assert_allclose(written.psf.psf_map.data, reference.psf.psf_map.data, rtol=1e-6)
    np.testing.assert_allclose(
        written.edisp.edisp_map.data, reference.edisp.edisp_map.data, rtol=1e-6
    )
    assert result.obs_ids == [str(r) for r in RUNS]


def test_fit_equals_plain_gammapy(result, plain) -> None:
    assert result.fit_result.success and plain["fit_result"].success
    ours = result.models.parameters.free_parameters
    reference = plain["dataset"].models.parameters.free_parameters
    assert [p.name for p in ours] == [p.name for p in reference]
    assert len(ours) == 6  # index, amplitude, lon_0, lat_0, sigma, background norm
    np.testing.assert_allclose([p.value for p in ours], [p.value for p in reference], rtol=1e-6)
    np.testing.assert_allclose([p.error for p in ours], [p.error for p in reference], rtol=1e-6)
    # The fitted models file holds the same values.
    from gammapy.modeling.models import Models

    written = Models.read(result.products["models"])
    np.testing.assert_allclose(
        written.parameters.free_parameters.value, [p.value for p in reference], rtol=1e-6
    )


def test_residual_maps_and_flux_points_equal_plain_gammapy(result, plain) -> None:
    from gammapy.estimators import FluxPoints

    residuals = read_map(result.products["residuals"])
    np.testing.assert_allclose(residuals.data, plain["residuals"].data, rtol=1e-6, atol=1e-9)
    significance = read_map(result.products["residual_significance"])
    np.testing.assert_allclose(
        significance.data, plain["residual_significance"].data, rtol=1e-6, atol=1e-9
    )
    points = FluxPoints.read(result.products["flux_points"], sed_type="dnde")
    reference = plain["flux_points"]
    np.testing.assert_allclose(points.dnde.data, reference.dnde.data, rtol=1e-6)
    np.testing.assert_allclose(points.dnde_err.data, reference.dnde_err.data, rtol=1e-6)
    assert np.all(points.dnde.data > 0)


def test_ts_map_and_candidates_equal_plain_gammapy(result, plain, data_dir: Path) -> None:
    from astropy.coordinates import SkyCoord
    from astropy.table import Table
    from gammapy.catalog import SourceCatalog3FHL

    ts = read_map(result.products["ts"])
    np.testing.assert_allclose(ts.data, plain["ts"]["ts"].data, rtol=1e-6, atol=1e-9)
    candidates = Table.read(result.products["candidates"], hdu=1)
    peaks = plain["peaks"]
    assert len(candidates) == len(peaks) >= 1
    np.testing.assert_allclose(candidates["ra"], peaks["ra"], rtol=1e-9)
    np.testing.assert_allclose(candidates["value"], peaks["value"], rtol=1e-6)
    # The brightest candidate is MSH 15-52: HGPS and 3FHL name it.
    brightest = SkyCoord(peaks["ra"][0], peaks["dec"][0], unit="deg")
    catalog = SourceCatalog3FHL(str(data_dir / "catalogs" / "fermi" / "gll_psch_v13.fit.gz"))
    separation = catalog.positions.separation(brightest).deg
    nearest = catalog[int(np.argmin(separation))].name
    assert separation.min() < 0.2
    assert candidates["3fhl_name"][0] == nearest
    assert candidates["hgps_name"][0] == MSH_NAME


def test_mask_is_a_hashed_input_and_lineage_reaches_the_runs(result) -> None:
    graph = read_provenance(result.products["residual_significance"])
    names = {a.name for a in graph.activities.values()}
    assert {"exclusion-mask", "map-dataset", "map3d-fit"} <= names
    mask_file = result.products["exclusion_mask"].resolve()
    digest = fits_product_sha256(mask_file).sha256  # the mask's own hash (all but PROVENANCE)
    masks = [e for e in graph.entities.values() if e.location == str(mask_file)]
    assert len(masks) == 1 and masks[0].data_sha256 == digest
    assert masks[0].product_type == "mask"
    # The map-dataset activity used that very entity as its exclusion mask.
    reduction = next(a for a in graph.activities.values() if a.name == "map-dataset")
    assert any(r.entity_id == masks[0].id and r.role == "exclusion_mask" for r in reduction.used)
    used = {e.obs_id for e in graph.entities.values() if e.data_level == "DL3"}
    assert used == {str(r) for r in RUNS}


def test_result_plots_maps_with_the_exclusion_outlined(result) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from astropy.visualization.wcsaxes import WCSAxes

    figure = result.plot()
    axes = [ax for ax in figure.axes if isinstance(ax, WCSAxes)]
    assert [ax.get_title() for ax in axes] == [
        "counts", "residuals (counts - npred)", "residual significance", "sqrt(TS)",
    ]  # fmt: skip
    assert all(ax.collections for ax in axes)  # the mask's contour on every map
    page = result._repr_html_()
    assert "converged" in page and "lon_0" in page and "models_fitted.yaml" in page


# -- the packaged example, as a user runs it -----------------------------------------------
def test_ctanb_run_msh1552_3d_fits_the_published_position(data_dir: Path, tmp_path: Path) -> None:
    from astropy.coordinates import SkyCoord
    from gammapy.modeling.models import Models

    out = tmp_path / "msh"
    done = subprocess.run(
        [sys.executable, "-m", "ctanb", "run", "msh1552_3d", "--out", str(out), "--no-progress"],
        capture_output=True, text=True, env=os.environ.copy(), timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "8 observation(s), 14 product(s)" in done.stdout
    fitted = Models.read(out / "map3d" / "models_fitted.yaml")[MSH_NAME].spatial_model
    published = hgps(data_dir)[MSH_NAME].data
    position = SkyCoord(published["RAJ2000"], published["DEJ2000"])
    assert fitted.position.separation(position).deg < 0.05
    assert 0.03 < fitted.sigma.value < 0.2
    redo = subprocess.run(
        [sys.executable, "-m", "ctanb", "prov", "redo",
         str(out / "map3d" / "residual_significance.fits"), "--out", str(tmp_path / "redo")],
        capture_output=True, text=True, env=os.environ.copy(), timeout=900,
    )  # fmt: skip
    assert "re-ran: exclusion-mask 1.0, map-dataset 1.0, map3d-fit 1.0" in redo.stdout
    assert ": identical" in redo.stdout, redo.stdout + redo.stderr


def test_ctanb_run_gc_3d_cta1dc_fits_two_sources_and_finds_them(
    data_dir: Path, tmp_path: Path
) -> None:
    from astropy.coordinates import SkyCoord
    from astropy.table import Table
    from gammapy.modeling.models import Models

    out = tmp_path / "gc"
    done = subprocess.run(
        [sys.executable, "-m", "ctanb", "run", "gc_3d_cta1dc", "--out", str(out), "--no-progress"],
        capture_output=True, text=True, env=os.environ.copy(), timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    models = Models.read(out / "map3d" / "models_fitted.yaml")
    catalog = hgps(data_dir)
    for name in ("HESS J1745-290", "HESS J1747-281"):
        row = catalog[name].data
        published = SkyCoord(row["RAJ2000"], row["DEJ2000"])
        assert models[name].spatial_model.position.separation(published).deg < 0.05, name
        assert models[name].spectral_model.amplitude.value > 1e-13, name
    candidates = Table.read(out / "map3d" / "candidates.fits", hdu=1)
    assert {"HESS J1745-290", "HESS J1747-281"} <= set(candidates["hgps_name"])


# -- bad input -------------------------------------------------------------------------------
def _failed(name: str) -> list:
    return default_store().activities(name=name, status="failed")


def test_model_outside_the_map_names_it_before_reducing(data_dir: Path, tmp_path: Path) -> None:
    from gammapy.modeling.models import PointSpatialModel, PowerLawSpectralModel, SkyModel

    crab = SkyModel(
        spectral_model=PowerLawSpectralModel(),
        spatial_model=PointSpatialModel(lon_0="83.63 deg", lat_0="22.01 deg", frame="icrs"),
        name="crab",
    )
    models_file = tmp_path / "models.yaml"
    from gammapy.modeling.models import Models

    Models([crab]).write(models_file)
    config = {**CONFIG, "models": {"file": str(models_file)}}
    runs = inputs_from_datastore(data_dir / "hess-dl3-dr1", RUNS[:1])
    with pytest.raises(AnalysisError, match=r"'crab' .* lies outside the map") as caught:
        Map3DStep(config).run(runs, out=tmp_path / "out")
    assert "move or enlarge the map" in str(caught.value)
    # checked first: neither the mask nor the (long) reduction was started
    assert not (tmp_path / "out" / "exclusion_mask.fits").exists()
    assert not (tmp_path / "out" / "map_dataset.fits").exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("components:\n- {name: x, type: SkyModel, spectral: {type: PowerLaw, parameters: [",
         r"line \d+, column \d+"),
        ("components: !!python/object/apply:os.system ['echo owned']\n", "no tags"),
    ],
)  # fmt: skip
def test_unreadable_models_file_is_named_at_once(
    data_dir: Path, tmp_path: Path, text: str, message: str
) -> None:
    models_file = tmp_path / "bad models.yaml"
    models_file.write_text(text)
    config = {**CONFIG, "models": {"file": str(models_file)}}
    runs = inputs_from_datastore(data_dir / "hess-dl3-dr1", RUNS[:1])
    with pytest.raises(ConfigError, match=message) as caught:
        Map3DStep(config).run(runs, out=tmp_path / "out")
    assert str(models_file) in str(caught.value) and "Traceback" not in str(caught.value)
    assert not (tmp_path / "out" / "exclusion_mask.fits").exists()


def test_mask_excluding_everything_is_a_recorded_error(data_dir: Path, tmp_path: Path) -> None:
    before = len(_failed("exclusion-mask"))
    config = {**CONFIG, "exclusion": {"regions": ["icrs;circle(228.53,-59.16,3)"]}}
    runs = inputs_from_datastore(data_dir / "hess-dl3-dr1", RUNS[:1])
    with pytest.raises(
        AnalysisError,
        match=r"excludes the whole map: the user region icrs;circle\(228\.53,-59\.16,3\) alone",
    ):
        Map3DStep(config).run(runs, out=tmp_path)
    assert len(_failed("exclusion-mask")) == before + 1
    together = {**CONFIG, "exclusion": {"catalogs": ["hgps"], "radius": "2 deg"}}
    with pytest.raises(
        AnalysisError,
        match=r"catalog source\(s\) \(.*hgps: HESS J1514-591.*smaller exclusion radius",
    ):
        Map3DStep(together).run(runs, out=tmp_path / "2")


def test_catalog_without_source_in_the_field(data_dir: Path, tmp_path: Path) -> None:
    config = {**CONFIG, "models": {"catalog": "hgps"}, "exclusion": None}
    config["geom"] = {**CONFIG["geom"], "wcs": {**CONFIG["geom"]["wcs"], "skydir": PKS2155}}
    runs = inputs_from_datastore(data_dir / "hess-dl3-dr1", RUNS[:1])
    with pytest.raises(
        AnalysisError, match=r"no H\.E\.S\.S\. HGPS source lies in the map"
    ) as caught:
        Map3DStep(config).run(runs, out=tmp_path)
    assert "models.file" in str(caught.value)


def test_exclusion_with_no_catalog_source_in_the_field_excludes_nothing(tmp_path: Path) -> None:
    from ctanb.analysis.masks import ExclusionMaskStep

    geom = {**CONFIG["geom"], "wcs": {**CONFIG["geom"]["wcs"], "skydir": PKS2155}}
    made = ExclusionMaskStep({"catalogs": ["hgps"], "geom": geom}).run(tmp_path)
    assert made.sources == []
    assert read_map(made.products["exclusion_mask"]).data.all()


def test_unknown_catalog_source_is_named(data_dir: Path, tmp_path: Path) -> None:
    config = {**CONFIG, "models": {"catalog": "hgps", "sources": ["HESS J0000-000"]}}
    runs = inputs_from_datastore(data_dir / "hess-dl3-dr1", RUNS[:1])
    with pytest.raises(ConfigError, match=r"HESS J0000-000 not in the H\.E\.S\.S\. HGPS catalog"):
        Map3DStep(config).run(runs, out=tmp_path)
    assert not (tmp_path / "map_dataset.fits").exists()


def test_fit_that_does_not_converge_keeps_the_dataset(data_dir: Path, tmp_path: Path) -> None:
    before = len(_failed("map3d-fit"))
    config = {**CONFIG, "fit": {"optimize_opts": {"migrad_opts": {"ncall": 5}}}, "ts_map": None}
    runs = inputs_from_datastore(data_dir / "hess-dl3-dr1", RUNS[:1])
    with pytest.raises(AnalysisError, match=r"did not converge.*start from better values"):
        Map3DStep(config).run(runs, out=tmp_path)
    assert (tmp_path / "map_dataset.fits").is_file() and (tmp_path / "models_start.yaml").is_file()
    assert not (tmp_path / "models_fitted.yaml").exists()
    assert len(_failed("map3d-fit")) == before + 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"models": {"catalog": "hgps", "file": "m.yaml"}}, "exactly one of models.file"),
        ({"exclusion": {"regions": ["circle(1,2"]}}, "is not a DS9 region"),
        ({"exclusion": {"catalogs": ["hgpz"]}}, r"exclusion\.catalogs"),
        ({"background": {"method": "ring"}}, "needs background.method: fov_background"),
        ({"modelz": {}}, "modelz"),
        ({"fit": {"optimize_opts": {"bogus_option": 1}}}, "bogus_option is not an option"),
        ({"fit": {"optimize_opts": {"ncall": 3}}}, "ncall is not an option of the minuit"),
        ({"fit": {"optimize_opts": {"migrad_opts": {"ncal": 3}}}}, "migrad_opts"),
        ({"geom": {**CONFIG["geom"], "axes": {"energy": {"min": "10 TeV", "max": "1 TeV",
          "nbins": 2}}}}, r"geom\.axes\.energy: min \(10\.0 TeV\) must be below max"),
        ({"geom": {**CONFIG["geom"], "axes": {"energy": {"min": "nan TeV", "max": "1 TeV",
          "nbins": 2}}}}, r"geom\.axes\.energy\.min: .* positive, finite"),
        ({"geom": {**CONFIG["geom"], "wcs": {**CONFIG["geom"]["wcs"], "binsize": "0.00001 deg"}}},
         r"200000 x 200000 pixels .* larger wcs\.binsize"),
        ({"flux_points": {"energy_edges": {"min": "10 TeV", "max": "1 TeV", "nbins": 2}}},
         r"flux_points: energy_edges: min"),
    ],
)  # fmt: skip
def test_bad_3d_configuration_names_the_key(change: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Map3DConfig.from_dict({**CONFIG, **change})


def test_workflow_section_map3d_round_trips_through_yaml() -> None:
    from ctanb.analysis import EXAMPLES, AnalysisConfig

    config = AnalysisConfig.read(EXAMPLES["msh1552_3d"])
    assert config.sections() == ["map3d"]
    assert AnalysisConfig.from_dict(yaml.safe_load(config.to_yaml())) == config
