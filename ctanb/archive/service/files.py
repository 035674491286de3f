"""Files behind datasets: ``/files/<quoted did>`` (#this) and ``/files/<quoted did>/<name>``.

``<name>`` is a DataLink semantics without ``#`` (``calibration``, ``progenitor``,
``provenance``) or a 0-based index into the dataset's file list. Each request
is checked against the access policy *before* anything about the bytes is
sent (GET, HEAD and Range alike): proprietary data answer 403 with the reason
and the release date. Responses stream from disk and carry ``ETag`` (sha256),
``Digest: sha-256=<base64>``, ``Accept-Ranges`` and ``Content-Length``.
"""

from __future__ import annotations

import base64
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, Response

from ..._hashing import sha256_file
from ..._settings import data_dir
from ..db import FILES_TABLE
from .params import ServiceFault
from .state import ArchiveState, bearer_token

__all__ = ["DatasetFile", "dataset_files", "file_url", "files_endpoint"]

#: ``bytes=START-END[, ...]`` with START or END given (RFC 9110 byte ranges).
_BYTE_RANGES = re.compile(r"\s*bytes\s*=\s*(\d+-\d*|-\d+)(\s*,\s*(\d+-\d*|-\d+))*\s*", re.I)


@dataclass(frozen=True)
class DatasetFile:
    """One row of ``ctanb.files`` with its position in the dataset's list."""

    index: int
    semantics: str
    path: str
    content_type: str
    size: int
    sha256: str
    description: str


def dataset_files(state: ArchiveState, did: str) -> list[DatasetFile]:
    """The files of dataset *did*, in ingestion order."""
    rows = (
        state.connection()
        .execute(
            "SELECT semantics, path, content_type, size, sha256, description "
            f'FROM "{FILES_TABLE}" WHERE did = ? ORDER BY rowid',
            (did,),
        )
        .fetchall()
    )
    return [
        DatasetFile(i, s, p, ct or "application/fits", sz or 0, sh or "", d or "")
        for i, (s, p, ct, sz, sh, d) in enumerate(rows)
    ]


def file_url(base: str, did: str, f: DatasetFile | None, files: list[DatasetFile]) -> str:
    """The public URL of file *f* of *did* (``None``: the dataset itself, ``#this``)."""
    root = f"{base.rstrip('/')}/files/{quote(did, safe='')}"
    this = _pick(files, "")
    # One file, one URL: IRFs bundled in the event file (H.E.S.S., MAGIC) link to the
    # event file itself, so clients see they are the same bytes and fetch them once.
    if f is None or f is this or (this is not None and f.path == this.path):
        return root
    name = f.semantics.lstrip("#")
    same = [g for g in files if g.semantics == f.semantics]
    return f"{root}/{quote(name) if len(same) == 1 else f.index}"


def _pick(files: list[DatasetFile], name: str) -> DatasetFile | None:
    if name == "":
        this = [f for f in files if f.semantics == "#this"]
        return this[0] if this else None
    if name.isascii() and name.isdigit():  # str.isdigit() is also true for '²' or '٣'
        i = int(name)
        return files[i] if i < len(files) else None
    wanted = "#" + name.lstrip("#")
    match = [f for f in files if f.semantics == wanted]
    return match[0] if match else None


def _resolve(path: str) -> Path:
    p = Path(path)
    return p if p.is_absolute() else data_dir() / p


def _locate(state: ArchiveState, raw_tail: str, token: str | None) -> tuple[Path, DatasetFile]:
    """Find the file for the raw (still percent-encoded) path below ``/files/``."""
    parts = raw_tail.split("/")
    if len(parts) > 2 or not parts[0]:
        raise ServiceFault("file URLs are /files/<quoted dataset id>[/<semantics or index>]", 404)
    did = unquote(parts[0])
    name = unquote(parts[1]) if len(parts) == 2 else ""
    try:
        dataset = state.dataset(did)
        if dataset is None:
            raise ServiceFault(f"no dataset {did!r} in this archive", 404)
        reason = state.refusal(did, dataset, token)
        if reason is not None:
            raise ServiceFault(reason, 403, plain=True)
        files = dataset_files(state, did)
    except sqlite3.DatabaseError as exc:
        raise ServiceFault(f"the archive database cannot be read: {exc}", 503) from None
    f = _pick(files, name)
    if f is None:
        what = f"file {name!r}" if name else "primary file (#this)"
        raise ServiceFault(f"dataset {did!r} has no {what}", 404)
    path = _resolve(f.path)
    if not path.is_file():
        raise ServiceFault(f"the file of {did!r} ({f.semantics}) is missing on the server", 404)
    return path, f


async def files_endpoint(request: Request) -> Response:
    """GET/HEAD a dataset file, with Range support, after the rights check."""
    state: ArchiveState = request.app.state.archive
    raw = request.scope.get("raw_path") or request.url.path.encode()
    tail = raw.decode("latin-1").split("?", 1)[0]
    tail = tail[tail.index("/files/") + len("/files/") :] if "/files/" in tail else ""
    token = bearer_token(request.headers)
    path, f = await run_in_threadpool(_locate, state, tail, token)
    asked = request.headers.get("range")
    if asked is not None and not _BYTE_RANGES.fullmatch(asked):
        raise ServiceFault(
            f"the Range header {asked!r} is not understood: ask for bytes as "
            "'bytes=START-END' (e.g. bytes=0-1023) or leave it out for the whole file",
            400,
            plain=True,
        )
    sha = f.sha256 or await run_in_threadpool(sha256_file, path)
    digest = base64.b64encode(bytes.fromhex(sha)).decode("ascii")
    headers = {
        "ETag": f'"{sha}"',
        "Digest": f"sha-256={digest}",
        "Cache-Control": "private, no-transform",
    }
    inm = request.headers.get("if-none-match")
    if inm and f'"{sha}"' in [t.strip() for t in inm.split(",")]:
        return Response(status_code=304, headers=headers)
    return FileResponse(
        path,
        media_type=f.content_type,
        headers=headers,
        filename=path.name,
        content_disposition_type="attachment",
    )
