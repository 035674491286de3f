"""Verify a product: its whole content, its own record, and the inputs still on disk.

What ``verify`` checks, and why each check catches what it does:

- **Content**: the sha256 of every HDU's header and data except the PROVENANCE HDU
  (:func:`~ctanb.provenance._hashing.fits_product_digest`; only the cards ``CHECKSUM``
  and ``DATASUM``, which a copy may rewrite, and blank cards are left out) against the
  hash the record holds. A changed unit, WCS key or data value fails, naming the HDU.
- **The record itself**: the product's signature (:mod:`.signing`) covers its entity
  id, content hash and the whole PROVENANCE document, so a record edited by anyone
  without the signer's private key fails; a record is accepted only when signed by a
  trusted key or identical to the provenance store's copy.
- **The store**, when it knows the product: its content hash and its generating
  activity (parameters, configuration, inputs) must be the ones the file carries, which
  catches a forged file whose embedded record was rewritten to match altered data.
- **Inputs**: each input file found at its recorded location must have its recorded
  sha256 (inputs elsewhere are listed as not checked; ``redo`` finds them by content).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._errors import ProvenanceError
from ._hashing import PRODUCT_HASH, fits_product_sha256, sha256_file
from .records import EntityRecord, ProvenanceGraph

__all__ = ["VerifyReport", "product_entity", "verify"]


@dataclass
class VerifyReport:
    """What :func:`verify` found; ``ok`` is True when nothing is wrong."""

    product: str
    problems: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the product, its record and its inputs on disk are as recorded."""
        return not self.problems

    def __str__(self) -> str:
        head = (
            f"{self.product}: {'OK' if self.ok else 'FAILED'} ({len(self.checked)} files checked)"
        )
        return "\n".join(
            [head, *(f"  - {p}" for p in self.problems), *(f"    {n}" for n in self.notes)]
        )


def product_entity(path: str | Path) -> tuple[ProvenanceGraph, EntityRecord]:
    """A product's embedded provenance and its own entity in it.

    Raises
    ------
    ProvenanceError
        The file is missing, is not FITS, carries no provenance, or its provenance is
        truncated or does not describe it (one line naming the problem).
    """
    from .fits import product_keywords, read_provenance

    path = Path(path)
    if not path.is_file():
        raise ProvenanceError(f"product {path} does not exist")
    try:
        graph = read_provenance(path)
    except ProvenanceError:
        raise
    except Exception:
        raise ProvenanceError(
            f"the provenance of {path} cannot be read (truncated or damaged)"
        ) from None
    entity_id = product_keywords(path).get("PROV_ID")
    if entity_id is None or entity_id not in graph.entities:
        raise ProvenanceError(
            f"product {path}: its header names no entity of its provenance (PROV_ID)"
        )
    return graph, graph.entities[entity_id]


def _content_problems(path: Path, entity: EntityRecord) -> list[str]:
    if entity.attributes.get("hash_method") != PRODUCT_HASH:
        return [
            "made by an older ctanb whose record does not cover headers: redo it to get "
            "a product that can be verified"
        ]
    digest = fits_product_sha256(path)
    if digest.sha256 == entity.data_sha256:
        return []
    recorded = [tuple(part) for part in entity.attributes.get("hdus") or []]
    now = list(digest.hdus)
    problems = []
    for index in range(max(len(recorded), len(now))):
        old = recorded[index] if index < len(recorded) else None
        new = now[index] if index < len(now) else None
        if old is None or new is None:
            name = (old or new)[0] or f"#{index}"
            problems.append(f"HDU {name} {'added' if old is None else 'removed'}")
            continue
        name = new[0] or f"#{index}"
        if old[0] != new[0]:
            problems.append(f"HDU #{index} renamed from {old[0]!r} to {new[0]!r}")
        if old[1] != new[1]:
            problems.append(f"HDU {name} header changed (a keyword, unit or WCS value)")
        if old[2] != new[2]:
            problems.append(f"HDU {name} data changed")
    if not problems:
        problems.append("content differs from the hash its record holds")
    return [f"product altered: {p}" for p in problems]


def _record_problems(path: Path, entity: EntityRecord) -> tuple[list[str], bool]:
    """(problems, signed and trusted) of the product's signature."""
    from .fits import read_signature
    from .signing import check_signature

    signature, document = read_signature(path)
    if signature is None:
        return [], False
    problem = check_signature(signature, entity.id, entity.data_sha256 or "", document)
    if problem is None:
        return [], True
    if "do not trust" in problem:
        return [f"record not authenticated: {problem}"], False
    return [f"provenance record altered: {problem}"], False


def _store_problems(
    store: Any, path: Path, graph: ProvenanceGraph, entity: EntityRecord
) -> tuple[list[str], bool]:
    """(problems, store knows and confirms the record) against a provenance store."""
    try:
        known = store.get_entity(entity.id)
    except ProvenanceError:
        return [], False
    problems = []
    if known.data_sha256 and known.data_sha256 != entity.data_sha256:
        problems.append("its record's content hash is not the store's (record rewritten)")
    if known.sha256 and sha256_file(path) != known.sha256:
        problems.append("the file is not the one the store recorded")
    producer = graph.generator_of(entity.id)
    if producer is not None:
        try:
            stored = store.get_activity(producer.id)
        except ProvenanceError:
            stored = None
        if stored is None:
            problems.append(f"the store does not know its activity {producer.id}")
        else:
            for name in ("name", "version", "parameters", "config"):
                if getattr(stored, name) != getattr(producer, name):
                    problems.append(f"activity {producer.name!r}: {name} differs from the store's")
            if {r.entity_id for r in stored.used} != {r.entity_id for r in producer.used}:
                problems.append(f"activity {producer.name!r}: inputs differ from the store's")
    return [f"provenance record forged: {p}" for p in problems], not problems


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
    """Check a product, its own provenance record and its inputs on disk.

    Parameters
    ----------
    product : path
        A FITS product with embedded provenance.
    store : ProvenanceStore, optional
        Also compare the product and its record with this store's (catches a record
        rewritten to match altered data, even unsigned).

    Returns
    -------
    VerifyReport
        ``ok`` when nothing is wrong; ``problems`` says what changed, in words.

    Raises
    ------
    ProvenanceError
        The product has no readable provenance.
    """
    path = Path(product)
    graph, entity = product_entity(path)
    report = VerifyReport(str(path))
    report.checked.append(str(path))
    report.problems += _content_problems(path, entity)
    problems, signed = _record_problems(path, entity)
    report.problems += problems
    confirmed = False
    if store is not None:
        problems, confirmed = _store_problems(store, path, graph, entity)
        report.problems += problems
    if not signed and not confirmed and not report.problems:
        report.problems.append(
            "record not authenticated: the product is not signed and no provenance store "
            "confirms its record (give --store, or ask its maker for a signed copy)"
        )
    for source in _source_entities(graph, entity.id):
        location = Path(source.location or "")
        if not location.is_file():
            report.notes.append(f"input {location.name} not on this machine (not checked)")
            continue
        report.checked.append(str(location))
        if source.sha256 and sha256_file(location) != source.sha256:
            report.problems.append(
                f"changed input: sha256 of {location} differs from the recorded one"
            )
    return report
