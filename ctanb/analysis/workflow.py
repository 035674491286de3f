"""A whole analysis from one YAML file: select observations, then maps, spectrum, light curve.

Not run by the doctests (a whole analysis: ``tests/test_analysis_workflow.py`` runs
the packaged examples):

>>> from ctanb.analysis import Workflow
>>> result = Workflow.read("msh1552_map.yaml").run(out="products/")   # doctest: +SKIP

or ``ctanb run msh1552_map.yaml --out products/``. The file::

    observations:              # exactly one of archive / datastore
      archive:                 # criteria of ctanb.connect(url).search(...)
        url: null              # default: CTANB_TAP_URL or the running embedded archive
        criteria: {ra: 228.53, dec: -59.16, radius: 1.0, spatial: pointing,
                   collection: HESS-DL3-DR1}
      datastore:               # or a local GADF data store
        path: $CTANB_DATA/hess-dl3-dr1
        obs_ids: [20136, 20137]
    maps: {...}                # MapConfig (gammapy.workflow geometry/background models)
    detection: {...}           # ctanb.analysis.detection.DetectionConfig (TS map, peaks)
    map3d: {...}               # ctanb.analysis.map3d.Map3DConfig (3D likelihood fit)
    ring_map: {...}            # ctanb.analysis.ring.RingMapConfig (ring on the stack)
    spectrum: {...}            # ctanb.analysis.spectrum.SpectrumConfig
    light_curve: {...}         # ctanb.analysis.lightcurve.LightCurveConfig
    parallel: {backend: dask, n_workers: 2}   # ParallelConfig, runtime only

Each section runs its step into ``out/<section>/``; every step records its
provenance (products carry it), and the whole run is an ``analysis`` activity
that informs them, so a failure is recorded with status ``failed`` while the
products already written stay on disk. New sections register with
:func:`register_step`.
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator

from .._errors import AnalysisError, ConfigError, CtanbError
from ._base import DL3Input, Step, StepConfig, StepResult

__all__ = [
    "STEPS",
    "AnalysisConfig",
    "ArchiveSelection",
    "DataStoreSelection",
    "ObservationSelection",
    "Workflow",
    "WorkflowResult",
    "register_step",
]

WORKFLOW_VERSION = "1.0"

#: Config section -> (module, config class, step class); run in this order.
STEPS: dict[str, tuple[str, str, str]] = {
    "maps": ("ctanb.analysis.maps", "MapConfig", "MapStep"),
    "detection": ("ctanb.analysis.detection", "DetectionConfig", "DetectionStep"),
    "map3d": ("ctanb.analysis.map3d", "Map3DConfig", "Map3DStep"),
    "ring_map": ("ctanb.analysis.ring", "RingMapConfig", "RingMapStep"),
    "spectrum": ("ctanb.analysis.spectrum", "SpectrumConfig", "SpectrumStep"),
    "light_curve": ("ctanb.analysis.lightcurve", "LightCurveConfig", "LightCurveStep"),
}


def register_step(section: str, module: str, config_class: str, step_class: str) -> None:
    """Make *section* of an analysis configuration run ``module.step_class(config).run``.

    The step must follow the ctanb contract: ``Step(config).run(inputs, out)``
    (optionally ``parallel=``) returning a :class:`~ctanb.analysis.StepResult`.

    Parameters
    ----------
    section : str
        The configuration section (e.g. ``"my_step"``).
    module : str
        The module that defines the step (imported when the section runs).
    config_class : str
        The name of its configuration class in *module*.
    step_class : str
        The name of its :class:`~ctanb.analysis.Step` class in *module*.
    """
    STEPS[section] = (module, config_class, step_class)
    AnalysisConfig.model_rebuild(force=True)


def _step_classes(section: str) -> tuple[type, type]:
    module_name, config_name, step_name = STEPS[section]
    try:
        module = import_module(module_name)
        return getattr(module, config_name), getattr(module, step_name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(
            f"the {section!r} step is not available in this ctanb ({module_name}: {exc})"
        ) from None


def expand_path(text: str | Path) -> Path:
    """A path with ``~`` and ``$VARS`` expanded; ``$CTANB_DATA`` defaults to the data folder."""
    from .._settings import data_dir

    env = {**os.environ}
    env.setdefault("CTANB_DATA", str(data_dir()))
    expanded = re.sub(r"\$\{?(\w+)\}?", lambda m: env.get(m.group(1), m.group(0)), str(text))
    return Path(expanded).expanduser()


class ArchiveSelection(StepConfig):
    """Observations found by ``ctanb.connect(url).search(**criteria)``."""

    url: str | None = None
    criteria: dict[str, Any]

    @field_validator("criteria")
    @classmethod
    def _valid_criteria(cls, value: dict[str, Any]) -> dict[str, Any]:
        from ..client import Criteria

        Criteria(**value)  # a bad criterion is a CriteriaError naming it
        return value


class DataStoreSelection(StepConfig):
    """Observations of a local GADF data store (all, or these ``obs_ids`` in order)."""

    path: str
    obs_ids: list[int] | None = None
    obscore: bool = False


class ObservationSelection(StepConfig):
    """Where the DL3 observations come from: exactly one of ``archive`` and ``datastore``."""

    archive: ArchiveSelection | None = None
    datastore: DataStoreSelection | None = None

    @model_validator(mode="after")
    def _one_source(self) -> ObservationSelection:
        if (self.archive is None) == (self.datastore is None):
            raise ValueError("give exactly one of observations.archive and observations.datastore")
        return self

    def select(self, archive_url: str | None = None) -> list[DL3Input]:
        """Search (or read the data store) and return the observations as DL3Input."""
        from .inputs import inputs_from_archive, inputs_from_datastore

        if self.datastore is not None:
            store = self.datastore
            return inputs_from_datastore(
                expand_path(store.path), store.obs_ids, obscore=store.obscore
            )
        import ctanb

        assert self.archive is not None
        with ctanb.connect(archive_url or self.archive.url, progress=False) as archive:
            found = archive.search(**self.archive.criteria)
            if len(found) == 0:
                raise AnalysisError(
                    f"no observation selected: the archive search {self.archive.criteria} "
                    f"found nothing at {archive.url}"
                )
            return inputs_from_archive(found, archive)


class AnalysisConfig(StepConfig):
    """A whole analysis: observation selection, then the step sections that are given.

    ``maps``, ``detection``, ``map3d``, ``ring_map``, ``spectrum`` and ``light_curve`` hold the configuration of the step of
    that name (see :data:`STEPS`), validated strictly by that step's config class.
    """

    name: str = Field(
        "analysis", description="Name of the analysis, as its provenance activity describes it"
    )
    observations: ObservationSelection = Field(
        description="Where the DL3 runs come from (required): archive (url and search "
        "criteria, as for ctanb.connect(url).search) or datastore (path of a GADF "
        "data store, optional obs_ids)",
    )
    maps: Any = Field(None, description="Sky maps (MapConfig); None: not run")
    detection: Any = Field(None, description="TS map and source candidates (DetectionConfig)")
    map3d: Any = Field(None, description="3D fit of sky models (Map3DConfig)")
    ring_map: Any = Field(None, description="Maps with the ring background (RingMapConfig)")
    spectrum: Any = Field(None, description="On/off spectrum, fit and flux points (SpectrumConfig)")
    light_curve: Any = Field(None, description="Light curve per run or night (LightCurveConfig)")
    parallel: Any = Field(
        None,
        description="Where the per-run reductions run (ParallelConfig: serial, a local "
        "Dask cluster, a scheduler or dask-gateway); None: serial",
    )

    @model_validator(mode="before")
    @classmethod
    def _known_sections(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            known = {"name", "observations", "parallel", *STEPS}
            unknown = [key for key in data if key not in known]
            if unknown:
                raise ValueError(
                    f"unknown section(s) {', '.join(map(str, unknown))}; known: {', '.join(sorted(known))}"
                )
        return data

    @field_validator("maps", "detection", "map3d", "ring_map", "spectrum", "light_curve")
    @classmethod
    def _step_config(cls, value: Any, info: Any) -> Any:
        if value is None:
            return None
        config_class, _ = _step_classes(info.field_name)
        if isinstance(value, config_class):
            return value
        if not isinstance(value, Mapping):
            raise ValueError(f"section {info.field_name!r} must be a mapping")
        try:
            return config_class.model_validate(dict(value))
        except CtanbError as exc:
            raise ValueError(exc.message) from None

    @field_validator("parallel")
    @classmethod
    def _parallel(cls, value: Any) -> Any:
        from .reduce import ParallelConfig

        if value is None or isinstance(value, ParallelConfig):
            return value
        return ParallelConfig.model_validate(value)

    def sections(self) -> list[str]:
        """The step sections given, in the order they run.

        Returns
        -------
        list of str
            The section names.
        """
        return [name for name in STEPS if getattr(self, name, None) is not None]


@dataclass
class WorkflowResult:
    """Results of each step of a whole analysis (section name -> StepResult).

    Parameters
    ----------
    out : Path
        The output folder of the analysis.
    observations : list of DL3Input
        The observations selected.
    results : dict of str to StepResult
        The result of each step that ran, by section.
    """

    out: Path
    observations: list[DL3Input] = field(default_factory=list)
    results: dict[str, StepResult] = field(default_factory=dict)

    def __getitem__(self, section: str) -> StepResult:
        return self.results[section]

    @property
    def products(self) -> dict[str, Path]:
        """Every product, as ``section/name`` -> path."""
        return {
            f"{section}/{name}": path
            for section, result in self.results.items()
            for name, path in result.products.items()
        }

    def plot(self) -> list[Any]:
        """The plot of each step result that has one (maps on WCSAxes, spectra, ...).

        Returns
        -------
        list
            What each result's ``plot()`` returned, in the order the steps ran.
        """
        return [r.plot() for r in self.results.values() if hasattr(r, "plot")]

    def _repr_html_(self) -> str:
        parts = [
            f"<b>Analysis</b> of {len(self.observations)} observation(s) into "
            f"<code>{html.escape(str(self.out))}</code>"
        ]
        parts += [f"<h4>{html.escape(k)}</h4>{r._repr_html_()}" for k, r in self.results.items()]
        return "".join(parts)


class Workflow(Step):
    """Run an :class:`AnalysisConfig`: select observations, then each configured step.

    Parameters
    ----------
    config : AnalysisConfig or mapping
    """

    config_class = AnalysisConfig
    config_source = "analysis configuration"

    @classmethod
    def read(cls, path: str | Path) -> Workflow:
        """A workflow from a YAML file (errors name the file and the key).

        Parameters
        ----------
        path : str or Path
            The analysis configuration file.

        Returns
        -------
        Workflow
            The configured workflow.
        """
        return cls(AnalysisConfig.read(path))

    def run(
        self,
        out: str | Path,
        *,
        archive_url: str | None = None,
        parallel: Any = None,
        progress: bool = True,
    ) -> WorkflowResult:
        """Select the observations and run every configured step into *out*.

        Parameters
        ----------
        out : path
            Output folder; each step writes into ``out/<section>/``.
        archive_url : str, optional
            Use this archive instead of ``observations.archive.url``.
        parallel : ParallelConfig or distributed.Client, optional
            Overrides the configuration's ``parallel`` section.
        progress : bool
            Progress bars (when ``parallel`` comes from the configuration).

        Returns
        -------
        WorkflowResult
            The result of every step that ran, by section.

        Raises
        ------
        AnalysisError
            No observation selected, missing IRFs, a region outside the field of
            view, ... (the products already written are kept; the provenance
            records the failed activity).
        """
        from ..provenance import Activity
        from .reduce import ParallelConfig
        from .reduce import parallel as parallel_block

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        self.config.write(out / "analysis.yaml")
        setting = parallel if parallel is not None else self.config.parallel
        if setting is None:
            setting = ParallelConfig(progress=progress)
        result = WorkflowResult(out)
        with (
            Activity(
                "analysis",
                version=WORKFLOW_VERSION,
                description=f"ctanb run: {self.config.name}",
                config=self.config,
                parameters={"out": str(out.resolve()), "sections": self.config.sections()},
            ) as act,
            parallel_block(setting),
        ):
            result.observations = self.config.observations.select(archive_url)
            act.parameter("obs_ids", [item.obs_id for item in result.observations])
            for section in self.config.sections():
                _, step_class = _step_classes(section)
                step = step_class(getattr(self.config, section))
                result.results[section] = step.run(result.observations, out / section)
        return result
