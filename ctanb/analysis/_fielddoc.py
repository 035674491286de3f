"""The numpydoc ``Parameters`` section of a step configuration, from its fields.

A configuration's keys are documented once, in ``Field(description=...)`` (pydantic's
own place for it, kept in ``model_fields``); that text, with the type, the bounds and
the default, becomes the class's ``Parameters`` section (API reference, ``help()``,
numpydoc validation in tests/test_numpydoc.py). A subclass inherits its base's fields
and so their documentation: a key shared by the spectrum and the light curve, or by
every map reduction, is described once.
"""

from __future__ import annotations

import inspect
import re
import textwrap
import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

__all__: list[str] = []  # private: used by StepConfig

_SECTION = re.compile(r"^(Parameters|Attributes)\n-{3,}$", re.MULTILINE)
_BOUNDS = (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="))


def _type_text(annotation: Any) -> str:
    """``float or None``, ``list of str``, ``{'auto', 'reflected'}``: numpydoc's wording."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type_text(args[0])
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_text(a) for a in args)
    if origin is typing.Literal:
        return "{" + ", ".join(repr(a) for a in args) + "}"
    if origin in (list, tuple, set) and args:
        return f"{origin.__name__} of {_type_text(args[0])}"
    if origin is dict and len(args) == 2:
        return f"dict of {_type_text(args[0])} to {_type_text(args[1])}"
    if annotation is type(None):
        return "None"
    name = getattr(annotation, "__name__", None)
    return name if name and origin is None else re.sub(r"\b\w+\.", "", str(annotation))


def _default_text(field: Any) -> str:
    if field.default_factory is not None:
        value = field.default_factory()
    elif field.default is PydanticUndefined:
        return ""  # required
    else:
        value = field.default
    if isinstance(value, BaseModel):
        return "optional"  # the nested configuration's own defaults
    if isinstance(value, (dict, list)) and not value:
        return "optional"
    return f"default: {value!r}"


def _bounds_text(field: Any) -> str:
    bounds = [
        f"{sign} {getattr(meta, key)}"
        for meta in field.metadata
        for key, sign in _BOUNDS
        if getattr(meta, key, None) is not None
    ]
    return f" Must be {' and '.join(bounds)}." if bounds else ""


def parameters_section(model: type[BaseModel]) -> str:
    """The ``Parameters`` section of the fields of *model* that have a description."""
    lines = ["Parameters", "----------"]
    for name, field in model.model_fields.items():
        if not field.description:
            continue  # left undocumented: tests/test_numpydoc.py reports it (PR01)
        head = f"{name} : {_type_text(field.annotation)}"
        default = _default_text(field)
        lines.append(f"{head}, {default}" if default else head)
        text = field.description.rstrip(".") + "." + _bounds_text(field)
        text = text[0].upper() + text[1:]
        lines.append(textwrap.fill(text, 88, initial_indent="    ", subsequent_indent="    "))
    return "\n".join(lines) if len(lines) > 2 else ""


def document_fields(model: type[BaseModel]) -> None:
    """Append the ``Parameters`` section to *model*'s own docstring, unless it has one."""
    doc = model.__dict__.get("__doc__")
    if not doc:
        return
    doc = inspect.cleandoc(doc)
    if _SECTION.search(doc):
        return  # written by hand
    section = parameters_section(model)
    if section:
        model.__doc__ = f"{doc}\n\n{section}\n"
