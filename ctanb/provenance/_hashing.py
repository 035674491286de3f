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

import gzip
import hashlib
import json
import math
import pickle
import re
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._errors import ProvenanceError
from .._hashing import sha256_file as _sha256_file

__all__ = ["content_hash", "fits_data_sha256", "scan_file", "sha256_file"]

_CHUNK = 4 * 1024 * 1024


def sha256_file(path: str | Path) -> str:
    """The hex sha256 of a file, read in large chunks (never from a cache).

    Parameters
    ----------
    path : str or Path
        The file.

    Returns
    -------
    str
        The 64 hexadecimal digits of the digest.

    Raises
    ------
    ProvenanceError
        The file does not exist or cannot be read (names it).
    """
    try:
        # Never from the cache: provenance checks do not trust a file's metadata.
        return _sha256_file(path, cache=False)
    except FileNotFoundError:
        raise ProvenanceError(f"cannot hash {path}: file not found") from None
    except OSError as exc:
        raise ProvenanceError(f"cannot hash {path}: {exc.strerror or exc}") from None


def fits_data_sha256(path: str | Path) -> str:
    """sha256 of the data of every HDU of a FITS file except ``PROVENANCE``.

    Unlike the file hash, this does not change when provenance is attached or a
    header date is rewritten, so a product can be checked on its own.

    Parameters
    ----------
    path : str or Path
        The FITS file (gzip-compressed or not).

    Returns
    -------
    str
        The hex sha256 of the data of its HDUs.

    Raises
    ------
    ProvenanceError
        The file does not exist.
    """
    try:
        raw = read_fits_bytes(path)
    except FileNotFoundError:
        raise ProvenanceError(f"cannot hash {path}: file not found") from None
    except (OSError, EOFError, zlib.error):
        raw = None  # astropy names the problem below
    fast = fits_data_digest_of_bytes(raw) if raw is not None else None
    return fast if fast is not None else _fits_data_sha256_astropy(path)


def _fits_data_sha256_astropy(path: str | Path) -> str:
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

    Parameters
    ----------
    obj : object
        What to hash: an array, a Quantity, a Table, a gammapy map or observations,
        JSON-like values, an object with ``__ctanb_content_hash__``, or anything picklable.

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


# -- FITS files read as bytes ------------------------------------------------------------
# astropy parses every card of every header it walks past (about 0.7 ms per HDU), which
# made hashing a 19-HDU MapDataset and attaching its provenance cost more than writing it.
# The hot paths only need the HDU layout and a few structural keywords, read here from
# the raw 2880-byte blocks; anything unusual (scaled or compressed images, variable-length
# table columns, CONTINUE strings, truncated files) returns None so callers fall back on
# astropy, whose results these match exactly (checked by bench/bench_analysis.py).
_BLOCK = 2880
_BITPIX_DTYPES = {8: "|u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}
_STRING_VALUE = re.compile(r"'((?:[^']|'')*)'")
_UNPARSED = object()


def _card_value(text: str) -> Any:
    """Value of a header card's value field (after ``= ``), or :data:`_UNPARSED`."""
    text = text.lstrip()
    if text.startswith("'"):
        match = _STRING_VALUE.match(text)
        if match is None:
            return _UNPARSED
        value = match.group(1).replace("''", "'").rstrip()
        return _UNPARSED if value.endswith("&") else value  # a CONTINUE'd long string
    token = text.split("/", 1)[0].strip()
    if token in ("T", "F"):
        return token == "T"
    try:
        return int(token)
    except ValueError:
        pass
    try:
        return float(token.replace("D", "E"))
    except ValueError:
        return _UNPARSED


@dataclass(frozen=True)
class FitsHDU:
    """Where one HDU lies in a FITS byte string, and its header's keyword values."""

    cards: dict[str, Any]
    header_start: int
    data_start: int
    data_size: int
    end: int

    @property
    def name(self) -> str:
        """As astropy's ``hdu.name``: EXTNAME, else ``PRIMARY`` or ``""``."""
        default = "PRIMARY" if self.header_start == 0 else ""
        return str(self.cards.get("EXTNAME", default))

    def value(self, key: str) -> Any:
        """The keyword's value, :data:`_UNPARSED` when this reader cannot parse it."""
        return self.cards.get(key)


def _header_at(raw: bytes, start: int) -> tuple[dict[str, Any], int] | None:
    cards: dict[str, Any] = {}
    pos = start
    while pos + _BLOCK <= len(raw):
        block = raw[pos : pos + _BLOCK].decode("latin-1")
        pos += _BLOCK
        for offset in range(0, _BLOCK, 80):
            key = block[offset : offset + 8].rstrip()
            if key == "END":
                return cards, pos
            if block[offset + 8 : offset + 10] == "= " and key not in cards:
                cards[key] = _card_value(block[offset + 10 : offset + 80])
    return None


def fits_layout(raw: bytes) -> list[FitsHDU] | None:
    """The HDUs of an uncompressed FITS byte string, or None when it is not plain FITS."""
    hdus: list[FitsHDU] = []
    pos = 0
    while pos < len(raw):
        found = _header_at(raw, pos)
        if found is None:
            return None
        cards, data_start = found
        first = cards.get("SIMPLE") if not hdus else isinstance(cards.get("XTENSION"), str)
        naxis = cards.get("NAXIS")
        if first is not True or not isinstance(naxis, int) or cards.get("GROUPS") is True:
            return None
        dims = [cards.get(f"NAXIS{i}") for i in range(1, naxis + 1)]
        bitpix, pcount, gcount = cards.get("BITPIX"), cards.get("PCOUNT", 0), cards.get("GCOUNT", 1)
        if not all(isinstance(v, int) and v >= 0 for v in (*dims, pcount, gcount)):
            return None
        if bitpix not in _BITPIX_DTYPES or cards.get("EXTNAME") is _UNPARSED:
            return None
        size = abs(bitpix) // 8 * gcount * (pcount + math.prod(dims)) if naxis else 0
        end = data_start + -(-size // _BLOCK) * _BLOCK
        if end > len(raw):
            return None
        hdus.append(FitsHDU(cards, pos, data_start, size, end))
        pos = end
    return hdus or None


def _fast_data_digest(raw: bytes, layout: list[FitsHDU]) -> str | None:
    """:func:`fits_data_sha256` from the layout, or None when astropy must decide."""
    digest = hashlib.sha256()
    for hdu in layout:
        if hdu.name == "PROVENANCE":
            continue
        digest.update(hdu.name.encode())
        cards = hdu.cards
        naxis = cards["NAXIS"]
        if naxis == 0:
            continue  # astropy: data is None
        dims = [cards[f"NAXIS{i}"] for i in range(1, naxis + 1)]
        if 0 in dims or cards.get("GCOUNT", 1) != 1:
            return None
        kind = cards.get("XTENSION", "IMAGE") if hdu.header_start else "IMAGE"
        data = raw[hdu.data_start : hdu.data_start + hdu.data_size]
        if kind == "IMAGE":
            if cards.get("PCOUNT", 0) or {"BSCALE", "BZERO", "BLANK", "ZIMAGE"} & cards.keys():
                return None  # astropy scales these
            digest.update(_BITPIX_DTYPES[cards["BITPIX"]].encode())
            digest.update(repr(tuple(reversed(dims))).encode())
            digest.update(data)
        elif kind == "BINTABLE" and naxis == 2 and cards.get("ZIMAGE") is not True:
            forms = [cards.get(f"TFORM{i}") for i in range(1, int(cards.get("TFIELDS", 0)) + 1)]
            if not all(isinstance(f, str) and not {"P", "Q"} & set(f.upper()) for f in forms):
                return None  # variable-length columns: astropy decides
            # np.asarray(FITS_rec) is the raw rows: a void dtype of the row width
            digest.update(f"|V{dims[0]}".encode())
            digest.update(repr((dims[1],)).encode())
            digest.update(data[: dims[0] * dims[1]])
        else:
            return None
    return digest.hexdigest()


def read_fits_bytes(path: str | Path) -> bytes:
    """The bytes of a FITS file, gunzipped when gzip-compressed (as astropy detects it)."""
    raw = Path(path).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return raw


def fits_data_digest_of_bytes(raw: bytes) -> str | None:
    """:func:`fits_data_sha256` of an uncompressed FITS byte string (None: use astropy)."""
    layout = fits_layout(raw)
    return _fast_data_digest(raw, layout) if layout is not None else None


# -- an in-process cache of input files, keyed by what a change would alter ----------------
@dataclass(frozen=True)
class FileScan:
    """The sha256 and size of a file and, for FITS, its HDU layout (None if not plain)."""

    sha256: str
    size: int
    layout: list[FitsHDU] | None
    raw: bytes | None = None  # the uncompressed bytes, only while fresh (not cached)


_SCANS: dict[tuple, FileScan] = {}
_SCAN_LIMIT = 4096
#: A file modified less than this long ago may change again within the same timestamp
#: tick without its size changing ("racy git"): such files are hashed but not cached.
_RACY_SECONDS = 2.0


def _file_key(path: Path) -> tuple[tuple, float]:
    stat = path.stat()
    key = (str(path.resolve()), stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)
    return key, stat.st_mtime


def scan_file(path: str | Path, *, fits: bool = True) -> FileScan:
    """sha256, size and (FITS) layout of *path*, from an in-process cache when unchanged.

    The cache key is (resolved path, device, inode, size, mtime in ns); files modified
    within the last 2 s are not cached, so a rewrite within one timestamp tick cannot
    be mistaken for the cached content.

    Raises
    ------
    ProvenanceError
        The file does not exist or cannot be read.
    """
    path = Path(path)
    try:
        key, mtime = _file_key(path)
        cached = _SCANS.get(key)
        if cached is not None:
            return cached
        data = path.read_bytes()
    except FileNotFoundError:
        raise ProvenanceError(f"cannot hash {path}: file not found") from None
    except OSError as exc:
        raise ProvenanceError(f"cannot hash {path}: {exc.strerror or exc}") from None
    layout, raw = None, None
    if fits:
        try:
            raw = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
            layout = fits_layout(raw)
        except (OSError, EOFError, zlib.error):
            layout, raw = None, None
    scan = FileScan(hashlib.sha256(data).hexdigest(), len(data), layout)
    if time.time() - mtime > _RACY_SECONDS:
        if len(_SCANS) >= _SCAN_LIMIT:
            _SCANS.clear()
        _SCANS[key] = scan
    return FileScan(scan.sha256, scan.size, layout, raw)


def clear_scan_cache() -> None:
    """Forget every cached file scan (benchmarks measure cold runs with it)."""
    _SCANS.clear()


# -- the whole content of a FITS product ---------------------------------------------------
#: Header cards a copy may legitimately rewrite (tools re-checksum files they copy); every
#: other card of every HDU is covered by :func:`fits_product_digest`.
VOLATILE_CARDS = ("CHECKSUM", "DATASUM")
PRODUCT_HASH = "fits-hdu-v2"


@dataclass(frozen=True)
class ProductDigest:
    """sha256 of a FITS product's content and of each of its HDUs.

    ``hdus`` holds ``(name, header sha256, data sha256)`` per HDU in file order,
    the ``PROVENANCE`` HDU excluded; ``sha256`` is the hash of that list.
    ``provenance_headers`` holds the sha256 of each PROVENANCE HDU's header, its
    signature cards (:data:`SIGNATURE_CARDS`) left out: the signature covers it.
    """

    sha256: str
    hdus: tuple[tuple[str, str, str], ...]
    provenance_headers: tuple[str, ...] = ()


#: The cards of a PROVENANCE header that hold the signature (not covered by it).
SIGNATURE_CARDS = ("SIGALG", "SIGKEY", "SIGVAL1", "SIGVAL2", "SIGNER")


def _header_sha256(header: bytes, skip: tuple[str, ...] = VOLATILE_CARDS) -> str:
    """sha256 of a header's cards (blank cards and *skip* left out); bytes other than
    blanks after ``END`` count too, so nothing can hide in the padding."""
    digest = hashlib.sha256()
    for offset in range(0, len(header) - len(header) % 80, 80):
        card = header[offset : offset + 80]
        key = card[:8].rstrip().decode("latin-1")
        if key in skip or not card.strip():
            continue
        digest.update(card)
        if key == "END":
            tail = header[offset + 80 :]
            if tail.strip(b" "):
                digest.update(b"\0padding\0" + tail)
            break
    return digest.hexdigest()


def header_sha256(header: bytes) -> str:
    """:func:`_header_sha256` of a PROVENANCE header, signature cards left out."""
    return _header_sha256(header, VOLATILE_CARDS + SIGNATURE_CARDS)


def _digest_of(parts: list[tuple[str, str, str]], provenance: list[str]) -> ProductDigest:
    digest = hashlib.sha256(PRODUCT_HASH.encode())
    for name, header, data in parts:
        digest.update(f"\n{name}\0{header}\0{data}".encode())
    return ProductDigest(digest.hexdigest(), tuple(parts), tuple(provenance))


def _spans(raw: bytes) -> list[tuple[str, int, int, int]]:
    """(name, header start, data start, data end) of each HDU of an uncompressed FITS file."""
    layout = fits_layout(raw)
    if layout is not None:
        return [(h.name, h.header_start, h.data_start, h.data_start + h.data_size) for h in layout]
    import io

    from astropy.io import fits

    spans = []
    with fits.open(io.BytesIO(raw), memmap=False, lazy_load_hdus=False) as hdus:
        for hdu in hdus:
            start, data = hdu._header_offset, hdu._data_offset
            spans.append((hdu.name, start, data, data + hdu._data_size))
    return spans


def fits_product_digest(raw: bytes) -> ProductDigest:
    """:class:`ProductDigest` of a FITS byte string (gzip-compressed or not).

    Every header card (except :data:`VOLATILE_CARDS` and blank cards) and every data
    byte of every HDU except ``PROVENANCE`` counts, so a changed unit, WCS key or data
    value changes the digest, while the file can be copied, re-checksummed or gzipped.
    Padding that is not blank (after ``END``, after the data, after the last HDU)
    counts too.

    Raises
    ------
    ProvenanceError
        The bytes are not a readable FITS file.
    """
    try:
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        spans = _spans(raw)
    except Exception:
        raise ProvenanceError("not a readable FITS file (truncated or damaged)") from None
    parts, provenance = [], []
    starts = [start for _, start, _, _ in spans[1:]] + [len(raw)]
    for (name, start, data_start, data_end), next_start in zip(spans, starts, strict=True):
        if name.strip().upper() == "PROVENANCE":
            provenance.append(header_sha256(raw[start:data_start]))
            continue
        data = hashlib.sha256(raw[data_start:data_end])
        padding = raw[data_end:next_start]
        if padding.strip(b"\0 "):
            data.update(b"\0padding\0" + padding)
        parts.append((name, _header_sha256(raw[start:data_start]), data.hexdigest()))
    return _digest_of(parts, provenance)


def fits_product_sha256(path: str | Path) -> ProductDigest:
    """:func:`fits_product_digest` of a file (errors name the file)."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise ProvenanceError(f"cannot hash {path}: file not found") from None
    except OSError as exc:
        raise ProvenanceError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return fits_product_digest(raw)
    except ProvenanceError as exc:
        raise ProvenanceError(f"{path}: {exc}") from None
