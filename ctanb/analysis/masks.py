"""Exclusion masks: known sources (HGPS, gamma-cat, 3FHL, 3FGL) and user regions (DS9).

A mask is built once on the map geometry with gammapy's
:meth:`~gammapy.maps.WcsGeom.region_mask` and written as a FITS image (1 =
used, 0 = excluded, gammapy's convention); the steps that estimate a
background from the data (FoV normalisation, ring) read that file, so the mask
is an input entity of their provenance with its own hash::

    from ctanb.analysis.masks import ExclusionMaskStep

    mask = ExclusionMaskStep({
        "catalogs": ["hgps"], "radius": "0.3 deg",
        "regions": ["icrs;circle(228.53,-59.16,0.4)"],
        "geom": {"wcs": {"skydir": {"frame": "icrs", "lon": "228.53 deg", "lat": "-59.16 deg"}}},
    }).run("products/")                      # products/exclusion_mask.fits

In an analysis configuration the ``exclusion:`` section of ``maps``, ``map3d``,
``detection`` and ``ring_map`` does this on the step's own geometry.

Recorded activity ``exclusion-mask`` (geometry + catalogs/regions -> mask file);
the catalog files it read are used entities.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from gammapy.utils.types import AngleType
from gammapy.workflow.config import GeomConfig
from pydantic import ConfigDict, Field, field_validator

from .._errors import AnalysisError, ConfigError
from ..provenance import current_activity, recorded
from ._base import Step, StepConfig, StepResult

__all__ = [
    "ExclusionConfig",
    "ExclusionMaskConfig",
    "ExclusionMaskResult",
    "ExclusionMaskStep",
    "ExclusionWarning",
    "catalog_sources_in",
    "draw_exclusion",
    "exclusion_regions",
    "image_geom",
    "parse_regions",
]

STEP_VERSION = "1.0"
CatalogKey = Literal["hgps", "gamma-cat", "3fhl", "3fgl"]


class ExclusionWarning(UserWarning):
    """An exclusion asked for excludes nothing (the message says why and what to change)."""


class ExclusionConfig(StepConfig):
    """What to exclude from the background estimate.

    Parameters
    ----------
    catalogs : list of {"hgps", "gamma-cat", "3fhl", "3fgl"}
        Exclude a circle of ``radius`` around every source of these catalogs in the map.
    radius : angle
        Radius of the circle around each catalog source.
    regions : list of str
        Further regions as DS9 strings (``"icrs;circle(228.53,-59.16,0.3)"``),
        read with astropy-regions.
    """

    model_config = ConfigDict(
        **StepConfig.model_config, arbitrary_types_allowed=True, validate_default=True
    )

    catalogs: list[CatalogKey] = Field(default_factory=list)
    radius: AngleType = "0.3 deg"
    regions: list[str] = Field(default_factory=list)

    @field_validator("regions")
    @classmethod
    def _valid_regions(cls, value: list[str]) -> list[str]:
        parse_regions(value)  # a bad DS9 string fails when the configuration is read
        return value

    def is_empty(self) -> bool:
        """True when this configuration excludes nothing.

        Returns
        -------
        bool
            No catalog and no region given.
        """
        return not self.catalogs and not self.regions


class ExclusionMaskConfig(ExclusionConfig):
    """An exclusion mask on a map geometry (gammapy.workflow ``geom`` section).

    Parameters
    ----------
    catalogs : list of {"hgps", "gamma-cat", "3fhl", "3fgl"}
        Exclude a circle of ``radius`` around every source of these catalogs in the map.
    radius : angle
        Radius of the circle around each catalog source.
    regions : list of str
        Further regions as DS9 strings, read with astropy-regions.
    geom : GeomConfig
        The map geometry (gammapy.workflow's ``geom`` section).
    """

    geom: GeomConfig = GeomConfig()


def parse_regions(texts: list[str]) -> list[Any]:
    """Sky regions from DS9 strings; a string astropy-regions cannot read is a ConfigError."""
    from regions import Regions

    found = []
    for text in texts:
        hint = "write e.g. 'icrs;circle(228.53,-59.16,0.3)'"
        # regions warns and skips what it cannot read (no frame, bad shape): an error here.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                parsed = Regions.parse(text, format="ds9")
            except Exception as exc:  # regions raises several types for bad text
                raise ConfigError(
                    f"exclusion region {text!r} is not a DS9 region ({exc}); {hint}"
                ) from None
        if caught or len(parsed) == 0:
            why = str(caught[0].message) if caught else "no region in it"
            raise ConfigError(f"exclusion region {text!r} is not a DS9 region ({why}); {hint}")
        for region in parsed:
            if not hasattr(region, "to_pixel"):
                raise ConfigError(f"exclusion region {text!r} is not a sky region; {hint}")
            found.append(region)
    return found


def image_geom(geom_config: GeomConfig) -> Any:
    """The 2D WcsGeom of a gammapy.workflow geometry configuration."""
    from gammapy.workflow.steps import DatasetsWorkflowStep

    skydir = geom_config.wcs.skydir
    if skydir.lon is None or skydir.lat is None:
        raise ConfigError("geom.wcs.skydir needs frame, lon and lat (the map centre)")
    return DatasetsWorkflowStep._create_wcs_geometry(geom_config.wcs, [])


def catalog_sources_in(geom: Any, key: str, *, margin_deg: float = 0.0) -> list[tuple[str, Any]]:
    """(name, SkyCoord) of every source of catalog *key* within *margin_deg* of the map."""
    from .catalogs import load_catalog

    catalog = load_catalog(key)
    positions = catalog.positions
    image = geom.to_image()
    separation = positions.separation(image.center_skydir).deg
    near = separation <= float(image.width.to_value("deg").max()) + margin_deg
    inside = np.zeros(len(positions), dtype=bool)
    if near.any():
        index = np.flatnonzero(near)
        x, y = image.to_image().coord_to_pix(positions[index])
        pad = margin_deg / float(np.abs(image.pixel_scales.to_value("deg")).min())
        nx, ny = image.npix[0][0], image.npix[1][0]
        inside[index] = (x >= -0.5 - pad) & (x <= nx - 0.5 + pad)
        inside[index] &= (y >= -0.5 - pad) & (y <= ny - 0.5 + pad)
    names = catalog.table[catalog._source_name_key]
    return [(str(names[i]).strip(), positions[i]) for i in np.flatnonzero(inside)]


def exclusion_regions(geom: Any, config: ExclusionConfig) -> tuple[list[Any], list[str]]:
    """The regions *config* excludes on *geom*, and the names of the catalog sources."""
    from regions import CircleSkyRegion

    radius = config.radius
    regions, names = [], []
    for key in config.catalogs:
        for name, position in catalog_sources_in(geom, key, margin_deg=radius.to_value("deg")):
            regions.append(CircleSkyRegion(position, radius))
            names.append(f"{key}: {name}")
    return regions + parse_regions(config.regions), names


@dataclass
class ExclusionMaskResult(StepResult):
    """The exclusion mask (gammapy boolean Map, True = used) and the sources it excludes."""

    mask: Any = None
    sources: list[str] = field(default_factory=list)

    def plot(self, **kwargs: Any) -> Any:
        """The mask on WCSAxes (excluded pixels dark)."""
        return self.mask.plot(**kwargs)


class ExclusionMaskStep(Step):
    """Map geometry + catalogs/regions -> exclusion mask FITS file (gammapy convention).

    Parameters
    ----------
    config : ExclusionMaskConfig or mapping
    """

    config_class = ExclusionMaskConfig

    def run(self, out: str | Path, *, name: str = "exclusion_mask.fits") -> ExclusionMaskResult:
        """Build the mask and write it into folder *out*.

        Parameters
        ----------
        out : str or Path
            Output folder (created).
        name : str
            File name of the mask in *out*.

        Returns
        -------
        ExclusionMaskResult
            The mask, the catalog sources it excludes, and its file.
        """
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        path = out / name
        mask, sources = self.make(mask_file=str(path))
        return ExclusionMaskResult(products={"exclusion_mask": path}, mask=mask, sources=sources)

    @recorded(
        name="exclusion-mask",
        version=STEP_VERSION,
        outputs={"mask_file": "mask"},
    )
    def make(self, mask_file: str) -> tuple[Any, list[str]]:
        """Write the exclusion mask of the configured geometry to *mask_file* (recorded).

        Parameters
        ----------
        mask_file : str
            Where the mask is written (FITS, 1 = used, 0 = excluded).

        Returns
        -------
        tuple of (gammapy.maps.Map, list of str)
            The boolean mask and the names of the catalog sources it excludes.

        Raises
        ------
        AnalysisError
            The mask would exclude the whole map.
        """
        from gammapy.maps import Map

        from .catalogs import catalog_path

        config = self.config
        geom = image_geom(config.geom)
        activity = current_activity()
        for key in config.catalogs:
            if activity is not None:
                activity.used(str(catalog_path(key)), role="catalog")
        regions, sources = exclusion_regions(geom, config)
        _warn_empty_catalogs(config, sources, geom)
        if regions:
            mask = geom.region_mask(regions, inside=False)
        else:  # no known source in the field: nothing excluded
            mask = Map.from_geom(geom, data=np.ones(geom.data_shape, dtype=bool))
        mask.data = np.asarray(mask.data, dtype=bool)
        if not mask.data.any():
            raise AnalysisError(_excludes_everything(geom, regions, sources, config))
        Map.from_geom(geom, data=mask.data.astype(np.uint8)).write(mask_file, overwrite=True)
        return mask, sources


def _warn_empty_catalogs(config: ExclusionConfig, sources: list[str], geom: Any) -> None:
    """Say so when a catalog asked for has no source in the map (then it excludes nothing)."""
    from .catalogs import CATALOGS

    empty = [key for key in config.catalogs if not any(s.startswith(f"{key}: ") for s in sources)]
    if not empty:
        return
    centre = geom.center_skydir
    titles = ", ".join(CATALOGS[key]["title"] for key in empty)
    others = [key for key in CATALOGS if key not in config.catalogs]
    warnings.warn(
        f"no {titles} source lies in the exclusion map (centre {centre.frame.name} "
        f"{centre.data.lon.deg:.2f}, {centre.data.lat.deg:.2f} deg, "
        f"{float(geom.width.to_value('deg').max()):.1f} deg wide): nothing excluded from "
        f"{'it' if len(empty) == 1 else 'them'}; check the target position, or use another "
        f"catalog ({', '.join(others)}) or regions",
        ExclusionWarning,
        stacklevel=3,
    )


def draw_exclusion(figure: Any, mask_file: str | Path | None) -> Any:
    """Outline the excluded regions of *mask_file* on every WCSAxes of *figure*."""
    if mask_file is None or not Path(mask_file).is_file():
        return figure
    from astropy.visualization.wcsaxes import WCSAxes
    from gammapy.maps import Map

    mask = Map.read(mask_file)
    for ax in figure.axes:
        if isinstance(ax, WCSAxes):
            ax.contour(
                mask.data.astype(float), levels=[0.5], colors="white", linewidths=0.8,
                linestyles="dashed", transform=ax.get_transform(mask.geom.wcs),
            )  # fmt: skip
    return figure


def _excludes_everything(geom: Any, regions: list, sources: list[str], config: Any) -> str:
    """Say which part of the mask covers the map: a user region alone, or all together."""
    users = list(getattr(config, "regions", None) or [])
    parts = []
    if sources:
        parts.append(f"{len(sources)} catalog source(s) ({', '.join(sources)}) excluded "
                     f"within {config.radius}")  # fmt: skip
    if users:
        parts.append(f"{len(users)} user region(s) ({'; '.join(map(str, users))})")
    user_shapes = regions[len(sources) :]
    for text, shape in zip(users, user_shapes, strict=False):
        if not np.asarray(geom.region_mask([shape], inside=False).data).any():
            return (
                f"the exclusion mask excludes the whole map: the user region {text} alone "
                "covers it; make that region smaller or the map larger"
            )
    return (
        f"the exclusion mask excludes the whole map ({' and '.join(parts) or 'no region'}): "
        f"use a smaller exclusion radius (now {config.radius}), fewer regions, or a larger map"
    )
