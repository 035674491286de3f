"""Benchmark of the analysis steps: ctanb step vs the same plain gammapy code, and Dask scaling.

1. Each ctanb step (with its provenance: hashing the DL3 inputs, attaching PROV to the
   FITS products, writing the store) against the same analysis written directly with
   gammapy, on the same runs, interleaved in one process. Target ratio ctanb/gammapy <= 1.03.
2. Map making over all 105 H.E.S.S. DL3 DR1 runs (an all-sky CAR map, 0.5 deg bins, so
   every run contributes) on a 2-worker Dask LocalCluster against serial.
   Target ratio dask/serial <= 0.55 (cluster started and warmed before timing; the
   start-up time is reported separately).

Run: ``.venv/bin/python bench/bench_analysis.py [--quick]``; writes bench/results/analysis.json.
Other steps (spectrum, light curve) plug in through :data:`STEP_BENCHES`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MSH_RUNS = [20136, 20137, 20282, 20283]

MAP_CONFIG = {
    "geom": {
        "wcs": {
            "skydir": {"frame": "icrs", "lon": "228.53 deg", "lat": "-59.16 deg"},
            "binsize": "0.04 deg",
            "width": {"width": "3 deg", "height": "3 deg"},
            "binsize_irf": "0.2 deg",
        },
        "selection": {"offset_max": "2.5 deg"},
        "axes": {
            "energy": {"min": "1 TeV", "max": "10 TeV", "nbins": 2},
            "energy_true": {"min": "0.5 TeV", "max": "20 TeV", "nbins": 8},
        },
    },
    "safe_mask": {
        "methods": ["aeff-default", "offset-max"],
        "parameters": {"offset_max": "2.5 deg"},
    },
}
ALL_SKY = {
    **MAP_CONFIG,
    "geom": {
        "wcs": {
            "skydir": {"frame": "icrs", "lon": "0 deg", "lat": "0 deg"},
            "binsize": "0.5 deg",
            "width": {"width": "360 deg", "height": "180 deg"},
            "binsize_irf": "2 deg",
        },
        "selection": {"offset_max": "2.5 deg"},
        "axes": {
            "energy": {"min": "1 TeV", "max": "10 TeV", "nbins": 1},
            "energy_true": {"min": "0.5 TeV", "max": "20 TeV", "nbins": 3},
        },
    },
}


def hess_dir() -> Path:
    from ctanb._settings import data_dir

    return data_dir(must_exist=True) / "hess-dl3-dr1"


# -- ctanb vs plain gammapy, per step ----------------------------------------------------
def ctanb_map_dataset(out: Path) -> None:
    from ctanb.analysis import MapConfig, MapDatasetStep, inputs_from_datastore

    runs = inputs_from_datastore(hess_dir(), MSH_RUNS)
    config = MapConfig.from_dict(MAP_CONFIG).dataset_config()
    MapDatasetStep(config).run(runs, out, parallel=None)


def gammapy_map_dataset(out: Path) -> None:
    import astropy.units as u
    from astropy.coordinates import SkyCoord
    from gammapy.data import DataStore
    from gammapy.datasets import MapDataset
    from gammapy.makers import DatasetsMaker, FoVBackgroundMaker, MapDatasetMaker, SafeMaskMaker
    from gammapy.maps import MapAxis, WcsGeom

    observations = DataStore.from_dir(hess_dir()).get_observations(MSH_RUNS)
    geom = WcsGeom.create(
        skydir=SkyCoord(228.53, -59.16, unit="deg"),
        binsz=0.04,
        width=(3, 3),
        frame="icrs",
        axes=[MapAxis.from_energy_bounds(1, 10, 2, unit="TeV")],
    )
    true = MapAxis.from_energy_bounds(0.5, 20, 8, unit="TeV", name="energy_true")
    stacked = MapDataset.create(geom, energy_axis_true=true, binsz_irf=0.2, name="stacked")
    makers = [
        MapDatasetMaker(selection=["counts", "exposure", "background"]),
        SafeMaskMaker(methods=["aeff-default", "offset-max"], offset_max=2.5 * u.deg),
        FoVBackgroundMaker(),
    ]
    dataset = DatasetsMaker(makers, cutout_width=5 * u.deg, n_jobs=1).run(stacked, observations)[0]
    dataset.write(out / "map_dataset.fits", overwrite=True)
    dataset.counts.write(out / "counts.fits", overwrite=True)
    dataset.background.write(out / "background.fits", overwrite=True)
    dataset.exposure.write(out / "exposure.fits", overwrite=True)


def ctanb_excess_map(out: Path) -> None:
    from ctanb.analysis import ExcessMapStep

    ExcessMapStep({"correlation_radius": "0.1 deg"}).run(out / "map_dataset.fits", out)


def gammapy_excess_map(out: Path) -> None:
    import astropy.units as u
    from gammapy.datasets import MapDataset
    from gammapy.estimators import ExcessMapEstimator

    dataset = MapDataset.read(out / "map_dataset.fits", name="stacked")
    maps = ExcessMapEstimator(correlation_radius=0.1 * u.deg).run(dataset)
    maps["npred_excess"].write(out / "excess_g.fits", overwrite=True)
    maps["sqrt_ts"].write(out / "significance_g.fits", overwrite=True)


#: name -> (ctanb callable, plain gammapy callable); each takes an output folder. The
#: spectrum / light-curve steps add theirs here (same contract).
STEP_BENCHES: dict[str, tuple[Callable[[Path], None], Callable[[Path], None]]] = {
    "map-dataset": (ctanb_map_dataset, gammapy_map_dataset),
    "excess-map": (ctanb_excess_map, gammapy_excess_map),
}


def bench_steps(repeats: int, work: Path) -> dict:
    out: dict = {}
    gammapy_map_dataset(work)  # warm caches and imports; also the excess step's input
    for name, (ours, theirs) in STEP_BENCHES.items():
        times: dict[str, list[float]] = {"ctanb": [], "gammapy": []}
        for _ in range(repeats):
            for label, func in (("gammapy", theirs), ("ctanb", ours)):
                start = time.perf_counter()
                func(work)
                times[label].append(time.perf_counter() - start)
        best = {k: min(v) for k, v in times.items()}
        out[name] = {
            "ctanb_s": round(best["ctanb"], 4),
            "gammapy_s": round(best["gammapy"], 4),
            "ratio": round(best["ctanb"] / best["gammapy"], 4),
            "median_ratio": round(
                statistics.median(times["ctanb"]) / statistics.median(times["gammapy"]), 4
            ),
            "repeats": repeats,
        }
        print(
            f"{name:12s} ctanb {best['ctanb']:.3f} s  gammapy {best['gammapy']:.3f} s  "
            f"ratio {out[name]['ratio']:.3f} (target <= 1.03)"
        )
    return out


# -- Dask scaling --------------------------------------------------------------------------
def bench_dask(n_runs: int | None, work: Path) -> dict:
    from gammapy.data import DataStore

    from ctanb.analysis import MapConfig, MapDatasetStep, ParallelConfig, inputs_from_datastore
    from ctanb.analysis import parallel as parallel_block

    ids = [int(x) for x in DataStore.from_dir(hess_dir()).obs_table["OBS_ID"]][:n_runs]
    runs = inputs_from_datastore(hess_dir(), ids)
    step = MapDatasetStep(MapConfig.from_dict(ALL_SKY).dataset_config())
    start = time.perf_counter()
    serial = step.run(runs, work / "serial", parallel=ParallelConfig(progress=False))
    t_serial = time.perf_counter() - start
    start = time.perf_counter()
    with parallel_block(ParallelConfig(backend="dask", n_workers=2, progress=False)):
        t_startup = time.perf_counter() - start
        start = time.perf_counter()
        dask = step.run(runs, work / "dask")
        t_dask = time.perf_counter() - start
    import numpy as np

    same = all(
        np.array_equal(getattr(serial.dataset, m).data, getattr(dask.dataset, m).data)
        for m in ("counts", "background", "exposure")
    )
    result = {
        "runs": len(runs),
        "runs_on_map": len(serial.obs_ids),
        "serial_s": round(t_serial, 3),
        "dask_2_workers_s": round(t_dask, 3),
        "cluster_startup_s": round(t_startup, 3),
        "ratio": round(t_dask / t_serial, 4),
        "ratio_with_startup": round((t_dask + t_startup) / t_serial, 4),
        "identical_to_serial": bool(same),
    }
    print(
        f"maps of {len(runs)} runs: serial {t_serial:.2f} s, dask 2 workers {t_dask:.2f} s "
        f"(+{t_startup:.2f} s start-up): ratio {result['ratio']:.3f} (target <= 0.55), "
        f"identical={same}"
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and 20 runs for Dask")
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args()
    repeats = args.repeats or (2 if args.quick else 5)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        os.environ["CTANB_HOME"] = str(work / "home")  # a fresh provenance store
        results = {
            "steps": bench_steps(repeats, work),
            "dask": bench_dask(20 if args.quick else None, work),
            "cpus": os.cpu_count(),
            "load_average_1min": round(os.getloadavg()[0], 2),
            "quick": args.quick,
        }
    path = ROOT / "bench" / "results" / "analysis.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
