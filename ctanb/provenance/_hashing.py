"""Content hashes: sha256 of files (streamed) and of in-memory inputs.

Files are hashed with :func:`hashlib.file_digest` (Python >= 3.11), which reads in
large chunks straight into the C hash, so hashing runs at :mod:`hashlib` speed.

In-memory inputs get a *content hash*: a sha256 over a canonical byte stream
that depends only on what the object holds, not on where it lives in memory:

- ``numpy.ndarray``: dtype string, shape, then the C-ordered bytes;
- ``astropy.units.Quantity``: unit string, then the array as above;
- ``astropy.table.Table``: for each column its name, unit and data, then the
  table ``meta`` as canonical JSON;
- gammapy maps (anything with ``geom`` and ``data``): the geometry's FITS header
  (or ``repr``) then the data array and unit;
- gammapy ``Observations``/``Observation``: the observation ids and the content
  hash of each event list table;
- ``str``/``bytes``/numbers/``None``/lists/dicts: canonical JSON (sorted keys);
- an object with a ``__ctanb_content_hash__()`` method: what that returns;
- anything else: ``pickle`` protocol 5 (stable within one software stack only,
  so the hash method is recorded alongside as ``pickle``).
"""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path
from typing import Any

from .._errors import ProvenanceError

__all__ = ["content_hash", "fits_data_sha256", "sha256_file"]

_CHUNK = 4 * 1024 * 1024


def sha256_file(path: str | Path) -> str:
    """The hex sha256 of a file, read in large chunks.

    Raises
    ------
    ProvenanceError
        The file does not exist or cannot be read (names it).
    """
    try:
        with open(path, "rb", buffering=0) as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except FileNotFoundError:
        raise ProvenanceError(f"cannot hash {path}: file not found") from None
    except OSError as exc:
        raise ProvenanceError(f"cannot hash {path}: {exc.strerror or exc}") from None


def fits_data_sha256(path: str | Path) -> str:
    """sha256 of the data of every HDU of a FITS file except ``PROVENANCE``.

    Unlike the file hash, this does not change when provenance is attached or a
    header date is rewritten, so a product can be checked on its own.
    """
    from astropy.io import fits

    digest = hashlib.sha256()
    try:
        with fits.open(path, memmap=False) as hdus:
            for hdu in hdus:
                if hdu.name == "PROVENANCE":
                    continue
                digest.update(hdu.name.encode())
                data = hdu.data
                if data is None:
                    continue
                _feed_array(digest, data)
    except FileNotFoundError:
        raise ProvenanceError(f"cannot hash {path}: file not found") from None
    except OSError as exc:
        raise ProvenanceError(f"cannot read FITS file {path}: {exc}") from None
    return digest.hexdigest()


def content_hash(obj: Any) -> tuple[str, str]:
    """Content hash of an in-memory object.

    Returns
    -------
    (hex, method) : tuple of str
        The sha256 hex digest and the method used (``array``, ``table``,
        ``map``, ``observations``, ``json``, ``custom`` or ``pickle``).
    """
    digest = hashlib.sha256()
    method = _feed(digest, obj)
    return digest.hexdigest(), method


def _feed_array(digest: Any, array: Any) -> None:
    import numpy as np

    array = np.asarray(array)
    digest.update(array.dtype.str.encode())
    digest.update(repr(array.shape).encode())
    if array.dtype.hasobject:
        digest.update(pickle.dumps(array.tolist(), protocol=5))
    else:
        digest.update(np.ascontiguousarray(array).data)


def _feed(digest: Any, obj: Any) -> str:
    import numpy as np

    custom = getattr(obj, "__ctanb_content_hash__", None)
    if callable(custom):
        digest.update(str(custom()).encode())
        return "custom"
    if obj is None or isinstance(obj, str | bytes | int | float | bool | list | tuple | dict):
        try:
            digest.update(_canonical_json(obj).encode())
            return "json"
        except TypeError:
            pass
    if isinstance(obj, np.ndarray) and type(obj) is np.ndarray:
        _feed_array(digest, obj)
        return "array"
    module = type(obj).__module__ or ""
    if module.startswith("astropy.units") or (hasattr(obj, "unit") and hasattr(obj, "value")):
        if isinstance(obj, np.ndarray):
            digest.update(str(obj.unit).encode())
            _feed_array(digest, obj.value)
            return "array"
    if module.startswith("astropy.table"):
        for name in obj.colnames:
            column = obj[name]
            digest.update(name.encode())
            digest.update(str(getattr(column, "unit", "")).encode())
            _feed_array(digest, np.asarray(column))
        digest.update(_canonical_json(dict(obj.meta), default=str).encode())
        return "table"
    if hasattr(obj, "geom") and hasattr(obj, "data"):
        geom = obj.geom
        header = geom.to_header() if hasattr(geom, "to_header") else repr(geom)
        digest.update(str(header).encode())
        digest.update(str(getattr(obj, "unit", "")).encode())
        _feed_array(digest, obj.data)
        return "map"
    if hasattr(obj, "obs_id") and hasattr(obj, "events"):
        digest.update(str(obj.obs_id).encode())
        _feed(digest, obj.events.table)
        return "observations"
    if module.startswith("gammapy.data") and hasattr(obj, "ids"):
        for observation in obj:
            _feed(digest, observation)
        return "observations"
    try:
        digest.update(pickle.dumps(obj, protocol=5))
    except Exception as exc:
        raise ProvenanceError(
            f"cannot compute a content hash of a {type(obj).__name__}: {exc}; "
            "give it a __ctanb_content_hash__() method"
        ) from None
    return "pickle"


def _canonical_json(obj: Any, default: Any = None) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=default)
