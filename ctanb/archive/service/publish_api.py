"""``POST /publish``: a product goes into the archive (checks in :mod:`ctanb.archive.publish`).

The body is the product file (``application/fits``); curation fields come as the
JSON query parameter ``CURATION``; the publisher's token in ``Authorization``.
Answers ``201`` (published) or ``200`` (already published: same DID) with a JSON
document ``{"did", "created", "data_rights", "release_date", "access_url"}``; a
refusal answers ``400``/``401``/``403`` with ``{"error", "condition"}`` naming the
check that failed, and leaves nothing behind.

A product whose analysis used models or configuration files the analyst wrote (e.g. the
3D fit's ``models_start.yaml``) is sent as an uncompressed tar (``application/x-tar``):
``product.fits`` and ``inputs/<file name>`` for each such file; the archive checks and
keeps them with the product (:mod:`ctanb.archive.publish_inputs`).
"""

from __future__ import annotations

import json
import re
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..publish import PublishRefused, publish_file
from .state import ArchiveState, bearer_token

__all__ = ["MAX_PRODUCT_BYTES", "publish_endpoint"]

#: Largest product accepted (bytes).
MAX_PRODUCT_BYTES = 512 * 1024 * 1024
#: Most files sent with one product.
MAX_SENT_INPUTS = 32
_SENT_NAME = re.compile(r"^inputs/([A-Za-z0-9_][A-Za-z0-9_.+-]{0,99})$")


def _unpack(body: Path, folder: Path) -> tuple[Path, dict[str, Path]]:
    """The product and the files sent with it, from an uncompressed tar *body*.

    Only regular members named ``product.fits`` and ``inputs/<file name>`` are accepted;
    their bytes are copied out by the archive under names it chooses (never a member's
    path), so a crafted archive cannot write anywhere.
    """
    product, sent = None, {}
    try:
        with tarfile.open(body, mode="r:") as tar:
            for member in tar:
                found = _SENT_NAME.match(member.name)
                if not member.isfile() or (member.name != "product.fits" and not found):
                    raise PublishRefused(
                        "inputs", f"the upload holds {member.name!r}: send product.fits and "
                        "inputs/<file name> only (regular files)")  # fmt: skip
                if found and (found.group(1) in sent or len(sent) >= MAX_SENT_INPUTS):
                    raise PublishRefused("inputs", f"send each input once, at most "
                                         f"{MAX_SENT_INPUTS} ({found.group(1)})")  # fmt: skip
                target = folder / (f"sent-{len(sent)}" if found else "unpacked-product.fits")
                with tar.extractfile(member) as src, target.open("wb") as out:  # type: ignore[union-attr]
                    shutil.copyfileobj(src, out)
                if found:
                    sent[found.group(1)] = target
                else:
                    product = target
    except tarfile.TarError:
        raise PublishRefused("provenance", "the upload is not a product nor a tar of one "
                             "with its inputs") from None  # fmt: skip
    if product is None:
        raise PublishRefused("provenance", "the upload holds no product.fits")
    return product, sent


def _refused(condition: str, message: str, status: int = 400) -> Response:
    return JSONResponse({"error": message, "condition": condition}, status_code=status)


async def publish_endpoint(request: Request) -> Response:
    """Receive one product, check it, publish it in one transaction."""
    state: ArchiveState = request.app.state.archive
    raw = request.query_params.get("CURATION") or "{}"
    try:
        curation: Any = json.loads(raw)
        if not isinstance(curation, dict):
            raise ValueError
    except ValueError:
        return _refused("curation", "CURATION must be a JSON object of curation fields")
    with tempfile.TemporaryDirectory(prefix="ctanb-publish-") as tmp:
        upload = Path(tmp) / "product.fits"
        size = 0
        with upload.open("wb") as fh:
            async for chunk in request.stream():
                size += len(chunk)
                if size > MAX_PRODUCT_BYTES:
                    return _refused("size", f"products larger than {MAX_PRODUCT_BYTES} bytes "
                                    "are not accepted", 413)  # fmt: skip
                fh.write(chunk)
        if size == 0:
            return _refused("provenance", "the request carries no product (empty body)")
        hook = getattr(request.app.state, "publish_before_commit", None)
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        try:
            sent: dict[str, Path] = {}
            if kind == "application/x-tar":
                upload, sent = await run_in_threadpool(_unpack, upload, Path(tmp))
            result = await run_in_threadpool(
                publish_file, state.db_path, upload, policy=state.policy,
                token=bearer_token(request.headers), curation=curation, before_commit=hook,
                inputs=sent,
            )  # fmt: skip
        except PublishRefused as exc:
            return _refused(exc.condition, str(exc), exc.status)
    if result.created:
        # New TAP_SCHEMA rows may have been written (first publication into an old database).
        state._schema = None
    base = state.public_base(str(request.base_url))
    return JSONResponse(
        {
            "did": result.did,
            "created": result.created,
            "data_rights": result.data_rights,
            "release_date": result.release_date,
            "access_url": result.access_url.replace("$BASE/", base + "/"),
        },
        status_code=201 if result.created else 200,
    )
