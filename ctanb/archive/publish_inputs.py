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
      (``CTANB_DATA/catalogs``, e.g. the HGPS catalog), matched by file name and sha256;
  ``user``
      a small models or configuration file the analyst wrote (e.g. ``models_start.yaml``
      of the 3D fit), sent with the product and matched by sha256 (:func:`check_user_input`:
      a YAML file of at most :data:`MAX_USER_INPUT_BYTES`, parsed as plain data, never
      executed). The archive stores it with the product (DataLink ``#progenitor`` of the
      product, with its sha256), so that ``redo`` by anyone finds it by the product's DID.

  A refusal names every input that is none of these, not only the first.
- :func:`public_graph`: the copy of the record the archive serves (ProvTAP, ProvSAP):
  no local paths (an archive dataset's location is its archive access URL, written
  ``$BASE/files/<DID>`` like ``access_url`` and served with the archive's base URL; any
  other file is named by its file name) and the person who ran it is the publishing
  token's identity, not the login name on the publisher's machine. The product file
  keeps its own signed record, byte for byte.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import re
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..datamodel import OBSCORE_TABLE
from .db import ACCESS_URL_BASE, FILES_TABLE, q

__all__ = [
    "MAX_USER_INPUT_BYTES",
    "USER_INPUT_SUFFIXES",
    "Inputs",
    "UserInput",
    "check_steps",
    "check_user_input",
    "classify_inputs",
    "public_graph",
    "remove_user_inputs",
    "user_input_files",
    "write_user_inputs",
]

#: Largest models or configuration file accepted with a product (bytes): models files of
#: gammapy are a few kB; a megabyte is a record of thousands of sources.
MAX_USER_INPUT_BYTES = 1024 * 1024
#: File name endings of the user-supplied inputs the archive accepts (YAML data).
USER_INPUT_SUFFIXES = (".yaml", ".yml")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,99}$")


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


@dataclasses.dataclass(frozen=True)
class UserInput:
    """A models or configuration file sent with the product, checked."""

    name: str
    sha256: str
    data: bytes


def _size(nbytes: int) -> str:
    return f"{nbytes / 1024 / 1024:.1f} MB" if nbytes >= 100_000 else f"{nbytes} bytes"


def check_user_input(name: str, path: Path) -> tuple[bytes | None, str | None]:
    """Read a user-supplied input and check it is a models or configuration file.

    Parameters
    ----------
    name : str
        Its file name (as the product's record names it).
    path : Path
        The bytes sent with the product.

    Returns
    -------
    (bytes or None, str or None)
        Its content when accepted, else the refusal in words (naming the file).
    """
    import yaml

    if not name.lower().endswith(USER_INPUT_SUFFIXES):
        return None, (
            f"input {name} is not a kind of file the archive keeps with a product: only "
            "models or configuration files in YAML (.yaml, .yml) are accepted"
        )
    size = path.stat().st_size
    if size > MAX_USER_INPUT_BYTES:
        return None, (
            f"input {name} is too big for a models or configuration file ({_size(size)}; "
            f"at most {_size(MAX_USER_INPUT_BYTES)})"
        )
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
        # safe_load builds plain data only (no tags naming code); never yaml.load.
        content = yaml.safe_load(text)
    except UnicodeDecodeError:
        return None, f"input {name} is not a YAML text file (it is not UTF-8 text)"
    except yaml.constructor.ConstructorError as exc:
        line = f" (line {exc.problem_mark.line + 1})" if exc.problem_mark else ""
        found = re.search(r"'(tag:yaml\.org,2002:)?([^']+)'", exc.problem or "")
        tag = f" ({'!!' if found.group(1) else ''}{found.group(2)})" if found else ""
        return None, (
            f"input {name} is not plain YAML data{line}: it names a type{tag} that the "
            "archive does not accept (models and configurations are mappings, lists, "
            "numbers and text)"
        )
    except (yaml.YAMLError, RecursionError) as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark is not None else ""
        return None, f"input {name} is not valid YAML{line}"
    if not isinstance(content, dict) or not content:
        return None, (
            f"input {name} is not a models or configuration file: its YAML is not a mapping "
            "of names to values (e.g. gammapy's 'components: [...]')"
        )
    return data, None


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
    #: models or configuration files sent with the product (stored with it)
    user: list[UserInput] = dataclasses.field(default_factory=list)


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


def _sent_by_sha(sent: dict[str, Path]) -> dict[str, Path]:
    out = {}
    for path in sent.values():
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            # at most one block more than accepted: a bigger file is refused by its size
            digest.update(fh.read(MAX_USER_INPUT_BYTES + 1))
        out[digest.hexdigest()] = path
    return out


def _user_name(leaf: Any, name: str) -> str:
    return name if _SAFE_NAME.match(name) else f"input-{(leaf.sha256 or '')[:12]}.yaml"


def classify_inputs(
    conn: sqlite3.Connection, leaves: list[Any], *, recorded_did: Any, dataset_sha: Any,
    products: str, sent: dict[str, Path] | None = None,
) -> Inputs:  # fmt: skip
    """Classify *leaves* (see the module docstring); problems are collected, not raised.

    *sent* maps file names to the files sent with the product (user-supplied inputs);
    a leaf is one of them when its sha256 is theirs.
    """
    out = Inputs()
    by_sha = _sent_by_sha(sent or {})
    # A file sent too big is refused by the name it was sent under (not hashed whole).
    too_big = {n for n, p in (sent or {}).items() if p.stat().st_size > MAX_USER_INPUT_BYTES}
    out.problems += [check_user_input(n, sent[n])[1] or n for n in sorted(too_big) if sent]
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
        elif name in too_big:
            continue
        elif leaf.sha256 and leaf.sha256 in by_sha:
            data, problem = check_user_input(name, by_sha[leaf.sha256])
            if problem:
                out.problems.append(problem)
            elif data is not None and all(u.sha256 != leaf.sha256 for u in out.user):
                out.user.append(UserInput(_user_name(leaf, name), leaf.sha256, data))
        elif name in (sent or {}):
            # Sent under its recorded name, with other bytes: say so, not "not sent".
            out.problems.append(
                f"input {name} was sent but its sha256 differs from the one recorded in the "
                "product's provenance (altered after the analysis?)"
            )
        elif name.lower().endswith(USER_INPUT_SUFFIXES):
            out.problems.append(
                f"input {name} is a models or configuration file that was not sent with the "
                "product (publish it from the machine where it is, or keep it next to the "
                "product's inputs)"
            )
        else:
            out.problems.append(
                f"input {name} is neither a dataset of this archive, nor a calibration file "
                "of one, nor reference data shipped with ctanb or in the shared catalogs, "
                "nor a models or configuration file in YAML"
            )
    if not out.datasets and not out.problems:
        out.problems.append("its lineage names no DL3 input of this archive")
    return out


def user_input_files(folder: Path, user: list[UserInput]) -> list[Any]:
    """The file rows (DataLink ``#progenitor`` of the product) of its user-supplied inputs.

    Each is kept once by content, ``<folder>/<sha256>/<name>``, so the products that used
    the same models file share it and its name is the one the analyst gave it.
    """
    from .db import FileRecord

    return [
        FileRecord("#progenitor", str(folder / u.sha256 / u.name), "application/yaml",
                   len(u.data), u.sha256,
                   f"{u.name}: models or configuration file the analysis used (user-supplied "
                   f"input, sha256 {u.sha256[:16]}...)")
        for u in user
    ]  # fmt: skip


def write_user_inputs(user: list[UserInput], rows: list[Any], created: list[Path]) -> None:
    """Write the files of :func:`user_input_files` not there yet, adding each to *created*
    (the caller removes them if the publication fails). Each is complete or absent."""
    for u, row in zip(user, rows, strict=True):
        final = Path(row.path)
        if final.is_file():
            continue
        final.parent.mkdir(parents=True, exist_ok=True)
        part = final.with_name(f".{final.name}.part-{os.getpid()}")
        with part.open("wb") as fh:
            fh.write(u.data)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.replace(part, final)
        finally:
            part.unlink(missing_ok=True)
        created.append(final)


def remove_user_inputs(created: list[Path]) -> None:
    """Remove the files :func:`write_user_inputs` wrote (and their emptied folders)."""
    for path in created:
        path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # still holds another file: kept
            path.parent.rmdir()


# -- checks publish_file makes on the inputs (moved from publish.py) ---------------------------
def _refused(condition: str, message: str, status: int = 400) -> Exception:
    from .publish import PublishRefused

    return PublishRefused(condition, message, status)


def _dl3_leaves(graph: Any, product_id: str) -> list[Any]:
    """The input files of the lineage that no recorded activity generated."""
    from ..provenance.verify import _source_entities

    seen: dict[str, Any] = {}
    for entity in _source_entities(graph, product_id):
        if graph.generator_of(entity.id) is None:
            seen.setdefault(entity.id, entity)
    return list(seen.values())


def _file_sha256(conn: sqlite3.Connection, did: str) -> list[str]:
    from .._hashing import sha256_file
    from .service.files import _resolve

    out = []
    rows = conn.execute(
        f"SELECT path, sha256 FROM {q(FILES_TABLE)} WHERE did = ? AND semantics = '#this'", (did,)
    ).fetchall()
    for path, sha in rows:
        if not sha:
            try:
                sha = sha256_file(_resolve(path))
            except OSError:
                continue
        out.append(sha)
    return out


def _check_calibration(policy: Any, found: Inputs, token: str | None) -> None:
    """A calibration file is usable when one dataset holding it is readable by *token*."""
    groups = policy.groups_for_token(token) if token else set()
    for name, rows in found.calibration.items():
        if not any(not r.get("_access_group") or policy.is_released(r.get("obs_release_date"))
                   or r.get("_access_group") in groups for r in rows):  # fmt: skip
            raise _refused(
                "rights", f"input {name} is a calibration file of proprietary datasets only, "
                "and the token sent belongs to none of their groups", status=403)  # fmt: skip


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
