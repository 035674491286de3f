"""TS maps and source detection: gammapy's TSMapEstimator and find_peaks, with a
candidate table cross-matched with the shipped catalogs (HGPS, gamma-cat, 3FHL).

::

    from ctanb.analysis.detection import DetectionConfig, DetectionStep, TSMapStep

    ts = TSMapStep({"kernel": "gaussian", "kernel_size": "0.1 deg"}).run("map_dataset.fits", "out/")
    ts.candidates        # astropy Table: ra, dec, sqrt(TS), nearest source of each catalog

``DetectionStep`` (``detection:`` section of ``ctanb run``) reduces DL3 runs to a
stacked MapDataset (FoV background with an exclusion mask) and runs the TS map.
Recorded activity ``ts-map`` (dataset file -> TS, sqrt(TS) maps and candidates).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from gammapy.utils.types import AngleType, EnergyType
from pydantic import ConfigDict, Field

from .._errors import AnalysisError
from ..provenance import current_activity, recorded
from ._base import DL3Input, Step, StepConfig, StepResult
from .map_results import _plot_maps
from .maps import MaskedDatasetConfig, _reduce_with_exclusion
from .masks import CatalogKey

__all__ = [
    "DetectionConfig",
    "DetectionStep",
    "TSMapConfig",
    "TSMapResult",
    "TSMapStep",
    "cross_match",
]

STEP_VERSION = "1.0"


class TSMapConfig(StepConfig):
    """TSMapEstimator kernel and find_peaks settings.

    Parameters
    ----------
    kernel : {"point", "gaussian", "disk"}
        Spatial model of the test source.
    kernel_size : angle
        Sigma (gaussian) or radius (disk) of the test source.
    index : float
        Power-law index of the test source.
    kernel_width : angle, optional
        Width of the kernel map (gammapy's default from the PSF containment otherwise).
    energy_min, energy_max : energy, optional
        Energy range summed into the TS map (default: the dataset's).
    threshold : float
        sqrt(TS) above which a peak is a candidate.
    min_distance : angle
        Minimum distance between two candidates.
    match_radius : angle
        Catalog sources within this distance of a candidate are named in the table.
    catalogs : list of {"hgps", "gamma-cat", "3fhl", "3fgl"}
        Catalogs to cross-match.
    """

    model_config = ConfigDict(
        **StepConfig.model_config, arbitrary_types_allowed=True, validate_default=True
    )

    kernel: Literal["point", "gaussian", "disk"] = "point"
    kernel_size: AngleType = "0.1 deg"
    index: float = 2.0
    kernel_width: AngleType | None = None
    energy_min: EnergyType | None = None
    energy_max: EnergyType | None = None
    threshold: float = 5.0
    min_distance: AngleType = "0.2 deg"
    match_radius: AngleType = "0.2 deg"
    catalogs: list[CatalogKey] = Field(default_factory=lambda: ["hgps", "gamma-cat", "3fhl"])

    def estimator(self, dataset: Any) -> Any:
        """The configured gammapy TSMapEstimator for *dataset*.

        Parameters
        ----------
        dataset : gammapy.datasets.MapDataset
            The stacked dataset the TS map is estimated on.

        Returns
        -------
        gammapy.estimators.TSMapEstimator
            The estimator (energy edges within the dataset's axis).
        """
        import astropy.units as u
        from gammapy.estimators import TSMapEstimator
        from gammapy.modeling.models import (
            DiskSpatialModel,
            GaussianSpatialModel,
            PointSpatialModel,
            PowerLawSpectralModel,
            SkyModel,
        )

        if self.kernel == "gaussian":
            spatial = GaussianSpatialModel(sigma=self.kernel_size)
        elif self.kernel == "disk":
            spatial = DiskSpatialModel(r_0=self.kernel_size)
        else:
            spatial = PointSpatialModel()
        model = SkyModel(
            spatial_model=spatial, spectral_model=PowerLawSpectralModel(index=self.index)
        )
        edges = None
        if self.energy_min is not None or self.energy_max is not None:
            axis = dataset.counts.geom.axes["energy"]
            lo = self.energy_min if self.energy_min is not None else axis.edges[0]
            hi = self.energy_max if self.energy_max is not None else axis.edges[-1]
            edges = u.Quantity([lo, hi]).to("TeV")
        return TSMapEstimator(
            kernel_model=model,
            kernel_width=self.kernel_width,
            energy_edges=edges,
            selection_optional=[],
            sum_over_energy_groups=True,
            n_jobs=1,
        )


def cross_match(candidates: Any, catalogs: list[str], radius_deg: float) -> Any:
    """Add, per catalog, the nearest source within *radius_deg* of each candidate
    (``<catalog>_name``, empty if none) and its separation (``<catalog>_sep``, deg)."""
    from astropy.coordinates import SkyCoord

    from .catalogs import load_catalog

    table = candidates
    if len(table) == 0:  # the same columns, no rows
        for name in ("glon", "glat"):
            table[name] = np.zeros(0)
        for key in catalogs:
            table[f"{key.replace('-', '')}_name"] = np.zeros(0, dtype="U1")
            table[f"{key.replace('-', '')}_sep"] = np.zeros(0)
        return table
    positions = SkyCoord(table["ra"], table["dec"], unit="deg", frame="icrs")
    galactic = positions.galactic
    table["glon"], table["glat"] = galactic.l.deg, galactic.b.deg
    for key in catalogs:
        catalog = load_catalog(key)
        names = catalog.table[catalog._source_name_key]
        index, separation, _ = positions.match_to_catalog_sky(catalog.positions)
        found = separation.deg <= radius_deg
        label = key.replace("-", "")
        table[f"{label}_name"] = [
            str(names[i]).strip() if ok else "" for i, ok in zip(index, found, strict=True)
        ]
        table[f"{label}_sep"] = np.where(found, separation.deg, np.nan)
    return table


@dataclass
class TSMapResult(StepResult):
    """TS and sqrt(TS) maps and the candidate sources (astropy Table).

    Parameters
    ----------
    products : dict of str to Path
        The files written, by product name.
    inputs : list of DL3Input
        The observations used.
    flux_maps : gammapy.estimators.FluxMaps
        The TS and sqrt(TS) maps.
    candidates : astropy.table.Table
        The candidate sources, cross-matched with the catalogs.
    """

    flux_maps: Any = None
    candidates: Any = None

    @property
    def ts(self) -> Any:
        """The TS map."""
        return self.flux_maps["ts"]

    @property
    def sqrt_ts(self) -> Any:
        """The sqrt(TS) (significance) map."""
        return self.flux_maps["sqrt_ts"]

    def plot(self, **kwargs: Any) -> Any:
        """The sqrt(TS) map with the candidates marked.

        Parameters
        ----------
        **kwargs
            Plot options (``stretch``: ``linear``, ``sqrt``, ...).

        Returns
        -------
        matplotlib.figure.Figure
            The figure (one WCSAxes panel per map).
        """
        figure = _plot_maps({"sqrt(TS)": self.sqrt_ts}, **kwargs)
        if self.candidates is not None and len(self.candidates):
            ax = figure.axes[0]
            ax.scatter(
                self.candidates["ra"], self.candidates["dec"], transform=ax.get_transform("icrs"),
                s=80, edgecolor="white", facecolor="none",
            )  # fmt: skip
        return figure


class TSMapStep(Step):
    """Stacked MapDataset file -> TS map, sqrt(TS) map and candidate sources.

    Parameters
    ----------
    config : TSMapConfig or mapping
    """

    config_class = TSMapConfig

    def run(self, dataset: StepResult | str | Path, out: str | Path) -> TSMapResult:
        """Estimate the maps of *dataset* (a result or a ``map_dataset.fits``) into *out*.

        Parameters
        ----------
        dataset : StepResult, str or Path
            A reduction's result, or a stacked ``map_dataset.fits``.
        out : str or Path
            Output folder (created) for ``ts.fits``, ``sqrt_ts.fits`` and
            ``candidates.fits``.

        Returns
        -------
        TSMapResult
            The maps and the candidate sources.

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
        products = {
            "ts": out / "ts.fits",
            "sqrt_ts": out / "sqrt_ts.fits",
            "candidates": out / "candidates.fits",
        }
        flux_maps, candidates = self.estimate(
            dataset_file=str(source),
            ts_file=str(products["ts"]),
            sqrt_ts_file=str(products["sqrt_ts"]),
            candidates_file=str(products["candidates"]),
        )
        runs = dataset.inputs if isinstance(dataset, StepResult) else []
        return TSMapResult(
            products=products, inputs=runs, flux_maps=flux_maps, candidates=candidates
        )

    @recorded(
        name="ts-map",
        version=STEP_VERSION,
        inputs=["dataset_file"],
        outputs={"ts_file": "ts", "sqrt_ts_file": "significance", "candidates_file": "candidates"},
        data_level="DL4",
    )
    def estimate(
        self, dataset_file: str, ts_file: str, sqrt_ts_file: str, candidates_file: str
    ) -> tuple[Any, Any]:
        """TS maps of the MapDataset in *dataset_file*, and the peaks above the threshold.

        Parameters
        ----------
        dataset_file : str
            The stacked ``map_dataset.fits``.
        ts_file, sqrt_ts_file : str
            Where the TS and sqrt(TS) maps are written.
        candidates_file : str
            Where the candidate table (FITS) is written.

        Returns
        -------
        tuple of (gammapy.estimators.FluxMaps, astropy.table.Table)
            The maps and the candidates cross-matched with the catalogs.
        """
        from astropy.table import Table
        from gammapy.datasets import MapDataset
        from gammapy.estimators.utils import find_peaks

        from .catalogs import catalog_path

        c = self.config
        dataset = MapDataset.read(dataset_file, name="stacked")
        flux_maps = c.estimator(dataset).run(dataset)
        flux_maps["ts"].write(ts_file, overwrite=True)
        flux_maps["sqrt_ts"].write(sqrt_ts_file, overwrite=True)
        peaks = find_peaks(flux_maps["sqrt_ts"], threshold=c.threshold, min_distance=c.min_distance)
        if len(peaks) == 0:
            peaks = Table(
                names=["value", "x", "y", "ra", "dec"], dtype=[float, int, int, float, float]
            )
        act = current_activity()
        for key in c.catalogs:
            if act is not None:
                act.used(str(catalog_path(key)), role="catalog")
        candidates = cross_match(peaks, list(c.catalogs), c.match_radius.to_value("deg"))
        candidates.meta["THRESH"] = c.threshold
        candidates.write(candidates_file, format="fits", overwrite=True)
        return flux_maps, candidates


class DetectionConfig(MaskedDatasetConfig):
    """Source detection from DL3: the reduction (FoV background, ``exclusion``) then ``ts_map``."""

    map_selection: list[str] = Field(
        default_factory=lambda: ["counts", "exposure", "background", "psf", "edisp"],
        description="Maps MapDatasetMaker computes: the TS map needs psf and edisp as well",
    )
    ts_map: TSMapConfig = Field(
        TSMapConfig(),
        description="TS map of a test source (TSMapEstimator: point, gaussian or disk "
        "kernel, power-law index) and the candidates' find_peaks threshold (sqrt(TS), "
        "default 5), minimum distance and catalogs cross-matched",
    )


class DetectionStep(Step):
    """DL3 observations -> stacked MapDataset -> TS map and candidate sources.

    Parameters
    ----------
    config : DetectionConfig or mapping
    """

    config_class = DetectionConfig

    def run(
        self, inputs: list[DL3Input] | Any, out: str | Path, *, parallel: Any = None
    ) -> TSMapResult:
        """Reduce *inputs* (with the exclusion mask), then the TS map; products in *out*.

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
        TSMapResult
            The TS and sqrt(TS) maps and the candidates, with every product file.
        """
        c = self.config
        products, reduced = _reduce_with_exclusion(c, inputs, out, parallel=parallel)
        ts = TSMapStep(c.ts_map).run(reduced, out)
        ts.products = {**products, **reduced.products, **ts.products}
        return ts
