"""Ring background on the stacked dataset, with an exclusion mask (gammapy's tutorial way).

The runs are reduced with the IRF background left as it is
(:class:`~gammapy.makers.MapDatasetMaker` and :class:`~gammapy.makers.SafeMaskMaker`),
stacked, and only then :class:`~gammapy.makers.RingBackgroundMaker` turns the
stacked image into an on/off dataset: the off counts of all runs are kept, and
known sources (catalogs, DS9 regions: :mod:`ctanb.analysis.masks`) stay out of the
rings. Excess and significance (Li & Ma) come from
:class:`~gammapy.estimators.ExcessMapEstimator`::

    from ctanb.analysis.ring import RingMapConfig, RingMapStep

    result = RingMapStep(RingMapConfig.read("gc_ring.yaml")).run(runs, out="ring/")

Recorded activities: ``exclusion-mask``, ``map-dataset`` and ``ring-background``
(stacked dataset + mask -> on/off dataset, excess and significance maps).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from .._errors import AnalysisError
from ..provenance import recorded
from ._base import DL3Input, Step, StepResult
from .map_results import _CountsExcessMaps
from .maps import ExcessMapConfig, MapDatasetConfig, MapDatasetStep, MaskedDatasetConfig

__all__ = ["RingBackgroundStep", "RingMapConfig", "RingMapResult", "RingMapStep"]

STEP_VERSION = "1.0"


class StackedReductionConfig(MapDatasetConfig):
    """A reduction that keeps the IRF background: the ring runs later, on the stack."""

    def makers(self) -> list[Any]:
        """MapDatasetMaker and SafeMaskMaker only."""
        return super().makers()[:2]


class RingMapConfig(MaskedDatasetConfig):
    """Reduction (``background: {method: ring, parameters: {r_in, width}}``, one energy
    bin), ``exclusion`` mask, and ``excess_map`` settings."""

    excess_map: ExcessMapConfig = Field(
        ExcessMapConfig(),
        description="Excess and significance maps of the ring background "
        "(ExcessMapEstimator: correlation_radius, default 0.1 deg; parameters)",
    )

    @model_validator(mode="after")
    def _ring(self) -> RingMapConfig:
        if self.background.method != "ring":
            raise ValueError("a ring map needs background.method: ring (parameters r_in, width)")
        return self

    def reduction_config(self) -> StackedReductionConfig:
        """The reduction part (no background maker; the mask goes to the ring).

        Returns
        -------
        StackedReductionConfig
            The reduction's configuration.
        """
        data = self.model_dump(include=set(MapDatasetConfig.model_fields))
        data["background"]["exclusion"] = None
        return StackedReductionConfig.model_validate(data)

    def ring_config(self, exclusion_file: str | None) -> RingMapConfig:
        """This configuration with the mask file to read (what the ring activity records).

        Parameters
        ----------
        exclusion_file : str or None
            The exclusion mask file, or None.

        Returns
        -------
        RingMapConfig
            A new configuration.
        """
        data = self.model_dump()
        data["exclusion"] = None
        data["background"]["exclusion"] = exclusion_file
        return RingMapConfig.model_validate(data)


@dataclass
class RingMapResult(_CountsExcessMaps, StepResult):
    """The on/off dataset (ring on the stack) and its excess and significance maps.

    Parameters
    ----------
    products : dict of str to Path
        The files written, by product name.
    inputs : list of DL3Input
        The observations used.
    dataset : gammapy.datasets.MapDatasetOnOff
        The ring-background on/off dataset.
    flux_maps : gammapy.estimators.FluxMaps
        The excess and Li & Ma significance maps.
    obs_ids : list of str, optional
        The observations stacked.
    """

    dataset: Any = None
    flux_maps: Any = None
    obs_ids: list[str] | None = None


class RingBackgroundStep(Step):
    """Stacked MapDataset file -> ring-background on/off dataset, excess and significance.

    Parameters
    ----------
    config : RingMapConfig or mapping
        ``background.parameters`` (r_in, width), ``background.exclusion`` (mask file)
        and ``excess_map``.
    """

    config_class = RingMapConfig

    @recorded(
        name="ring-background",
        version=STEP_VERSION,
        inputs=["dataset_file", "exclusion_files"],
        outputs={
            "onoff_file": "dataset",
            "excess_file": "excess",
            "significance_file": "significance",
        },
        data_level="DL4",
    )
    def estimate(
        self,
        dataset_file: str,
        exclusion_files: list[str],
        onoff_file: str,
        excess_file: str,
        significance_file: str,
    ) -> tuple[Any, Any]:
        """Ring background on the stacked image of *dataset_file*, then Li & Ma maps.

        ``exclusion_files``: zero or one exclusion mask file.
        """
        from gammapy.datasets import MapDataset
        from gammapy.estimators import ExcessMapEstimator
        from gammapy.makers import RingBackgroundMaker
        from gammapy.maps import Map
        from gammapy.workflow.steps import make_energy_axis

        c = self.config
        options = dict(c.background.parameters)
        if exclusion_files:
            mask = Map.read(exclusion_files[0])
            mask.data = mask.data.astype(bool)
            options["exclusion_mask"] = mask
        stacked = MapDataset.read(dataset_file, name="stacked")
        on_off = RingBackgroundMaker(**options).run(stacked.to_image())
        if not (on_off.counts_off.data > 0).any():
            raise AnalysisError(
                "the ring found no off counts anywhere: the exclusion mask covers every ring; "
                "use a smaller exclusion radius or a larger ring (background.parameters)"
            )
        on_off.write(onoff_file, overwrite=True)
        axis = make_energy_axis(c.excess_map.energy_edges)
        flux_maps = ExcessMapEstimator(
            correlation_radius=c.excess_map.correlation_radius,
            energy_edges=axis.edges if axis is not None else None,
            **c.excess_map.parameters,
        ).run(on_off)
        flux_maps["npred_excess"].write(excess_file, overwrite=True)
        flux_maps["sqrt_ts"].write(significance_file, overwrite=True)
        return on_off, flux_maps


class RingMapStep(Step):
    """DL3 observations -> stacked dataset -> ring background with exclusion -> maps.

    Parameters
    ----------
    config : RingMapConfig or mapping
    """

    config_class = RingMapConfig

    def run(
        self, inputs: list[DL3Input] | Any, out: str | Path, *, parallel: Any = None
    ) -> RingMapResult:
        """Reduce *inputs*, stack, ring with the exclusion mask; every product in *out*.

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
        RingMapResult
            The ring-background on/off dataset, excess and significance maps and
            every product file.
        """
        c = self.config
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        products = c.make_exclusion(out)
        reduced = MapDatasetStep(c.reduction_config()).run(inputs, out, parallel=parallel)
        mask = products.get("exclusion_mask") or c.background.exclusion
        ring = {
            "onoff_dataset": out / "ring_dataset.fits",
            "excess": out / "excess.fits",
            "significance": out / "significance.fits",
        }
        on_off, flux_maps = RingBackgroundStep(c.ring_config(mask and str(mask))).estimate(
            dataset_file=str(reduced.products["dataset"]),
            exclusion_files=[str(mask)] if mask else [],
            onoff_file=str(ring["onoff_dataset"]),
            excess_file=str(ring["excess"]),
            significance_file=str(ring["significance"]),
        )
        return RingMapResult(
            products={**products, **reduced.products, **ring},
            inputs=reduced.inputs,
            dataset=on_off,
            flux_maps=flux_maps,
            obs_ids=reduced.obs_ids,
        )
