"""The embedded archive's IVOA services over HTTP: TAP 1.1, UWS 1.1, DataLink 1.1, VOSI.

Endpoints below the service root (the TAP base URL):

``/sync``, ``/async``
    TAP queries (ADQL 2.0/2.1; VOTable or CSV), UWS 1.1 job list and jobs.
``/capabilities``, ``/tables``, ``/availability``
    VOSI metadata; TAP_SCHEMA is queryable as well.
``/datalink?ID=<obs_publisher_did>``
    DataLink ``{links}`` of a dataset; results carry a service descriptor so
    that ``pyvo``'s ``iter_datalinks()`` works.
``/files/<quoted did>[/<semantics or index>]``
    The files, after the rights check (``Authorization: Bearer <token>``).

Use :func:`create_app` for an ASGI app, :class:`ArchiveServer` for a background
server (tests, notebooks) and :func:`serve` for ``ctanb archive serve``.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from ..._errors import ServiceError
from .app import create_app

__all__ = ["ArchiveServer", "create_app", "serve"]


class ArchiveServer:
    """The service in a background thread (uvicorn on loopback).

    Parameters
    ----------
    db : str or Path
        The archive database.
    host : str
        Interface to listen on.
    port : int
        TCP port; 0 picks a free one (see :attr:`url` once started).
    policy : AccessPolicy, optional
        Access policy for proprietary data.
    **settings
        Passed to :func:`create_app`.

    Examples
    --------
    >>> import pyvo
    >>> with ArchiveServer("archive.db") as server:
    ...     len(pyvo.dal.TAPService(server.url).search("SELECT TOP 1 * FROM ivoa.obscore"))
    1
    """

    def __init__(self, db: str | Path, *, host: str = "127.0.0.1", port: int = 0,
                 policy: Any = None, **settings: Any):  # fmt: skip
        self.db = Path(db)
        self.host = host
        self.port = port
        self.app = create_app(db, policy=policy, **settings)
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.url = ""

    def start(self) -> ArchiveServer:
        """Start serving; returns when the socket accepts connections.

        Returns
        -------
        ArchiveServer
            This server (:attr:`url` is set).

        Raises
        ------
        ServiceError
            The server did not start (e.g. the port is in use).
        """
        import uvicorn

        config = uvicorn.Config(
            self.app, host=self.host, port=self.port, log_level="warning",
            access_log=False, lifespan="on", timeout_keep_alive=30,
        )  # fmt: skip
        self._server = uvicorn.Server(config)
        self._server.install_signal_handlers = lambda: None  # not the main thread
        self._thread = threading.Thread(target=self._server.run, name="ctanb-archive", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise ServiceError(
                    f"the archive service could not start on {self.host}:{self.port}"
                )
            time.sleep(0.01)
        sock = self._server.servers[0].sockets[0]
        port = sock.getsockname()[1]
        self.url = f"http://{self.host}:{port}"
        return self

    def stop(self) -> None:
        """Stop serving and wait for the thread."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> ArchiveServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(db: str | Path, *, host: str = "127.0.0.1", port: int = 8765, policy: Any = None) -> None:
    """Serve the archive until interrupted (blocking; ``ctanb archive serve``).

    Parameters
    ----------
    db : str or Path
        The archive database.
    host : str
        Interface to listen on.
    port : int
        TCP port.
    policy : AccessPolicy, optional
        Access policy for proprietary data.
    """
    import uvicorn

    app = create_app(db, policy=policy)
    uvicorn.run(app, host=host, port=port, log_level="info")
