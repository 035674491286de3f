"""Provenance inside FITS products.

Every FITS product ctanb writes carries its own provenance, so it can be read
back without any store:

- an HDU ``EXTNAME='PROVENANCE'`` (a one-row binary table, column ``PROV_JSON``)
  holding the PROV-JSON document of the product's whole known lineage;
- primary-header keys linking the file to it: ``PROV_ID`` (the product's entity
  id), ``PROV_ACT`` (the activity that generated it), ``PROV_DL`` (data level),
  ``PROV_TYP`` (product type) and the ObsCore provenance keywords propagated
  from the inputs (:data:`HEADER_KEYS`).
"""

from __future__ import annotations

import contextlib
import functools
import os
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._errors import ProvenanceError
from .records import ProvenanceGraph

if TYPE_CHECKING:
    from .signing import Signature

__all__ = [
    "HEADER_KEYS",
    "PROVENANCE_EXTNAME",
    "attach_provenance",
    "product_keywords",
    "read_provenance",
]

PROVENANCE_EXTNAME = "PROVENANCE"

#: ObsCore provenance column -> FITS primary-header keyword of a product.
HEADER_KEYS: dict[str, str] = {
    "calib_version": "CALIBVER",
    "reco_version": "RECO_VER",
    "reco_method": "RECO_MTH",
    "applied_cuts": "APPCUTS",
}
_LINK_KEYS = ("PROV_ID", "PROV_ACT", "PROV_DL", "PROV_TYP", "PROVMIX", *HEADER_KEYS.values())


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """astropy's warnings about damaged files off: the caller says what is wrong, once."""
    from astropy.utils.exceptions import AstropyWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyWarning)
        yield


def _document_text(document: Any) -> str:
    if isinstance(document, str):
        return document
    if isinstance(document, ProvenanceGraph):
        return document.serialize("json")
    if hasattr(document, "serialize"):  # a prov.model.ProvDocument
        return document.serialize(format="json")
    raise ProvenanceError(f"cannot attach provenance from a {type(document).__name__}")


def _provenance_hdu(text: str, signature: Signature | None = None) -> Any:
    from astropy.io import fits

    raw = text.encode()
    column = fits.Column(name="PROV_JSON", format=f"{max(len(raw), 1)}A", array=np.array([raw]))
    hdu = fits.BinTableHDU.from_columns([column], name=PROVENANCE_EXTNAME)
    hdu.header["CONTENT"] = ("PROV-JSON", "W3C PROV-JSON with IVOA voprov attributes")
    hdu.header["HDUDOC"] = "https://www.w3.org/Submission/prov-json/"
    for key, value, comment in _signature_cards(signature):
        hdu.header[key] = (value, comment)
    return hdu


def _signature_cards(signature: Signature | None) -> list[tuple[str, str, str]]:
    """Header cards of a signature (the 128 hex digits split over two cards)."""
    if signature is None:
        return []
    signer = "".join(c for c in signature.signer if " " <= c <= "~")[:60]
    return [  # no comments on the long values: they fill their cards
        ("SIGALG", signature.algorithm, "signature of content and provenance"),
        ("SIGKEY", signature.public_key, ""),
        ("SIGVAL1", signature.value[:64], ""),
        ("SIGVAL2", signature.value[64:], ""),
        ("SIGNER", signer, "who signed"),
    ]


def read_signature(path: str | Path) -> tuple[Signature | None, bytes]:
    """The signature in a product's PROVENANCE HDU (None when unsigned) and the
    document bytes it covers.

    Raises
    ------
    ProvenanceError
        The file is not FITS or has no readable ``PROVENANCE`` HDU.
    """
    from astropy.io import fits

    from .signing import Signature

    try:
        with _quiet(), fits.open(path, memmap=False) as hdus:
            if PROVENANCE_EXTNAME not in hdus:
                raise ProvenanceError(f"product {path} carries no provenance")
            hdu = hdus[PROVENANCE_EXTNAME]
            header = hdu.header
            raw = hdu.data["PROV_JSON"][0]
    except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise ProvenanceError(
            f"the provenance of {path} cannot be read (truncated or damaged: {exc})"
        ) from None
    document = raw if isinstance(raw, bytes) else str(raw).encode()
    document = document.rstrip(b" \0")
    keys = ("SIGALG", "SIGKEY", "SIGVAL1", "SIGVAL2")
    if not all(key in header for key in keys):
        return None, document
    values = [str(header[key]) for key in keys]
    signature = Signature(
        values[0], values[1].lower(), (values[2] + values[3]).lower(), str(header.get("SIGNER", ""))
    )
    return signature, document


def attach_provenance(
    target: str | Path | Any,
    document: Any,
    *,
    entity_id: str | None = None,
    activity_id: str | None = None,
    keywords: Mapping[str, Any] | None = None,
    signature: Signature | None = None,
) -> None:
    """Write *document* into a FITS product and link its header to it.

    Parameters
    ----------
    target : path or astropy.io.fits.HDUList
        The product; a path is updated in place, an HDUList is modified.
    document : ProvenanceGraph, prov.model.ProvDocument or str
        The provenance (a str is taken as PROV-JSON text).
    entity_id, activity_id : str, optional
        Written as ``PROV_ID`` and ``PROV_ACT``.
    keywords : mapping, optional
        More primary-header keys: ObsCore names in :data:`HEADER_KEYS` are
        translated to their FITS keyword, ``data_level``/``product_type`` go to
        ``PROV_DL``/``PROV_TYP``, other keys are written as given.
    signature : Signature, optional
        The signature of the record, written next to it.

    Raises
    ------
    ProvenanceError
        The product does not exist or cannot be updated.
    """
    from astropy.io import fits

    text = _document_text(document)
    if isinstance(target, fits.HDUList):
        _update(target, text, entity_id, activity_id, keywords, signature)
        return
    path = Path(target)
    if not path.is_file():
        raise ProvenanceError(f"cannot attach provenance: product {path} does not exist")
    try:
        with fits.open(path, mode="update", memmap=False) as hdus:
            _update(hdus, text, entity_id, activity_id, keywords, signature)
    except OSError as exc:
        raise ProvenanceError(f"cannot attach provenance to {path}: {exc}") from None


def provenance_hdu_bytes(document: Any, signature: Signature | None = None) -> bytes:
    """The ``PROVENANCE`` extension HDU of *document* as FITS bytes (header and data),
    byte for byte what astropy appends; one activity builds it once for all its products.

    Built directly: astropy's string-column handling is quadratic in the text length
    (~0.5 s for a 60 kB document), while the data of a one-row ``nA`` column is the text.
    """
    from astropy.io.fits import Card

    raw = _document_text(document).encode()
    width = max(len(raw), 1)
    sized = {"NAXIS1": width, "TFORM1": f"{width}A"}
    # astropy's cards, order and comments, with the two that depend on the width
    header = "".join(
        Card(key, sized[key], comment).image if key in sized else image
        for key, comment, image in _provenance_header_cards()
    )
    header += "".join(Card(*card).image for card in _signature_cards(signature))
    header += "END".ljust(80)
    header += " " * (-len(header) % 2880)
    data = raw.ljust(width, b"\0")
    padding = -len(data) % 2880
    return header.encode("latin-1") + data + b"\0" * padding


def provenance_header_sha256(document: Any) -> str:
    """sha256 of the header of the PROVENANCE HDU that carries *document*, signature
    cards left out (what a signature covers; the same for the astropy-written HDU)."""
    from ._hashing import header_sha256

    hdu = provenance_hdu_bytes(document)
    for offset in range(0, len(hdu), 80):
        if hdu[offset : offset + 8] == b"END     ":
            return header_sha256(hdu[: offset + 80 + (-(offset + 80) % 2880)])
    raise ProvenanceError("internal: PROVENANCE header without END")


@functools.cache
def _provenance_header_cards() -> tuple[tuple[str, str, str], ...]:
    """(keyword, comment, 80-character image) of the PROVENANCE HDU's header cards
    (building the HDU with astropy takes milliseconds; a product is written per step)."""
    return tuple((c.keyword, c.comment, c.image) for c in _provenance_hdu(" ").header.cards)


def attach_provenance_bytes(
    raw: bytes,
    layout: list[Any],
    provenance: bytes,
    *,
    entity_id: str | None = None,
    activity_id: str | None = None,
    keywords: Mapping[str, Any] | None = None,
) -> bytes:
    """The FITS byte string *raw* with provenance attached, as :func:`attach_provenance`
    would leave the file, without astropy re-reading and rewriting every HDU.

    Parameters
    ----------
    raw : bytes
        An uncompressed FITS file; *layout* is its :func:`~ctanb.provenance._hashing.fits_layout`.
    provenance : bytes
        From :func:`provenance_hdu_bytes`.
    """
    from astropy.io import fits

    primary = layout[0]
    header = fits.Header.fromstring(raw[: primary.data_start].decode("latin-1"))
    _update_header(header, entity_id, activity_id, keywords)
    if "EXTEND" not in header:  # as astropy's HDUList.update_extend (there is an extension)
        naxis = header["NAXIS"]
        header.set("EXTEND", True, after=f"NAXIS{naxis}" if naxis else "NAXIS")
    elif not header["EXTEND"]:
        header["EXTEND"] = True
    parts = [header.tostring(padding=True).encode("latin-1"), raw[primary.data_start : primary.end]]
    parts += [
        raw[hdu.header_start : hdu.end]
        for hdu in layout[1:]
        if hdu.name.strip().upper() != PROVENANCE_EXTNAME
    ]
    parts.append(provenance)
    return b"".join(parts)


def _update(
    hdus: Any,
    text: str,
    entity_id: str | None,
    activity_id: str | None,
    keywords: Mapping[str, Any] | None,
    signature: Signature | None = None,
) -> None:
    while PROVENANCE_EXTNAME in hdus:
        del hdus[PROVENANCE_EXTNAME]
    hdus.append(_provenance_hdu(text, signature))
    _update_header(hdus[0].header, entity_id, activity_id, keywords)


def _update_header(
    header: Any,
    entity_id: str | None,
    activity_id: str | None,
    keywords: Mapping[str, Any] | None,
) -> None:
    if entity_id:
        header["PROV_ID"] = (entity_id, "prov entity")
    if activity_id:
        header["PROV_ACT"] = (activity_id, "prov activity")
    for key, value in (keywords or {}).items():
        if value is None:
            continue
        if key in HEADER_KEYS:
            header[HEADER_KEYS[key]] = (str(value), f"inputs {key}")
        elif key == "data_level":
            header["PROV_DL"] = (str(value), "data level of this product")
        elif key == "product_type":
            header["PROV_TYP"] = (str(value), "product type")
        else:
            header[key] = value


def product_keywords(path: str | Path) -> dict[str, str]:
    """The provenance keys of a product's primary header (``PROV_ID``, ``PROV_ACT``, ...)."""
    from astropy.io import fits

    try:
        with _quiet():
            header = fits.getheader(path, 0)
    except OSError as exc:
        raise ProvenanceError(f"cannot read FITS header of {path}: {exc}") from None
    return {key: str(header[key]) for key in _LINK_KEYS if key in header}


def read_provenance(path: str | Path) -> ProvenanceGraph:
    """The provenance carried by a FITS product (no store needed).

    Parameters
    ----------
    path : str or Path
        The product.

    Returns
    -------
    ProvenanceGraph
        The records inside the product.

    Raises
    ------
    ProvenanceError
        The file is missing, is not FITS, or has no ``PROVENANCE`` HDU.
    """
    from astropy.io import fits

    from .document import parse

    if not isinstance(path, str | os.PathLike):
        raise ProvenanceError(f"read_provenance: give the product's file (a path), not {path!r}")
    path = Path(path)
    if not path.is_file():
        raise ProvenanceError(f"product {path} does not exist")
    try:
        with _quiet(), fits.open(path, memmap=False) as hdus:
            if PROVENANCE_EXTNAME not in hdus:
                raise ProvenanceError(
                    f"product {path} carries no provenance (no {PROVENANCE_EXTNAME} HDU)"
                )
            raw = hdus[PROVENANCE_EXTNAME].data["PROV_JSON"][0]
    except ProvenanceError:
        raise
    except OSError:
        raise ProvenanceError(f"cannot read {path} as FITS (not FITS, or damaged)") from None
    except Exception:  # a PROVENANCE HDU of another shape, an empty or truncated one
        raise ProvenanceError(
            f"the provenance of {path} cannot be read (truncated or damaged)"
        ) from None
    text = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
    try:
        return parse(text, "json")
    except ProvenanceError:
        raise ProvenanceError(
            f"the provenance of {path} cannot be read (not a PROV-JSON document)"
        ) from None


def has_provenance(path: str | Path) -> bool:
    """Whether *path* is a FITS file with a ``PROVENANCE`` HDU (False for anything else)."""
    from astropy.io import fits

    try:
        with _quiet(), fits.open(path, memmap=False) as hdus:
            return PROVENANCE_EXTNAME in hdus
    except (OSError, ValueError):
        return False


# -- the same answers from a file already read (capture's hot path) ---------------------
_PARSED: dict[str, ProvenanceGraph] = {}


def _is_provenance(hdu: Any) -> bool:
    return hdu.name.strip().upper() == PROVENANCE_EXTNAME


def keywords_from_layout(layout: list[Any]) -> dict[str, str] | None:
    """:func:`product_keywords` from a :func:`~ctanb.provenance._hashing.fits_layout`
    (None when a value needs astropy)."""
    from ._hashing import _UNPARSED

    cards = layout[0].cards
    found = {key: cards[key] for key in _LINK_KEYS if key in cards}
    if any(value is _UNPARSED for value in found.values()):
        return None
    return {key: str(value) for key, value in found.items()}


def provenance_text_from_layout(raw: bytes, layout: list[Any]) -> str | None:
    """The PROV-JSON text of the first ``PROVENANCE`` HDU of *raw*, as
    :func:`read_provenance` reads it; "" when there is none, None when it needs astropy."""
    hdu = next((h for h in layout if _is_provenance(h)), None)
    if hdu is None:
        return ""
    cards = hdu.cards
    width, rows = cards.get("NAXIS1"), cards.get("NAXIS2")
    simple = (
        cards.get("XTENSION") == "BINTABLE"
        and cards.get("TFIELDS") == 1
        and str(cards.get("TTYPE1", "")).strip() == "PROV_JSON"
        and cards.get("TFORM1") == f"{width}A"
        and isinstance(rows, int)
        and rows >= 1
    )
    if not simple:
        return None
    cell = raw[hdu.data_start : hdu.data_start + width]
    try:
        return cell.decode().rstrip(" \0")
    except UnicodeDecodeError:
        return None


def parse_cached(text: str) -> ProvenanceGraph:
    """``parse(text, "json")``, remembered by content: a product used again (the input of
    the next step) is parsed once per process. Returns an independent copy."""
    import copy
    import hashlib

    from .document import parse

    key = hashlib.sha256(text.encode()).hexdigest()
    graph = _PARSED.get(key)
    if graph is None:
        graph = parse(text, "json")
        if len(_PARSED) >= 256:
            _PARSED.clear()
        _PARSED[key] = graph
    return copy.deepcopy(graph)
