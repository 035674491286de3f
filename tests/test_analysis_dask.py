"""Per-observation reduction on a real dask.distributed LocalCluster gives the same
products as a serial run, shows progress, and reports worker-side errors clearly."""

from __future__ import annotations

from pathlib import Path

import pytest
from astropy.io import fits
from test_analysis_maps import MSH_CONFIG

from ctanb import AnalysisError, ConfigError
from ctanb.analysis import MapConfig, MapStep, ParallelConfig, inputs_from_datastore, parallel
from ctanb.provenance import compare_fits

RUNS = [20136, 20137, 20282, 20283]


@pytest.fixture(scope="module")
def cluster():
    """Two worker processes, as the issue's scaling target."""
    try:
        from distributed import LocalCluster
    except ImportError:
        pytest.fail('dask.distributed is required: pip install "dask[distributed]"')
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as local:
        yield local


@pytest.fixture(scope="module")
def serial_products(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    runs = inputs_from_datastore(data_dir / "hess-dl3-dr1", RUNS)
    out = tmp_path_factory.mktemp("serial")
    return (
        MapStep(MapConfig.from_dict(MSH_CONFIG)).run(runs, out, parallel=ParallelConfig()).products
    )


def assert_identical(products: dict, reference: dict) -> None:
    assert products.keys() == reference.keys()
    for name in reference:
        differences, _ = compare_fits(reference[name], products[name], rtol=0.0)
        # gammapy's MapDataset.write stamps CREATED (the write time) in every header;
        # everything else, data first, must be exactly equal.
        differences = [d for d in differences if " header CREATED:" not in d]
        assert not differences, (name, differences)


def test_dask_client_gives_products_identical_to_serial(
    cluster, serial_products: dict, data_dir: Path, tmp_path: Path, capfd
) -> None:
    from distributed import Client

    runs = inputs_from_datastore(data_dir / "hess-dl3-dr1", RUNS)
    with Client(cluster) as client:
        result = MapStep(MapConfig.from_dict(MSH_CONFIG)).run(runs, tmp_path, parallel=client)
        tasks = client.run_on_scheduler(
            lambda dask_scheduler: sorted(
                k for k in dask_scheduler.task_prefixes if k.startswith("reduce")
            )
        )
    assert tasks, "no reduction task ran on the cluster"
    assert_identical(result.products, serial_products)
    assert result.obs_ids == [str(r) for r in RUNS]  # observation order, not finishing order
    assert "Data reduction" in capfd.readouterr().err  # progress bar


def test_scheduler_address_from_configuration(
    cluster, serial_products: dict, data_dir: Path, tmp_path: Path
) -> None:
    runs = inputs_from_datastore(data_dir / "hess-dl3-dr1", RUNS)
    setting = ParallelConfig(backend="dask", scheduler=cluster.scheduler_address, progress=False)
    with parallel(setting) as client:
        assert client is not None and client.scheduler.address == cluster.scheduler_address
        result = MapStep(MapConfig.from_dict(MSH_CONFIG)).run(runs, tmp_path)
    assert_identical(result.products, serial_products)


def test_worker_error_is_a_clear_analysis_error(cluster, data_dir: Path, tmp_path: Path) -> None:
    source = data_dir / "hess-dl3-dr1" / "data" / "hess_dl3_dr1_obs_id_020137.fits.gz"
    events_only = tmp_path / "no_irf.fits"
    with fits.open(source) as hdus:
        fits.HDUList([hdus[0], hdus["EVENTS"], hdus["GTI"]]).writeto(events_only)
    runs = inputs_from_datastore(data_dir / "hess-dl3-dr1", [20136])
    runs.append(type(runs[0])("20137", events_only))
    setting = ParallelConfig(backend="dask", scheduler=cluster.scheduler_address, progress=False)
    with pytest.raises(AnalysisError, match="observation 20137: missing IRFs"):
        MapStep(MapConfig.from_dict(MSH_CONFIG)).run(runs, tmp_path / "out", parallel=setting)


def test_gateway_without_an_address_is_a_config_error(monkeypatch) -> None:
    import dask

    monkeypatch.delenv("DASK_GATEWAY__ADDRESS", raising=False)
    with dask.config.set({"gateway.address": None}):
        with pytest.raises(ConfigError, match="dask-gateway: No dask-gateway address"):
            with parallel(ParallelConfig(backend="dask", gateway=True)):
                pass


# Two chunks (CHUNK_SIZE observations are stacked per task), with a Crab run off the map.
CHUNKED_RUNS = [20136, 20137, 23523, 20151, 20282, 20283]


def test_chunked_stacking_is_the_same_on_dask_and_serially_and_close_to_gammapy(
    cluster, data_dir: Path, tmp_path: Path
) -> None:
    import numpy as np
    from distributed import Client
    from gammapy.data import DataStore
    from gammapy.makers import DatasetsMaker

    from ctanb.analysis import MapDatasetStep
    from ctanb.analysis.reduce import CHUNK_SIZE

    assert CHUNK_SIZE < len(CHUNKED_RUNS) <= 2 * CHUNK_SIZE
    runs = inputs_from_datastore(data_dir / "hess-dl3-dr1", CHUNKED_RUNS)
    config = MapConfig.from_dict(MSH_CONFIG).dataset_config()
    serial = MapDatasetStep(config).run(runs, tmp_path / "serial", parallel=ParallelConfig())
    with Client(cluster) as client:
        dask = MapDatasetStep(config).run(runs, tmp_path / "dask", parallel=client)
    assert_identical(dask.products, serial.products)
    on_map = ["20136", "20137", "20151", "20282", "20283"]  # in order; the Crab run is not
    assert serial.obs_ids == dask.obs_ids == on_map

    # The same science as gammapy's own one-by-one stacking, up to float32 rounding.
    observations = DataStore.from_dir(data_dir / "hess-dl3-dr1").get_observations(CHUNKED_RUNS)
    cutout = 2 * config.geom.selection.offset_max
    plain = DatasetsMaker(config.makers(), cutout_width=cutout).run(
        config.reference_dataset(), observations
    )[0]
    np.testing.assert_array_equal(serial.dataset.counts.data, plain.counts.data)
    for name in ("background", "exposure"):
        ours, theirs = getattr(serial.dataset, name).data, getattr(plain, name).data
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-9 * theirs.max())
