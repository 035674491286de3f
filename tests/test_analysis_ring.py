"""Ring background on the stacked dataset with an exclusion mask (CTA 1DC Galactic centre),
compared with the same analysis written directly in gammapy, and detection (TS map +
peaks) on its own as the ``detection`` step."""

from __future__ import annotations

from pathlib import Path

import astropy.units as u
import numpy as np
import pytest

from ctanb import ConfigError
from ctanb.analysis import inputs_from_datastore
from ctanb.analysis.ring import RingMapConfig, RingMapStep
from ctanb.provenance import read_provenance

GC_CONFIG = {
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
    "exclusion": {"catalogs": ["hgps"], "radius": "0.3 deg"},
    "excess_map": {"correlation_radius": "0.15 deg"},
}


def plain_gammapy_ring(data_dir: Path, obs_ids: list[int], exclude: bool) -> tuple:
    """Stack with the IRF background, then the ring on the stacked image (gammapy)."""
    from astropy.coordinates import SkyCoord
    from gammapy.catalog import SourceCatalogHGPS
    from gammapy.data import DataStore
    from gammapy.datasets import MapDataset
    from gammapy.estimators import ExcessMapEstimator
    from gammapy.makers import DatasetsMaker, MapDatasetMaker, RingBackgroundMaker, SafeMaskMaker
    from gammapy.maps import MapAxis, WcsGeom
    from regions import CircleSkyRegion

    centre = SkyCoord(0, 0, unit="deg", frame="galactic")
    energy = MapAxis.from_energy_bounds(1, 10, 1, unit="TeV")
    geom = WcsGeom.create(skydir=centre, binsz=0.08, width=(5, 4), frame="galactic", axes=[energy])
    true = MapAxis.from_energy_bounds(0.5, 20, 5, unit="TeV", name="energy_true")
    stacked = MapDataset.create(geom, energy_axis_true=true, binsz_irf=0.4, name="stacked")
    maker = DatasetsMaker(
        [
            MapDatasetMaker(selection=["counts", "exposure", "background"]),
            SafeMaskMaker(methods=["offset-max"], offset_max=2.5 * u.deg),
        ],
        stack_datasets=True,
        cutout_width=5 * u.deg,
        n_jobs=1,
    )
    observations = DataStore.from_dir(data_dir / "cta-1dc" / "index" / "gps").get_observations(
        obs_ids
    )
    dataset = maker.run(stacked, observations)[0]
    exclusion = None
    if exclude:
        catalog = SourceCatalogHGPS(str(data_dir / "catalogs" / "hgps_catalog_v1.fits.gz"))
        near = catalog.positions.separation(centre).deg < 4
        regions = [CircleSkyRegion(p, 0.3 * u.deg) for p in catalog.positions[near]]
        exclusion = ~geom.to_image().region_mask(regions)
    ring = RingBackgroundMaker(r_in=0.6 * u.deg, width=0.3 * u.deg, exclusion_mask=exclusion)
    on_off = ring.run(dataset.to_image())
    flux_maps = ExcessMapEstimator(correlation_radius=0.15 * u.deg).run(on_off)
    return on_off, flux_maps, exclusion


@pytest.fixture(scope="module")
def gc(data_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    runs = inputs_from_datastore(data_dir / "cta-1dc" / "index" / "gps")
    result = RingMapStep(RingMapConfig.from_dict(GC_CONFIG)).run(
        runs, out=tmp_path_factory.mktemp("ring")
    )
    return result, [int(r) for r in result.obs_ids]


def test_ring_on_the_stack_with_exclusion_equals_plain_gammapy(gc, data_dir: Path) -> None:
    from gammapy.datasets import MapDatasetOnOff
    from gammapy.maps import Map

    result, obs_ids = gc
    assert obs_ids == [110380, 111140, 111159]  # run 111630 points far away
    on_off, flux_maps, exclusion = plain_gammapy_ring(data_dir, obs_ids, exclude=True)
    mask = Map.read(result.products["exclusion_mask"])
    np.testing.assert_array_equal(mask.data.astype(bool), exclusion.data)
    written = MapDatasetOnOff.read(result.products["onoff_dataset"])
    np.testing.assert_array_equal(written.counts.data, on_off.counts.data)
    np.testing.assert_allclose(written.counts_off.data, on_off.counts_off.data, rtol=1e-6)
    np.testing.assert_allclose(written.alpha.data, on_off.alpha.data, rtol=1e-6)
    for name, key in (("excess", "npred_excess"), ("significance", "sqrt_ts")):
        ours = Map.read(result.products[name])
        np.testing.assert_allclose(ours.data, flux_maps[key].data, rtol=1e-6, atol=1e-9)
    # The off counts are those of the stack: far more than the on counts.
    assert written.counts_off.data.sum() > 5 * written.counts.data.sum()
    # The Galactic centre is detected.
    assert np.nanmax(result.significance.data) > 10


def test_exclusion_brings_the_off_source_significance_towards_zero(gc, data_dir: Path) -> None:
    """Without the mask, known sources leak into the rings and bias the background up."""
    from gammapy.maps import Map

    result, obs_ids = gc
    _, unmasked, _ = plain_gammapy_ring(data_dir, obs_ids, exclude=False)
    used = Map.read(result.products["exclusion_mask"]).data.astype(bool)
    with_mask = result.significance.data[0]
    without = unmasked["sqrt_ts"].data[0]
    off_source = used & np.isfinite(with_mask) & np.isfinite(without)
    mean_with, mean_without = np.mean(with_mask[off_source]), np.mean(without[off_source])
    assert abs(mean_with) < abs(mean_without), (mean_with, mean_without)


def test_ring_products_record_the_mask_and_the_stack(gc) -> None:
    result, _ = gc
    graph = read_provenance(result.products["significance"])
    assert {"exclusion-mask", "map-dataset", "ring-background"} <= {
        a.name for a in graph.activities.values()
    }
    ring = next(a for a in graph.activities.values() if a.name == "ring-background")
    roles = {r.role for r in ring.used}
    assert {"dataset_file", "exclusion_files"} <= roles


def test_ring_map_needs_the_ring_method() -> None:
    with pytest.raises(ConfigError, match=r"background\.method: ring"):
        RingMapConfig.from_dict({**GC_CONFIG, "background": {"method": "fov_background"}})


def test_detection_section_finds_msh1552_and_names_it(data_dir: Path, tmp_path: Path) -> None:
    """``detection:`` in a ctanb run configuration: reduction with the mask, TS map, peaks."""
    from astropy.table import Table

    from ctanb.analysis import Workflow

    geom = {
        "wcs": {
            "skydir": {"frame": "icrs", "lon": "228.53 deg", "lat": "-59.16 deg"},
            "binsize": "0.05 deg",
            "width": {"width": "2 deg", "height": "2 deg"},
            "binsize_irf": "0.25 deg",
        },
        "selection": {"offset_max": "2.5 deg"},
        "axes": {
            "energy": {"min": "1 TeV", "max": "10 TeV", "nbins": 1},
            "energy_true": {"min": "0.5 TeV", "max": "20 TeV", "nbins": 4},
        },
    }
    detection = {
        "geom": geom,
        "exclusion": {"catalogs": ["hgps"], "radius": "0.4 deg"},
        "ts_map": {"kernel": "gaussian", "kernel_size": "0.1 deg", "threshold": 5},
    }
    observations = {
        "datastore": {"path": str(data_dir / "hess-dl3-dr1"), "obs_ids": [20136, 20282]}
    }
    config = {"name": "detect", "observations": observations, "detection": detection}
    result = Workflow(config).run(out=tmp_path / "a", progress=False)["detection"]
    candidates = Table.read(result.products["candidates"], hdu=1)
    assert candidates["hgps_name"][0] == "HESS J1514-591"
    assert candidates["value"][0] == pytest.approx(np.nanmax(result.sqrt_ts.data), rel=1e-6)
    # A threshold nothing reaches: an empty candidate table, still written and readable.
    detection["ts_map"]["threshold"] = 1000
    empty = Workflow(config).run(out=tmp_path / "b", progress=False)["detection"]
    none = Table.read(empty.products["candidates"], hdu=1)
    assert len(none) == 0 and {"ra", "dec", "hgps_name", "3fhl_sep"} <= set(none.colnames)


def test_map_step_fov_background_with_catalog_exclusion_equals_plain_gammapy(
    data_dir: Path, tmp_path: Path
) -> None:
    """``maps: exclusion:`` — the FoV normalisation ignores MSH 15-52, so its excess stays."""
    from astropy.coordinates import SkyCoord
    from gammapy.catalog import SourceCatalogHGPS
    from gammapy.data import DataStore
    from gammapy.datasets import MapDataset
    from gammapy.estimators import ExcessMapEstimator
    from gammapy.makers import DatasetsMaker, FoVBackgroundMaker, MapDatasetMaker, SafeMaskMaker
    from gammapy.maps import Map, MapAxis, WcsGeom
    from regions import CircleSkyRegion
    from test_analysis_maps import MSH_CONFIG, MSH_RUNS

    from ctanb.analysis import MapConfig, MapStep

    config = MapConfig.from_dict({**MSH_CONFIG, "exclusion": {"catalogs": ["hgps"]}})
    runs = inputs_from_datastore(data_dir / "hess-dl3-dr1", MSH_RUNS)
    result = MapStep(config).run(runs, out=tmp_path)

    centre = SkyCoord(228.53, -59.16, unit="deg", frame="icrs")
    energy = MapAxis.from_energy_bounds(1, 10, 2, unit="TeV")
    geom = WcsGeom.create(skydir=centre, binsz=0.05, width=(2.5, 2.5), frame="icrs", axes=[energy])
    true = MapAxis.from_energy_bounds(0.5, 20, 6, unit="TeV", name="energy_true")
    catalog = SourceCatalogHGPS(str(data_dir / "catalogs" / "hgps_catalog_v1.fits.gz"))
    near = catalog.positions.separation(centre).deg < 3
    exclusion = ~geom.to_image().region_mask(
        [CircleSkyRegion(p, 0.3 * u.deg) for p in catalog.positions[near]]
    )
    results = {}
    for name, mask in (("masked", exclusion), ("unmasked", None)):
        stacked = MapDataset.create(geom, energy_axis_true=true, binsz_irf=0.25, name="stacked")
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
        observations = DataStore.from_dir(data_dir / "hess-dl3-dr1").get_observations(MSH_RUNS)
        dataset = maker.run(stacked, observations)[0]
        results[name] = ExcessMapEstimator(correlation_radius=0.1 * u.deg).run(dataset)
    np.testing.assert_array_equal(
        Map.read(result.products["exclusion_mask"]).data.astype(bool), exclusion.data
    )
    for product, key in (("excess", "npred_excess"), ("significance", "sqrt_ts")):
        ours = Map.read(result.products[product])
        np.testing.assert_allclose(ours.data, results["masked"][key].data, rtol=1e-6, atol=1e-9)
    # Without the mask the FoV normalisation absorbs the source; with it, the excess remains.
    with_mask = float(np.nansum(result.excess.data))
    without = float(np.nansum(results["unmasked"]["npred_excess"].data))
    assert with_mask > without + 50, (with_mask, without)


def test_ctanb_run_gc_ring_example_then_redo_is_identical(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    def ctanb(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "ctanb", *args],
            capture_output=True, text=True, env=os.environ.copy(), timeout=900,
        )  # fmt: skip

    out = tmp_path / "gc"
    done = ctanb("run", "gc_ring_cta1dc", "--out", str(out), "--no-progress")
    assert done.returncode == 0, done.stderr
    assert "8 product(s)" in done.stdout
    redo = ctanb(
        "prov", "redo", str(out / "ring_map" / "significance.fits"), "--out", str(tmp_path / "r")
    )
    for activity in ("exclusion-mask 1.0", "map-dataset 1.0", "ring-background 1.0"):
        assert activity in redo.stdout, redo.stdout + redo.stderr
    assert ": identical" in redo.stdout, redo.stdout + redo.stderr
