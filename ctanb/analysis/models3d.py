"""The models and fit options of a 3D analysis: starting sky models and the fit backend.

Starting models come from a gammapy ``Models`` YAML file or from catalog sources in the
map (HGPS, gamma-cat, 3FHL, 3FGL positions as starting points); they are checked to lie
in the map before any data are reduced. :class:`FitConfig` holds gammapy ``Fit``'s
backend and options, refusing options the backend would ignore.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import yaml
from gammapy.utils.types import AngleType, EnergyType
from pydantic import ConfigDict, Field, model_validator

from .._errors import AnalysisError, ConfigError
from ._base import StepConfig
from .masks import CatalogKey

__all__ = ["FitConfig", "ModelsConfig", "starting_models"]


class ModelsConfig(StepConfig):
    """The sky models to fit: a gammapy model YAML file, or catalog sources as starting points.

    Parameters
    ----------
    file : str, optional
        A gammapy ``Models`` YAML file (``$CTANB_DATA`` and ``~`` expanded).
    catalog : {"hgps", "gamma-cat", "3fhl", "3fgl"}, optional
        Start from the positions of sources of this catalog.
    sources : list of str
        Which catalog sources (names as in the catalog); empty: every source in the map.
    spatial : {"gaussian", "disk", "point"}
        Spatial model of each catalog source; ``size`` is the starting sigma or radius.
    position_range : angle, optional
        A catalog source's fitted position stays within this distance (in longitude and
        latitude) of its catalog position (parameter limits; None: no limits).
    size_max : angle
        Upper limit of the fitted sigma or radius (lower limit: ``size / 20``).
    index, amplitude, reference : float, str, energy
        Starting power law of each catalog source.
    """

    model_config = ConfigDict(
        **StepConfig.model_config, arbitrary_types_allowed=True, validate_default=True
    )

    file: str | None = None
    catalog: CatalogKey | None = None
    sources: list[str] = Field(default_factory=list)
    spatial: Literal["gaussian", "disk", "point"] = "gaussian"
    size: AngleType = "0.1 deg"
    position_range: AngleType | None = "0.5 deg"
    size_max: AngleType = "1 deg"
    index: float = 2.3
    amplitude: str = "1e-12 cm-2 s-1 TeV-1"
    reference: EnergyType = "1 TeV"

    @model_validator(mode="after")
    def _one_source(self) -> ModelsConfig:
        if (self.file is None) == (self.catalog is None):
            raise ValueError("give exactly one of models.file and models.catalog")
        return self


#: The options gammapy's fit backends read (gammapy.modeling.iminuit / .scipy); any other
#: key would be dropped without a word, so a typo would silently give the default fit.
_OPTIMIZE_OPTS = {
    "minuit": {"tol", "errordef", "print_level", "strategy", "migrad_opts"},
    "scipy": {"method", "tol", "options", "jac", "hess", "constraints", "callback"},
}
_MIGRAD_OPTS = {"ncall", "iterate"}


class FitConfig(StepConfig):
    """How to fit: gammapy ``Fit`` backend and options.

    ``optimize_opts`` are the backend's own: for ``minuit`` ``tol``, ``strategy``,
    ``print_level``, ``errordef`` and ``migrad_opts`` (``ncall``, ``iterate``); for
    ``scipy`` ``method``, ``tol``, ``options`` and the other ``scipy.optimize.minimize``
    arguments. Any other key is an error that names it.
    """

    backend: Literal["minuit", "scipy"] = "minuit"
    optimize_opts: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_options(self) -> FitConfig:
        known = _OPTIMIZE_OPTS[self.backend]
        unknown = sorted(set(self.optimize_opts) - known)
        if unknown:
            raise ValueError(
                f"optimize_opts: {', '.join(unknown)} is not an option of the {self.backend} "
                f"fit (it would be ignored); known: {', '.join(sorted(known))}"
            )
        migrad = self.optimize_opts.get("migrad_opts", {})
        if self.backend == "minuit":
            if not isinstance(migrad, dict) or set(migrad) - _MIGRAD_OPTS:
                raise ValueError(
                    "optimize_opts.migrad_opts: give a mapping with ncall and/or iterate"
                )
        return self


def starting_models(config: ModelsConfig, geom: Any) -> Any:
    """The sky models *config* names, checked to lie in the map *geom* (gammapy Models).

    Raises
    ------
    AnalysisError
        A model outside the map, or no catalog source in it.
    """
    from gammapy.modeling.models import Models

    if config.file is not None:
        from .workflow import expand_path

        path = expand_path(config.file)
        try:
            models = Models.read(path)
        except yaml.YAMLError as exc:  # python tags are refused by gammapy's safe loader
            where = getattr(exc, "problem_mark", None)
            at = f" (line {where.line + 1}, column {where.column + 1})" if where else ""
            problem = getattr(exc, "problem", None) or "not valid YAML"
            raise ConfigError(
                f"cannot read the models file {path}{at}: {problem}; it must be a gammapy "
                "Models YAML file (plain YAML, no tags)"
            ) from None
        except (OSError, KeyError, ValueError, TypeError, AttributeError) as exc:
            raise ConfigError(f"cannot read the models file {path}: {exc}") from None
    else:
        models = Models(_catalog_models(config, geom))
    image = geom.to_image()
    for model in models:
        spatial = getattr(model, "spatial_model", None)
        if spatial is None or not hasattr(spatial, "position"):
            continue
        position = spatial.position
        if not bool(np.all(image.contains(position))):
            centre = image.center_skydir
            raise AnalysisError(
                f"the spatial model of {model.name!r} (at {position.frame.name} "
                f"{position.data.lon.deg:.3f}, {position.data.lat.deg:.3f} deg) lies outside the map "
                f"(centre {centre.data.lon.deg:.3f}, {centre.data.lat.deg:.3f} deg, "
                f"{image.width.to_value('deg').ravel()[0]:.2f} x "
                f"{image.width.to_value('deg').ravel()[1]:.2f} deg): move or enlarge the map "
                "(geom.wcs) or remove that model"
            )
    return models


def _in_catalog(catalog: Any, name: str) -> bool:
    try:
        catalog.row_index(name)
    except KeyError:
        return False
    return True


def _catalog_models(config: ModelsConfig, geom: Any) -> list[Any]:
    import astropy.units as u
    from gammapy.modeling.models import (
        DiskSpatialModel,
        GaussianSpatialModel,
        PointSpatialModel,
        PowerLawSpectralModel,
        SkyModel,
    )

    from .catalogs import CATALOGS, load_catalog
    from .masks import catalog_sources_in

    key = config.catalog
    assert key is not None
    in_map = dict(catalog_sources_in(geom, key))
    if config.sources:
        catalog = load_catalog(key)
        unknown = [n for n in config.sources if not _in_catalog(catalog, n)]
        if unknown:
            raise ConfigError(
                f"source(s) {', '.join(unknown)} not in the {CATALOGS[key]['title']} catalog"
            )
        outside = [n for n in config.sources if n not in in_map]
        if outside:
            raise AnalysisError(
                f"catalog source(s) {', '.join(outside)} lie outside the map: move or enlarge "
                "the map (geom.wcs) or pick sources in it"
            )
        picked = {name: in_map[name] for name in config.sources}
    else:
        picked = in_map
    if not picked:
        centre = geom.center_skydir
        raise AnalysisError(
            f"no {CATALOGS[key]['title']} source lies in the map (centre {centre.frame.name} "
            f"{centre.data.lon.deg:.2f}, {centre.data.lat.deg:.2f} deg): pick another catalog, "
            "enlarge the map, or give the models in a file (models.file)"
        )
    frame = geom.frame
    models = []
    for name, position in picked.items():
        where = position.transform_to(frame)
        lon, lat = where.data.lon.to(u.deg), where.data.lat.to(u.deg)
        if config.spatial == "gaussian":
            spatial = GaussianSpatialModel(lon_0=lon, lat_0=lat, sigma=config.size, frame=frame)
        elif config.spatial == "disk":
            spatial = DiskSpatialModel(lon_0=lon, lat_0=lat, r_0=config.size, frame=frame)
        else:
            spatial = PointSpatialModel(lon_0=lon, lat_0=lat, frame=frame)
        # Limits keep the optimizer near the catalog position: without them, migrad can step
        # a faint source's position off the map and fail.
        if config.position_range is not None:
            step = config.position_range.to_value("deg")
            for parameter in (spatial.lon_0, spatial.lat_0):
                parameter.min, parameter.max = parameter.value - step, parameter.value + step
        size = {"gaussian": "sigma", "disk": "r_0"}.get(config.spatial)
        if size is not None:
            spatial.parameters[size].min = config.size.to_value("deg") / 20
            spatial.parameters[size].max = config.size_max.to_value("deg")
        spectral = PowerLawSpectralModel(
            index=config.index, amplitude=config.amplitude, reference=config.reference
        )
        models.append(SkyModel(spectral_model=spectral, spatial_model=spatial, name=name))
    return models
