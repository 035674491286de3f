"""Verify a product against its provenance, and redo it from its DL3 inputs.

``verify`` checks the product's data hash (against the hash its own provenance
records, and its file hash against the store when one knows it) and the sha256
of every input file still on disk.

``redo`` walks the product's lineage back to the inputs that no recorded
activity generated (the DL3 files), re-runs each recorded activity in order by
importing its callable (``module:qualname``) and calling it with the recorded
parameters and configuration, with outputs redirected into a new folder, then
compares the new product with the old one. FITS data arrays are compared with
the tolerance of the product type (:data:`TOLERANCES`); headers are compared
ignoring dates, checksums and the provenance keys.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._errors import ProvenanceError
from ._agents import software_versions
from ._hashing import fits_data_sha256, sha256_file
from ._values import decode_value
from .records import ActivityRecord, EntityRecord, ProvenanceGraph

__all__ = [
    "TOLERANCES",
    "RedoReport",
    "VerifyReport",
    "compare_fits",
    "import_callable",
    "redo",
    "verify",
]

#: Relative tolerance when comparing a redone product with the original, by product type.
#: Counts and event lists are integers/copies: exact. Floating-point products may differ in the
#: last bits with another numpy/BLAS build; fitted quantities go through an optimizer.
TOLERANCES: dict[str, float] = {
    "counts": 0.0,
    "events": 0.0,
    "mask": 0.0,
    "exposure": 1e-6,
    "background": 1e-6,
    "smoothed": 1e-6,
    "excess": 1e-6,
    "significance": 1e-5,
    "flux": 1e-4,
    "spectrum": 1e-4,
    "lightcurve": 1e-3,
    "fit": 1e-3,
    "default": 1e-6,
}
_IGNORED_KEYS = (
    "DATE",
    "DATE-",
    "CREATED",  # gammapy's write time
    "CHECKSUM",
    "DATASUM",
    "PROV",
    "CALIBVER",
    "RECO_VER",
    "RECO_MTH",
    "APPCUTS",
)


def import_callable(name: str) -> Any:
    """The object named ``module:qualname`` (ProvenanceError when it cannot be imported)."""
    module_name, _, qualname = name.partition(":")
    if not module_name or not qualname:
        raise ProvenanceError(f"recorded callable {name!r} is not of the form module:qualname")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ProvenanceError(
            f"unknown activity callable {name!r}: cannot import {module_name}: {exc}"
        ) from None
    for part in qualname.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ProvenanceError(
                f"unknown activity callable {name!r}: {module_name} has no {qualname}"
            ) from None
    return obj


@dataclass
class VerifyReport:
    """What :func:`verify` found; ``ok`` is True when nothing is wrong."""

    product: str
    problems: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        head = (
            f"{self.product}: {'OK' if self.ok else 'FAILED'} ({len(self.checked)} files checked)"
        )
        return "\n".join([head, *(f"  - {p}" for p in self.problems)])


def _product_entity(path: Path, graph: ProvenanceGraph) -> EntityRecord:
    from .fits import product_keywords

    entity_id = product_keywords(path).get("PROV_ID")
    if entity_id is None or entity_id not in graph.entities:
        raise ProvenanceError(f"product {path} has no PROV_ID entity in its provenance")
    return graph.entities[entity_id]


def _source_entities(graph: ProvenanceGraph, product_id: str) -> list[EntityRecord]:
    """Every file entity in the product's lineage, inputs first."""
    out, todo, seen = [], [product_id], set()
    while todo:
        act = graph.generator_of(todo.pop())
        if act is None or act.id in seen:
            continue
        seen.add(act.id)
        for rel in act.used:
            entity = graph.entities.get(rel.entity_id)
            if entity is not None and entity.kind == "file":
                out.append(entity)
                todo.append(entity.id)
    return out


def verify(product: str | Path, *, store: Any = None) -> VerifyReport:
    """Check a product and the inputs of its lineage against the recorded hashes.

    Parameters
    ----------
    product : path
        A FITS product with embedded provenance.
    store : ProvenanceStore, optional
        Also compare the product's file sha256 with the store's record.
    """
    from .fits import read_provenance

    path = Path(product)
    graph = read_provenance(path)
    entity = _product_entity(path, graph)
    report = VerifyReport(str(path))
    report.checked.append(str(path))
    if entity.data_sha256 and fits_data_sha256(path) != entity.data_sha256:
        report.problems.append(
            f"product data altered: data sha256 of {path} differs from its provenance"
        )
    if store is not None:
        known = store.find_entities(sha256=None, location=str(path.resolve()))
        recorded = [e.sha256 for e in known if e.id == entity.id and e.sha256]
        if recorded and sha256_file(path) != recorded[0]:
            report.problems.append(
                f"product file changed: sha256 of {path} differs from the store's record"
            )
    for source in _source_entities(graph, entity.id):
        location = Path(source.location or "")
        report.checked.append(str(location))
        if not location.is_file():
            report.problems.append(f"missing input: {location} ({source.id})")
        elif source.sha256 and sha256_file(location) != source.sha256:
            report.problems.append(
                f"changed input: sha256 of {location} differs from the recorded one"
            )
    return report


@dataclass
class RedoReport:
    """Outcome of :func:`redo`: the new product and how it compares with the old one."""

    product: str
    new_product: str | None = None
    product_type: str | None = None
    rtol: float = 0.0
    identical: bool = False
    equal: bool = False
    differences: list[str] = field(default_factory=list)
    software_changes: dict[str, tuple[str, str]] = field(default_factory=dict)
    input_problems: list[str] = field(default_factory=list)
    rerun: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """The redone product equals the original within the product type's tolerance."""
        return self.equal and not self.input_problems

    def __str__(self) -> str:
        verdict = (
            "identical"
            if self.identical
            else f"equal within rtol={self.rtol:g}"
            if self.equal
            else "DIFFERENT"
        )
        lines = [
            f"redo of {self.product} -> {self.new_product}: {verdict}",
            f"  re-ran: {', '.join(self.rerun) or 'nothing'}",
        ]
        lines += [f"  - input: {p}" for p in self.input_problems]
        lines += [
            f"  - software {k}: recorded {a}, now {b}"
            for k, (a, b) in self.software_changes.items()
        ]
        lines += [f"  - {d}" for d in self.differences]
        return "\n".join(lines)


class _Replayer:
    def __init__(self, graph: ProvenanceGraph, out_dir: Path) -> None:
        self.graph, self.out_dir = graph, out_dir
        self.new_paths: dict[str, Path] = {}
        self.report_inputs: list[str] = []
        self.rerun: list[str] = []
        self.software: dict[str, tuple[str, str]] = {}

    def input_path(self, entity: EntityRecord) -> Path:
        if entity.id in self.new_paths:
            return self.new_paths[entity.id]
        producer = self.graph.generator_of(entity.id)
        if producer is not None:
            self.run(producer)
            return self.new_paths[entity.id]
        location = Path(entity.location or "")
        if not location.is_file():
            raise ProvenanceError(f"cannot redo: input file {location} is missing ({entity.id})")
        if entity.sha256 and sha256_file(location) != entity.sha256:
            self.report_inputs.append(
                f"changed input: {location} (sha256 differs from the recorded one)"
            )
        return location

    def run(self, act: ActivityRecord) -> None:
        if not act.callable:
            raise ProvenanceError(
                f"cannot redo activity {act.name!r} ({act.id}): it names no callable"
            )
        if act.status not in ("completed",):
            raise ProvenanceError(
                f"cannot redo activity {act.name!r} ({act.id}): its status is {act.status}"
            )
        func = import_callable(act.callable)
        for name, version in act.software.items():
            now = software_versions().get(name)
            if now is not None and now != version:
                self.software[name] = (version, now)
        replace: dict[str, Path] = {}
        for rel in act.used:
            entity = self.graph.entities.get(rel.entity_id)
            if entity is not None and entity.kind == "memory":
                raise ProvenanceError(
                    f"cannot redo activity {act.name!r}: input {rel.role!r} was an in-memory "
                    f"{entity.label} not produced by a recorded activity"
                )
            if entity is not None and entity.location:
                replace[entity.location] = self.input_path(entity)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        outputs: dict[str, Path] = {}
        for rel in act.generated:
            entity = self.graph.entities.get(rel.entity_id)
            if entity is not None and entity.location:
                new = self.out_dir / Path(entity.location).name
                outputs[entity.location] = new
                self.new_paths[entity.id] = new
        kwargs = {
            k: _substitute(decode_value(v), {**replace, **outputs})
            for k, v in act.parameters.items()
        }
        target = func
        signature = inspect.signature(getattr(func, "__wrapped__", func))
        if next(iter(signature.parameters), None) == "self":
            owner = import_callable(act.callable.rsplit(".", 1)[0])
            config = decode_value(act.config) if act.config else None
            instance = owner(config) if config is not None else owner()
            target = getattr(instance, act.callable.rsplit(".", 1)[1])
        try:
            target(**kwargs)
        except ProvenanceError:
            raise
        except Exception as exc:
            raise ProvenanceError(
                f"redo of activity {act.name!r} failed: {type(exc).__name__}: {exc}"
            ) from exc
        self.rerun.append(f"{act.name} {act.version}".strip())


def _substitute(value: Any, mapping: dict[str, Path]) -> Any:
    if isinstance(value, list | tuple):
        return type(value)(_substitute(item, mapping) for item in value)
    if isinstance(value, str | Path):
        key = str(Path(value).resolve()) if str(value) else ""
        if key in mapping:
            return type(value)(mapping[key]) if isinstance(value, Path) else str(mapping[key])
    return value


def redo(product: str | Path, out_dir: str | Path) -> RedoReport:
    """Re-execute the recorded chain of *product* into *out_dir* and compare the result.

    Raises
    ------
    ProvenanceError
        The product has no provenance, an input file is missing, or a recorded
        callable cannot be imported.
    """
    from .fits import read_provenance

    path = Path(product)
    graph = read_provenance(path)
    entity = _product_entity(path, graph)
    if graph.generator_of(entity.id) is None:
        raise ProvenanceError(f"product {path}: its provenance has no generating activity")
    replayer = _Replayer(graph, Path(out_dir))
    new_path = replayer.input_path(entity)
    rtol = TOLERANCES.get(entity.product_type or "default", TOLERANCES["default"])
    report = RedoReport(
        str(path),
        str(new_path),
        entity.product_type,
        rtol,
        rerun=replayer.rerun,
        input_problems=replayer.report_inputs,
        software_changes=replayer.software,
    )
    if not path.is_file():
        report.differences.append(f"original product {path} is gone; compared nothing")
        return report
    report.differences, report.identical = compare_fits(path, new_path, rtol=rtol)
    report.equal = not report.differences
    return report


def compare_fits(old: str | Path, new: str | Path, *, rtol: float = 0.0) -> tuple[list[str], bool]:
    """Differences between two FITS products (data within *rtol*, headers ignoring dates and provenance).

    Returns
    -------
    (differences, identical) : (list of str, bool)
    """
    import numpy as np
    from astropy.io import fits

    differences: list[str] = []
    identical = True
    with fits.open(old, memmap=False) as a, fits.open(new, memmap=False) as b:
        names_a = [h.name for h in a if h.name != "PROVENANCE"]
        names_b = [h.name for h in b if h.name != "PROVENANCE"]
        if names_a != names_b:
            return [f"HDUs differ: {names_a} vs {names_b}"], False
        for index, name in enumerate(names_a):
            ha, hb = a[index], b[index]
            for key in sorted(set(ha.header) | set(hb.header)):
                if key.startswith(_IGNORED_KEYS) or key in ("COMMENT", "HISTORY", ""):
                    continue
                if ha.header.get(key) != hb.header.get(key):
                    differences.append(
                        f"HDU {name} header {key}: {ha.header.get(key)!r} vs {hb.header.get(key)!r}"
                    )
            da, db = ha.data, hb.data
            if da is None or db is None:
                if (da is None) != (db is None):
                    differences.append(f"HDU {name}: data present in only one file")
                continue
            if isinstance(da, fits.FITS_rec):
                columns = (
                    [(c, np.asarray(da[c]), np.asarray(db[c])) for c in da.names]
                    if da.names == db.names
                    else None
                )
                if columns is None:
                    differences.append(f"HDU {name}: columns differ")
                    continue
            else:
                columns = [("data", np.asarray(da), np.asarray(db))]
            for col, xa, xb in columns:
                if xa.shape != xb.shape:
                    differences.append(f"HDU {name} {col}: shape {xa.shape} vs {xb.shape}")
                    identical = False
                    continue
                if np.array_equal(xa, xb, equal_nan=xa.dtype.kind == "f"):
                    continue
                identical = False
                if (
                    xa.dtype.kind in "fc"
                    and rtol > 0
                    and np.allclose(xa, xb, rtol=rtol, atol=0, equal_nan=True)
                ):
                    continue
                worst = _worst(xa, xb)
                differences.append(f"HDU {name} {col}: data differ beyond rtol={rtol:g} ({worst})")
    return differences, identical and not differences


def _worst(a: Any, b: Any) -> str:
    import numpy as np

    try:
        fa, fb = a.astype(float), b.astype(float)
        diff = np.abs(fa - fb)
        n = int(np.count_nonzero(diff > 0))
        return f"{n} elements differ, max abs difference {np.nanmax(diff):.6g}"
    except (TypeError, ValueError):
        return f"{int(np.count_nonzero(a != b))} elements differ"
