"""Capture: the :class:`Activity` context manager and the :func:`recorded` decorator."""

from __future__ import annotations

import contextvars
import functools
import inspect
import os
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path, PurePath
from typing import Any, TypeVar

from .._errors import ProvenanceError
from ._agents import current_agents
from ._hashing import content_hash, fits_data_sha256, sha256_file
from ._values import NotEncodable, encode_value
from .records import (
    DEFAULT_STORE,
    OBSCORE_PROVENANCE_KEYS,
    ActivityRecord,
    EntityRecord,
    ProvenanceGraph,
    Relation,
)

__all__ = ["Activity", "current_activity", "recorded"]

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


def current_activity() -> Activity | None:
    """The innermost :class:`Activity` running in this context, or None."""
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
    callable : callable or str, optional
        The code to call again on redo (``module:qualname``).
    parameters, config : mapping, optional
        Parameters (each becomes a voprov Parameter) and the full configuration.
    store : ProvenanceStore, str, None
        Where to write; default :func:`~ctanb.provenance.default_store`. ``None``
        records in memory (and into FITS products) only.
    attach : bool
        Write the provenance into each FITS product generated (default True).

    Examples
    --------
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
        callable: Any = None,
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
            callable=_callable_name(callable) if callable is not None else None,
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
        """Record a parameter value (JSON-encodable; otherwise use :meth:`used`)."""
        try:
            self.record.parameters[name] = encode_value(value)
        except NotEncodable as exc:
            raise ProvenanceError(
                f"parameter {name!r}: {exc}; record it with act.used(...) instead"
            ) from None

    def configuration(self, config: Any) -> None:
        """Record the full configuration (a mapping or a pydantic model)."""
        try:
            self.record.config = encode_value(config)
        except NotEncodable as exc:
            raise ProvenanceError(f"configuration: {exc}") from None

    def informed_by(self, activity_id: str) -> None:
        """Record that this activity used something another activity produced."""
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

        ``obscore`` takes an ObsCore row (mapping) of the dataset: its
        ``obs_publisher_did``, ``obs_id``, data level and provenance keywords are
        recorded. A FITS input written by ctanb brings its own provenance along.
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
        self.graph.entities[entity.id] = entity
        self.record.used.append(Relation(entity.id, role))
        return entity

    def _used_file(self, path: Path, meta: dict[str, Any], data_level: str | None) -> EntityRecord:
        if not path.is_file():
            raise ProvenanceError(f"input file {path} does not exist")
        digest = sha256_file(path)
        entity = EntityRecord(
            id=f"ctanb:file-{digest}",
            kind="file",
            location=str(path.resolve()),
            sha256=digest,
            size=path.stat().st_size,
            data_level=data_level,
            attributes=meta,
        )
        if _is_fits(path):
            from .fits import has_provenance, product_keywords, read_provenance

            keys = product_keywords(path)
            if keys.get("OBS_ID"):
                entity.obs_id = keys["OBS_ID"]
            if has_provenance(path):  # a ctanb product: link to its generating activity
                ancestors = read_provenance(path)
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
            else:
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
        **attributes: Any,
    ) -> EntityRecord:
        """Record an output: a file path (hashed when the activity ends) or an in-memory object."""
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
        return entity

    # -- lifecycle -----------------------------------------------------------------------
    def __enter__(self) -> Activity:
        from .store import resolve_store

        self.record.start_time = _now()
        self.record.pid = os.getpid()
        self.record.agents = current_agents()
        parent = _CURRENT.get()
        if parent is not None:
            self.informed_by(parent.id)  # a nested step: the outer activity informs it
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
        from .fits import attach_provenance

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
            if _is_fits(path):
                entity.data_sha256 = fits_data_sha256(path)
            written.append((entity, path))
        # Attach only once every product's data hash is known, so each file carries them all.
        for entity, path in written:
            if _is_fits(path) and self.attach:
                keywords = {
                    **propagated,
                    "data_level": entity.data_level,
                    "product_type": entity.product_type,
                }
                if mixed:
                    keywords["PROVMIX"] = ",".join(mixed)
                attach_provenance(
                    path, self.graph, entity_id=entity.id, activity_id=self.id, keywords=keywords
                )
            entity.sha256 = sha256_file(path)
            entity.size = path.stat().st_size
        for rel in self.record.generated:
            entity = self.graph.entities[rel.entity_id]
            if entity.kind == "memory":
                entity.attributes = {**propagated, **entity.attributes}


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
    record_result : bool
        Record the return value as a generated in-memory entity.

    Every other argument is a parameter (JSON-encodable values) or, if it has no
    JSON form, a used in-memory entity. For a method, ``self.config`` (a pydantic
    model or mapping) is recorded as the configuration, and redo rebuilds the
    instance as ``Class(config)``.
    """
    out_types = dict(outputs) if isinstance(outputs, Mapping) else {key: None for key in outputs}
    describers = dict(inputs) if isinstance(inputs, Mapping) else {key: None for key in inputs}

    def decorate(func: F) -> F:
        signature = inspect.signature(func)
        is_method = next(iter(signature.parameters), None) == "self"

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            activity = Activity(
                name or func.__qualname__,
                version=version,
                description=description or (inspect.getdoc(func) or "").split("\n")[0],
                callable=func,
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
                        act.parameter(key, value)
                    elif kind is inspect.Parameter.VAR_KEYWORD:
                        for sub, item in value.items():
                            _param_or_entity(act, sub, item)
                    else:
                        _param_or_entity(act, key, value)
                result = func(*bound.args, **bound.kwargs)
                for key, product_type in out_types.items():
                    value = bound.arguments.get(key)
                    for item in value if isinstance(value, list | tuple) else [value]:
                        if item is not None:
                            act.generated(
                                item, role=key, data_level=data_level, product_type=product_type
                            )
                if record_result and result is not None and not out_types:
                    act.generated(result, role="result", data_level=data_level)
            return result

        wrapper.__ctanb_recorded__ = True  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


def _absolute(value: Any) -> Any:
    """Input paths as absolute paths (same type), so that redo finds them from any folder."""
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
