"""The registry of step kinds: the only code ``redo`` will ever run.

A product's provenance names each activity by its *kind* (the ActivityDescription
name, e.g. ``spectrum-datasets``) and version. It never names code: ``redo`` looks
the kind and version up here, in a table that only ctanb's own code fills (every
function decorated with :func:`~ctanb.provenance.recorded` registers itself when its
module is imported). A record that names a kind or version this table does not know
is refused before anything is imported, so a crafted file cannot make ctanb run
code it did not ship.

The modules that define ctanb's analysis steps are listed in :data:`STEP_MODULES`;
:func:`step_for` imports those (and only those) before looking a kind up.
"""

from __future__ import annotations

import importlib
import inspect
import sys
import typing
from dataclasses import dataclass
from typing import Any

from .._errors import ProvenanceError

__all__ = ["STEP_MODULES", "RegisteredStep", "register_step", "registered_steps", "step_for"]

#: ctanb modules whose recorded steps ``redo`` may run (imported on demand, never
#: taken from a record).
STEP_MODULES: tuple[str, ...] = (
    "ctanb.analysis.spectrum",
    "ctanb.analysis.lightcurve",
    "ctanb.analysis.maps",
    "ctanb.analysis.masks",
    "ctanb.analysis.map3d",
    "ctanb.analysis.detection",
    "ctanb.analysis.ring",
)


@dataclass(frozen=True)
class RegisteredStep:
    """One step kind and version, and the function that runs it.

    Parameters
    ----------
    kind, version : str
        The ActivityDescription name and version a record names.
    function : callable
        The undecorated function (a method when ``is_method``).
    inputs, outputs : tuple of str
        Its arguments that are input files and output files (redo checks that a
        record's values of these are its recorded inputs and products).
    """

    kind: str
    version: str
    function: Any
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()

    @property
    def is_method(self) -> bool:
        """True when the step is a method of a class configured once (``Class(config)``)."""
        return next(iter(inspect.signature(self.function).parameters), None) == "self"

    @property
    def code(self) -> str:
        """Where the step's code lives (``module:qualname``), for messages only."""
        return f"{self.function.__module__}:{self.function.__qualname__}"

    def owner(self) -> type:
        """The class a method step belongs to (looked up in the step's own module)."""
        obj: Any = sys.modules[self.function.__module__]
        for part in self.function.__qualname__.split(".")[:-1]:
            obj = getattr(obj, part)
        return obj

    def allowed_models(self) -> dict[str, type]:
        """Pydantic classes a record may name for this step's configuration and
        parameters: those in the step's own annotations and their subclasses that ctanb
        has loaded (``module:qualname`` -> class)."""
        hints: list[Any] = []
        functions = [self.function]
        if self.is_method:
            functions.append(self.owner().__init__)
            # A Step names its configuration class once, as a class attribute.
            config_class = getattr(self.owner(), "config_class", None)
            if config_class is not None:
                hints.append(config_class)
        for func in functions:
            try:
                hints += list(typing.get_type_hints(func).values())
            except Exception:  # unresolvable annotations: no pydantic class allowed
                continue
        found: dict[str, type] = {}
        todo = hints
        while todo:
            hint = todo.pop()
            todo += list(typing.get_args(hint))
            if isinstance(hint, type) and hasattr(hint, "model_validate"):
                found[f"{hint.__module__}:{hint.__qualname__}"] = hint
                # A class moved to another module is still found under the name records
                # made before the move give it (its own ``_recorded_as``, not a base's).
                for name in vars(hint).get("_recorded_as", ()):
                    found[name] = hint
                # Subclasses already loaded (a step configured with a specialised
                # config, e.g. the ring reduction's); never imported by name.
                todo += list(hint.__subclasses__())
        return found


_REGISTRY: dict[tuple[str, str], RegisteredStep] = {}


def register_step(
    kind: str,
    version: str,
    function: Any,
    *,
    inputs: tuple[str, ...] = (),
    outputs: tuple[str, ...] = (),
) -> None:
    """Register *function* as the code of step *kind* at *version* (by ``@recorded``).

    Raises
    ------
    ProvenanceError
        Another function is already registered under the same kind and version.
    """
    key = (kind, str(version))
    known = _REGISTRY.get(key)
    new = RegisteredStep(kind, str(version), function, tuple(inputs), tuple(outputs))
    if known is not None and known.code != new.code:
        raise ProvenanceError(
            f"step {kind!r} version {version!r} is already registered by {known.code}"
        )
    _REGISTRY[key] = new


def registered_steps() -> dict[tuple[str, str], RegisteredStep]:
    """Every registered (kind, version), after importing :data:`STEP_MODULES`.

    Returns
    -------
    dict of (str, str) to RegisteredStep
        A copy of the registry.
    """
    _import_step_modules()
    return dict(_REGISTRY)


def _import_step_modules() -> None:
    for module in STEP_MODULES:
        importlib.import_module(module)


def step_for(kind: str, version: str, *, activity: str = "") -> RegisteredStep:
    """The registered step of a record's *kind* and *version*.

    Raises
    ------
    ProvenanceError
        The kind, or this version of it, is not one of ctanb's registered steps
        (the message names the activity and what it asked for).
    """
    _import_step_modules()
    found = _REGISTRY.get((kind, str(version)))
    if found is not None:
        return found
    where = f"activity {activity} " if activity else ""
    versions = sorted(v for k, v in _REGISTRY if k == kind)
    if versions:
        raise ProvenanceError(
            f"cannot redo {where}of step {kind!r}: version {version!r} is unknown to this "
            f"ctanb (it knows {', '.join(versions)}); use the ctanb version that made it"
        )
    raise ProvenanceError(
        f"refused to redo {where}: {kind!r} is not a ctanb step (nothing was run)"
    )
