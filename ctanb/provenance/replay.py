"""Redo a product from its DL3 inputs, with ctanb's registered steps only.

``redo`` walks the product's lineage back to the inputs that no recorded activity
generated (the DL3 files), finds each of them by content (:mod:`._locate`: recorded
location, download cache, ``CTANB_DATA``, then the archive by publisher DID, each
checked by sha256), re-runs each recorded activity in order with the code that
:mod:`ctanb.provenance.steps` registers for its kind and version (a record never
names code), with outputs redirected into a new folder, then compares the new
product with the old one. FITS data are compared with the tolerance of the product
type (:data:`TOLERANCES`); headers are compared ignoring dates, checksums and the
provenance keys. The new products record that they are revisions of the old ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._errors import ProvenanceError
from ._agents import software_versions
from ._locate import InputLocator
from ._values import NotEncodable, decode_value
from .capture import redoing
from .records import ActivityRecord, EntityRecord, ProvenanceGraph
from .steps import step_for

__all__ = [
    "TOLERANCES",
    "RedoReport",
    "compare_fits",
    "redo",
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
    "SIG",  # the signature cards of the PROVENANCE HDU
)


@dataclass
class RedoReport:
    """Outcome of :func:`redo`: the new product and how it compares with the old one.

    Attributes
    ----------
    product, new_product : str
        The original product and the one redo made.
    product_type : str or None
        The product type, which sets the tolerance.
    rtol : float
        The relative tolerance the comparison used.
    identical, equal : bool
        Equal byte for byte (data), or within *rtol*.
    differences : list of str
        What differs, in words.
    software_changes : dict of str to (str, str)
        Software whose version changed: name -> (recorded, now).
    input_problems : list of str
        Inputs that could not be found with their recorded content.
    rerun : list of str
        The steps that ran again.
    input_sources : dict of str to str
        Where each input of the chain's leaves was found (location, cache, data
        folder, archive).
    remade : dict of str to str
        Inputs that an earlier activity of the chain generated: entity id -> the file
        this redo made again and used (never the original's copy).
    notes : list of str
        Anything else worth knowing.
    """

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
    input_sources: dict[str, str] = field(default_factory=dict)
    remade: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

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
        if self.input_sources:
            counts: dict[str, int] = {}
            for where in self.input_sources.values():
                counts[where] = counts.get(where, 0) + 1
            found = ", ".join(f"{n} from the {w}" if w == "archive" else f"{n} at the {w}"
                              if w == "recorded location" else f"{n} from a {w}"
                              for w, n in counts.items())  # fmt: skip
            lines.append(f"  inputs (checked by sha256): {found}")
        if self.remade:
            names = ", ".join(sorted({Path(p).name for p in self.remade.values()}))
            lines.append(
                f"  intermediate inputs: {len(self.remade)} re-made by this redo ({names})"
            )
        lines += [f"  {note}" for note in self.notes]
        lines += [f"  - input: {p}" for p in self.input_problems]
        lines += [
            f"  - software {k}: recorded {a}, now {b}"
            for k, (a, b) in self.software_changes.items()
        ]
        lines += [f"  - {d}" for d in self.differences]
        return "\n".join(lines)


class _Replayer:
    def __init__(self, graph: ProvenanceGraph, out_dir: Path, locator: InputLocator) -> None:
        self.graph, self.out_dir, self.locator = graph, out_dir, locator
        self.new_paths: dict[str, Path] = {}
        self.remade: dict[str, str] = {}  # intermediate inputs this redo made again
        self.report_inputs: list[str] = []
        self.rerun: list[str] = []
        self.software: dict[str, tuple[str, str]] = {}
        self.revisions: dict[str, str] = {}  # new output location -> original entity id
        self.originals: dict[str, EntityRecord] = {}  # sha256 -> recorded input

    def check(self, act: ActivityRecord) -> None:
        """Refuse, before running anything, a chain with an unknown or unfinished step."""
        step_for(act.name, act.version, activity=act.id)
        if act.status != "completed":
            raise ProvenanceError(
                f"cannot redo activity {act.name!r} ({act.id}): its status is {act.status}"
            )
        for rel in act.used:
            entity = self.graph.entities.get(rel.entity_id)
            if entity is None:
                continue
            if entity.kind == "memory" and self.graph.generator_of(entity.id) is None:
                raise ProvenanceError(
                    f"cannot redo activity {act.name!r}: input {rel.role!r} was an in-memory "
                    f"{entity.label} not produced by a recorded activity"
                )
            producer = self.graph.generator_of(entity.id)
            if producer is not None and producer.id != act.id:
                self.check(producer)

    def input_path(self, entity: EntityRecord) -> Path:
        if entity.id in self.new_paths:
            return self.new_paths[entity.id]
        producer = self.graph.generator_of(entity.id)
        if producer is not None:
            self.run(producer)
            if entity.id not in self.new_paths:
                raise ProvenanceError(f"redo of {producer.name!r} did not re-create {entity.id}")
            return self.new_paths[entity.id]
        siblings = [
            self.graph.entities[r.entity_id]
            for act in self.graph.activities.values()
            if any(u.entity_id == entity.id for u in act.used)
            for r in act.used
            if r.entity_id in self.graph.entities
        ]
        path = self.locator.locate(entity, siblings)
        if entity.sha256:
            self.originals[entity.sha256] = entity
        return path

    def run(self, act: ActivityRecord) -> None:
        step = step_for(act.name, act.version, activity=act.id)
        for name, version in act.software.items():
            now = software_versions().get(name)
            if now is not None and now != version:
                self.software[name] = (version, now)
        replace: dict[str, Path] = {}
        for rel in act.used:
            entity = self.graph.entities.get(rel.entity_id)
            if entity is not None and entity.kind == "file" and entity.location:
                located = self.input_path(entity)
                if self.graph.generator_of(entity.id) is not None:
                    self.remade[entity.id] = str(located)
                for location in [entity.location, *entity.attributes.get("also_at", [])]:
                    replace[str(location)] = located
        self.out_dir.mkdir(parents=True, exist_ok=True)
        outputs: dict[str, Path] = {}
        for rel in act.generated:
            entity = self.graph.entities.get(rel.entity_id)
            if entity is not None and entity.location:
                name = Path(entity.location).name
                if name in ("", ".", ".."):
                    raise ProvenanceError(
                        f"refused to redo {act.name!r}: a product is recorded without a file "
                        f"name ({entity.location!r}); nothing was run"
                    )
                new = self.out_dir / name
                outputs[entity.location] = new
                self.new_paths[entity.id] = new
                self.revisions[str(new.resolve())] = entity.id
        models = step.allowed_models()
        kwargs = {
            k: _substitute(_decoded(act, k, v, models), {**replace, **outputs})
            for k, v in act.parameters.items()
        }
        _check_files(act, step, kwargs, set(replace.values()), set(outputs.values()))
        target: Any = step.function
        if step.is_method:
            # A configuration names files too (a map-dataset's exclusion mask): the redo's
            # own re-made or located copies, never the files at the recorded locations.
            config = (
                _decoded(act, "configuration", _substitute(act.config, replace), models)
                if act.config
                else None
            )
            owner = step.owner()
            try:
                instance = owner(config) if config is not None else owner()
            except ProvenanceError:
                raise
            except Exception as exc:
                raise ProvenanceError(
                    f"cannot redo {act.name!r}: its recorded configuration is not valid "
                    f"for this ctanb ({exc})"
                ) from None
            target = getattr(instance, step.function.__name__)
        else:
            target = _recorded_wrapper(step)
        try:
            with redoing(self.originals, self.revisions):
                target(**kwargs)
        except ProvenanceError:
            raise
        except TypeError as exc:
            raise ProvenanceError(
                f"cannot redo {act.name!r}: its recorded parameters do not fit step "
                f"{act.name} {act.version} ({exc})"
            ) from None
        except Exception as exc:
            raise ProvenanceError(f"redo of activity {act.name!r} failed: {exc}") from None
        self.rerun.append(f"{act.name} {act.version}".strip())


def _decoded(act: ActivityRecord, name: str, value: Any, models: dict[str, type]) -> Any:
    try:
        return decode_value(value, models)
    except NotEncodable as exc:
        raise ProvenanceError(f"refused to redo {act.name!r}: its {name} names a {exc}") from None
    except (TypeError, ValueError, KeyError, IndexError) as exc:
        raise ProvenanceError(
            f"refused to redo {act.name!r}: its recorded parameter {name!r} is damaged ({exc})"
        ) from None


def _check_files(
    act: ActivityRecord, step: Any, kwargs: dict[str, Any], inputs: set[Path], outputs: set[Path]
) -> None:
    """The step's file arguments must be the record's located inputs and its products in
    the redo folder: a record cannot make redo read or write any other file."""
    for names, allowed, what in (
        (step.outputs, outputs, "write"),
        (step.inputs, inputs, "read"),
    ):
        for name in names:
            value = kwargs.get(name)
            items = value if isinstance(value, list | tuple) else [value]
            for item in items:
                if item is None or (what == "read" and item == ""):
                    continue
                if Path(str(item)) not in allowed:
                    raise ProvenanceError(
                        f"refused to redo {act.name!r}: its parameter {name!r} would {what} "
                        f"{item}, which is not one of the files its record "
                        f"{'generated' if what == 'write' else 'used'}; nothing was run"
                    )


def _recorded_wrapper(step: Any) -> Any:
    """The recorded (decorated) function of a function step, from its own module."""
    import sys

    return getattr(sys.modules[step.function.__module__], step.function.__name__)


def _substitute(value: Any, mapping: dict[str, Path]) -> Any:
    if isinstance(value, dict):
        return {key: _substitute(item, mapping) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_substitute(item, mapping) for item in value)
    if isinstance(value, str | Path):
        try:
            key = str(Path(value).resolve()) if str(value) else ""
        except (OSError, ValueError):  # not a path (a crafted record): left as it is
            return value
        if key in mapping:
            return type(value)(mapping[key]) if isinstance(value, Path) else str(mapping[key])
    return value


def redo(product: str | Path, out_dir: str | Path, *, archive: Any = None) -> RedoReport:
    """Re-execute the recorded chain of *product* into *out_dir* and compare the result.

    Parameters
    ----------
    product : path
        A FITS product with embedded provenance.
    out_dir : path
        Folder for the new products (created).
    archive : ctanb.Archive or str, optional
        Where to fetch inputs found nowhere on this machine, by publisher DID
        (default: ``CTANB_TAP_URL`` when set).

    Raises
    ------
    ProvenanceError
        The product has no readable provenance, names a step that is not one of
        ctanb's registered steps (refused before anything runs), or an input cannot
        be found with its recorded content.

    Returns
    -------
    RedoReport
        The new product and how it compares with *product* (``report.ok``).
    """
    from .verify import integrity, product_entity

    if isinstance(archive, str) and not archive.startswith(("http://", "https://")):
        raise ProvenanceError(f"--archive must be an http(s) URL of a TAP service, not {archive!r}")
    path = Path(product)
    graph, entity = product_entity(path)
    producer = graph.generator_of(entity.id)
    if producer is None:
        raise ProvenanceError(f"product {path}: its provenance has no generating activity")
    found = integrity(path, entity)
    if found.problems:
        raise ProvenanceError(f"refused to redo {path.name}: {found.problems[0]}; nothing was run")
    # Inputs the analyst wrote (models, configurations) are kept with the published
    # product: the locator looks at the product's own DID too (issue 14).
    from ..archive.publish import product_did

    published = product_did(entity.id, entity.data_sha256 or "")
    replayer = _Replayer(graph, Path(out_dir), InputLocator(archive, products=[published]))
    replayer.check(producer)
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
        input_sources=dict(replayer.locator.sources),
        remade=dict(replayer.remade),
        notes=[f"record not authenticated: {found.unauthenticated}"]
        if found.unauthenticated
        else [f"record signed by {found.signed_by}"],
    )
    report.differences, report.identical = compare_fits(path, new_path, rtol=rtol)
    report.equal = not report.differences
    return report


def compare_fits(old: str | Path, new: str | Path, *, rtol: float = 0.0) -> tuple[list[str], bool]:
    """Differences between two FITS products (data within *rtol*, headers ignoring dates and provenance).

    Parameters
    ----------
    old, new : str or Path
        The two products.
    rtol : float
        Relative tolerance of the data comparison.

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
