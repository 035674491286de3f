"""The browser bridge: a hosted kernel reaches the user's desktop SAMP hub through the browser.

A kernel in the cloud cannot open a connection to ``localhost`` on the user's
computer, but the notebook page in the user's browser can: the SAMP Web Profile
lets a web page register with the desktop SAMP hub at ``http://localhost:21012/``.
:class:`SampBridge` is that page-side client (an anywidget whose ES module is
built from ``widgets/samp_bridge/``); :class:`BridgeTransport` is the kernel side,
exchanging JSON messages with it (see ``widgets/samp_bridge/relay.js`` for the
protocol). Data is published through :class:`~ctanb.samp.serve.SpoolPublisher`
and served by the Jupyter server extension :mod:`ctanb.samp.jupyter`; the browser
turns those Jupyter-relative URLs into absolute ones.

Answers arrive asynchronously (the kernel handles widget messages between cells),
so ``send_*`` on a bridged link returns a pending :class:`~ctanb.samp.Delivery`.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .._errors import CtanbError
from ._messages import MTYPE_COORD, MTYPE_HIGHLIGHT, MTYPE_SELECT

__all__ = ["BridgeTransport", "SampBridge", "bridge_module_path"]


def bridge_module_path() -> Path:
    """The built ES module (``ctanb/static/samp_bridge.js``)."""
    return Path(__file__).resolve().parent.parent / "static" / "samp_bridge.js"


def _anywidget():
    try:
        import anywidget
        import traitlets
    except ImportError as exc:  # the notebook extra is not installed
        raise CtanbError("the SAMP browser bridge needs anywidget: pip install anywidget") from exc
    return anywidget, traitlets


#: The Web Profile SAMP hub's address fixed by the SAMP standard.
WEB_PROFILE_URL = "http://localhost:21012/"


def SampBridge(
    app_name: str = "ctanb", samp_hub_url: str | None = None, *, hub_url: str | None = None
):
    """The browser-side bridge widget (display it to connect).

    Parameters
    ----------
    app_name : str
        The ``samp.name`` the SAMP hub and other applications see.
    samp_hub_url : str, optional
        The Web Profile SAMP hub: ``CTANB_SAMP_WEB_HUB`` if set (a SAMP hub on another port),
        else the standard ``http://localhost:21012/``.
    hub_url : str, optional
        Deprecated name of *samp_hub_url* ("hub" alone means JupyterHub in ctanb).
    """
    if hub_url is not None:
        warnings.warn("SampBridge(hub_url=...) is deprecated: use samp_hub_url=...",
                      DeprecationWarning, stacklevel=2)  # fmt: skip
        samp_hub_url = samp_hub_url or hub_url
    return _bridge_class()(
        app_name=app_name,
        # The trait keeps its name "hub_url": the browser code reads it.
        hub_url=samp_hub_url or os.environ.get("CTANB_SAMP_WEB_HUB") or WEB_PROFILE_URL,
        subscriptions=[MTYPE_SELECT, MTYPE_HIGHLIGHT, MTYPE_COORD],
    )


_BRIDGE_CLASS = None


def _bridge_class():
    global _BRIDGE_CLASS
    if _BRIDGE_CLASS is None:
        anywidget, traitlets = _anywidget()

        class _SampBridge(anywidget.AnyWidget):
            _esm = bridge_module_path()
            app_name = traitlets.Unicode("ctanb").tag(sync=True)
            hub_url = traitlets.Unicode("http://localhost:21012/").tag(sync=True)
            base_url = traitlets.Unicode("").tag(sync=True)
            subscriptions = traitlets.List(traitlets.Unicode()).tag(sync=True)

        _SampBridge.__name__ = _SampBridge.__qualname__ = "SampBridge"
        _BRIDGE_CLASS = _SampBridge
    return _BRIDGE_CLASS


class BridgeTransport:
    """Kernel side of the bridge: turns SampLink calls into messages for the browser.

    Parameters
    ----------
    endpoint : object
        Anything with ``send(dict)`` and ``on_msg(callback(endpoint, content,
        buffers))``: the :func:`SampBridge` widget, or a test double that talks to a
        page directly.
    """

    kind = "web-bridge"
    synchronous = False

    def __init__(self, endpoint: Any) -> None:
        self.widget = endpoint
        self.state = "idle"
        self.error_kind = ""
        self.message = "waiting for the browser"
        self.self_id = ""
        self._clients: dict[str, dict] = {}
        self._lock = threading.Lock()
        self._handlers: dict[str, Callable[[str, dict], dict | None]] = {}
        self._on_response: Callable[[str, str, dict], None] = lambda *a: None
        self._on_samp_hub_event: Callable[[], None] = lambda: None
        self._status_observers: list[Callable[[str, str, str], None]] = []
        endpoint.on_msg(self._from_browser)

    # --- wiring from SampLink ---------------------------------------------------------------
    def set_callbacks(self, *, on_response, on_samp_hub_event) -> None:
        """Where answers and client-list changes go."""
        self._on_response = on_response
        self._on_samp_hub_event = on_samp_hub_event

    def subscribe(self, mtype: str, handler: Callable[[str, dict], dict | None]) -> None:
        """Handle incoming *mtype* (the browser subscribes to the widget's list)."""
        self._handlers[mtype] = handler

    def on_status(self, callback: Callable[[str, str, str], None]) -> None:
        """Call ``callback(state, kind, message)`` when the bridge state changes."""
        self._status_observers.append(callback)

    # --- from the browser ---------------------------------------------------------------------
    def _from_browser(self, _endpoint: Any, content: dict, buffers: Any = None) -> None:
        op = content.get("op")
        if op == "status":
            self.state = content.get("state", "")
            self.error_kind = content.get("kind", "")
            self.message = content.get("message", "")
            for callback in list(self._status_observers):
                callback(self.state, self.error_kind, self.message)
        elif op == "clients":
            with self._lock:
                self._clients = dict(content.get("clients") or {})
                self.self_id = content.get("self_id", "")
            self._on_samp_hub_event()
        elif op == "response":
            self._on_response(content["responder"], content["tag"], content["response"])
        elif op == "incoming":
            self._incoming(content)

    def _incoming(self, content: dict) -> None:
        handler = self._handlers.get(content.get("mtype", ""))
        try:
            if handler is None:
                raise CtanbError(f"ctanb does not handle {content.get('mtype')}")
            result = handler(content["sender"], content.get("params") or {}) or {}
            response = {"samp.status": "samp.ok", "samp.result": result}
        except Exception as exc:  # answered to the sender
            response = {"samp.status": "samp.error", "samp.error": {"samp.errortxt": str(exc)}}
        if content.get("msg_id"):
            self.widget.send({"op": "reply", "msg_id": content["msg_id"], "response": response})

    # --- the SAMP hub, as last reported by the browser -----------------------------------------------
    def _require_connected(self) -> None:
        if self.state != "connected":
            raise CtanbError(f"SAMP browser bridge not connected: {self.message}")

    def clients(self) -> dict[str, str]:
        """``{client_id: samp.name}`` of the other applications."""
        with self._lock:
            return {cid: str(info.get("name") or cid) for cid, info in self._clients.items()}

    def client_name(self, client_id: str) -> str:
        """The ``samp.name`` of a client."""
        return self.clients().get(client_id, client_id)

    def subscribed(self, mtype: str) -> list[str]:
        """Ids of the clients that accept *mtype* (``*`` wildcards honoured)."""
        self._require_connected()
        with self._lock:
            return [
                cid
                for cid, info in self._clients.items()
                if any(_mtype_matches(pattern, mtype) for pattern in info.get("subscriptions", []))
            ]

    def call(self, recipient_id: str, tag: str, message: dict[str, Any]) -> None:
        """Ask the browser to send a call; the answer comes back as a ``response``."""
        self._require_connected()
        self.widget.send({"op": "call", "recipient": recipient_id, "tag": tag, "message": message})

    def reconnect(self) -> None:
        """Ask the browser to register with the SAMP hub again."""
        self.widget.send({"op": "connect"})

    def close(self) -> None:
        """Ask the browser to unregister."""
        self.widget.send({"op": "disconnect"})


def _mtype_matches(pattern: str, mtype: str) -> bool:
    if pattern == "*" or pattern == mtype:
        return True
    return pattern.endswith(".*") and mtype.startswith(pattern[:-1])
