"""Jupyter server extension: serve SAMP spool items at ``<base_url>ctanb/samp/<token>/<name>``.

TOPCAT and Aladin download the data a SAMP message points to without the user's
cookies, so these URLs are reachable without Jupyter authentication; the random
token in the path (``secrets.token_urlsafe(24)``) is what protects them, and they
expire (see :class:`~ctanb.samp.serve.SpoolPublisher`). Everything else on the
server keeps its authentication.

Enable with ``jupyter server extension enable ctanb.samp.jupyter`` or
``--ServerApp.jpserver_extensions="{'ctanb.samp.jupyter': True}"``.
"""

from __future__ import annotations

from pathlib import Path

from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.utils import url_path_join

from .serve import spool_dir, spool_item

__all__ = ["BelowItemHandler", "SpoolHandler"]

ROUTE = r"ctanb/samp/([A-Za-z0-9_-]+)/([A-Za-z0-9._-]+)"
#: Paths below an item: Aladin asks ``<item url>/properties`` first (is it a HiPS?).
BELOW_ROUTE = ROUTE + r"/.*"


class SpoolHandler(JupyterHandler):
    """GET/HEAD of one published item; 404 when unknown or expired."""

    def initialize(self, folder: Path) -> None:
        self.folder = folder

    def check_xsrf_cookie(self) -> None:  # GET only; nothing to protect against
        return

    def _item(self, token: str, name: str):
        item = spool_item(self.folder, token, name)
        if item is None:
            self.set_status(404)
            self.finish("unknown or expired link")
        return item

    @allow_unauthenticated
    def head(self, token: str, name: str) -> None:
        item = self._item(token, name)
        if item is not None:
            self.set_header("Content-Type", item[1])
            self.set_header("Content-Length", str(item[0].stat().st_size))
            self.finish()

    @allow_unauthenticated
    def get(self, token: str, name: str) -> None:
        item = self._item(token, name)
        if item is not None:
            self.set_header("Content-Type", item[1])
            self.set_header("Cache-Control", "no-store")
            self.finish(item[0].read_bytes())


class BelowItemHandler(JupyterHandler):
    """A plain 404 for anything below an item, without login.

    Aladin probes ``<item url>/properties`` before downloading an http URL. It must
    get a clear "no" whatever the deployment does with unknown paths (a redirect to
    a login page would be read as HiPS properties).
    """

    def check_xsrf_cookie(self) -> None:
        return

    @allow_unauthenticated
    def head(self, *args: str) -> None:
        self.set_status(404)
        self.finish()

    @allow_unauthenticated
    def get(self, *args: str) -> None:
        self.set_status(404)
        self.set_header("Content-Type", "text/plain")
        self.finish("not a HiPS: nothing below a ctanb SAMP item")


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "ctanb.samp.jupyter"}]


def _load_jupyter_server_extension(serverapp) -> None:
    web_app = serverapp.web_app
    route = url_path_join(web_app.settings["base_url"], ROUTE)
    below = url_path_join(web_app.settings["base_url"], BELOW_ROUTE)
    web_app.add_handlers(
        ".*$", [(route, SpoolHandler, {"folder": spool_dir()}), (below, BelowItemHandler)]
    )
    serverapp.log.info("ctanb: serving SAMP spool %s at %s", spool_dir(), route)
