"""``POST /publish``: a product goes into the archive (checks in :mod:`ctanb.archive.publish`).

The body is the product file (``application/fits``); curation fields come as the
JSON query parameter ``CURATION``; the publisher's token in ``Authorization``.
Answers ``201`` (published) or ``200`` (already published: same DID) with a JSON
document ``{"did", "created", "data_rights", "release_date", "access_url"}``; a
refusal answers ``400``/``401``/``403`` with ``{"error", "condition"}`` naming the
check that failed, and leaves nothing behind.
"""

from __future__ import annotations

import json
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
        try:
            result = await run_in_threadpool(
                publish_file, state.db_path, upload, policy=state.policy,
                token=bearer_token(request.headers), curation=curation, before_commit=hook,
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
