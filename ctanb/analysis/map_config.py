"""Configurations of the map steps (:mod:`ctanb.analysis.maps`, re-exported there).

The reduction reuses :mod:`gammapy.workflow`'s strict models (``geom``,
``background``, ``safe_mask``), so a ``maps:`` section of an analysis YAML file reads
like gammapy's own; ctanb adds the ``exclusion`` mask made from catalogs and regions
and the checks that fail at once rather than after the reduction (a map centre, the
maps the background needs, the ring's single energy bin).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from gammapy.utils.types import AngleType
from gammapy.workflow.config import (
    BackgroundConfig,
    EnergyAxisConfig,
    GeomConfig,
    SafeMaskConfig,
)
from pydantic import ConfigDict, Field, model_validator

from ._base import StepConfig
from .masks import ExclusionConfig, ExclusionMaskConfig, ExclusionMaskStep

__all__ = ["ExcessMapConfig", "MapConfig", "MapDatasetConfig", "MaskedDatasetConfig"]

_MAP_SELECTION = ["counts", "exposure", "background"]


class MapDatasetConfig(StepConfig):
    """How to reduce DL3 observations to a stacked map dataset (gammapy.workflow models).

    Each observation is cut out (twice ``geom.selection.offset_max`` wide around its
    pointing), reduced by gammapy's MapDatasetMaker, SafeMaskMaker and background
    maker, then stacked (see :mod:`ctanb.analysis.reduce`).
    """

    #: The name provenance recorded before the class left maps.py (redo of older products).
    _recorded_as: ClassVar[tuple[str, ...]] = ("ctanb.analysis.maps:MapDatasetConfig",)

    geom: GeomConfig = Field(
        GeomConfig(),
        description="Map geometry, as gammapy.workflow's GeomConfig: centre "
        "(wcs.skydir frame/lon/lat, required), width and bin size (wcs.width, "
        "wcs.binsize), reconstructed and true energy axes (axes.energy, "
        "axes.energy_true), selection.offset_max (the cut-out around each pointing "
        "is twice that)",
    )
    map_selection: list[str] = Field(
        default_factory=lambda: list(_MAP_SELECTION),
        description="Maps MapDatasetMaker computes (counts, exposure and background at "
        "least; psf and edisp for fits)",
    )
    background: BackgroundConfig = Field(
        BackgroundConfig(method="fov_background"),
        description="Background model, as gammapy.workflow's BackgroundConfig: method "
        "'fov_background' (FoVBackgroundMaker: IRF background renormalised outside the "
        "exclusion mask) or 'ring' (RingBackgroundMaker, parameters r_in and width, one "
        "energy bin); exclusion: an exclusion mask FITS file; parameters: passed to the maker",
    )
    safe_mask: SafeMaskConfig = Field(
        SafeMaskConfig(),
        description="SafeMaskMaker methods and parameters (gammapy.workflow's "
        "SafeMaskConfig; default: methods ['aeff-default'], the IRFs' own safe energy range)",
    )

    @model_validator(mode="after")
    def _check(self) -> MapDatasetConfig:
        skydir = self.geom.wcs.skydir
        if skydir.lon is None or skydir.lat is None or skydir.frame is None:
            raise ValueError("geom.wcs.skydir needs frame, lon and lat (the map centre)")
        missing = [name for name in _MAP_SELECTION if name not in self.map_selection]
        if missing:
            raise ValueError(f"map_selection must include {', '.join(missing)}")
        if self.background.method not in ("fov_background", "ring"):
            raise ValueError("background.method must be 'fov_background' or 'ring' for maps")
        if self.background.method == "ring":
            if self.geom.axes.energy.nbins != 1:
                raise ValueError("ring background needs one energy bin (geom.axes.energy.nbins: 1)")
            if not {"r_in", "width"} <= set(self.background.parameters):
                raise ValueError("ring background needs background.parameters r_in and width")
        return self

    # -- gammapy objects ----------------------------------------------------------------
    def reference_dataset(self) -> Any:
        """The empty stacked MapDataset, as gammapy.workflow creates it.

        Returns
        -------
        gammapy.datasets.MapDataset
            Empty, on the configured geometry.
        """
        from gammapy.datasets import MapDataset
        from gammapy.workflow.steps import DatasetsWorkflowStep, make_energy_axis

        axes = self.geom.axes
        geom = DatasetsWorkflowStep._create_wcs_geometry(
            self.geom.wcs, [make_energy_axis(axes.energy)]
        )
        return MapDataset.create(
            geom,
            name="stacked",
            energy_axis_true=make_energy_axis(axes.energy_true, name="energy_true"),
            binsz_irf=self.geom.wcs.binsize_irf.to_value("deg"),
        )

    def makers(self) -> list[Any]:
        """MapDatasetMaker, SafeMaskMaker and the background maker, in that order.

        Returns
        -------
        list
            The three configured gammapy makers.
        """
        from gammapy.makers import (
            FoVBackgroundMaker,
            MapDatasetMaker,
            RingBackgroundMaker,
            SafeMaskMaker,
        )
        from gammapy.maps import Map

        options = dict(self.background.parameters)
        if self.background.exclusion:
            mask = Map.read(self.background.exclusion)
            mask.data = mask.data.astype(bool)
            options["exclusion_mask"] = mask
        if self.background.method == "ring":
            background = RingBackgroundMaker(**options)
        else:
            background = FoVBackgroundMaker(**options)
        return [
            MapDatasetMaker(selection=self.map_selection),
            SafeMaskMaker(methods=self.safe_mask.methods, **self.safe_mask.parameters),
            background,
        ]


class MaskedDatasetConfig(MapDatasetConfig):
    """A map reduction whose background makers use an ``exclusion`` mask built from
    catalogs and regions (or the mask file ``background.exclusion``, not both)."""

    #: The name provenance recorded before the class left maps.py (redo of older products).
    _recorded_as: ClassVar[tuple[str, ...]] = ("ctanb.analysis.maps:MaskedDatasetConfig",)

    exclusion: ExclusionConfig | None = Field(
        None,
        description="Known sources kept out of the background normalisation "
        "(catalogs and/or DS9 regions, see ExclusionConfig); the mask is written beside "
        "the products; None: none, or background.exclusion",
    )

    @model_validator(mode="after")
    def _one_mask(self) -> MaskedDatasetConfig:
        if self.exclusion is not None and self.background.exclusion:
            raise ValueError("give either exclusion (catalogs/regions) or background.exclusion")
        return self

    def make_exclusion(self, out: Path) -> dict[str, Path]:
        """Write the exclusion mask into *out* (recorded); its product, or {} if none.

        Parameters
        ----------
        out : Path
            The output folder.

        Returns
        -------
        dict of str to Path
            ``{"exclusion_mask": path}``, or empty when nothing is excluded.
        """
        if self.exclusion is None or self.exclusion.is_empty():
            return {}
        config = ExclusionMaskConfig(**self.exclusion.model_dump(), geom=self.geom)
        return ExclusionMaskStep(config).run(out).products

    def dataset_config(self, exclusion_file: str | Path | None = None) -> MapDatasetConfig:
        """The reduction part, reading the exclusion mask *exclusion_file* if given.

        Parameters
        ----------
        exclusion_file : str or Path, optional
            The exclusion mask file the background maker reads.

        Returns
        -------
        MapDatasetConfig
            The reduction's configuration.
        """
        data = self.model_dump(include=set(MapDatasetConfig.model_fields))
        if exclusion_file:
            data["background"]["exclusion"] = str(exclusion_file)
        return MapDatasetConfig.model_validate(data)


class ExcessMapConfig(StepConfig):
    """ExcessMapEstimator settings (as gammapy.workflow's ``excess_map`` section).

    Parameters
    ----------
    correlation_radius : angle
        Radius of the circle the counts are summed in at each pixel.
    parameters : dict
        Further options of gammapy's ``ExcessMapEstimator``.
    energy_edges : EnergyAxisConfig
        Energy bins of the maps (default: the dataset's whole range).
    """

    #: The name provenance recorded before the class left maps.py (redo of older products).
    _recorded_as: ClassVar[tuple[str, ...]] = ("ctanb.analysis.maps:ExcessMapConfig",)

    model_config = ConfigDict(
        **StepConfig.model_config, arbitrary_types_allowed=True, validate_default=True
    )

    correlation_radius: AngleType = "0.1 deg"
    parameters: dict[str, Any] = Field(default_factory=dict)
    energy_edges: EnergyAxisConfig = EnergyAxisConfig()


class MapConfig(MaskedDatasetConfig):
    """A whole map analysis: the reduction (:class:`MapDatasetConfig`, with an optional
    ``exclusion`` mask from catalogs/regions for the FoV or ring background) then excess maps."""

    #: The name provenance recorded before the class left maps.py (redo of older products).
    _recorded_as: ClassVar[tuple[str, ...]] = ("ctanb.analysis.maps:MapConfig",)

    excess_map: ExcessMapConfig = Field(
        ExcessMapConfig(),
        description="Excess and significance maps (ExcessMapEstimator: correlation_radius, "
        "default 0.1 deg; energy_edges; parameters)",
    )
