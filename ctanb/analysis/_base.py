"""What every analysis step shares: strict YAML configs, results, and DL3 inputs.

A step is configured once and run many times (gammapy style)::

    step = CountsMapStep(CountsMapConfig(binsz=0.02, width=(5, 5)))
    result = step.run(inputs, out="products/")   # returns a new StepResult

``inputs`` are DL3 observations given as :class:`DL3Input` (event file, IRF file,
ObsCore row) so that provenance can name and hash every file; helpers build them
from archive results, a gammapy DataStore or plain paths. The recorded unit of
work (``@recorded``) takes file paths and an output folder, so ``ctanb prov redo``
can re-run it from the DL3 files alone.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from .._errors import AnalysisError, ConfigError
from .._validation import describe_errors

__all__ = ["DL3Input", "Step", "StepConfig", "StepResult", "require_inputs"]


#: Largest map (pixels x energy bins) a step makes: gammapy holds several float64 maps of
#: this size at once, so beyond it a typo in binsize fails after minutes for lack of memory.
MAX_MAP_VOXELS = 50_000_000


class StepConfig(BaseModel):
    """Base of every step configuration: strict (unknown keys are errors), YAML I/O.

    Energy ranges and map geometries anywhere in a configuration are checked when it
    is made (finite, ordered, of a size that fits in memory), not minutes later.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    @model_validator(mode="after")
    def _check_ranges_and_sizes(self) -> Self:
        from ._checks import check_config_tree

        check_config_tree(self)
        return self

    @classmethod
    def read(cls, path: str | Path) -> Self:
        """Read a configuration from a YAML file (errors name the file and the key).

        Parameters
        ----------
        path : str or Path
            The YAML file.

        Returns
        -------
        StepConfig
            The validated configuration (of the class it is called on).

        Raises
        ------
        ConfigError
            The file cannot be read, is not YAML, or a key or value is invalid.
        """
        path = Path(path)
        data = _load_config_yaml(path)
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "configuration") -> Self:
        """Validate a mapping; a bad key or value raises :class:`~ctanb.ConfigError`.

        Parameters
        ----------
        data : mapping
            The configuration as plain values (as read from YAML).
        source : str
            What the message calls the configuration (a file name, a section).

        Returns
        -------
        StepConfig
            The validated configuration.

        Raises
        ------
        ConfigError
            A key is unknown or a value invalid (every problem named, by key path).
        """
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            problems = describe_errors(exc)
            raise ConfigError(f"invalid {source}: {problems}") from None

    @classmethod
    def coerce(cls, config: Any, *, source: str | None = None) -> Self:
        """*config* as this class: an instance as it is; a mapping, another pydantic
        model or None (all defaults) validated strictly (errors: :class:`~ctanb.ConfigError`).

        Parameters
        ----------
        config : StepConfig, mapping, pydantic model or None
            The configuration or its values.
        source : str, optional
            What error messages call it (default: ``"<class name> configuration"``).

        Returns
        -------
        StepConfig
            *config* itself when it is already of this class, else a new validated one.
        """
        if isinstance(config, cls):
            return config
        if config is None:
            data: Any = {}
        elif hasattr(config, "model_dump"):
            data = config.model_dump()
        else:
            data = config
        return cls.from_dict(data, source=source or f"{cls.__name__} configuration")

    def to_yaml(self) -> str:
        """The configuration as YAML text (round-trips through :meth:`read`).

        Returns
        -------
        str
            YAML text of every setting (defaults included).
        """
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)

    def write(self, path: str | Path) -> Path:
        """Write the configuration as YAML.

        Parameters
        ----------
        path : str or Path
            The YAML file (overwritten).

        Returns
        -------
        Path
            *path*.
        """
        path = Path(path)
        path.write_text(self.to_yaml())
        return path


class _ConfigLoader(yaml.SafeLoader):
    """Plain YAML values only (no tags that build objects); a key given twice is an error."""

    def construct_mapping(self, node: Any, deep: bool = False) -> dict:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"the key {key!r} is given twice", key_node.start_mark
                    )
                seen.add(key)
            except TypeError:  # an unhashable key: the base class says so
                pass
        return super().construct_mapping(node, deep=deep)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """A YAML error in the words of someone who edits the file (no parser internals)."""
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    problem = str(getattr(exc, "problem", "") or "")
    tag = re.search(r"constructor for the tag '([^']*)'", problem)
    if tag:
        name = tag.group(1).replace("tag:yaml.org,2002:", "!!")
        return f"{where}the tag {name} is not allowed (a configuration holds plain values only)"
    if "unacceptable character" in problem or (not mark and hasattr(exc, "character")):
        return f"{where}it holds characters that are not text"
    if "<" in problem or not problem:
        return f"{where}the indentation or structure is wrong here (keys of one section line up)"
    if isinstance(exc, yaml.MarkedYAMLError) and not isinstance(
        exc, yaml.constructor.ConstructorError
    ):
        problem += " (check the indentation and the colons)"
    return f"{where}{problem}"


def _non_finite(data: Any, where: str = "") -> list[str]:
    """The key paths of ``.nan`` / ``.inf`` values: no setting of ctanb takes them."""
    if isinstance(data, float) and not math.isfinite(data):
        return [f"{where or 'value'}: {data} is not a finite number"]
    items = (
        data.items()
        if isinstance(data, dict)
        else enumerate(data)
        if isinstance(data, list)
        else ()
    )
    return [
        p
        for key, value in items
        for p in _non_finite(value, f"{where}.{key}" if where else str(key))
    ]


def _load_config_yaml(path: Path) -> dict:
    """The mapping of a YAML configuration file, or a ConfigError naming the file and the problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(
            f"cannot read configuration {path}: it is not a text (YAML) file"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read configuration {path}: {exc.strerror or exc}") from None
    try:
        data = yaml.load(text, Loader=_ConfigLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigError(f"configuration {path} is not valid YAML: {_yaml_problem(exc)}") from None
    except RecursionError:
        raise ConfigError(f"configuration {path} is nested too deeply") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        kind = {list: "a list", str: "a single text"}.get(type(data), "a single value")
        raise ConfigError(
            f"configuration {path} must hold settings as 'key: value' lines, not {kind}"
        )
    bad = _non_finite(data)
    if bad:
        raise ConfigError(f"invalid {path}: {'; '.join(bad)}")
    return data


class Step:
    """Base of the analysis steps, in the spirit of gammapy's Makers: configure once, run often.

    ``Step(config)`` validates the configuration once (strictly: a mapping, a YAML-read
    model or ``None`` for all defaults; errors are :class:`~ctanb.ConfigError` naming
    the key) and keeps it as :attr:`config`; ``run(...)`` never changes the step and
    returns a new :class:`StepResult` each time. A subclass sets :attr:`config_class`
    and defines ``run``.

    Parameters
    ----------
    config : StepConfig subclass instance, mapping or None
        The configuration, as an instance of :attr:`config_class` or data for it.

    Examples
    --------
    >>> from ctanb.analysis import ExcessMapConfig, ExcessMapStep
    >>> isinstance(ExcessMapStep().config, ExcessMapConfig)
    True
    >>> ExcessMapStep({"colour": "red"})
    Traceback (most recent call last):
    ctanb._errors.ConfigError: invalid ExcessMapConfig configuration: colour: unknown setting
    """

    #: The configuration class a step of this kind is configured with.
    config_class: ClassVar[type[StepConfig]] = StepConfig
    #: How error messages name the configuration (default: the class name).
    config_source: ClassVar[str | None] = None

    def __init__(self, config: Any = None) -> None:
        self.config = self.config_class.coerce(config, source=self.config_source)

    def run(self, *args: Any, **kwargs: Any) -> Any:
        """Run the step on its inputs; returns a new result (subclasses define it).

        Parameters
        ----------
        *args, **kwargs
            The step's inputs and output folder.

        Returns
        -------
        StepResult
            What the step made.

        Raises
        ------
        NotImplementedError
            On the base class itself.
        """
        raise NotImplementedError(f"{type(self).__name__} does not define run()")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({type(self.config).__name__})"


@dataclass(frozen=True)
class DL3Input:
    """One DL3 observation as files: what provenance records as a used entity.

    Parameters
    ----------
    obs_id : str
        Observation identifier.
    events : Path
        Event list file.
    irf : Path, optional
        IRF file when separate from the event file (CTA CALDB); None when bundled.
    obscore : mapping
        The observation's ObsCore row (publisher DID, versions, cuts, ...), when known.
    """

    obs_id: str
    events: Path
    irf: Path | None = None
    obscore: Mapping[str, Any] = field(default_factory=dict)

    def files(self) -> list[Path]:
        """The files of this observation (events, then the IRF file if separate).

        Returns
        -------
        list of Path
            The event file, then the IRF file when it is a separate file.
        """
        return [self.events] + ([self.irf] if self.irf and self.irf != self.events else [])

    def check(self) -> None:
        """Check that the files of this observation exist.

        Raises
        ------
        AnalysisError
            A file is missing (every missing file named).
        """
        missing = [str(p) for p in self.files() if not Path(p).is_file()]
        if missing:
            raise AnalysisError(f"observation {self.obs_id}: missing file(s) {', '.join(missing)}")


@dataclass
class StepResult:
    """What a step returns: the products it wrote (name -> path) and in-memory results.

    Parameters
    ----------
    products : dict of str to Path
        The files the step wrote, by product name.
    inputs : list of DL3Input
        The observations it used.
    """

    products: dict[str, Path] = field(default_factory=dict)
    inputs: list[DL3Input] = field(default_factory=list)

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{k}</td><td><code>{v}</code></td></tr>" for k, v in self.products.items()
        )
        return (
            f"<b>{type(self).__name__}</b> from {len(self.inputs)} observation(s)"
            f"<table><tr><th>product</th><th>file</th></tr>{rows}</table>"
        )


def require_inputs(inputs: Iterable[DL3Input]) -> list[DL3Input]:
    """The inputs as a list.

    Parameters
    ----------
    inputs : iterable of DL3Input
        The observations.

    Returns
    -------
    list of DL3Input
        The same observations.

    Raises
    ------
    AnalysisError
        There is none at all.
    """
    items = list(inputs)
    if not items:
        raise AnalysisError("no observation selected: give at least one DL3 observation")
    for item in items:
        item.check()
    return items
