"""Checks of energy ranges and map sizes anywhere in a step configuration.

gammapy's own configuration classes (``EnergyAxisConfig``, ``GeomConfig``, ...) accept
reversed or NaN energy ranges and any map size; the error then comes from deep inside
the data reduction, minutes later ("MapAxis: node values must be unique", "Unable to
allocate 84 GiB"). ``StepConfig`` calls :func:`check_config_tree` so that the
configuration itself is refused, naming the key. The checks go by type and by key
name, so they hold for every step at once: numbers and quantities are finite;
latitudes within [-90, 90] deg; radii positive; lists of ``*edges*`` increasing;
``*bins_per_decade`` and energy axes at most :data:`MAX_BINS_PER_DECADE` /
:data:`MAX_ENERGY_BINS` bins; an exclusion mask file exists.
"""

from __future__ import annotations

import math
from itertools import pairwise
from pathlib import Path
from typing import Any

import astropy.units as u
from gammapy.workflow.config import (
    BackgroundConfig,
    EnergyAxisConfig,
    EnergyRangeConfig,
    GeomConfig,
    SkyCoordConfig,
)
from pydantic import BaseModel

__all__ = ["MAX_BINS_PER_DECADE", "MAX_ENERGY_BINS", "check_config_tree"]

#: Finest energy binning a step makes: far beyond any IACT's energy resolution
#: (~10 % = 25 bins per decade); 10**7 asked for gigabytes of response matrices.
MAX_BINS_PER_DECADE = 1000
#: Most bins of one energy axis (a map's voxels are bounded by ``MAX_MAP_VOXELS``).
MAX_ENERGY_BINS = 10_000


def check_config_tree(config: BaseModel) -> None:
    """Raise ValueError naming the first bad value, energy range or oversized map in *config*."""
    for path, value in _walk(config, ()):
        where = ".".join(path) or "(top)"
        key = path[-1] if path else ""
        if isinstance(value, (EnergyAxisConfig, EnergyRangeConfig)):
            _check_energy_range(value, where)
        elif isinstance(value, GeomConfig):
            _check_geom_size(value, where)
        elif isinstance(value, SkyCoordConfig):
            _check_latitude(value, where)
        elif isinstance(value, BackgroundConfig):
            _check_exclusion_file(value, where)
        elif isinstance(value, u.Quantity):
            _check_quantity(value, where, key)
        elif isinstance(value, float):
            _check_number(value, where, key)
        elif isinstance(value, int) and key.endswith("bins_per_decade"):
            if value > MAX_BINS_PER_DECADE:
                raise ValueError(
                    f"{where}: at most {MAX_BINS_PER_DECADE} bins per decade (now {value})"
                )
        if isinstance(value, (list, tuple)) and "edges" in key:
            _check_increasing(value, where)


def _check_number(value: float, where: str, key: str) -> None:
    if not math.isfinite(value):
        raise ValueError(f"{where}: must be a finite number (now {value})")
    if "radius" in key and value <= 0:
        raise ValueError(f"{where}: a radius must be positive (now {value})")


def _check_quantity(value: u.Quantity, where: str, key: str) -> None:
    import numpy as np

    if not np.all(np.isfinite(value.value)):
        raise ValueError(f"{where}: must be finite (now {value})")
    if "radius" in key and value.isscalar and value.value <= 0:
        raise ValueError(f"{where}: a radius must be a positive angle (now {value})")


def _check_latitude(coord: SkyCoordConfig, where: str) -> None:
    if coord.lat is None:
        return
    lat = u.Quantity(coord.lat).to_value(u.deg)
    if not (math.isfinite(lat) and -90 <= lat <= 90):
        raise ValueError(f"{where}.lat: a latitude must be within [-90, 90] deg (now {lat:g} deg)")


def _check_exclusion_file(background: BackgroundConfig, where: str) -> None:
    path = background.exclusion
    if path is not None and not Path(path).expanduser().is_file():
        raise ValueError(f"{where}.exclusion: no exclusion mask file {str(path)!r}")


def _check_increasing(values: list | tuple, where: str) -> None:
    numbers = []
    for item in values:
        if isinstance(item, u.Quantity) and item.isscalar:
            item = item.to_value(values[0].unit) if isinstance(values[0], u.Quantity) else None
        if isinstance(item, bool) or not isinstance(item, int | float):
            return  # not plain numbers: the field's own type check speaks
        numbers.append(float(item))
    if any(b <= a for a, b in pairwise(numbers)):
        text = ", ".join(f"{x:g}" for x in numbers)
        raise ValueError(f"{where}: the edges must increase (now {text}); sort them")


def _walk(value: Any, path: tuple[str, ...]):
    yield path, value
    if isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _walk(getattr(value, name), (*path, name))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, (*path, str(key)))
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _walk(item, (*path, str(index)))


def _tev(value: Any, where: str) -> float | None:
    if value is None:
        return None
    energy = u.Quantity(value).to_value(u.TeV)
    if not math.isfinite(energy) or energy <= 0:
        raise ValueError(f"{where}: the energy {value} must be a positive, finite value")
    return energy


def _check_energy_range(axis: EnergyAxisConfig | EnergyRangeConfig, where: str) -> None:
    low, high = _tev(axis.min, f"{where}.min"), _tev(axis.max, f"{where}.max")
    if low is not None and high is not None and low >= high:
        raise ValueError(f"{where}: min ({axis.min}) must be below max ({axis.max}); swap them")
    nbins = getattr(axis, "nbins", None)
    if nbins is not None and nbins < 1:
        raise ValueError(f"{where}.nbins: give at least 1 energy bin (now {nbins})")
    if nbins is not None and nbins > MAX_ENERGY_BINS:
        raise ValueError(f"{where}.nbins: at most {MAX_ENERGY_BINS} energy bins (now {nbins})")


def _check_geom_size(geom: GeomConfig, where: str) -> None:
    from ._base import MAX_MAP_VOXELS

    wcs = geom.wcs
    for name in ("binsize", "binsize_irf"):
        size = u.Quantity(getattr(wcs, name)).to_value(u.deg)
        if not math.isfinite(size) or size <= 0:
            raise ValueError(f"{where}.wcs.{name}: must be a positive angle (now {size} deg)")
    width = u.Quantity(wcs.width.width).to_value(u.deg)
    height = u.Quantity(wcs.width.height).to_value(u.deg)
    for name, extent in (("width", width), ("height", height)):
        if not math.isfinite(extent) or extent <= 0:
            raise ValueError(f"{where}.wcs.width.{name}: must be a positive angle")
    binsize = u.Quantity(wcs.binsize).to_value(u.deg)
    nx, ny = math.ceil(width / binsize), math.ceil(height / binsize)
    for axis_name in ("energy", "energy_true"):
        nbins = getattr(geom.axes, axis_name).nbins or 1
        voxels = nx * ny * nbins
        if voxels > MAX_MAP_VOXELS:
            raise ValueError(
                f"{where}: a map of {nx} x {ny} pixels x {nbins} {axis_name} bins "
                f"({voxels:.3g} values) is larger than ctanb makes ({MAX_MAP_VOXELS:.0e}): "
                "use a larger wcs.binsize, a smaller wcs.width or fewer energy bins"
            )
