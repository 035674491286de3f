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

import functools
import inspect
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from .._errors import AnalysisError, ConfigError
from .._validation import describe_errors, short

__all__ = ["DL3Input", "Step", "StepConfig", "StepResult", "output_folder", "require_inputs"]


#: Largest map (pixels x energy bins) a step makes: gammapy holds several float64 maps of
#: this size at once, so beyond it a typo in binsize fails after minutes for lack of memory.
MAX_MAP_VOXELS = 50_000_000


class StepConfig(BaseModel):
    """Base of every step configuration: strict (unknown keys are errors), YAML I/O.

    Energy ranges and map geometries anywhere in a configuration are checked when it
    is made (finite, ordered, of a size that fits in memory), not minutes later.
    However it is made (keywords, :meth:`from_dict`, :meth:`read`, assigning a
    field), a bad value raises :class:`~ctanb.ConfigError` naming the key.
    """

    # allow_inf_nan: no float setting of a step means anything as NaN or infinity.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    def __init__(self, /, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            problems = describe_errors(exc, with_input=True, known=type(self).model_fields)
            raise ConfigError(f"invalid {type(self).__name__}: {problems}") from None

    # Marked as pydantic's own __init__ (as pydantic-settings does): validation of a nested
    # section then does not go through it, so a problem deep inside a configuration is
    # named once, by key path, not wrapped as "invalid <Section>" at every level.
    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]

    def __setattr__(self, name: str, value: Any) -> None:
        try:
            super().__setattr__(name, value)
        except ValidationError as exc:
            problems = describe_errors(exc, with_input=True, known=type(self).model_fields)
            raise ConfigError(f"invalid {type(self).__name__}: {problems}") from None

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        # Each key is documented once, in Field(description=...): the docstring's
        # Parameters section is made from the fields (see ctanb.analysis._fielddoc).
        super().__pydantic_init_subclass__(**kwargs)
        from ._fielddoc import document_fields

        document_fields(cls)

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
        if not isinstance(data, Mapping):
            raise ConfigError(
                f"invalid {source}: expected settings as key: value pairs (a mapping), "
                f"not {short(data)}"
            )
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            problems = describe_errors(exc, known=cls.model_fields)
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

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Every step's ``run(..., out)`` checks its output folder here, in one place: a
        # file or a folder that cannot be made is an AnalysisError before any work starts.
        super().__init_subclass__(**kwargs)
        run = cls.__dict__.get("run")
        if run is None or "out" not in inspect.signature(run).parameters:
            return

        @functools.wraps(run)
        def run_into_a_folder(self: Step, *args: Any, **kw: Any) -> Any:
            try:
                bound = inspect.signature(run).bind(self, *args, **kw)
            except TypeError:
                return run(self, *args, **kw)  # Python's own message for a wrong call
            if "out" in bound.arguments:
                output_folder(bound.arguments["out"])
            return run(self, *args, **kw)

        cls.run = run_into_a_folder  # type: ignore[method-assign]

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


def output_folder(out: Any) -> Path:
    """*out* as an existing folder (made if needed): where a step writes its products.

    Parameters
    ----------
    out : str or Path
        The output folder.

    Returns
    -------
    Path
        The folder.

    Raises
    ------
    AnalysisError
        *out* is not a path, is a file, or cannot be made (the reason said).
    """
    if not isinstance(out, str | os.PathLike) or not str(out).strip():
        raise AnalysisError(f"out: give the output folder (a path), not {out!r}")
    folder = Path(out).expanduser()
    if folder.exists() and not folder.is_dir():
        raise AnalysisError(
            f"out: {folder} is a file, not a folder: give a folder for the products"
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AnalysisError(
            f"out: cannot make the folder {folder}: {exc.strerror or exc}"
        ) from None
    return folder


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
