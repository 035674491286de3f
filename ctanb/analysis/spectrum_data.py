"""On/off spectrum extraction shared by the spectrum and light-curve steps.

Everything here wraps gammapy's own makers, in the order of the gammapy
tutorials: :class:`~gammapy.makers.SpectrumDatasetMaker`, then
:class:`~gammapy.makers.ReflectedRegionsBackgroundMaker` (reflected regions
around the pointing, or :class:`~gammapy.makers.WobbleRegionsFinder` for
point-like IRFs with ``RAD_MAX``, as in gammapy's MAGIC tutorial), then
:class:`~gammapy.makers.SafeMaskMaker`. What ctanb adds is checks that fail with
a clear :class:`~ctanb.AnalysisError` (missing IRFs, an on region outside the
field of view) and the ObsCore description of each DL3 file for provenance.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from .._errors import AnalysisError
from ._base import DL3Input, StepConfig
from .masks import ExclusionConfig

if TYPE_CHECKING:
    from gammapy.data import Observation
    from gammapy.datasets import Datasets

__all__ = [
    "EnergyRangeWarning",
    "OnOffConfig",
    "describe_dl3",
    "read_observations",
    "reduce_on_off",
]

SafeMaskMethod = Literal["aeff-default", "aeff-max", "edisp-bias", "offset-max", "bkg-peak"]

#: Resolved DL3 path -> the ObsCore row the caller gave (a DL3Input from the archive), so
#: that provenance records publisher DIDs and pipeline versions, not only header values.
_OBSCORE_ROWS: dict[str, dict[str, Any]] = {}


class EnergyRangeWarning(UserWarning):
    """A requested energy range or edge could not be used as given (the message says what was)."""


class OnOffConfig(StepConfig):
    """Target, on region, energy axes and safe mask of an on/off (1D) extraction.

    ``on_radius_deg`` is the radius of the circular on region (0.11 deg suits
    H.E.S.S. point-like sources); ``None`` takes the on region from the
    ``RAD_MAX`` table of point-like IRFs (MAGIC, LST). The energy axes start and end
    at the configured bounds, with at least ``*_bins_per_decade`` bins per decade.

    ``exclusion`` keeps known sources out of the off regions, as gammapy's
    ``ReflectedRegionsBackgroundMaker(exclusion_mask=...)`` does: circles around the
    sources of catalogs (``catalogs: [hgps]``, ``radius``) and/or DS9 regions
    (``regions: ["icrs;circle(83.63,22.01,0.3)"]``), see
    :class:`~ctanb.analysis.masks.ExclusionConfig`. The mask is made on a map
    centred on the target, wide enough for every reflected region
    (:func:`exclusion_geom`), written beside the products and recorded as an input.
    """

    ra_deg: float = Field(ge=0, lt=360, description="Target right ascension (ICRS), deg")
    dec_deg: float = Field(ge=-90, le=90, description="Target declination (ICRS), deg")
    on_radius_deg: float | None = Field(
        0.11,
        gt=0,
        description="Radius of the circular on region, deg (0.11 suits H.E.S.S. point "
        "sources); None takes it from the IRFs' RAD_MAX table (point-like IRFs: MAGIC, LST)",
    )
    region_finder: Literal["auto", "reflected", "wobble"] = Field(
        "auto",
        description="How the off regions are placed: 'reflected' (gammapy's reflected "
        "regions around the pointing), 'wobble' (WobbleRegionsFinder, n_off_regions "
        "regions at the wobble offset) or 'auto' (wobble for RAD_MAX on regions)",
    )
    n_off_regions: int = Field(3, ge=1, description="Number of off regions of the wobble finder")
    energy_min_tev: float = Field(
        0.5, gt=0, description="Lower edge of the reconstructed energy axis, TeV"
    )
    energy_max_tev: float = Field(
        40.0, gt=0, description="Upper edge of the reconstructed energy axis, TeV"
    )
    energy_bins_per_decade: int = Field(
        5, ge=1, description="Minimum number of reconstructed energy bins per decade"
    )
    energy_true_min_tev: float = Field(
        0.3,
        gt=0,
        description="Lower edge of the true energy axis (IRFs), TeV; below energy_min_tev so that energy dispersion is modelled",
    )
    energy_true_max_tev: float = Field(
        100.0, gt=0, description="Upper edge of the true energy axis, TeV"
    )
    energy_true_bins_per_decade: int = Field(
        8, ge=1, description="Minimum number of true energy bins per decade"
    )
    safe_mask: list[SafeMaskMethod] = Field(
        default_factory=lambda: ["aeff-max"],
        description="gammapy SafeMaskMaker methods setting each observation's safe energy "
        "range ('aeff-max': where the effective area is above aeff_percent of its maximum)",
    )
    aeff_percent: float = Field(
        10.0,
        ge=0,
        le=100,
        description="Effective-area threshold of 'aeff-max', percent of the maximum",
    )
    bias_percent: float = Field(
        10.0, ge=0, le=100, description="Energy-bias threshold of 'edisp-bias', percent"
    )
    offset_max_deg: float = Field(
        2.5,
        gt=0,
        description="Largest offset from the pointing used, deg: the field of view for the "
        "on region check and SafeMaskMaker's 'offset-max'",
    )
    containment_correction: bool = Field(
        False,
        description="Scale the effective area by the PSF containment in the on region "
        "(gammapy SpectrumDatasetMaker; full-enclosure IRFs only)",
    )
    exclusion: ExclusionConfig | None = Field(
        None,
        description="Sources kept out of the off regions (catalogs and/or DS9 regions, "
        "see ExclusionConfig); None excludes nothing",
    )

    @model_validator(mode="after")
    def _ranges(self) -> OnOffConfig:
        if self.energy_min_tev >= self.energy_max_tev:
            raise ValueError("energy_min_tev must be below energy_max_tev")
        if self.energy_true_min_tev >= self.energy_true_max_tev:
            raise ValueError("energy_true_min_tev must be below energy_true_max_tev")
        try:
            check_within(self.required_edges_tev(), self.energy_min_tev, self.energy_max_tev)
        except AnalysisError as exc:
            raise ValueError(str(exc)) from None
        return self

    def required_edges_tev(self) -> list[float]:
        """Energies (TeV) the reconstructed axis must have as edges (besides its bounds)."""
        return []

    @property
    def point_like(self) -> bool:
        """Whether the on region comes from the IRFs' RAD_MAX table."""
        return self.on_radius_deg is None

    def region_text(self) -> str:
        """The on region in words, for messages.

        Returns
        -------
        str
            E.g. ``a 0.11 deg circle`` or the RAD_MAX wording.
        """
        size = "RAD_MAX" if self.point_like else f"r={self.on_radius_deg:g} deg"
        return f"on region (ra={self.ra_deg:g} deg, dec={self.dec_deg:g} deg, {size})"


def remember_obscore(inputs: Sequence[DL3Input]) -> None:
    """Keep the ObsCore rows of *inputs* for :func:`describe_dl3`."""
    for item in inputs:
        if item.obscore:
            _OBSCORE_ROWS[str(Path(item.events).resolve())] = dict(item.obscore)


def describe_dl3(path: Path) -> dict[str, Any]:
    """Provenance description of a DL3 event file: its ObsCore row, or one from its header."""
    row = _OBSCORE_ROWS.get(str(Path(path).resolve()))
    if row is not None:
        return {"obscore": row}
    from astropy.io import fits

    try:
        header = fits.getheader(path, "EVENTS")
    except (OSError, KeyError):
        return {}
    return {"obscore": {"obs_id": str(header.get("OBS_ID", "")), "dataproduct_subtype": "DL3"}}


def read_observations(event_files: Sequence[str], irf_files: Sequence[str] = ()) -> list:
    """Read DL3 files as gammapy Observations; IRFs missing for an analysis are an error.

    ``irf_files`` is empty (IRFs bundled with the events) or one file per event file.
    """
    from gammapy.data import Observation

    if irf_files and len(irf_files) != len(event_files):
        raise AnalysisError(
            f"{len(irf_files)} IRF file(s) for {len(event_files)} event file(s): "
            "give none (bundled IRFs) or one per event file"
        )
    observations = []
    for index, events in enumerate(event_files):
        irf = irf_files[index] if irf_files else None
        try:
            obs = Observation.read(events, irf_file=irf)
        except (OSError, KeyError, ValueError) as exc:
            raise AnalysisError(f"cannot read DL3 file {events}: {exc}") from None
        missing = [name for name in ("aeff", "edisp") if getattr(obs, name, None) is None]
        if missing:
            raise AnalysisError(
                f"observation {obs.obs_id} ({events}): missing IRF(s) "
                f"{', '.join(missing)}; a spectrum needs the effective area and energy "
                "dispersion (give the IRF file with DL3Input(irf=...))"
            )
        observations.append(obs)
    return observations


def _target(config: OnOffConfig) -> Any:
    from astropy.coordinates import SkyCoord

    return SkyCoord(config.ra_deg, config.dec_deg, unit="deg", frame="icrs")


def check_field_of_view(config: OnOffConfig, observations: Sequence[Observation]) -> None:
    """Raise when the on region lies outside any observation's field of view (names offsets)."""
    target = _target(config)
    radius = config.on_radius_deg or 0.0
    outside = []
    for obs in observations:
        offset = obs.get_pointing_icrs(obs.tmid).separation(target).deg
        aeff_max = float(obs.aeff.axes["offset"].edges.max().to_value("deg"))
        limit = min(aeff_max, config.offset_max_deg)
        if offset + radius > limit:
            outside.append(f"{obs.obs_id}: offset {offset:.2f} deg, field of view {limit:.2f} deg")
    if outside:
        raise AnalysisError(
            f"the {config.region_text()} is outside the field of view of "
            f"{len(outside)} observation(s): " + "; ".join(outside)
        )
    if config.point_like:
        plain = [str(o.obs_id) for o in observations if o.rad_max is None]
        if plain:
            raise AnalysisError(
                f"on_radius_deg is None (on region from RAD_MAX) but observation(s) "
                f"{', '.join(plain)} have no RAD_MAX table: give on_radius_deg"
            )
    else:
        point = [str(o.obs_id) for o in observations if o.rad_max is not None]
        if point:
            raise AnalysisError(
                f"observation(s) {', '.join(point)} have point-like IRFs with RAD_MAX: "
                "set on_radius_deg to None (null in YAML) so the on region follows RAD_MAX"
            )


def log_edges(bounds: Sequence[float], per_decade: int) -> Any:
    """Energy edges (TeV) through every one of *bounds*, at least *per_decade* bins per decade.

    Each interval between consecutive bounds gets ``ceil(log10(hi / lo) * per_decade)``
    equal logarithmic bins, so the bounds are edges exactly (never moved to a grid)
    and no bin is wider than the requested ``1 / per_decade`` decade.
    """
    import numpy as np

    points = sorted({float(b) for b in bounds})
    edges = [points[0]]
    for hi in points[1:]:
        lo = edges[-1]
        if hi <= lo * (1 + 1e-9):  # the same bound given twice, up to rounding
            continue
        # 1e-9: a decade split in per_decade bins must not gain one from rounding
        nbin = max(1, int(np.ceil(np.log10(hi / lo) * per_decade - 1e-9)))
        edges.extend(np.geomspace(lo, hi, nbin + 1)[1:-1])
        edges.append(hi)
    return np.array(edges)


def energy_axes(config: OnOffConfig) -> tuple[Any, Any]:
    """The reconstructed and true energy axes of the configuration.

    Both start and end exactly at the configured bounds. The reconstructed axis
    also has an edge at every energy the step integrates or fits between
    (``config.required_edges_tev()``: flux-point edges, fit range, light-curve
    bins), so gammapy never rounds those to a neighbouring edge.
    """
    from gammapy.maps import MapAxis

    lo, hi = config.energy_min_tev, config.energy_max_tev
    check_within(config.required_edges_tev(), lo, hi)
    # an edge equal to a bound up to rounding must not replace that bound
    inner = [e for e in config.required_edges_tev() if lo * (1 + 1e-9) < e < hi * (1 - 1e-9)]
    reco = log_edges([lo, *inner, hi], config.energy_bins_per_decade)
    energy = MapAxis.from_edges(reco, unit="TeV", name="energy", interp="log")
    true = log_edges(
        [config.energy_true_min_tev, config.energy_true_max_tev],
        config.energy_true_bins_per_decade,
    )
    energy_true = MapAxis.from_edges(true, unit="TeV", name="energy_true", interp="log")
    return energy, energy_true


def check_within(edges: Sequence[float], lo: float, hi: float) -> None:
    """Raise :class:`~ctanb.AnalysisError` when an energy lies outside ``[lo, hi]`` TeV."""
    outside = [e for e in edges if e < lo * (1 - 1e-9) or e > hi * (1 + 1e-9)]
    if outside:
        raise AnalysisError(
            f"energies {', '.join(f'{e:g}' for e in outside)} TeV lie outside the analysis "
            f"energy range {lo:g}-{hi:g} TeV (energy_min_tev, energy_max_tev): widen that "
            "range or change the requested energies"
        )


def honoured_edges(axis: Any, edges: Any, what: str) -> Any:
    """The edges gammapy really uses when it integrates *axis* between *edges*.

    gammapy rounds each requested edge to the nearest edge of the dataset's energy
    axis and drops bins outside it. When that changes anything, an
    :class:`EnergyRangeWarning` names the requested and the used edges, and the
    used edges are returned so that the product states what was computed.
    """
    import astropy.units as u
    import numpy as np

    requested = u.Quantity(edges, "TeV")
    try:
        table = axis.group_table(edges=requested)
    except ValueError:  # no overlap at all
        table = None
    if table is not None:
        table = table[np.char.strip(np.asarray(table["bin_type"], str)) == "normal"]
    if table is None or len(table) == 0:
        raise AnalysisError(
            f"the {what} {_fmt_edges(requested)} TeV lie outside the datasets' energy range "
            f"{_fmt_edges(axis.bounds)} TeV"
        )
    # the axis edges at the group boundaries gammapy chose (its nearest-edge rounding)
    index = [*table["idx_min"], table["idx_max"][-1] + 1]
    used = axis.edges[index].to("TeV")
    if len(used) != len(requested) or not np.allclose(used.value, requested.value, rtol=1e-6):
        warnings.warn(
            f"the {what} {_fmt_edges(requested)} TeV are not edges of the datasets' energy "
            f"axis; used {_fmt_edges(used)} TeV instead",
            EnergyRangeWarning,
            stacklevel=2,
        )
        return used
    return requested


def _fmt_edges(edges: Any) -> str:
    import astropy.units as u

    return "[" + ", ".join(f"{e:.4g}" for e in u.Quantity(edges, "TeV").value) + "]"


#: Pixel size of the exclusion mask of an on/off extraction.
EXCLUSION_BINSIZE_DEG = 0.02


def exclusion_geom(config: OnOffConfig) -> Any:
    """The gammapy.workflow geometry of the exclusion mask: centred on the target, wide
    enough for reflected regions around pointings up to ``offset_max_deg`` away."""
    from gammapy.workflow.config import GeomConfig

    width = 4 * config.offset_max_deg + 2 * (config.on_radius_deg or 0.0)
    return GeomConfig(
        wcs={
            "skydir": {
                "frame": "icrs",
                "lon": f"{config.ra_deg} deg",
                "lat": f"{config.dec_deg} deg",
            },
            "binsize": f"{EXCLUSION_BINSIZE_DEG} deg",
            "width": {"width": f"{width} deg", "height": f"{width} deg"},
        }
    )


def make_exclusion(config: OnOffConfig, out: Path) -> list[str]:
    """Write the configured exclusion mask into *out* (recorded); ``[path]``, or [] if none."""
    from .masks import ExclusionMaskConfig, ExclusionMaskStep

    if config.exclusion is None or config.exclusion.is_empty():
        return []
    mask = ExclusionMaskConfig(**config.exclusion.model_dump(), geom=exclusion_geom(config))
    return [str(ExclusionMaskStep(mask).run(out).products["exclusion_mask"])]


def read_exclusion(files: Sequence[str]) -> Any:
    """The exclusion mask (boolean gammapy Map, True = usable) of zero or one mask file."""
    if not files:
        return None
    if len(files) > 1:
        raise AnalysisError(f"give at most one exclusion mask file, not {len(files)}")
    from gammapy.maps import Map

    try:
        mask = Map.read(files[0])
    except (OSError, KeyError, ValueError) as exc:
        raise AnalysisError(f"cannot read the exclusion mask {files[0]}: {exc}") from None
    mask.data = mask.data.astype(bool)
    return mask


def makers(config: OnOffConfig, exclusion_mask: Any = None) -> tuple[Any, Any, Any, Any]:
    """``(empty dataset, dataset maker, background maker, safe-mask maker)`` of the configuration."""
    import astropy.units as u
    from gammapy.datasets import SpectrumDataset
    from gammapy.makers import (
        ReflectedRegionsBackgroundMaker,
        SafeMaskMaker,
        SpectrumDatasetMaker,
        WobbleRegionsFinder,
    )
    from gammapy.maps import RegionGeom
    from regions import CircleSkyRegion, PointSkyRegion

    target = _target(config)
    if config.point_like:
        region = PointSkyRegion(target)
    else:
        region = CircleSkyRegion(target, config.on_radius_deg * u.deg)
    energy, energy_true = energy_axes(config)
    geom = RegionGeom.create(region=region, axes=[energy])
    empty = SpectrumDataset.create(geom=geom, energy_axis_true=energy_true)
    dataset_maker = SpectrumDatasetMaker(
        selection=["counts", "exposure", "edisp"],
        containment_correction=config.containment_correction,
    )
    finder = config.region_finder
    if finder == "wobble" or (finder == "auto" and config.point_like):
        background = ReflectedRegionsBackgroundMaker(
            region_finder=WobbleRegionsFinder(n_off_regions=config.n_off_regions),
            exclusion_mask=exclusion_mask,
        )
    else:
        background = ReflectedRegionsBackgroundMaker(exclusion_mask=exclusion_mask)
    safe = SafeMaskMaker(
        methods=list(config.safe_mask),
        aeff_percent=config.aeff_percent,
        bias_percent=config.bias_percent,
        offset_max=config.offset_max_deg * u.deg,
    )
    return empty, dataset_maker, background, safe


def reduce_on_off(
    config: OnOffConfig, observations: Sequence[Observation], exclusion_mask: Any = None
) -> Datasets:
    """One :class:`~gammapy.datasets.SpectrumDatasetOnOff` per observation (named by obs_id);
    no off region overlaps the excluded pixels of *exclusion_mask* (True = usable)."""
    from gammapy.datasets import Datasets

    check_field_of_view(config, observations)
    empty, dataset_maker, background, safe = makers(config, exclusion_mask)
    datasets = Datasets()
    for obs in observations:
        dataset = dataset_maker.run(empty.copy(name=str(obs.obs_id)), obs)
        dataset = background.run(dataset, obs)
        if dataset.counts_off is None:
            why = "the on region is too close to the pointing position"
            if exclusion_mask is not None:
                why = (
                    "every reflected region overlaps the exclusion mask, or the on region is "
                    "too close to the pointing position: use a smaller exclusion radius "
                    "(exclusion.radius) or fewer exclusion regions"
                )
            raise AnalysisError(
                f"observation {obs.obs_id}: no off region found for the {config.region_text()}: "
                f"{why}"
            )
        _name_telescope(dataset, obs)
        datasets.append(safe.run(dataset, obs))
    return datasets


def _name_telescope(dataset: Any, obs: Observation) -> None:
    """Take TELESCOP from the events when the IRFs do not name it (gammapy reads it from
    the effective area; MAGIC's has none), so joint fits can tell the instruments apart."""
    meta = dataset.meta_table
    if meta is None or "TELESCOP" not in meta.colnames:
        return
    if str(meta["TELESCOP"][0]).strip().lower() in ("", "unknown"):
        telescope = obs.events.table.meta.get("TELESCOP")
        if telescope:
            meta["TELESCOP"] = [str(telescope)]
