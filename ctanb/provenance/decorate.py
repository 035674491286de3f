"""The :func:`recorded` decorator: every call of a step becomes an :class:`Activity`."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path, PurePath
from typing import Any, TypeVar

from ._values import NotEncodable, encode_value
from .capture import Activity
from .records import DEFAULT_STORE
from .steps import register_step

__all__ = ["recorded"]

F = TypeVar("F", bound=Callable[..., Any])


def recorded(
    name: str | None = None,
    *,
    version: str = "",
    description: str = "",
    inputs: Mapping[str, Callable[[Path], Mapping[str, Any]] | None] | Iterable[str] = (),
    outputs: Mapping[str, str | None] | Iterable[str] = (),
    data_level: str | None = None,
    store: Any = DEFAULT_STORE,
    record_result: bool = True,
    per_input: Iterable[str] = (),
) -> Callable[[F], F]:
    """Decorate a function or method so that every call is recorded as an :class:`Activity`.

    Parameters
    ----------
    name, version, description : str
        The ActivityDescription; ``name`` defaults to the function's qualname.
    inputs : iterable of str, or mapping
        Names of arguments that are input files (a path or a list of paths).
        A mapping gives, per name, a function ``describe(path) -> dict`` whose
        result is passed to :meth:`Activity.used` as keywords (e.g.
        ``{"obscore": row}`` with the dataset's ObsCore row from the archive).
    outputs : mapping or iterable of str
        Names of arguments that are output paths, optionally mapped to their
        product type (``{"out": "counts"}``); the files are hashed and get their
        provenance attached when the call returns.
    data_level : str, optional
        Data level of the outputs (e.g. ``"DL4"``).
    store : ProvenanceStore, str or None
        Where to record (default: :func:`~ctanb.provenance.default_store`; None:
        in memory and in the FITS products only).
    record_result : bool
        Record the return value as a generated in-memory entity.
    per_input : iterable of str
        Output arguments (lists) whose i-th file was computed from the i-th item of
        each input list of the same length only (one dataset per run): provenance
        derives each from its own run, not from all of them.

    Returns
    -------
    callable
        The decorator.

    Notes
    -----
    Every other argument is a parameter (JSON-encodable values) or, if it has no
    JSON form, a used in-memory entity. For a method, ``self.config`` (a pydantic
    model or mapping) is recorded as the configuration, and redo rebuilds the
    instance as ``Class(config)``.

    The decorated function is registered as the code of step ``name`` at
    ``version`` (:mod:`ctanb.provenance.steps`): records name the step kind, and
    ``redo`` runs only registered steps.
    """
    out_types = dict(outputs) if isinstance(outputs, Mapping) else {key: None for key in outputs}
    describers = dict(inputs) if isinstance(inputs, Mapping) else {key: None for key in inputs}
    separate = frozenset(per_input)

    def decorate(func: F) -> F:
        signature = inspect.signature(func)
        is_method = next(iter(signature.parameters), None) == "self"
        step_kind = name or func.__qualname__
        register_step(step_kind, version, func, inputs=tuple(describers), outputs=tuple(out_types))

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            activity = Activity(
                step_kind,
                version=version,
                description=description or (inspect.getdoc(func) or "").split("\n")[0],
                store=store,
            )
            with activity as act:
                for key, value in bound.arguments.items():
                    kind = signature.parameters[key].kind
                    if is_method and key == "self":
                        config = getattr(value, "config", None)
                        if config is not None:
                            act.configuration(config)
                    elif key in describers:
                        describe = describers[key]
                        for item in value if isinstance(value, list | tuple) else [value]:
                            act.used(item, role=key, **(describe(Path(item)) if describe else {}))
                        act.parameter(key, _absolute(value))
                    elif key in out_types:
                        act.parameter(key, _absolute(value))
                    elif kind is inspect.Parameter.VAR_KEYWORD:
                        for sub, item in value.items():
                            _param_or_entity(act, sub, item)
                    else:
                        _param_or_entity(act, key, value)
                result = func(*bound.args, **bound.kwargs)
                for key, product_type in out_types.items():
                    value = bound.arguments.get(key)
                    items = value if isinstance(value, list | tuple) else [value]
                    for index, item in enumerate(items):
                        if item is not None:
                            act.generated(
                                item,
                                role=key,
                                data_level=data_level,
                                product_type=product_type,
                                derived_from=act.inputs_of_item(index, len(items))
                                if key in separate
                                else None,
                            )
                if record_result and result is not None and not out_types:
                    act.generated(result, role="result", data_level=data_level)
            return result

        wrapper.__ctanb_recorded__ = True  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


def _absolute(value: Any) -> Any:
    """Paths as absolute paths (same type): the record says where files are from any folder."""
    if isinstance(value, list | tuple):
        return type(value)(_absolute(item) for item in value)
    if isinstance(value, PurePath):
        return Path(value).resolve()
    if isinstance(value, str):
        return str(Path(value).resolve())
    return value


def _param_or_entity(act: Activity, key: str, value: Any) -> None:
    try:
        act.record.parameters[key] = encode_value(value)
    except NotEncodable:
        act.used(value, role=key)
