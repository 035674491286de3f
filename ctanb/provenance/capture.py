"""Capture: the :class:`Activity` context manager (the decorator is in :mod:`.decorate`)."""

from __future__ import annotations

import contextlib
import contextvars
import copy
import hashlib
import os
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path, PurePath
from typing import Any, TypeVar

from .._errors import ProvenanceError
from ._agents import current_agents
from ._hashing import (
    PRODUCT_HASH,
    content_hash,
    fits_layout,
    fits_product_digest,
    fits_product_sha256,
    read_fits_bytes,
    scan_file,
    sha256_file,
)
from ._values import NotEncodable, encode_value
from .records import (
    DEFAULT_STORE,
    OBSCORE_PROVENANCE_KEYS,
    ActivityRecord,
    EntityRecord,
    ProvenanceGraph,
    Relation,
)

__all__ = ["Activity", "current_activity"]

F = TypeVar("F", bound=Callable[..., Any])

_CURRENT: contextvars.ContextVar[Activity | None] = contextvars.ContextVar(
    "ctanb_activity", default=None
)
#: content hash -> (entity id, activity id) of in-memory objects generated in this process,
#: so that a later activity using the same object is linked by wasInformedBy.
_MEMORY_PRODUCTS: dict[str, tuple[str, str]] = {}
_FITS_SUFFIXES = (".fits", ".fits.gz", ".fit", ".fts")


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _merged(first: EntityRecord | None, again: EntityRecord) -> EntityRecord:
    """One entity used twice (same bytes, e.g. IRFs bundled in the event file): what the
    first use knew (location, DID, ObsCore keywords) is kept, gaps filled from the second."""
    if first is None:
        return again
    if again.location and first.location and again.location != first.location:
        # The same bytes at another path (one IRF file per run in a download cache):
        # redo maps every path the step was given to the one copy it finds.
        also = first.attributes.setdefault("also_at", [])
        if again.location not in also:
            also.append(again.location)
    for name in ("location", "size", "data_sha256", "data_level", "obs_id", "publisher_did",
                 "product_type", "label"):  # fmt: skip
        if getattr(first, name) in (None, ""):
            setattr(first, name, getattr(again, name))
    first.attributes = {
        **again.attributes,
        **{k: v for k, v in first.attributes.items() if v not in (None, "")},
    }
    return first


#: While ``redo`` re-runs a chain: recorded inputs by sha256 (their DIDs and ObsCore
#: keywords carry over to the new record) and original products by new location.
_REDO: contextvars.ContextVar[tuple[dict[str, EntityRecord], dict[str, str]] | None] = (
    contextvars.ContextVar("ctanb_redo", default=None)
)


@contextlib.contextmanager
def redoing(originals: dict[str, EntityRecord], revisions: dict[str, str]) -> Iterator[None]:
    """Inside, used inputs get the identifiers of the recorded inputs of the same content,
    and products written at a location of *revisions* record the product they revise."""
    token = _REDO.set((originals, revisions))
    try:
        yield
    finally:
        _REDO.reset(token)


def current_activity() -> Activity | None:
    """The innermost :class:`Activity` running in this context.

    Returns
    -------
    Activity or None
        None outside any activity.
    """
    return _CURRENT.get()


def _is_fits(path: Path) -> bool:
    return path.name.lower().endswith(_FITS_SUFFIXES)


def _callable_name(func: Any) -> str:
    if isinstance(func, str):
        return func
    return f"{func.__module__}:{func.__qualname__}"


class Activity:
    """Record one activity: what it used, generated, its parameters and agents.

    Parameters
    ----------
    name, version, description : str
        The IVOA ActivityDescription (``version`` is the pipeline/step version
        that queries select on).
    parameters, config : mapping, optional
        Parameters (each becomes a voprov Parameter) and the full configuration.
    store : ProvenanceStore, str, None
        Where to write; default :func:`~ctanb.provenance.default_store`. ``None``
        records in memory (and into FITS products) only.
    attach : bool
        Write the provenance into each FITS product generated (default True).

    Examples
    --------
    Not run by the doctests (it needs a DL3 file and a map to write:
    ``tests/test_provenance.py`` records real ones):

    >>> with Activity("counts-map", version="1.0") as act:          # doctest: +SKIP
    ...     act.used("run_023523.fits.gz", obs_id="23523", data_level="DL3")
    ...     act.parameter("binsz", 0.02)
    ...     counts.write("counts.fits")
    ...     act.generated("counts.fits", data_level="DL4", product_type="counts")
    """

    def __init__(
        self,
        name: str,
        *,
        version: str = "",
        description: str = "",
        parameters: Mapping[str, Any] | None = None,
        config: Any = None,
        store: Any = DEFAULT_STORE,
        attach: bool = True,
    ) -> None:
        if not name:
            raise ProvenanceError("an activity needs a name")
        self.record = ActivityRecord(
            id=f"ctanb:activity-{uuid.uuid4().hex}",
            name=name,
            version=str(version),
            description=description,
        )
        self.graph = ProvenanceGraph()
        self.graph.activities[self.record.id] = self.record
        self._store_arg = store
        self.store: Any = None
        self.attach = attach
        self._pending: list[tuple[EntityRecord, Path]] = []
        self._token: contextvars.Token | None = None
        for key, value in (parameters or {}).items():
            self.parameter(key, value)
        if config is not None:
            self.configuration(config)

    @property
    def id(self) -> str:
        """The activity's id (``ctanb:activity-<uuid>``)."""
        return self.record.id

    # -- recording -----------------------------------------------------------------------
    def parameter(self, name: str, value: Any) -> None:
        """Record a parameter value (JSON-encodable; otherwise use :meth:`used`).

        Parameters
        ----------
        name : str
            The parameter's name.
        value : object
            Its value: numbers, strings, lists, mappings, quantities.

        Raises
        ------
        ProvenanceError
            The value cannot be encoded as JSON.
        """
        try:
            self.record.parameters[name] = encode_value(value)
        except NotEncodable as exc:
            raise ProvenanceError(
                f"parameter {name!r}: {exc}; record it with act.used(...) instead"
            ) from None

    def configuration(self, config: Any) -> None:
        """Record the full configuration (a mapping or a pydantic model).

        Parameters
        ----------
        config : mapping or pydantic.BaseModel
            The step's configuration.

        Raises
        ------
        ProvenanceError
            The configuration cannot be encoded as JSON.
        """
        try:
            self.record.config = encode_value(config)
        except NotEncodable as exc:
            raise ProvenanceError(f"configuration: {exc}") from None

    def informed_by(self, activity_id: str) -> None:
        """Record that this activity used something another activity produced.

        Parameters
        ----------
        activity_id : str
            The other activity.
        """
        if activity_id != self.id and activity_id not in self.record.informed_by:
            self.record.informed_by.append(activity_id)

    def used(
        self,
        what: Any,
        *,
        role: str = "",
        obs_id: Any = None,
        publisher_did: str | None = None,
        data_level: str | None = None,
        obscore: Mapping[str, Any] | None = None,
        label: str | None = None,
        **attributes: Any,
    ) -> EntityRecord:
        """Record an input: a file path (hashed now) or an in-memory object (content hash).

        A FITS input written by ctanb brings its own provenance along.

        Parameters
        ----------
        what : path or object
            The input file, or the object itself.
        role : str
            What the input is for the activity (e.g. ``events``, ``irf``).
        obs_id : str or int, optional
            The observation the input belongs to.
        publisher_did : str, optional
            The dataset's ObsCore ``obs_publisher_did``.
        data_level : str, optional
            ``DL3``, ``DL4``...
        obscore : mapping, optional
            The dataset's ObsCore row: its ``obs_publisher_did``, ``obs_id``, data
            level and provenance keywords are recorded.
        label : str, optional
            A short name for graphs (default: the file name).
        **attributes
            Anything else to record with the entity.

        Returns
        -------
        EntityRecord
            The recorded input.

        Raises
        ------
        ProvenanceError
            The input file does not exist.
        """
        meta = dict(attributes)
        row = dict(obscore or {})
        obs_id = obs_id if obs_id is not None else row.get("obs_id")
        publisher_did = publisher_did or row.get("obs_publisher_did")
        if data_level is None and row.get("dataproduct_subtype"):
            data_level = str(row["dataproduct_subtype"]).split("-")[0]
        for key in OBSCORE_PROVENANCE_KEYS:
            if row.get(key) not in (None, "") and key not in meta:
                meta[key] = row[key]
        if isinstance(what, str | PurePath):
            entity = self._used_file(Path(what), meta, data_level)
        else:
            digest, method = content_hash(what)
            entity = EntityRecord(
                id=f"ctanb:memory-{digest}",
                kind="memory",
                sha256=digest,
                label=label or type(what).__name__,
                attributes={
                    "hash_method": method,
                    "python_type": _callable_name(type(what)),
                    **meta,
                },
            )
            if digest in _MEMORY_PRODUCTS:
                entity.id, producer = _MEMORY_PRODUCTS[digest]
                self.informed_by(producer)
        entity.obs_id = str(obs_id) if obs_id is not None else entity.obs_id
        entity.publisher_did = publisher_did or entity.publisher_did
        entity.data_level = data_level or entity.data_level
        entity.label = label or entity.label
        redo = _REDO.get()
        if redo is not None and entity.kind == "file" and entity.sha256 in redo[0]:
            recorded = redo[0][entity.sha256]
            for name in ("obs_id", "publisher_did", "data_level"):
                if getattr(recorded, name) and not getattr(entity, name):
                    setattr(entity, name, getattr(recorded, name))
            for key in OBSCORE_PROVENANCE_KEYS:
                if key in recorded.attributes:
                    entity.attributes.setdefault(key, recorded.attributes[key])
        entity = _merged(self.graph.entities.get(entity.id), entity)
        self.graph.entities[entity.id] = entity
        self.record.used.append(Relation(entity.id, role))
        return entity

    def _used_file(self, path: Path, meta: dict[str, Any], data_level: str | None) -> EntityRecord:
        if not path.is_file():
            raise ProvenanceError(f"input file {path} does not exist")
        is_fits = _is_fits(path)
        # One read gives the hash and, for FITS, the HDU layout (cached while unchanged).
        scan = scan_file(path, fits=is_fits)
        entity = EntityRecord(
            id=f"ctanb:file-{scan.sha256}",
            kind="file",
            location=str(path.resolve()),
            sha256=scan.sha256,
            size=scan.size,
            data_level=data_level,
            attributes=meta,
        )
        if is_fits:
            from .fits import (
                has_provenance,
                keywords_from_layout,
                parse_cached,
                product_keywords,
                provenance_text_from_layout,
                read_provenance,
            )

            layout = scan.layout
            keys = keywords_from_layout(layout) if layout else None
            if keys is None:
                keys = product_keywords(path)
            text = None  # PROV-JSON text; "" none; None: ask astropy
            if layout:
                raw = scan.raw
                if raw is None and any(h.name.strip().upper() == "PROVENANCE" for h in layout):
                    raw = read_fits_bytes(path)  # a cached scan of a product: read it again
                text = provenance_text_from_layout(raw, layout) if raw is not None else ""
            if text is None:
                text = "?" if has_provenance(path) else ""
            if keys.get("OBS_ID"):
                entity.obs_id = keys["OBS_ID"]
            if text:  # a ctanb product: link to its generating activity
                ancestors = read_provenance(path) if text == "?" else parse_cached(text)
                self.graph.merge(ancestors)
                entity.id = keys.get("PROV_ID", entity.id)
                known = ancestors.entities.get(entity.id)
                if known is not None:
                    entity.data_sha256, entity.product_type = known.data_sha256, known.product_type
                    entity.data_level = entity.data_level or known.data_level
                    for key in OBSCORE_PROVENANCE_KEYS:
                        if key in known.attributes:
                            entity.attributes.setdefault(key, known.attributes[key])
                if keys.get("PROV_ACT"):
                    self.informed_by(keys["PROV_ACT"])
            elif not (layout and _gadf_keys_from_layout(layout, entity)):
                _read_gadf_keys(path, entity)
        return entity

    def generated(
        self,
        what: Any,
        *,
        role: str = "",
        data_level: str | None = None,
        product_type: str | None = None,
        label: str | None = None,
        derived_from: Iterable[EntityRecord | str] | None = None,
        **attributes: Any,
    ) -> EntityRecord:
        """Record an output: a file path (hashed when the activity ends) or an in-memory object.

        Parameters
        ----------
        what : path or object
            The output file, or the object itself.
        role : str
            What the output is (e.g. ``counts``).
        data_level : str, optional
            ``DL4``, ``DL5``...
        product_type : str, optional
            The product type (e.g. ``counts``, ``flux-points``).
        label : str, optional
            A short name for graphs (default: the file name).
        derived_from : iterable of EntityRecord or str, optional
            The used entities (records or ids) this output was computed from; by
            default it derives from everything the activity used.
        **attributes
            Anything else to record with the entity.

        Returns
        -------
        EntityRecord
            The recorded output.
        """
        entity = EntityRecord(
            id=f"ctanb:entity-{uuid.uuid4().hex}",
            kind="file",
            data_level=data_level,
            product_type=product_type,
            label=label,
            attributes=dict(attributes),
        )
        if isinstance(what, str | PurePath):
            path = Path(what)
            entity.location = str(path.resolve())
            self._pending.append((entity, path))
            redo = _REDO.get()
            if redo is not None and entity.location in redo[1]:
                entity.attributes["was_revision_of"] = redo[1][entity.location]
        else:
            entity.kind = "memory"
            entity.label = label or type(what).__name__
            try:
                entity.sha256, entity.attributes["hash_method"] = content_hash(what)
                _MEMORY_PRODUCTS[entity.sha256] = (entity.id, self.id)
            except ProvenanceError:
                entity.attributes["hash_method"] = "unhashable"
        self.graph.entities[entity.id] = entity
        self.record.generated.append(Relation(entity.id, role))
        if derived_from is not None:
            self.record.derivations[entity.id] = [
                item if isinstance(item, str) else item.id for item in derived_from
            ]
        return entity

    def inputs_of_item(self, index: int, count: int) -> list[str]:
        """The used entities output *index* of *count* per-input outputs derives from.

        Item *index* of each input role with *count* items (one dataset per run; an
        empty IRF list, IRFs bundled in the event files, drops out).

        Parameters
        ----------
        index : int
            Which output.
        count : int
            How many per-input outputs there are.

        Returns
        -------
        list of str
            Entity ids.
        """
        by_role: dict[str, list[str]] = {}
        for rel in self.record.used:
            if self.graph.entities.get(rel.entity_id, None) is not None:
                by_role.setdefault(rel.role, []).append(rel.entity_id)
        return [ids[index] for ids in by_role.values() if len(ids) == count]

    # -- lifecycle -----------------------------------------------------------------------
    def __enter__(self) -> Activity:
        from .store import resolve_store

        self.record.start_time = _now()
        self.record.pid = os.getpid()
        self.record.agents = current_agents()
        parent = _CURRENT.get()
        if parent is not None:
            self.informed_by(parent.id)  # a nested step: the outer activity informs it
            # ... and is part of its record (e.g. the archive selection of `ctanb run`)
            self.graph.activities.setdefault(parent.id, copy.deepcopy(parent.record))
            for rel in parent.record.used:
                if rel.entity_id in parent.graph.entities:
                    self.graph.entities.setdefault(
                        rel.entity_id, parent.graph.entities[rel.entity_id]
                    )
        self.store = resolve_store(self._store_arg)
        if self.store is not None:
            self.store.begin(self.record)
        self._token = _CURRENT.set(self)
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self._token is not None:
            _CURRENT.reset(self._token)
        self.record.end_time = _now()
        if exc is not None:
            self.record.status, self.record.message = "failed", f"{exc_type.__name__}: {exc}"
        else:
            self.record.status = "completed"
            self._finish_products()
        if self.store is not None:
            self.store.finish(self.record, self.graph)

    def _propagated(self) -> tuple[dict[str, str], list[str]]:
        values: dict[str, list[str]] = {}
        for rel in self.record.used:
            entity = self.graph.entities[rel.entity_id]
            for key in OBSCORE_PROVENANCE_KEYS:
                for part in str(entity.attributes.get(key) or "").split(","):
                    if part and part not in values.setdefault(key, []):
                        values[key].append(part)
        merged = {key: ",".join(parts) for key, parts in values.items() if parts}
        return merged, [key for key, parts in values.items() if len(parts) > 1]

    def _finish_products(self) -> None:
        from .fits import (
            attach_provenance,
            attach_provenance_bytes,
            provenance_hdu_bytes,
            provenance_header_sha256,
        )
        from .signing import sign_product

        propagated, mixed = self._propagated()
        written = []
        for entity, path in self._pending:
            if not path.is_file():
                self.record.status = "failed"
                self.record.message = f"declared product {path} was not written"
                continue
            entity.attributes = {**propagated, **entity.attributes}
            if mixed:  # the inputs disagree: all values are kept, comma-joined, and flagged
                entity.attributes["obscore_mixed"] = ",".join(mixed)
            body = None
            if _is_fits(path):
                keywords: dict[str, Any] = {
                    **propagated,
                    "data_level": entity.data_level,
                    "product_type": entity.product_type,
                }
                if mixed:
                    keywords["PROVMIX"] = ",".join(mixed)
                links = {"entity_id": entity.id, "activity_id": self.id, "keywords": keywords}
                # Each product is read once. Its header gets its provenance keys first, so
                # the content hash below covers the file as it will be (all but PROVENANCE).
                raw, layout = _read_product(path)
                if not self.attach:
                    body = raw
                elif layout is not None:
                    body = attach_provenance_bytes(raw, layout, b"", **links)
                else:  # gzip or unusual FITS: astropy writes the keys (and a stand-in record)
                    attach_provenance(path, "{}", **links)
                digest = (
                    fits_product_digest(body) if body is not None else fits_product_sha256(path)
                )
                entity.data_sha256 = digest.sha256
                entity.attributes["hash_method"] = PRODUCT_HASH
                entity.attributes["hdus"] = [list(part) for part in digest.hdus]
            written.append((entity, path, body))
        # Attach only once every product's content hash is known, so each file carries them
        # all; every product of the activity carries the same document, serialized once.
        document: str | None = None
        header = ""
        for entity, path, body in written:
            if _is_fits(path) and self.attach:
                if document is None:
                    document = self.graph.serialize("json")
                    header = provenance_header_sha256(document)
                text = document.encode()
                signature = sign_product(entity.id, entity.data_sha256 or "", text, header)
                if body is not None:
                    data = body + provenance_hdu_bytes(document, signature)
                    _write_product(path, data)
                    entity.sha256 = hashlib.sha256(data).hexdigest()
                    entity.size = len(data)
                    continue
                attach_provenance(
                    path, document, entity_id=entity.id, activity_id=self.id, signature=signature
                )
            entity.sha256 = sha256_file(path)
            entity.size = path.stat().st_size
        for rel in self.record.generated:
            entity = self.graph.entities[rel.entity_id]
            if entity.kind == "memory":
                entity.attributes = {**propagated, **entity.attributes}


def _read_product(path: Path) -> tuple[bytes | None, list[Any] | None]:
    """An uncompressed FITS product's bytes and HDU layout (None, None for astropy)."""
    try:
        raw = path.read_bytes()
    except OSError:
        return None, None
    if raw[:2] == b"\x1f\x8b":  # gzip: attaching rewrites it through astropy
        return None, None
    layout = fits_layout(raw)
    return (raw, layout) if layout is not None else (None, None)


def _write_product(path: Path, data: bytes) -> None:
    """Rewrite *path* with *data* in place (as astropy's update mode does)."""
    try:
        with open(path, "r+b") as handle:
            handle.write(data)
            handle.truncate()
    except OSError as exc:
        raise ProvenanceError(f"cannot attach provenance to {path}: {exc}") from None


def _gadf_keys_from_layout(layout: list[Any], entity: EntityRecord) -> bool:
    """:func:`_read_gadf_keys` from a file's HDU layout; False when astropy must read it."""
    from ._hashing import _UNPARSED

    for hdu in layout[1:]:
        if hdu.cards.get("HDUCLAS1") is _UNPARSED or hdu.cards.get("OBS_ID") is _UNPARSED:
            return False
        if hdu.cards.get("HDUCLAS1") == "EVENTS":
            value = hdu.cards.get("OBS_ID")
            if entity.obs_id is None and value is not None:
                entity.obs_id = str(value)
            entity.data_level = entity.data_level or "DL3"
            return True
    return True


def _read_gadf_keys(path: Path, entity: EntityRecord) -> None:
    """Fill obs_id and data level of a GADF DL3 file from its EVENTS header, when not given."""
    from astropy.io import fits

    try:
        with fits.open(path, memmap=False) as hdus:
            for hdu in hdus[1:]:
                if hdu.header.get("HDUCLAS1") == "EVENTS":
                    if entity.obs_id is None and "OBS_ID" in hdu.header:
                        entity.obs_id = str(hdu.header["OBS_ID"])
                    entity.data_level = entity.data_level or "DL3"
                    return
    except OSError:
        return
