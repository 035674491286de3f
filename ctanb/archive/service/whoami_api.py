"""``GET /whoami``: who the request's token is, so a login box can check a token.

Answers ``{"identity": ..., "groups": [...]}`` (JSON) for a known token, the anonymous
identity (``null``, no groups) without a token, and HTTP 401 for a token no group has
or an ``Authorization`` header that is neither ``Bearer`` nor HTTP Basic.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from .state import bearer_token, identity

__all__ = ["whoami_endpoint"]


async def whoami_endpoint(request: Request) -> JSONResponse:
    """The identity and groups of the request's token (401 when no group has it)."""
    state = request.app.state.archive
    token = bearer_token(request.headers)
    who = identity(state, request.headers)
    groups = sorted(state.policy.groups_for_token(token)) if token else []
    headers = {"Cache-Control": "private, no-store"}
    if request.headers.get("authorization", "").strip() and token is None:
        # A credential was sent but cannot be read: say so, rather than answer "anonymous".
        return JSONResponse(
            {"error": "the Authorization header is not understood: send 'Bearer' and the "
             "token, or HTTP Basic with GROUP:TOKEN"}, 401, headers=headers,
        )  # fmt: skip
    if token and who is None and not groups:
        return JSONResponse(
            {"error": "unknown token: no group of this archive has it"}, 401, headers=headers
        )
    return JSONResponse({"identity": who, "groups": groups}, headers=headers)
