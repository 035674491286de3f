"""The Starlette application: routes, error documents, lifespan."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..._errors import CtanbError
from .coverage_api import coverage_endpoint
from .datalink import datalink_endpoint
from .files import files_endpoint
from .jobs_api import async_routes
from .params import ServiceFault
from .provsap import provsap_endpoint
from .publish_api import publish_endpoint
from .state import ArchiveState
from .tap import sync_endpoint
from .uws import UWSJobManager
from .vosi import availability, capabilities, tables
from .votable import VOTABLE_MIME, error_votable
from .whoami_api import whoami_endpoint

__all__ = ["create_app"]

log = logging.getLogger("ctanb.archive.service")


def _error(message: str, status: int, plain: bool = False,
           headers: dict[str, str] | None = None) -> Response:  # fmt: skip
    if plain:
        return PlainTextResponse(message + "\n", status_code=status, headers=headers)
    return Response(
        error_votable(message), status_code=status, media_type=VOTABLE_MIME, headers=headers
    )


async def _fault(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ServiceFault)
    return _error(exc.message, exc.status, exc.plain, getattr(exc, "headers", None))


async def _ctanb_error(request: Request, exc: Exception) -> Response:
    return _error(str(exc), 400)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    text = exc.detail or "error"
    if exc.status_code == 404:
        text = f"no such endpoint {request.url.path!r}: see {request.base_url}capabilities"
    elif exc.status_code == 405:
        text = f"method {request.method} is not allowed on {request.url.path}"
    return _error(text, exc.status_code)


class _CatchAll:
    """Last line of defence: log a bug and answer a clean error document, never a traceback."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except ClientDisconnect:
            # The client went away while sending its request: nothing to answer, no bug.
            log.info("client left during %s %s", scope.get("method"), scope.get("path"))
        except Exception as exc:
            log.exception("internal error on %s %s", scope.get("method"), scope.get("path"))
            if not started:
                msg = (
                    f"internal error of the archive service ({type(exc).__name__}); "
                    "it has been logged on the server"
                )
                await _error(msg, 500)(scope, receive, send)


async def _index(request: Request) -> Response:
    state: ArchiveState = request.app.state.archive
    base = state.public_base(str(request.base_url))
    lines = [
        "ctanb embedded archive: IVOA TAP 1.1 / UWS 1.1 / DataLink 1.1 over ObsCore 1.1",
        *(f"  {base}/{p}" for p in ("sync", "async", "capabilities", "tables",
                                    "availability", "datalink?ID=<obs_publisher_did>",
                                    "coverage?kind=space|time|space-time|space-energy")),
    ]  # fmt: skip
    return PlainTextResponse("\n".join(lines) + "\n")


def create_app(
    db: str | Path,
    *,
    policy: Any = None,
    base_url: str | None = None,
    **settings: Any,
) -> Starlette:
    """Build the TAP/UWS/DataLink application serving the archive *db*.

    Parameters
    ----------
    db : str or Path
        The SQLite archive (built by ``ctanb archive build``); opened read-only.
    policy : AccessPolicy, optional
        Who may read proprietary data; default: released data only.
    base_url : str, optional
        Public URL of the service root, used in access URLs and service
        descriptors; default: the URL each request was sent to.
    **settings
        Fields of :class:`~ctanb.archive.service.state.ServiceSettings`
        (``maxrec_default``, ``maxrec_hard``, ``sync_timeout_s``, ...).

    Returns
    -------
    starlette.applications.Starlette
        The ASGI application.
    """
    state = ArchiveState(db, policy=policy, base_url=base_url, **settings)
    state.jobs = UWSJobManager(state)
    # Published products (issue 14): the provenance views filter rows by the request's token.
    from ..provtap import RightsMiddleware, wrap_open_connection

    wrap_open_connection(state)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        state.jobs.shutdown()

    gp = ["GET", "POST"]
    routes = [
        Route("/", _index),
        Route("/sync", sync_endpoint, methods=gp),
        *async_routes(),
        Route("/capabilities", capabilities),
        Route("/availability", availability),
        Route("/tables", tables),
        Route("/tables/{name}", tables),
        Route("/datalink", datalink_endpoint, methods=gp),
        Route("/files/{rest:path}", files_endpoint, methods=["GET", "HEAD"]),
        # Published products (issue 14)
        Route("/publish", publish_endpoint, methods=["POST"]),
        Route("/provsap", provsap_endpoint, methods=gp),
        # Coverage MOCs of the archive (issue 18)
        Route("/coverage", coverage_endpoint, methods=gp),
        Route("/whoami", whoami_endpoint),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(_CatchAll), Middleware(RightsMiddleware)],
        exception_handlers={
            ServiceFault: _fault,
            CtanbError: _ctanb_error,
            HTTPException: _http_error,
        },
        lifespan=lifespan,
    )
    app.state.archive = state
    return app
