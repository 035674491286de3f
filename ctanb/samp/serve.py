"""Serving the data a SAMP message points to at short-lived, unguessable URLs.

SAMP messages carry URLs, not data: TOPCAT or Aladin download the table or image
themselves, without cookies or tokens. So every published item gets a random
token in its path and expires after a while.

:class:`LocalFilePublisher`
    ``file:`` URLs of a private temporary folder, for a kernel running on the same
    desktop as the applications (the default of ``SampLink.connect``: no port is
    opened, and Aladin started with ``-local`` loads images only this way).
:class:`LoopbackDataServer`
    A small HTTP server on 127.0.0.1, for a kernel running on the desktop.
:class:`SpoolPublisher`
    Writes the item into a spool folder that the Jupyter server extension
    (:mod:`ctanb.samp.jupyter`) serves at ``<base_url>ctanb/samp/<token>/<name>``,
    for a hosted kernel (the desktop applications reach the Jupyter server only).
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from .._errors import CtanbError
from .._settings import home_dir

__all__ = [
    "DEFAULT_TTL",
    "LocalFilePublisher",
    "LoopbackDataServer",
    "SpoolPublisher",
    "spool_dir",
    "spool_item",
]

#: Seconds a published item stays downloadable.
DEFAULT_TTL = 600.0

#: Prefix of URLs relative to the Jupyter server; the browser bridge makes them absolute.
JUPYTER_RELATIVE = "ctanb-jupyter:"

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_SAFE_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")


def safe_name(name: str) -> str:
    """A file name safe in a URL path (other characters become ``_``)."""
    return _SAFE_NAME.sub("_", name).strip("._") or "data"


class LoopbackDataServer:
    """An HTTP server on 127.0.0.1 serving published bytes at random-token URLs.

    Parameters
    ----------
    ttl : float
        Seconds each item stays available.
    """

    def __init__(self, ttl: float = DEFAULT_TTL) -> None:
        self.ttl = ttl
        self._items: dict[str, tuple[bytes, str, float]] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL (starts the server on first use)."""
        self._ensure_started()
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/"

    def publish(self, data: bytes, name: str, content_type: str) -> str:
        """Make *data* downloadable.

        Parameters
        ----------
        data : bytes
            The document.
        name : str
            Its file name (the end of the URL).
        content_type : str
            Its MIME type.

        Returns
        -------
        str
            Its URL (valid for :attr:`ttl` seconds).
        """
        token = secrets.token_urlsafe(24)
        path = f"{token}/{safe_name(name)}"
        with self._lock:
            self._expire_locked()
            self._items[path] = (data, content_type, time.monotonic() + self.ttl)
        return self.url + path

    def withdraw(self, url: str) -> None:
        """Stop serving the item at *url* (no error if unknown).

        Parameters
        ----------
        url : str
            What :meth:`publish` returned.
        """
        with self._lock:
            self._items.pop(url.removeprefix(self.url), None)

    def _lookup(self, path: str) -> tuple[bytes, str] | None:
        with self._lock:
            self._expire_locked()
            item = self._items.get(path.lstrip("/"))
        return None if item is None else (item[0], item[1])

    def _expire_locked(self) -> None:
        now = time.monotonic()
        for key in [k for k, v in self._items.items() if v[2] < now]:
            del self._items[key]

    def _ensure_started(self) -> None:
        if self._server is not None:
            return
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._answer(body=True)

            def do_HEAD(self) -> None:
                self._answer(body=False)

            def _answer(self, body: bool) -> None:
                item = owner._lookup(self.path.split("?", 1)[0])
                if item is None:
                    self.send_error(404, "unknown or expired link")
                    return
                data, content_type = item
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                # The bridge page fetches nothing itself, but browsers may probe.
                self.send_header("Access-Control-Allow-Origin", "*")
                self.end_headers()
                if body:
                    self.wfile.write(data)

            def log_message(self, *args) -> None:  # keep notebooks quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="ctanb-samp-data", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        """Stop the server and forget every item."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._lock:
            self._items.clear()


class LocalFilePublisher:
    """Publish items as ``file:`` URLs in a private (mode 0700) temporary folder.

    Parameters
    ----------
    ttl : float
        Seconds each item is kept.
    """

    def __init__(self, ttl: float = DEFAULT_TTL) -> None:
        self.ttl = ttl
        self.folder = Path(tempfile.mkdtemp(prefix="ctanb-samp-"))
        self._expiry: dict[Path, float] = {}

    def publish(self, data: bytes, name: str, content_type: str) -> str:
        """Write *data* to a new file; returns its ``file:`` URL."""
        now = time.monotonic()
        for folder in [f for f, t in self._expiry.items() if t < now]:
            shutil.rmtree(folder, ignore_errors=True)
            del self._expiry[folder]
        folder = self.folder / secrets.token_urlsafe(16)
        folder.mkdir()
        path = folder / safe_name(name)
        path.write_bytes(data)
        self._expiry[folder] = now + self.ttl
        return path.as_uri()

    def withdraw(self, url: str) -> None:
        """Delete the item at *url* (no error if unknown)."""
        from urllib.parse import unquote, urlparse

        path = Path(unquote(urlparse(url).path))
        if self.folder in path.parents:
            shutil.rmtree(path.parent, ignore_errors=True)

    def close(self) -> None:
        """Delete every item."""
        shutil.rmtree(self.folder, ignore_errors=True)


def spool_dir() -> Path:
    """The folder shared by a hosted kernel and the Jupyter server extension."""
    path = home_dir() / "samp-spool"
    path.mkdir(parents=True, exist_ok=True)
    return path


class SpoolPublisher:
    """Publish items for the Jupyter server extension to serve (hosted kernels).

    The returned URL is relative to the Jupyter server (``ctanb-jupyter:ctanb/samp/
    <token>/<name>``); the browser bridge turns it into an absolute URL with the
    page's own base URL, because only the browser knows how the desktop reaches
    the Jupyter server.

    Parameters
    ----------
    folder : Path, optional
        The spool folder (default :func:`spool_dir`).
    ttl : float
        Seconds each item stays available.
    base_url : str, optional
        The Jupyter server's URL as the applications reach it; when given, URLs are
        absolute and need no browser to resolve them.
    """

    def __init__(
        self, folder: Path | None = None, ttl: float = DEFAULT_TTL, base_url: str = ""
    ) -> None:
        self.folder = Path(folder) if folder is not None else spool_dir()
        self.ttl = ttl
        self.base_url = base_url

    def publish(self, data: bytes, name: str, content_type: str) -> str:
        """Write *data* into the spool.

        Parameters
        ----------
        data : bytes
            The document.
        name : str
            Its file name.
        content_type : str
            Its MIME type.

        Returns
        -------
        str
            Its Jupyter-relative URL.

        Raises
        ------
        CtanbError
            The spool folder cannot be written.
        """
        self.expire()
        token = secrets.token_urlsafe(24)
        item = self.folder / token
        try:
            item.mkdir(parents=True)
            filename = safe_name(name)
            (item / filename).write_bytes(data)
            meta = {"content_type": content_type, "expires": time.time() + self.ttl}
            (item / "meta.json").write_text(json.dumps(meta))
        except OSError as exc:
            raise CtanbError(f"cannot publish {name!r} in {self.folder}: {exc}") from exc
        relative = f"ctanb/samp/{token}/{filename}"
        if self.base_url:  # the server's public URL is known: no browser needed
            return self.base_url.rstrip("/") + "/" + relative
        return JUPYTER_RELATIVE + relative

    def expire(self) -> None:
        """Delete the items whose time is over."""
        now = time.time()
        for meta_file in self.folder.glob("*/meta.json"):
            try:
                expires = json.loads(meta_file.read_text())["expires"]
            except (OSError, ValueError, KeyError):
                expires = 0
            if expires < now:
                shutil.rmtree(meta_file.parent, ignore_errors=True)

    def close(self) -> None:
        """Nothing to stop (items expire by themselves)."""


def spool_item(folder: Path, token: str, name: str) -> tuple[Path, str] | None:
    """``(path, content_type)`` of a live spool item, None when unknown or expired.

    Used by the Jupyter server extension (and the tests' stand-in for it).
    """
    if not (_SAFE_TOKEN.fullmatch(token) and safe_name(name) == name):
        return None
    item = Path(folder) / token
    try:
        meta = json.loads((item / "meta.json").read_text())
    except (OSError, ValueError):
        return None
    path = item / name
    if meta.get("expires", 0) < time.time() or not path.is_file():
        return None
    return path, str(meta.get("content_type") or "application/octet-stream")
