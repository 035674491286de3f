"""Parameter values as JSON that can be turned back into the original objects.

Redo calls the recorded callable again with the recorded parameters, so values
must survive a round trip. JSON types pass unchanged; the others are tagged:
``{"__path__": "..."}``, ``{"__quantity__": [value, "unit"]}``,
``{"__tuple__": [...]}``, ``{"__ndarray__": [list, "dtype"]}``. A value that
cannot be encoded (an in-memory gammapy object, say) is not a parameter: the
capture layer records it as a used in-memory entity instead.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path, PurePath
from typing import Any

__all__ = ["NotEncodable", "decode_value", "display_value", "encode_value"]


class NotEncodable(TypeError):
    """The value has no JSON form (record it as an entity instead)."""


def encode_value(value: Any) -> Any:
    """A JSON-compatible, tagged form of *value* (raises :class:`NotEncodable`)."""
    import numpy as np

    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, PurePath):
        return {"__path__": str(value)}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return {"__tuple__": [encode_value(item) for item in value]}
    if isinstance(value, list):
        return [encode_value(item) for item in value]
    if isinstance(value, dict):
        if not all(isinstance(key, str) for key in value):
            raise NotEncodable("dict keys must be strings")
        return {key: encode_value(item) for key, item in value.items()}
    if hasattr(value, "model_dump") and hasattr(type(value), "model_validate"):
        cls = type(value)
        return {
            "__model__": [f"{cls.__module__}:{cls.__qualname__}", value.model_dump(mode="json")]
        }
    if type(value).__module__.startswith("astropy.units") and hasattr(value, "unit"):
        if np.ndim(value.value) == 0:
            return {"__quantity__": [float(value.value), value.unit.to_string()]}
        return {"__quantity__": [np.asarray(value.value).tolist(), value.unit.to_string()]}
    if isinstance(value, np.ndarray) and type(value) is np.ndarray and value.size <= 64:
        return {"__ndarray__": [value.tolist(), value.dtype.str]}
    raise NotEncodable(f"{type(value).__name__} has no JSON form")


def decode_value(value: Any, models: Mapping[str, type] | None = None) -> Any:
    """Invert :func:`encode_value`.

    A pydantic model (``__model__``) is rebuilt only when its class is one of
    *models* (``module:qualname`` -> class, what the step being redone declares);
    another class is refused (:class:`NotEncodable`) when *models* is given, and
    stays the plain mapping it was recorded as otherwise. Nothing named by a record
    is ever imported.
    """
    if isinstance(value, list):
        return [decode_value(item, models) for item in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((tag, payload),) = value.items()
        if tag == "__path__":
            return Path(payload)
        if tag == "__tuple__":
            return tuple(decode_value(item, models) for item in payload)
        if tag == "__quantity__":
            import astropy.units as u

            return u.Quantity(payload[0], payload[1])
        if tag == "__ndarray__":
            import numpy as np

            return np.asarray(payload[0], dtype=payload[1])
        if tag == "__model__":
            cls = (models or {}).get(str(payload[0]))
            if cls is not None:
                return cls.model_validate(payload[1])
            if models is not None:  # redo: a class the step does not declare is refused
                raise NotEncodable(f"configuration type {payload[0]!r} is not one this step takes")
            return dict(payload[1])
    return {key: decode_value(item, models) for key, item in value.items()}


def display_value(value: Any) -> str:
    """Short text of an encoded value, as stored for parameter queries."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        ((tag, payload),) = value.items()
        if tag == "__path__":
            return payload
        if tag == "__quantity__":
            return f"{payload[0]} {payload[1]}".strip()
    return json.dumps(value, sort_keys=True)
