"""Analysis steps: thin, recorded wrappers over gammapy (maps, spectra, light curves, SEDs).

Every step is configured once with a strict configuration and run on DL3
observations, gammapy style; ``run`` returns a new result object and writes
DL4/DL5 products that carry their provenance::

    from ctanb.analysis import EXAMPLES, AnalysisConfig, MapStep, inputs_from_datastore

    runs = inputs_from_datastore("hess-dl3-dr1", obs_ids=[20136, 20137])
    maps = AnalysisConfig.read(EXAMPLES["msh1552_map"]).maps   # the maps: section of an example
    result = MapStep(maps).run(runs, out="maps/")

A whole analysis from one YAML file: :class:`Workflow` (``ctanb run``).
Names are imported lazily, so ``import ctanb.analysis`` does not load gammapy.
"""

from __future__ import annotations

from importlib.util import find_spec

import lazy_loader as _lazy

from ._base import DL3Input as DL3Input
from ._base import Step as Step
from ._base import StepConfig as StepConfig
from ._base import StepResult as StepResult
from ._base import require_inputs as require_inputs

# Module -> names, imported on first use (lazy-loader). Modules of the spectrum/light-curve
# area are listed only when present, so this package works whichever steps a ctanb build has.
_MODULE_NAMES: dict[str, list[str]] = {
    "inputs": ["as_inputs", "inputs_from_archive", "inputs_from_datastore", "inputs_from_paths"],
    "reduce": ["ParallelConfig", "parallel", "reduce_observations"],
    "maps": [
        "ExcessMapConfig",
        "ExcessMapResult",
        "ExcessMapStep",
        "MapConfig",
        "MapDatasetConfig",
        "MapDatasetResult",
        "MapDatasetStep",
        "MapResult",
        "MapStep",
    ],
    "masks": ["ExclusionConfig", "ExclusionMaskConfig", "ExclusionMaskStep", "ExclusionWarning"],
    "detection": ["DetectionConfig", "DetectionStep", "TSMapConfig", "TSMapResult", "TSMapStep"],
    "map3d": ["Map3DConfig", "Map3DFitStep", "Map3DResult", "Map3DStep"],
    "ring": ["RingMapConfig", "RingMapResult", "RingMapStep"],
    "workflow": ["AnalysisConfig", "Workflow", "WorkflowResult", "register_step"],
    "examples": ["EXAMPLES"],
    "spectrum_data": ["EnergyRangeWarning"],
    "spectrum": ["SpectrumConfig", "SpectrumResult", "SpectrumStep", "joint_fit"],
    "energy_scale": ["EnergyScaleSpectralModel"],
    "lightcurve": ["LightCurveConfig", "LightCurveResult", "LightCurveStep"],
    "sed": ["MultiWavelengthSED", "plot_sed", "read_flux_points", "write_flux_points"],
    "catalogs": ["CatalogSpectrum", "catalog_spectra", "load_catalog"],
}
__getattr__, _lazy_dir, _lazy_names = _lazy.attach(
    __name__,
    submod_attrs={
        module: names
        for module, names in _MODULE_NAMES.items()
        if find_spec(f"{__name__}.{module}") is not None
    },
)

__all__ = sorted(["DL3Input", "Step", "StepConfig", "StepResult", "require_inputs", *_lazy_names])


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
