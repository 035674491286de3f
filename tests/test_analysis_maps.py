"""Map steps on real data, each compared with the same analysis in plain gammapy.

MSH 15-52 (H.E.S.S. DL3 DR1, FoV background) and the CTA 1DC Galactic-plane runs
(CALDB IRF file, ring background): counts must be identical, background,
exposure and significance equal within the redo tolerances. Bad input (no
observation, missing IRFs, a map outside the field of view) must give a clear
AnalysisError recorded as a failed activity.
"""

from __future__ import annotations

from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits

from ctanb import AnalysisError
from ctanb.analysis import MapConfig, MapDatasetStep, MapStep, inputs_from_datastore
from ctanb.provenance import TOLERANCES, default_store, read_provenance

MSH_RUNS = [20136, 20137, 20282]

MSH_CONFIG = {
    "geom": {
        "wcs": {
            "skydir": {"frame": "icrs", "lon": "228.53 deg", "lat": "-59.16 deg"},
            "binsize": "0.05 deg",
            "width": {"width": "2.5 deg", "height": "2.5 deg"},
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
    "excess_map": {"correlation_radius": "0.1 deg"},
}

GPS_CONFIG = {
    "geom": {
        "wcs": {
            "skydir": {"frame": "galactic", "lon": "0 deg", "lat": "0 deg"},
            "binsize": "0.08 deg",
            "width": {"width": "5 deg", "height": "4 deg"},
            "binsize_irf": "0.4 deg",
        },
        "selection": {"offset_max": "2.5 deg"},
        "axes": {
            "energy": {"min": "1 TeV", "max": "10 TeV", "nbins": 1},
            "energy_true": {"min": "0.5 TeV", "max": "20 TeV", "nbins": 5},
        },
    },
    "background": {"method": "ring", "parameters": {"r_in": "0.6 deg", "width": "0.3 deg"}},
    "safe_mask": {"methods": ["offset-max"], "parameters": {"offset_max": "2.5 deg"}},
    "excess_map": {"correlation_radius": "0.15 deg"},
}


def plain_gammapy_maps(datastore: Path, obs_ids: list[int], background: str) -> tuple:
    """The same map analysis written directly with gammapy (the reference)."""
    from astropy.coordinates import SkyCoord
    from gammapy.data import DataStore
    from gammapy.datasets import MapDataset
    from gammapy.estimators import ExcessMapEstimator
    from gammapy.makers import (
        DatasetsMaker,
        FoVBackgroundMaker,
        MapDatasetMaker,
        RingBackgroundMaker,
        SafeMaskMaker,
    )
    from gammapy.maps import MapAxis, WcsGeom

    observations = DataStore.from_dir(datastore).get_observations(obs_ids)
    if background == "fov":
        skydir = SkyCoord(228.53, -59.16, unit="deg", frame="icrs")
        geom = WcsGeom.create(
            skydir=skydir,
            binsz=0.05,
            width=(2.5, 2.5),
            frame="icrs",
            axes=[MapAxis.from_energy_bounds(1, 10, 2, unit="TeV")],
        )
        true = MapAxis.from_energy_bounds(0.5, 20, 6, unit="TeV", name="energy_true")
        stacked = MapDataset.create(geom, energy_axis_true=true, binsz_irf=0.25, name="stacked")
        safe = SafeMaskMaker(methods=["aeff-default", "offset-max"], offset_max=2.5 * u.deg)
        background_maker = FoVBackgroundMaker()
        radius = 0.1 * u.deg
    else:
        skydir = SkyCoord(0, 0, unit="deg", frame="galactic")
        geom = WcsGeom.create(
            skydir=skydir,
            binsz=0.08,
            width=(5, 4),
            frame="galactic",
            axes=[MapAxis.from_energy_bounds(1, 10, 1, unit="TeV")],
        )
        true = MapAxis.from_energy_bounds(0.5, 20, 5, unit="TeV", name="energy_true")
        stacked = MapDataset.create(geom, energy_axis_true=true, binsz_irf=0.4, name="stacked")
        safe = SafeMaskMaker(methods=["offset-max"], offset_max=2.5 * u.deg)
        background_maker = RingBackgroundMaker(r_in=0.6 * u.deg, width=0.3 * u.deg)
        radius = 0.15 * u.deg
    maker = DatasetsMaker(
        [MapDatasetMaker(selection=["counts", "exposure", "background"]), safe, background_maker],
        stack_datasets=True,
        cutout_width=5 * u.deg,
        n_jobs=1,
    )
    dataset = maker.run(stacked, observations)[0]
    return dataset, ExcessMapEstimator(correlation_radius=radius).run(dataset)


def assert_maps_match(result, dataset, flux_maps) -> None:
    from gammapy.maps import Map

    counts = Map.read(result.products["counts"])
    assert counts.data.sum() > 0
    np.testing.assert_array_equal(counts.data, dataset.counts.data)  # identical
    for name, reference in (("background", dataset.background), ("exposure", dataset.exposure)):
        written = Map.read(result.products[name])
        np.testing.assert_allclose(written.data, reference.data, rtol=TOLERANCES[name])
    significance = Map.read(result.products["significance"])
    np.testing.assert_allclose(
        significance.data, flux_maps["sqrt_ts"].data, rtol=TOLERANCES["significance"], atol=1e-9
    )
    excess = Map.read(result.products["excess"])
    np.testing.assert_allclose(
        excess.data, flux_maps["npred_excess"].data, rtol=TOLERANCES["excess"], atol=1e-9
    )


@pytest.fixture(scope="module")
def msh_result(data_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    runs = inputs_from_datastore(data_dir / "hess-dl3-dr1", MSH_RUNS)
    out = tmp_path_factory.mktemp("msh-maps")
    return MapStep(MapConfig.from_dict(MSH_CONFIG)).run(runs, out=out)


def test_msh1552_maps_equal_plain_gammapy(msh_result, data_dir: Path) -> None:
    dataset, flux_maps = plain_gammapy_maps(data_dir / "hess-dl3-dr1", MSH_RUNS, "fov")
    assert_maps_match(msh_result, dataset, flux_maps)
    assert msh_result.obs_ids == [str(i) for i in MSH_RUNS]
    # MSH 15-52 is detected in three runs.
    assert np.nanmax(msh_result.significance.data) > 4


def test_map_products_carry_provenance_and_obscore_keys(msh_result) -> None:
    for name, path in msh_result.products.items():
        header = fits.getheader(path, 0)
        assert header["PROV_DL"] == "DL4", name
        assert header["PROV_TYP"] == name
        graph = read_provenance(path)
        used = {e.obs_id for e in graph.entities.values() if e.data_level == "DL3"}
        assert used == {str(i) for i in MSH_RUNS}, name
    # The significance map's lineage goes back through the map dataset to the DL3 runs.
    graph = read_provenance(msh_result.products["significance"])
    assert {a.name for a in graph.activities.values()} >= {"map-dataset", "excess-map"}


def test_excess_map_energy_bins_are_the_ones_asked_for_or_said(msh_result, tmp_path) -> None:
    import warnings

    from gammapy.maps import Map

    from ctanb.analysis import EnergyRangeWarning, ExcessMapStep

    # the dataset has edges 1, 3.16 and 10 TeV: 1-10 TeV is used as asked, quietly
    with warnings.catch_warnings():
        warnings.simplefilter("error", EnergyRangeWarning)
        exact = ExcessMapStep({"energy_edges": {"min": "1 TeV", "max": "10 TeV", "nbins": 1}})
        result = exact.run(msh_result.products["dataset"], out=tmp_path / "exact")
    edges = Map.read(result.products["excess"]).geom.axes["energy"].edges.to_value("TeV")
    np.testing.assert_allclose(edges, [1, 10], rtol=1e-12)
    # 2-10 TeV cannot be had from these bins: the step says so and the map states 3.16-10
    shifted = ExcessMapStep({"energy_edges": {"min": "2 TeV", "max": "10 TeV", "nbins": 1}})
    with pytest.warns(EnergyRangeWarning, match=r"\[2, 10\] TeV .* used \[3.162, 10\] TeV"):
        result = shifted.run(msh_result.products["dataset"], out=tmp_path / "shifted")
    edges = Map.read(result.products["excess"]).geom.axes["energy"].edges.to_value("TeV")
    np.testing.assert_allclose(edges, [10**0.5, 10], rtol=1e-12)


def test_cta1dc_ring_maps_equal_plain_gammapy(data_dir: Path, tmp_path: Path) -> None:
    store = data_dir / "cta-1dc" / "index" / "gps"
    runs = inputs_from_datastore(store)
    assert all(run.irf is not None and run.irf.name == "irf_file.fits" for run in runs)
    result = MapStep(MapConfig.from_dict(GPS_CONFIG)).run(runs, out=tmp_path)
    dataset, flux_maps = plain_gammapy_maps(store, [int(r.obs_id) for r in runs], "ring")
    assert_maps_match(result, dataset, flux_maps)
    # Run 111630 points at l=264 deg, far from the map: it is left out, as gammapy does.
    assert result.obs_ids == ["110380", "111140", "111159"]
    # The separate CALDB IRF file is a used entity of the map dataset.
    graph = read_provenance(result.products["counts"])
    assert any((e.location or "").endswith("irf_file.fits") for e in graph.entities.values())


def test_map_result_plots_on_wcsaxes_and_summarises(msh_result) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from astropy.visualization.wcsaxes import WCSAxes

    figure = msh_result.plot()
    axes = [ax for ax in figure.axes if isinstance(ax, WCSAxes)]
    assert [ax.get_title() for ax in axes] == ["counts", "excess", "significance"]
    page = msh_result._repr_html_()
    assert "max significance" in page and "significance.fits" in page


def _failed(name: str) -> list:
    return default_store().activities(name=name, status="failed")


def test_no_observation_is_a_recorded_analysis_error(tmp_path: Path) -> None:
    before = len(_failed("map-dataset"))
    with pytest.raises(AnalysisError, match="no observation selected"):
        MapDatasetStep(MapConfig.from_dict(MSH_CONFIG).dataset_config()).run([], out=tmp_path)
    assert len(_failed("map-dataset")) == before + 1


def test_missing_irfs_is_a_recorded_analysis_error(data_dir: Path, tmp_path: Path) -> None:
    """A DL3 file with events and GTI only, and no separate IRF file."""
    source = data_dir / "hess-dl3-dr1" / "data" / "hess_dl3_dr1_obs_id_020136.fits.gz"
    events_only = tmp_path / "events_only_020136.fits"
    with fits.open(source) as hdus:
        fits.HDUList([hdus[0], hdus["EVENTS"], hdus["GTI"]]).writeto(events_only)
    runs = inputs_from_datastore(data_dir / "hess-dl3-dr1", [20137])
    runs[0] = type(runs[0])("20136", events_only)
    done = tmp_path / "already_made.fits"
    done.write_text("kept")
    with pytest.raises(AnalysisError, match="observation 20136: missing IRFs") as caught:
        MapStep(MapConfig.from_dict(MSH_CONFIG)).run(runs, out=tmp_path)
    assert str(events_only) in str(caught.value)
    assert done.read_text() == "kept"
    failed = _failed("map-dataset")
    assert any("missing IRFs" in (a.message or "") for a in failed)


def test_map_outside_field_of_view_is_a_recorded_analysis_error(
    data_dir: Path, tmp_path: Path
) -> None:
    config = MapConfig.from_dict(MSH_CONFIG)
    config.geom.wcs.skydir.lon = 83.63 * u.deg  # the Crab, 100 deg away from the MSH runs
    config.geom.wcs.skydir.lat = 22.01 * u.deg
    runs = inputs_from_datastore(data_dir / "hess-dl3-dr1", MSH_RUNS[:1])
    with pytest.raises(AnalysisError, match="outside the field of view of every observation"):
        MapStep(config).run(runs, out=tmp_path)
    assert any("field of view" in (a.message or "") for a in _failed("map-dataset"))
    assert not (tmp_path / "counts.fits").exists()


def test_bad_map_configuration_names_the_key() -> None:
    from ctanb import ConfigError

    with pytest.raises(ConfigError, match=r"geom\.wcs\.binsz"):
        MapConfig.from_dict({"geom": {"wcs": {"binsz": 0.02}}})
    ring_two_bins = {**GPS_CONFIG, "geom": MSH_CONFIG["geom"]}
    with pytest.raises(ConfigError, match="ring background needs one energy bin"):
        MapConfig.from_dict(ring_two_bins)


def test_msh1552_example_excludes_hgps_sources_so_its_excess_survives(data_dir, tmp_path):
    """The packaged msh1552_map example (its five runs of 2004-04-14/15, read from the data
    store) normalises the FoV background outside an HGPS exclusion mask, as plain gammapy's
    FoVBackgroundMaker(exclusion_mask=...) does; without the mask the total excess is ~0."""
    import yaml
    from astropy.coordinates import SkyCoord
    from gammapy.catalog import SourceCatalogHGPS
    from gammapy.datasets import MapDataset
    from gammapy.makers import DatasetsMaker, FoVBackgroundMaker, MapDatasetMaker, SafeMaskMaker
    from gammapy.maps import Map, MapAxis, WcsGeom
    from regions import CircleSkyRegion

    from ctanb.analysis import EXAMPLES
    from ctanb.analysis.catalogs import catalog_path

    section = yaml.safe_load(EXAMPLES["msh1552_map"].read_text())["maps"]
    assert section["exclusion"] == {"catalogs": ["hgps"], "radius": "0.4 deg"}
    runs = [20282, 20283, 20301, 20302, 20303]  # the example's time range
    inputs = inputs_from_datastore(data_dir / "hess-dl3-dr1", runs)
    result = MapStep(MapConfig.from_dict(section)).run(inputs, out=tmp_path)

    geom = WcsGeom.create(
        skydir=SkyCoord(228.53, -59.16, unit="deg"),
        binsz=0.04,
        width=(3, 3),
        frame="icrs",
        axes=[MapAxis.from_energy_bounds(1, 10, 1, unit="TeV")],
    )
    positions = SourceCatalogHGPS(catalog_path("hgps")).positions
    mask = ~geom.to_image().region_mask([CircleSkyRegion(p, 0.4 * u.deg) for p in positions])
    np.testing.assert_array_equal(
        Map.read(result.products["exclusion_mask"]).data.astype(bool), mask.data
    )
    true = MapAxis.from_energy_bounds(0.5, 20, 8, unit="TeV", name="energy_true")
    stacked = MapDataset.create(geom, energy_axis_true=true, binsz_irf=0.2, name="stacked")
    observations = _observations(data_dir, runs)
    maker = DatasetsMaker(
        [
            MapDatasetMaker(selection=["counts", "exposure", "background"]),
            SafeMaskMaker(methods=["aeff-default", "offset-max"], offset_max=2.5 * u.deg),
            FoVBackgroundMaker(exclusion_mask=mask),
        ],
        stack_datasets=True,
        cutout_width=5 * u.deg,
        n_jobs=1,
    )
    dataset = maker.run(stacked, observations)[0]
    background = Map.read(result.products["background"])
    np.testing.assert_allclose(background.data, dataset.background.data, rtol=1e-6)
    excess = Map.read(result.products["excess"]).data
    total = float(np.nansum(excess))
    from gammapy.estimators import ExcessMapEstimator

    flux_maps = ExcessMapEstimator(correlation_radius=0.1 * u.deg).run(dataset)
    np.testing.assert_allclose(excess, flux_maps["npred_excess"].data, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(total, float(np.nansum(flux_maps["npred_excess"].data)), rtol=1e-6)
    assert total > 1000, f"total excess {total:.1f}: the source is not absorbed"


def _observations(data_dir, runs):
    from gammapy.data import DataStore

    return DataStore.from_dir(data_dir / "hess-dl3-dr1").get_observations(runs)
