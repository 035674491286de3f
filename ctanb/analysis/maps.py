"""Sky maps: counts, background (FoV or ring), exposure, excess and significance.

Thin recorded wrappers over gammapy: the reduction is gammapy's makers
(:class:`~gammapy.makers.MapDatasetMaker`, :class:`~gammapy.makers.SafeMaskMaker`,
:class:`~gammapy.makers.FoVBackgroundMaker` or :class:`~gammapy.makers.RingBackgroundMaker`)
run per observation by :mod:`ctanb.analysis.reduce` (serial or Dask); the maps of
excess and significance are gammapy's :class:`~gammapy.estimators.ExcessMapEstimator`.
The configuration (:mod:`ctanb.analysis.map_config`) reuses :mod:`gammapy.workflow`'s
strict models (geometry, background, safe mask), so a ``maps:`` section reads like
gammapy's own::

    from ctanb.analysis import MapConfig, MapStep, inputs_from_datastore

    config = MapConfig.read("maps.yaml")      # a file of the maps: settings, or MapConfig(geom=...)
    runs = inputs_from_datastore("hess-dl3-dr1", obs_ids=[20136, 20137])
    result = MapStep(config).run(runs, out="maps/")  # DL4 FITS files with provenance
    result.plot()

Two recorded activities: ``map-dataset`` (DL3 files -> stacked MapDataset and its
counts, background and exposure maps) and ``excess-map`` (MapDataset file ->
excess and significance maps); ``ctanb prov redo`` re-runs either from files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .._errors import AnalysisError
from ..provenance import current_activity, recorded
from ._base import DL3Input, Step, StepResult
from .map_config import ExcessMapConfig, MapConfig, MapDatasetConfig, MaskedDatasetConfig
from .map_results import ExcessMapResult, MapDatasetResult, MapResult
from .reduce import current_executor, parallel, reduce_and_stack

__all__ = [
    "ExcessMapConfig",
    "ExcessMapResult",
    "ExcessMapStep",
    "MapConfig",
    "MapDatasetConfig",
    "MapDatasetResult",
    "MapDatasetStep",
    "MapResult",
    "MapStep",
    "MaskedDatasetConfig",
]

STEP_VERSION = "1.0"
#: ObsCore rows of the event files being used, by resolved path (filled by ``run``);
#: a replay without them falls back on the event headers.
_OBSCORE_ROWS: dict[str, dict[str, Any]] = {}


def _describe_events(path: Path) -> dict[str, Any]:
    row = _OBSCORE_ROWS.get(str(path.resolve()))
    return {"obscore": row} if row else {"data_level": "DL3"}


class MapDatasetStep(Step):
    """DL3 observations -> stacked MapDataset, counts, background and exposure maps (DL4).

    Parameters
    ----------
    config : MapDatasetConfig or mapping
    """

    config_class = MapDatasetConfig

    def run(
        self, inputs: list[DL3Input] | Any, out: str | Path, *, parallel: Any = None
    ) -> MapDatasetResult:
        """Reduce *inputs* and write the products into folder *out*.

        Parameters
        ----------
        inputs : list of DL3Input (or anything :func:`~ctanb.analysis.as_inputs` takes)
        out : path
            Folder for ``map_dataset.fits``, ``counts.fits``, ``background.fits``,
            ``exposure.fits``.
        parallel : ParallelConfig or distributed.Client, optional
            Where to reduce (default: the current :func:`~ctanb.analysis.parallel` block,
            else serially).

        Returns
        -------
        MapDatasetResult
            The stacked dataset and its product files.
        """
        from .inputs import as_inputs

        runs = as_inputs(inputs)
        for run in runs:
            run.check()  # missing files fail here; no observation at all fails (recorded) in make
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        for run in runs:
            if run.obscore:
                _OBSCORE_ROWS[str(Path(run.events).resolve())] = dict(run.obscore)
        irfs = list(dict.fromkeys(str(r.irf) for r in runs if r.irf))
        products = {
            "dataset": out / "map_dataset.fits",
            "counts": out / "counts.fits",
            "background": out / "background.fits",
            "exposure": out / "exposure.fits",
        }
        with _parallel(parallel):
            dataset, obs_ids = self.make(
                event_files=[str(r.events) for r in runs],
                irf_files=irfs,
                irf_index=[irfs.index(str(r.irf)) if r.irf else -1 for r in runs],
                dataset_file=str(products["dataset"]),
                counts_file=str(products["counts"]),
                background_file=str(products["background"]),
                exposure_file=str(products["exposure"]),
            )
        return MapDatasetResult(products=products, inputs=runs, dataset=dataset, obs_ids=obs_ids)

    @recorded(
        name="map-dataset",
        version=STEP_VERSION,
        inputs={"event_files": _describe_events, "irf_files": None},
        outputs={
            "dataset_file": "dataset",
            "counts_file": "counts",
            "background_file": "background",
            "exposure_file": "exposure",
        },
        data_level="DL4",
    )
    def make(
        self,
        event_files: list[str],
        irf_files: list[str],
        irf_index: list[int],
        dataset_file: str,
        counts_file: str,
        background_file: str,
        exposure_file: str,
    ) -> tuple[Any, list[str]]:
        """Reduce event files (IRF of each: ``irf_files[irf_index[i]]``, -1 = bundled) to maps.

        Parameters
        ----------
        event_files : list of str
            The DL3 event files, one per observation.
        irf_files : list of str
            Their IRF files (empty when the IRFs are in the event files).
        irf_index : list of int
            For each event file, the index of its IRF file (-1: in the event file).
        dataset_file, counts_file, background_file, exposure_file : str
            Where the stacked dataset and its maps are written.

        Returns
        -------
        tuple of (gammapy.datasets.MapDataset, list of str)
            The stacked dataset and the observation ids stacked.

        Raises
        ------
        AnalysisError
            No observation, or a map outside the field of view of every observation.
        """
        if not event_files:
            raise AnalysisError("no observation selected: give at least one DL3 observation")
        config = self.config
        if config.background.exclusion:
            current_activity().used(str(config.background.exclusion), role="exclusion_mask")
        reference = config.reference_dataset()
        offset_max = config.geom.selection.offset_max
        files = [
            (event, irf_files[index] if index >= 0 else None)
            for event, index in zip(event_files, irf_index, strict=True)
        ]
        client, progress = current_executor()
        stacked, reductions = reduce_and_stack(
            reference,
            config.makers(),
            files,
            cutout_width=2 * offset_max,
            client=client,
            progress=progress,
        )
        if not any(r.on_map for r in reductions):
            skydir = config.geom.wcs.skydir
            nearest = min(r.target_offset_deg for r in reductions)
            raise AnalysisError(
                f"the map (centre {skydir.frame} {skydir.lon}, {skydir.lat}) is outside the "
                f"field of view of every observation: the nearest pointing is {nearest:.2f} deg "
                f"from its centre, and no field of view (offset_max {offset_max}) overlaps it"
            )
        stacked.write(dataset_file, overwrite=True)
        stacked.counts.write(counts_file, overwrite=True)
        stacked.background.write(background_file, overwrite=True)
        stacked.exposure.write(exposure_file, overwrite=True)
        return stacked, [r.obs_id for r in reductions if r.on_map]


class ExcessMapStep(Step):
    """Stacked MapDataset file -> excess and significance maps (gammapy ExcessMapEstimator).

    Parameters
    ----------
    config : ExcessMapConfig or mapping
    """

    config_class = ExcessMapConfig

    def run(self, dataset: MapDatasetResult | str | Path, out: str | Path) -> ExcessMapResult:
        """Estimate the maps from *dataset* (a result or a ``map_dataset.fits``) into *out*.

        Parameters
        ----------
        dataset : MapDatasetResult, str or Path
            A reduction's result, or a stacked ``map_dataset.fits``.
        out : str or Path
            Output folder (created) for ``excess.fits`` and ``significance.fits``.

        Returns
        -------
        ExcessMapResult
            The excess and significance maps.

        Raises
        ------
        AnalysisError
            The map dataset file does not exist.
        """
        source = dataset.products["dataset"] if isinstance(dataset, StepResult) else Path(dataset)
        if not Path(source).is_file():
            raise AnalysisError(f"map dataset file {source} does not exist")
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        products = {"excess": out / "excess.fits", "significance": out / "significance.fits"}
        flux_maps = self.estimate(
            dataset_file=str(source),
            excess_file=str(products["excess"]),
            significance_file=str(products["significance"]),
        )
        runs = dataset.inputs if isinstance(dataset, StepResult) else []
        return ExcessMapResult(products=products, inputs=runs, flux_maps=flux_maps)

    @recorded(
        name="excess-map",
        version=STEP_VERSION,
        inputs=["dataset_file"],
        outputs={"excess_file": "excess", "significance_file": "significance"},
        data_level="DL4",
    )
    def estimate(self, dataset_file: str, excess_file: str, significance_file: str) -> Any:
        """Excess and significance maps of the MapDataset in *dataset_file* (recorded).

        Parameters
        ----------
        dataset_file : str
            The stacked ``map_dataset.fits``.
        excess_file, significance_file : str
            Where the excess and significance maps are written.

        Returns
        -------
        gammapy.estimators.FluxMaps
            The excess and significance maps.
        """
        from gammapy.datasets import MapDataset
        from gammapy.estimators import ExcessMapEstimator
        from gammapy.workflow.steps import make_energy_axis

        from .spectrum_data import honoured_edges

        dataset = MapDataset.read(dataset_file, name="stacked")
        axis = make_energy_axis(self.config.energy_edges)
        edges = None
        if axis is not None:  # gammapy would round them to the dataset's edges unsaid
            edges = honoured_edges(
                dataset.counts.geom.axes["energy"], axis.edges, "excess-map energy edges"
            )
        estimator = ExcessMapEstimator(
            correlation_radius=self.config.correlation_radius,
            energy_edges=edges,
            **self.config.parameters,
        )
        flux_maps = estimator.run(dataset)
        flux_maps["npred_excess"].write(excess_file, overwrite=True)
        flux_maps["sqrt_ts"].write(significance_file, overwrite=True)
        return flux_maps


def _reduce_with_exclusion(
    config: MaskedDatasetConfig, inputs: Any, out: str | Path, *, parallel: Any = None
) -> tuple[dict[str, Path], MapDatasetResult]:
    """The exclusion mask of *config* (recorded), then the reduction that reads it.

    The mask is written first so that it is kept when the (long) reduction fails.

    Parameters
    ----------
    config : MaskedDatasetConfig
        The reduction with its ``exclusion`` mask settings.
    inputs : list of DL3Input, archive results, DataStore or event paths
        The observations.
    out : str or Path
        Output folder (created).
    parallel : ParallelConfig or distributed.Client, optional
        Where to reduce.

    Returns
    -------
    tuple of (dict of str to Path, MapDatasetResult)
        The mask product ({} if none) and the stacked dataset.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    masks = config.make_exclusion(out)
    exclusion = masks.get("exclusion_mask")
    reduced = MapDatasetStep(config.dataset_config(exclusion)).run(inputs, out, parallel=parallel)
    return masks, reduced


class MapStep(Step):
    """A whole map analysis: :class:`MapDatasetStep` then :class:`ExcessMapStep`.

    Parameters
    ----------
    config : MapConfig, mapping or None
        The configuration (a mapping is validated strictly).

    Examples
    --------
    Not run by the doctests (a full gammapy reduction: ``tests/test_analysis_maps.py``
    runs it):

    >>> from ctanb.analysis import EXAMPLES, AnalysisConfig
    >>> config = AnalysisConfig.read(EXAMPLES["msh1552_map"]).maps  # an example's maps: section
    >>> result = MapStep(config).run(runs, out="maps")  # doctest: +SKIP
    >>> result.plot()                                                             # doctest: +SKIP
    """

    config_class = MapConfig

    def run(
        self, inputs: list[DL3Input] | Any, out: str | Path, *, parallel: Any = None
    ) -> MapResult:
        """Reduce *inputs*, then estimate excess and significance; all products in *out*.

        Parameters
        ----------
        inputs : list of DL3Input, archive results, DataStore or event paths
            The observations (anything :func:`~ctanb.analysis.as_inputs` takes).
        out : str or Path
            Output folder (created).
        parallel : ParallelConfig or distributed.Client, optional
            Where to reduce (default: the current :func:`~ctanb.analysis.parallel`
            block, else serially).

        Returns
        -------
        MapResult
            The stacked dataset, the excess and significance maps and every product file.
        """
        masks, reduced = _reduce_with_exclusion(self.config, inputs, out, parallel=parallel)
        excess = ExcessMapStep(self.config.excess_map).run(reduced, out)
        return MapResult(
            products={**masks, **reduced.products, **excess.products},
            inputs=reduced.inputs,
            dataset=reduced.dataset,
            obs_ids=reduced.obs_ids,
            flux_maps=excess.flux_maps,
        )


def _parallel(setting: Any) -> Any:
    return parallel(setting)
