"""Per-observation data reduction, serial or on a Dask cluster, with identical results.

The unit of work is gammapy's own :meth:`gammapy.makers.DatasetsMaker.make_dataset`
(cut the reference dataset out around the pointing, then run the makers); this
module only decides *where* each observation is reduced and stacks the results
**in observation order**, so that a Dask run gives the same floating-point sums
as a serial one. Beyond :data:`CHUNK_SIZE` observations the stacking is a fixed
two-level tree: consecutive chunks of :data:`CHUNK_SIZE` observations are each
stacked where they are reduced (a worker), then the chunks in order; serial runs
follow the same tree, so the sums are the same wherever they run, and a worker
sends back one dataset per chunk instead of one per observation.

Where reduction runs is a runtime choice, not part of a step's configuration
(a product must not depend on it, and ``ctanb prov redo`` replays serially)::

    from ctanb.analysis import ParallelConfig, MapDatasetStep
    with parallel(ParallelConfig(backend="dask", n_workers=2)):
        result = MapDatasetStep(config).run(inputs, out="maps/")

or ``step.run(inputs, out=..., parallel=ParallelConfig(...))`` /
``parallel=distributed.Client(...)``.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .._errors import AnalysisError, ConfigError, CtanbError, ServiceError
from ._base import StepConfig

__all__ = [
    "CHUNK_SIZE",
    "ObservationReduction",
    "ParallelConfig",
    "current_executor",
    "parallel",
    "reduce_and_stack",
    "reduce_chunk",
    "reduce_observation",
    "reduce_observations",
    "stack_in_order",
]

log = logging.getLogger(__name__)

#: Observations stacked together by one task (see the module docstring). Part of the
#: result's definition (the order of the floating-point sums), not of the executor.
CHUNK_SIZE = 4


class ParallelConfig(StepConfig):
    """Where per-observation reduction runs.

    Parameters
    ----------
    backend : {"serial", "dask"}
        ``serial`` runs in this process; ``dask`` on a dask.distributed cluster.
    scheduler : str, optional
        Address of a running scheduler (``tcp://host:8786``); default: start a
        ``LocalCluster`` of ``n_workers`` processes for the duration of the run.
    gateway : bool
        Ask dask-gateway (its configured default address) for a cluster of
        ``n_workers`` workers instead.
    n_workers, threads_per_worker : int
        Size of a LocalCluster or gateway cluster.
    progress : bool
        Show a progress bar (tqdm, notebook-aware).
    """

    backend: Literal["serial", "dask"] = "serial"
    scheduler: str | None = None
    gateway: bool = False
    n_workers: int = 2
    threads_per_worker: int = 1
    progress: bool = True


@dataclass
class _Executor:
    client: Any = None  # a distributed.Client, or None for serial
    progress: bool = True


_EXECUTOR: contextvars.ContextVar[_Executor | None] = contextvars.ContextVar(
    "ctanb_executor", default=None
)


def current_executor() -> tuple[Any, bool]:
    """(dask client or None, progress flag) of the innermost :func:`parallel` block."""
    executor = _EXECUTOR.get()
    return (executor.client, executor.progress) if executor else (None, True)


@contextlib.contextmanager
def parallel(setting: ParallelConfig | Any | None = None) -> Iterator[Any]:
    """Run the reductions inside the block on the executor that *setting* names.

    Parameters
    ----------
    setting : ParallelConfig, distributed.Client or None
        None keeps the current executor (serial by default); a Client is used
        as is; a ParallelConfig starts (and afterwards closes) what it names.

    Yields
    ------
    distributed.Client or None
    """
    if setting is None:
        yield current_executor()[0]
        return
    if not isinstance(setting, ParallelConfig):  # a ready distributed.Client
        token = _EXECUTOR.set(_Executor(setting, current_executor()[1]))
        try:
            yield setting
        finally:
            _EXECUTOR.reset(token)
        return
    with contextlib.ExitStack() as stack:
        client = _start_client(setting, stack) if setting.backend == "dask" else None
        token = _EXECUTOR.set(_Executor(client, setting.progress))
        stack.callback(_EXECUTOR.reset, token)
        yield client


def _start_client(config: ParallelConfig, stack: contextlib.ExitStack) -> Any:
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ConfigError(
            'backend "dask" needs dask.distributed: pip install "dask[distributed]"'
        ) from None
    if config.scheduler:
        try:
            return stack.enter_context(Client(config.scheduler, timeout="20s"))
        except OSError as exc:
            raise ConfigError(
                f"cannot reach the Dask scheduler {config.scheduler}: {exc}"
            ) from None
    if config.gateway:
        return _start_gateway_client(config, stack)
    # One BLAS thread per worker: the workers already use the cores.
    env = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    cluster = stack.enter_context(
        LocalCluster(
            n_workers=config.n_workers,
            threads_per_worker=config.threads_per_worker,
            processes=True,
            dashboard_address=None,
            env=env,
        )
    )
    client = stack.enter_context(Client(cluster))
    client.run(_warm_up)  # import gammapy once per worker, not inside the first tasks
    return client


_GATEWAY_WORKER_WAIT_S = 300.0


def _start_gateway_client(config: ParallelConfig, stack: contextlib.ExitStack) -> Any:
    """A client of a new dask-gateway cluster of ``n_workers`` workers (stopped on exit)."""
    try:
        import aiohttp
        from dask_gateway import GatewayCluster, GatewayClusterError, GatewayServerError
    except ImportError:
        raise ConfigError("gateway: true needs dask-gateway: pip install dask-gateway") from None
    try:
        cluster = stack.enter_context(GatewayCluster(shutdown_on_close=True))
    except ValueError as exc:  # no address configured, or no gateway API at that address
        raise ConfigError(f"dask-gateway: {exc}") from None
    except (OSError, aiohttp.ClientError, GatewayClusterError, GatewayServerError) as exc:
        import dask

        address = dask.config.get("gateway.address", None)
        raise ServiceError(f"dask-gateway at {address} gave no cluster: {exc}") from None
    cluster.scale(config.n_workers)
    client = stack.enter_context(cluster.get_client())
    # The gateway starts workers after answering: wait for them, so that the reference
    # dataset reaches every worker once and the observations spread over all of them.
    try:
        client.wait_for_workers(config.n_workers, timeout=_GATEWAY_WORKER_WAIT_S)
    except TimeoutError:
        if not client.scheduler_info()["workers"]:
            raise ServiceError(
                f"dask-gateway cluster {cluster.name}: no worker started within "
                f"{_GATEWAY_WORKER_WAIT_S:.0f} s (see the gateway's log)"
            ) from None
        log.warning("dask-gateway cluster %s: going on with fewer workers", cluster.name)
    client.run(_warm_up)
    return client


def _warm_up() -> None:
    import gammapy.data
    import gammapy.makers  # noqa: F401


@dataclass
class ObservationReduction:
    """One observation reduced: the cut-out dataset (None when outside the map, or when
    it was stacked into its chunk already), whether it is on the map, and the offset of
    its pointing from the map centre."""

    obs_id: str
    dataset: Any
    target_offset_deg: float
    on_map: bool = True


def _headers(path: Path) -> list[tuple[str, Any]] | None:
    """(name, header) of each extension HDU, from provenance's cached byte scan of the
    file (the step has just hashed it), or None when astropy must read the headers."""
    from ..provenance._hashing import _UNPARSED, scan_file

    try:
        layout = scan_file(path).layout
    except CtanbError:
        return None
    keys = ("HDUCLAS1", "HDUCLAS2", "HDUCLAS3", "HDUCLAS4", "OBS_ID")
    if layout is None or any(h.cards.get(k) is _UNPARSED for h in layout for k in keys):
        return None
    return [(hdu.name, hdu.cards) for hdu in layout[1:]]


def _hdu_locations(path: Path) -> tuple[dict[str, Any], dict[str, Any], bool]:
    """HDULocations (not loaded) of the events/GTI and of the IRFs in a GADF file."""
    from astropy.io import fits
    from gammapy.irf.io import UnknownHDUClass, _get_hdu_type_and_class
    from gammapy.utils.fits import HDULocation

    data, irfs, point_like = {}, {}, False
    headers = _headers(path)
    if headers is None:
        with fits.open(path, memmap=False) as hdus:
            headers = [(hdu.name, hdu.header) for hdu in hdus[1:]]
    for name, header in headers:
        kind = str(header.get("HDUCLAS1", "")).lower()
        if name in ("EVENTS", "GTI") and kind not in ("events", "gti"):
            kind = name.lower()  # CTA 1DC files name them without HDUCLAS1
        where = {"hdu_name": name, "file_dir": path.parent, "file_name": path.name}
        if kind in ("events", "gti") and kind not in data:
            data[kind] = HDULocation(hdu_class=kind, **where)
        elif kind == "response":
            point_like |= header.get("HDUCLAS3") == "POINT-LIKE"
            try:
                hdu_type, hdu_class = _get_hdu_type_and_class(header)
            except UnknownHDUClass:
                continue
            irfs.setdefault(hdu_type, HDULocation(hdu_class=hdu_class, **where))
    return data, irfs, point_like


def _read_observation(event_file: str, irf_file: str | None) -> Any:
    """The observation of a DL3 file, its IRFs loaded lazily (as a gammapy DataStore does):
    a map needs neither the PSF nor the energy dispersion unless selected."""
    from copy import copy

    from gammapy.data import Observation

    events = Path(event_file)
    try:
        data, irfs, point_like = _hdu_locations(events)
        if irf_file is not None:
            _, irfs, point_like = _hdu_locations(Path(irf_file))
        if "events" not in data or "gti" not in data:
            raise AnalysisError(f"{event_file} is not a GADF DL3 file: no EVENTS or GTI HDU")
        if "aeff" not in irfs:
            where = (
                f"the IRF file {irf_file}"
                if irf_file
                else f"{event_file} (and no separate IRF file)"
            )
            obs_id = fits_obs_id(events)
            raise AnalysisError(
                f"observation {obs_id}: missing IRFs: {where} has no effective area "
                "(EFFECTIVE AREA HDU); give the IRF file (DataLink #calibration, or the CALDB file)"
            )
        if point_like and "rad_max" not in irfs:
            return Observation.read(event_file, irf_file=irf_file)  # gammapy derives RAD_MAX
        pointing, meta = copy(data["events"]), copy(data["events"])
        pointing.hdu_class, meta.hdu_class = "pointing", "observation_metadata"
        return Observation(obs_id=fits_obs_id(events), pointing=pointing, meta=meta, **data, **irfs)
    except (OSError, KeyError, ValueError) as exc:
        raise AnalysisError(f"cannot read the DL3 observation {event_file}: {exc}") from None


def fits_obs_id(path: Path) -> int:
    """OBS_ID of the EVENTS header of a DL3 file."""
    from astropy.io import fits

    for name, header in _headers(Path(path)) or []:
        if name == "EVENTS" and isinstance(header.get("OBS_ID"), int):
            return header["OBS_ID"]
    return int(fits.getval(path, "OBS_ID", extname="EVENTS"))


def reduce_observation(
    reference: Any,
    makers: Sequence[Any],
    cutout_width: Any,
    event_file: str,
    irf_file: str | None,
) -> ObservationReduction:
    """Reduce one DL3 observation onto a cut-out of *reference* with gammapy's makers.

    This is what each Dask task runs; it is a plain function so workers can import it.
    """
    from gammapy.makers import DatasetsMaker

    observation = _read_observation(event_file, irf_file)
    pointing = observation.get_pointing_icrs(observation.tmid)
    offset = float(pointing.separation(reference.counts.geom.center_skydir).deg)
    chain = DatasetsMaker(list(makers), stack_datasets=True, cutout_width=cutout_width)
    dataset = chain.make_dataset(reference, observation)
    return ObservationReduction(str(observation.obs_id), dataset, offset, dataset is not None)


def reduce_chunk(
    reference: Any,
    makers: Sequence[Any],
    cutout_width: Any,
    files: Sequence[tuple[str, str | None]],
) -> tuple[Any, list[ObservationReduction]]:
    """Reduce consecutive observations and stack them, in order, into a copy of
    *reference* (None if none is on the map); what each Dask task runs.

    Returns
    -------
    (stacked dataset or None, list of ObservationReduction without their datasets)
    """
    stacked, summaries = None, []
    for event_file, irf_file in files:
        item = reduce_observation(reference, makers, cutout_width, event_file, irf_file)
        if item.dataset is not None:
            if stacked is None:
                stacked = reference.copy(name=reference.name)
            _stack_one(stacked, item.dataset)
        summaries.append(
            ObservationReduction(item.obs_id, None, item.target_offset_deg, item.on_map)
        )
    return stacked, summaries


def _stack_one(stacked: Any, dataset: Any) -> None:
    from gammapy.datasets import MapDataset, MapDatasetOnOff

    if dataset is None:
        return
    if type(stacked) is MapDataset and isinstance(dataset, MapDatasetOnOff):
        dataset = dataset.to_map_dataset(name=dataset.name)
    stacked.stack(dataset)


def stack_in_order(reference: Any, reductions: Sequence[ObservationReduction]) -> Any:
    """Stack the reduced datasets into a copy of *reference*, in the given order.

    On/off datasets (ring background) become MapDatasets on stacking, as
    gammapy's DatasetsMaker does.
    """
    stacked = reference.copy(name=reference.name)
    for item in reductions:
        _stack_one(stacked, item.dataset)
    return stacked


def reduce_observations(
    reference: Any,
    makers: Sequence[Any],
    files: Sequence[tuple[str, str | None]],
    *,
    cutout_width: Any,
    client: Any = None,
    progress: bool = True,
) -> list[ObservationReduction]:
    """Reduce every observation, serially or on *client*.

    Parameters
    ----------
    reference : gammapy.datasets.MapDataset
        The empty dataset that fixes the geometry.
    makers : sequence of gammapy makers
        Applied to each observation in order.
    files : sequence of (str, str or None)
        The event file and the IRF file (None: bundled) of each observation.
    cutout_width : Quantity or Angle
        Width of the cutout around each pointing.
    client : distributed.Client, optional
        Reduce on this Dask cluster (default: in this process).
    progress : bool
        Show a progress bar.

    Returns
    -------
    list of ObservationReduction
        In the order of *files*, whatever order the workers finished in.
    """
    items = [tuple(f) for f in files]
    return list(
        _in_order(reduce_observation, reference, makers, cutout_width, items, [1] * len(items),
                  client=client, progress=progress)
    )  # fmt: skip


def reduce_and_stack(
    reference: Any,
    makers: Sequence[Any],
    files: Sequence[tuple[str, str | None]],
    *,
    cutout_width: Any,
    client: Any = None,
    progress: bool = True,
) -> tuple[Any, list[ObservationReduction]]:
    """Reduce every observation and stack them in order (for more than
    :data:`CHUNK_SIZE`, chunk by chunk on the workers, then the chunks in order); the
    stacking goes on while the workers reduce. Serial and Dask runs make the same sums.

    Returns
    -------
    (stacked dataset, list of ObservationReduction)
        The reductions carry their cut-out datasets only up to :data:`CHUNK_SIZE`
        observations.
    """
    stacked = reference.copy(name=reference.name)
    reductions: list[ObservationReduction] = []
    if len(files) <= CHUNK_SIZE:
        for item in _in_order(reduce_observation, reference, makers, cutout_width,
                              [tuple(f) for f in files], [1] * len(files),
                              client=client, progress=progress):  # fmt: skip
            _stack_one(stacked, item.dataset)
            reductions.append(item)
        return stacked, reductions
    chunks = [list(files[i : i + CHUNK_SIZE]) for i in range(0, len(files), CHUNK_SIZE)]
    for chunk_stacked, summaries in _in_order(
        reduce_chunk, reference, makers, cutout_width, [(c,) for c in chunks],
        [len(c) for c in chunks], client=client, progress=progress,
    ):  # fmt: skip
        _stack_one(stacked, chunk_stacked)
        reductions += summaries
    return stacked, reductions


def _task_key(task: Any, index: int, item: tuple) -> str:
    first = item[0][0][0] if task is reduce_chunk else item[0]
    kind = "reduce-chunk" if task is reduce_chunk else "reduce"
    return f"{kind}-{index}-{os.path.basename(first)}"


def _in_order(
    task: Any,
    reference: Any,
    makers: Sequence[Any],
    cutout_width: Any,
    items: Sequence[tuple],
    weights: Sequence[int],
    *,
    client: Any = None,
    progress: bool = True,
) -> Iterator[Any]:
    """``task(reference, makers, cutout_width, *item)`` for each item, serially or on
    *client*, yielded in the order of *items*; the progress bar counts observations."""
    from tqdm.auto import tqdm

    bar = tqdm(total=sum(weights), desc="Data reduction", unit="obs", disable=not progress)
    try:
        if client is None:
            for item, weight in zip(items, weights, strict=True):
                yield task(reference, makers, cutout_width, *item)
                bar.update(weight)
            return
        from distributed import as_completed

        # The reference and makers go to every worker once, not once per task; each
        # task returns only its observation's cut-out dataset (or its chunk's stack).
        shared_reference = client.scatter(reference, broadcast=True)
        shared_makers = client.scatter(list(makers), broadcast=True)
        futures = [
            client.submit(task, shared_reference, shared_makers, cutout_width, *item,
                          pure=False, key=_task_key(task, index, item))
            for index, item in enumerate(items)
        ]  # fmt: skip
        index_of = {future.key: index for index, future in enumerate(futures)}
        done: dict[int, Any] = {}
        next_index = 0
        try:
            for future in as_completed(futures):
                index = index_of[future.key]
                done[index] = future.result()  # a task's AnalysisError: now
                bar.update(weights[index])
                while next_index in done:
                    yield done.pop(next_index)
                    next_index += 1
        finally:
            for future in futures:
                future.cancel()
    finally:
        bar.close()
