"""Checks of energy ranges and map sizes anywhere in a step configuration.

gammapy's own configuration classes (``EnergyAxisConfig``, ``GeomConfig``, ...) accept
reversed or NaN energy ranges and any map size; the error then comes from deep inside
the data reduction, minutes later ("MapAxis: node values must be unique", "Unable to
allocate 84 GiB"). ``StepConfig`` calls :func:`check_config_tree` so that the
configuration itself is refused, naming the key.
"""

from __future__ import annotations

import math
from typing import Any

import astropy.units as u
from gammapy.workflow.config import EnergyAxisConfig, EnergyRangeConfig, GeomConfig
from pydantic import BaseModel

__all__ = ["check_config_tree"]


def check_config_tree(config: BaseModel) -> None:
    """Raise ValueError naming the first bad energy range or oversized map in *config*."""
    for path, value in _walk(config, ()):
        where = ".".join(path) or "(top)"
        if isinstance(value, (EnergyAxisConfig, EnergyRangeConfig)):
            _check_energy_range(value, where)
        elif isinstance(value, GeomConfig):
            _check_geom_size(value, where)


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
