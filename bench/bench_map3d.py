"""Benchmark of the 3D analysis: ctanb's Map3DStep vs the same plain gammapy code.

Both run the same analysis of 4 H.E.S.S. MSH 15-52 runs (2.5 x 2.5 deg at 0.04 deg,
3 energy bins, PSF and energy dispersion), interleaved in one process (gammapy, ctanb,
gammapy, ...) so machine load hits both, median of the repeats:

- *gammapy*: the exclusion mask from the HGPS sources in the field (0.4 deg circles),
  DataStore -> DatasetsMaker (MapDatasetMaker, SafeMaskMaker, FoVBackgroundMaker with
  the mask, 5 deg cut-outs), a Gaussian + power law at the HGPS position plus a FoV
  background norm, Fit, residual maps, flux points (2 bins); writes the mask, the
  dataset, counts/background/exposure, the fitted models, residual maps and flux points.
- *ctanb*: Map3DStep with the same configuration, writing the same files plus the
  starting models, the parameter table and the provenance of every product
  (``exclusion-mask``, ``map-dataset``, ``map3d-fit`` activities; SQLite store).

Target ratio ctanb/gammapy <= 1.03. The peak Python memory (tracemalloc) of one run
of each is reported too, and the process's peak resident set size.

Run: ``.venv/bin/python bench/bench_map3d.py [--quick]``; writes bench/results/map3d.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = [20136, 20137, 20282, 20283]
NAME = "HESS J1514-591"

CONFIG = {
    "geom": {
        "wcs": {
            "skydir": {"frame": "icrs", "lon": "228.53 deg", "lat": "-59.16 deg"},
            "binsize": "0.04 deg",
            "width": {"width": "2.5 deg", "height": "2.5 deg"},
            "binsize_irf": "0.25 deg",
        },
        "selection": {"offset_max": "2.5 deg"},
        "axes": {
            "energy": {"min": "1 TeV", "max": "10 TeV", "nbins": 3},
            "energy_true": {"min": "0.5 TeV", "max": "20 TeV", "nbins": 8},
        },
    },
    "safe_mask": {
        "methods": ["aeff-default", "offset-max"],
        "parameters": {"offset_max": "2.5 deg"},
    },
    "exclusion": {"catalogs": ["hgps"], "radius": "0.4 deg"},
    "models": {"catalog": "hgps", "sources": [NAME], "spatial": "gaussian", "size": "0.1 deg"},
    "flux_points": {"energy_edges": {"min": "1 TeV", "max": "10 TeV", "nbins": 3}},
}


def data_dir() -> Path:
    from ctanb._settings import data_dir as _data_dir

    return _data_dir(must_exist=True)


def ctanb_map3d(out: Path) -> None:
    from ctanb.analysis import inputs_from_datastore
    from ctanb.analysis.map3d import Map3DStep

    runs = inputs_from_datastore(data_dir() / "hess-dl3-dr1", RUNS)
    Map3DStep(CONFIG).run(runs, out=out)


def gammapy_map3d(out: Path) -> None:
    import astropy.units as u
    import numpy as np
    from astropy.coordinates import SkyCoord
    from gammapy.catalog import SourceCatalogHGPS
    from gammapy.data import DataStore
    from gammapy.datasets import MapDataset
    from gammapy.estimators import ExcessMapEstimator, FluxPointsEstimator
    from gammapy.makers import DatasetsMaker, FoVBackgroundMaker, MapDatasetMaker, SafeMaskMaker
    from gammapy.maps import Map, MapAxis, WcsGeom
    from gammapy.modeling import Fit
    from gammapy.modeling.models import (
        FoVBackgroundModel,
        GaussianSpatialModel,
        PowerLawSpectralModel,
        SkyModel,
    )
    from regions import CircleSkyRegion

    centre = SkyCoord(228.53, -59.16, unit="deg", frame="icrs")
    energy = MapAxis.from_energy_bounds(1, 10, 3, unit="TeV")
    geom = WcsGeom.create(skydir=centre, binsz=0.04, width=(2.5, 2.5), frame="icrs", axes=[energy])
    true = MapAxis.from_energy_bounds(0.5, 20, 8, unit="TeV", name="energy_true")
    stacked = MapDataset.create(geom, energy_axis_true=true, binsz_irf=0.25, name="stacked")
    catalog = SourceCatalogHGPS(str(data_dir() / "catalogs" / "hgps_catalog_v1.fits.gz"))
    near = catalog.positions.separation(centre).deg < 3
    regions = [CircleSkyRegion(p, 0.4 * u.deg) for p in catalog.positions[near]]
    exclusion = ~geom.to_image().region_mask(regions)
    Map.from_geom(exclusion.geom, data=exclusion.data.astype(np.uint8)).write(
        out / "exclusion_mask.fits", overwrite=True
    )
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
    observations = DataStore.from_dir(data_dir() / "hess-dl3-dr1").get_observations(RUNS)
    dataset = maker.run(stacked, observations)[0]
    dataset.write(out / "map_dataset.fits", overwrite=True)
    for name in ("counts", "background", "exposure"):
        getattr(dataset, name).write(out / f"{name}.fits", overwrite=True)
    source = catalog[NAME]
    ra, dec = source.data["RAJ2000"], source.data["DEJ2000"]
    spatial = GaussianSpatialModel(lon_0=ra, lat_0=dec, sigma=0.1 * u.deg, frame="icrs")
    spatial.lon_0.min, spatial.lon_0.max = ra.value - 0.5, ra.value + 0.5
    spatial.lat_0.min, spatial.lat_0.max = dec.value - 0.5, dec.value + 0.5
    spatial.sigma.min, spatial.sigma.max = 0.005, 1.0
    spectral = PowerLawSpectralModel(index=2.3, amplitude="1e-12 cm-2 s-1 TeV-1")
    model = SkyModel(spectral_model=spectral, spatial_model=spatial, name=NAME)
    dataset.models = [model, FoVBackgroundModel(dataset_name="stacked")]
    Fit().run([dataset])
    dataset.models.write(out / "models_fitted.yaml", overwrite=True, write_covariance=False)
    dataset.residuals(method="diff").sum_over_axes(keepdims=False).write(
        out / "residuals.fits", overwrite=True
    )
    ExcessMapEstimator(correlation_radius=0.1 * u.deg, selection_optional=[]).run(dataset)[
        "sqrt_ts"
    ].write(out / "residual_significance.fits", overwrite=True)
    edges = MapAxis.from_energy_bounds(1, 10, 3, unit="TeV").edges
    FluxPointsEstimator(energy_edges=edges, source=NAME, selection_optional=[]).run(
        [dataset]
    ).write(out / "flux_points.fits", sed_type="dnde", format="gadf-sed", overwrite=True)


def timed(func, out: Path) -> float:
    start = time.perf_counter()
    func(out)
    return time.perf_counter() - start


def peak_memory(func, out: Path) -> float:
    """Peak Python allocations (MB) of one call, by tracemalloc."""
    tracemalloc.start()
    try:
        func(out)
        return tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 repeats instead of 5")
    args = parser.parse_args()
    repeats = 2 if args.quick else 5
    import os

    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        os.environ.setdefault("CTANB_HOME", str(work / "home"))
        for name, func in (("gammapy", gammapy_map3d), ("ctanb", ctanb_map3d)):
            (work / name).mkdir()
            func(work / name)  # warm-up: imports, catalog, file caches
        times: dict[str, list[float]] = {"gammapy": [], "ctanb": []}
        for _ in range(repeats):
            times["gammapy"].append(timed(gammapy_map3d, work / "gammapy"))
            times["ctanb"].append(timed(ctanb_map3d, work / "ctanb"))
        median = {k: statistics.median(v) for k, v in times.items()}
        pairs = [c / g for g, c in zip(times["gammapy"], times["ctanb"], strict=True)]
        memory = {
            "gammapy": peak_memory(gammapy_map3d, work / "gammapy"),
            "ctanb": peak_memory(ctanb_map3d, work / "ctanb"),
        }
    result = {
        "runs": RUNS,
        "repeats": repeats,
        "seconds": {k: [round(t, 3) for t in v] for k, v in times.items()},
        "median_seconds": {k: round(v, 3) for k, v in median.items()},
        "ratio": round(median["ctanb"] / median["gammapy"], 4),
        "median_pair_ratio": round(statistics.median(pairs), 4),
        "target": 1.03,
        "peak_python_mb": {k: round(v, 1) for k, v in memory.items()},
        "memory_ratio": round(memory["ctanb"] / memory["gammapy"], 3),
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    print(
        f"map3d: gammapy {median['gammapy']:.2f} s, ctanb {median['ctanb']:.2f} s, ratio "
        f"{result['ratio']:.3f} (median of pairs {result['median_pair_ratio']:.3f}) target <= 1.03"
    )
    print(
        f"peak Python memory: gammapy {memory['gammapy']:.0f} MB, ctanb {memory['ctanb']:.0f} MB; "
        f"process max RSS {result['max_rss_mb']:.0f} MB"
    )
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    (results / "map3d.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
