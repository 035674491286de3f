"""What a product's record may name before the archive publishes it, and what it publishes.

- :func:`check_steps`: every activity of the lineage is one of ctanb's registered steps
  (the rule ``redo`` applies, :mod:`ctanb.provenance.steps`).
- :func:`classify_inputs`: every input file of the lineage that no recorded activity
  generated is one of

  ``dataset``
      a DL3 dataset of this archive (publisher DID and sha256 of its ``#this`` file):
      a progenitor, whose rights the publisher must hold;
  ``calibration``
      a calibration file of a dataset of this archive (e.g. CTA IRFs fetched through
      DataLink ``#calibration``), matched by sha256 in the archive's file table: not a
      progenitor; accepted when one of the datasets holding it is readable by the token;
  ``reference``
      reference data shipped with ctanb or in the shared catalogs folder
      (``CTANB_DATA/catalogs``, e.g. the HGPS catalog), matched by file name and sha256.

  A refusal names every input that is none of these, not only the first.
- :func:`public_graph`: the copy of the record the archive serves (ProvTAP, ProvSAP):
  no local paths (an archive dataset's location is its archive access URL, written
  ``$BASE/files/<DID>`` like ``access_url`` and served with the archive's base URL; any
  other file is named by its file name) and the person who ran it is the publishing
  token's identity, not the login name on the publisher's machine. The product file
  keeps its own signed record, byte for byte.
"""

from __future__ import annotations

import dataclasses
import os
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..datamodel import OBSCORE_TABLE
from .db import ACCESS_URL_BASE, FILES_TABLE, q

__all__ = ["Inputs", "check_steps", "classify_inputs", "public_graph"]


def check_steps(graph: Any, product_id: str) -> list[str]:
    """The activities of the lineage that are not registered ctanb steps (described)."""
    from ..provenance.steps import registered_steps

    known = registered_steps()
    bad, todo, seen = [], [product_id], set()
    while todo:
        act = graph.generator_of(todo.pop())
        if act is None or act.id in seen:
            continue
        seen.add(act.id)
        if (act.name, str(act.version)) not in known:
            bad.append(f"{act.name!r} version {act.version!r} ({act.id})")
        todo += [rel.entity_id for rel in act.used]
    return sorted(bad)


@dataclasses.dataclass
class Inputs:
    """The classified input files of a lineage."""

    datasets: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    #: calibration file name -> ObsCore rows of the datasets holding it
    calibration: dict[str, list[dict[str, Any]]] = dataclasses.field(default_factory=dict)
    reference: list[str] = dataclasses.field(default_factory=list)
    problems: list[str] = dataclasses.field(default_factory=list)
    #: entity id -> DID of the archive dataset it is (for :func:`public_graph`)
    dids: dict[str, str] = dataclasses.field(default_factory=dict)


def _file_sha(path: str) -> str | None:
    from .._hashing import sha256_file
    from .service.files import _resolve

    try:
        return sha256_file(_resolve(path))
    except OSError:
        return None


def _holders(conn: sqlite3.Connection, leaf: Any, name: str) -> list[str]:
    """DIDs of the datasets whose non-#this files have *leaf*'s sha256."""
    found = []
    rows = conn.execute(
        f"SELECT did, path, sha256 FROM {q(FILES_TABLE)} WHERE semantics != '#this' AND "
        "(sha256 = ? OR (sha256 IS NULL AND (path = ? OR path LIKE ?)))",
        (leaf.sha256, name, f"%/{name}"),
    ).fetchall()
    for did, path, sha in rows:
        if (sha or _file_sha(path)) == leaf.sha256:
            found.append(did)
    return found


def _reference_roots() -> list[Path]:
    from .._settings import data_dir

    roots = [Path(__file__).resolve().parents[1]]  # files shipped with ctanb
    try:
        roots.append(Path(data_dir()) / "catalogs")
    except Exception:  # no data folder configured: only ctanb's own files
        pass
    return [r for r in roots if r.is_dir()]


def _is_reference(leaf: Any, name: str) -> bool:
    from .._hashing import sha256_file

    if not name or not leaf.sha256:
        return False
    for root in _reference_roots():
        for folder, _dirs, files in os.walk(root):
            if name in files and sha256_file(Path(folder) / name) == leaf.sha256:
                return True
    return False


def _row(conn: sqlite3.Connection, did: str) -> dict[str, Any] | None:
    cur = conn.execute(
        f'SELECT *, "_access_group" FROM {q(OBSCORE_TABLE)} WHERE obs_publisher_did = ?', (did,)
    )
    row = cur.fetchone()
    return None if row is None else dict(zip([d[0] for d in cur.description], row, strict=True))


def classify_inputs(
    conn: sqlite3.Connection, leaves: list[Any], *, recorded_did: Any, dataset_sha: Any,
    products: str,
) -> Inputs:  # fmt: skip
    """Classify *leaves* (see the module docstring); problems are collected, not raised."""
    out = Inputs()
    for leaf in leaves:
        name = Path(leaf.location or leaf.id).name
        did = recorded_did(leaf)
        if not did:
            found = conn.execute(
                f"SELECT did FROM {q(FILES_TABLE)} WHERE sha256 = ? AND semantics = '#this'",
                (leaf.sha256,),
            ).fetchone()
            did = found[0] if found else None
        if did:
            row = _row(conn, did)
            if row is None or row.get("obs_collection") == products:
                out.problems.append(f"input {name} ({did}) is not a dataset of this archive")
            elif leaf.sha256 not in dataset_sha(conn, did):
                out.problems.append(
                    f"input {name} is not the archive's dataset {did}: its sha256 differs "
                    "(altered or another file)"
                )
            else:
                out.datasets.append(row)
                out.dids[leaf.id] = did
            continue
        holders = _holders(conn, leaf, name) if leaf.sha256 else []
        if holders:
            out.calibration[name] = [r for r in (_row(conn, d) for d in holders) if r]
        elif _is_reference(leaf, name):
            out.reference.append(name)
        else:
            out.problems.append(
                f"input {name} is neither a dataset of this archive, nor a calibration file "
                "of one, nor reference data shipped with ctanb or in the shared catalogs"
            )
    if not out.datasets and not out.problems:
        out.problems.append("its lineage names no DL3 input of this archive")
    return out


def public_graph(graph: Any, dids: dict[str, str], identity: str | None) -> Any:
    """The record the archive serves: archive-relative locations, the token's identity."""
    from ..provenance._agents import AgentRecord
    from ..provenance.records import ProvenanceGraph, safe_local

    moved: dict[str, str] = {}
    out = ProvenanceGraph()
    for eid, ent in graph.entities.items():
        loc = ent.location
        if loc:
            new = (f"{ACCESS_URL_BASE}files/{quote(dids[eid], safe='')}" if eid in dids
                   else Path(loc).name)  # fmt: skip
            moved[loc] = new
            ent = dataclasses.replace(ent, location=new)
        out.entities[eid] = ent

    def clean(value: Any) -> Any:
        if isinstance(value, str):
            return moved.get(value, value)
        if isinstance(value, list):
            return [clean(v) for v in value]
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        return value

    for aid, act in graph.activities.items():
        agents = [
            AgentRecord(f"ctanb:agent-person-{safe_local(identity)}", "person", identity)
            if a.kind == "person" and identity
            else a
            for a in act.agents
        ]
        out.activities[aid] = dataclasses.replace(
            act, agents=agents, parameters=clean(act.parameters), config=clean(act.config)
        )
    return out
