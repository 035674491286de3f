"""The Standard Profile transport: the kernel registers with a desktop SAMP hub itself.

Built on :mod:`pyvo.samp` (astropy.samp is deprecated since astropy 8; pyvo 1.9
carries the same SAMP hub, client and lockfile code, including ``conf.use_internet``).
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .._errors import ConfigError, CtanbError

__all__ = ["StandardTransport", "default_lockfile"]

#: SAMP hub events after which the client list is read again.
SAMP_HUB_EVENTS = (
    "samp.hub.event.register",
    "samp.hub.event.unregister",
    "samp.hub.event.metadata",
    "samp.hub.event.subscriptions",
)


def _samp():
    import pyvo.samp

    # Never look up the host's public name or reach out: loopback only.
    pyvo.samp.conf.use_internet = False
    return pyvo.samp


def default_lockfile() -> Path:
    """The lockfile a desktop SAMP hub advertises itself in (``SAMP_HUB`` or ``~/.samp``)."""
    env = os.environ.get("SAMP_HUB", "")
    if env.startswith("std-lockurl:"):
        url = env[len("std-lockurl:") :]
        if not url.startswith("file:"):
            raise ConfigError(f"SAMP_HUB={env!r}: only file: lock URLs are supported")
        from urllib.parse import unquote, urlparse

        return Path(unquote(urlparse(url).path))
    return Path.home() / ".samp"


class StandardTransport:
    """Register with a running SAMP hub (or start an embedded one) through pyvo.samp.

    Parameters
    ----------
    lockfile : str or Path, optional
        The SAMP hub's lockfile; default ``SAMP_HUB`` or ``~/.samp``.
    start_samp_hub : bool
        Start an embedded SAMP hub (writing *lockfile*) when none is running.
    metadata : dict
        ``samp.name`` and friends to declare.
    """

    kind = "standard"

    def __init__(
        self,
        lockfile: str | Path | None = None,
        *,
        start_samp_hub: bool = True,
        metadata: dict[str, str],
    ) -> None:
        samp = _samp()
        self.lockfile = Path(lockfile) if lockfile is not None else default_lockfile()
        self.samp_hub = None  # the embedded SAMP hub, when we started one
        self._client = samp.SAMPIntegratedClient(metadata=metadata, addr="127.0.0.1")
        params = self._running_samp_hub_params()
        if params is None:
            if not start_samp_hub:
                raise CtanbError(
                    f"no SAMP hub is running (no live SAMP hub in {self.lockfile}); start TOPCAT "
                    "or Aladin, or connect with start_samp_hub=True"
                )
            from ._samp_hub import EmbeddedSampHub  # like _samp(): pyvo.samp only once it is used

            self.samp_hub = EmbeddedSampHub(
                lockfile=str(self.lockfile), web_profile=False, addr="127.0.0.1", label="ctanb"
            )
            self.samp_hub.start(wait=False)
            params = self.samp_hub.params
        try:
            self._client.connect(hub_params=params)
        except Exception as exc:
            self._stop_samp_hub()
            raise CtanbError(
                f"cannot register with the SAMP hub of {self.lockfile}: {exc}"
            ) from exc
        self._handlers: dict[str, Callable[[str, dict], dict | None]] = {}
        self._on_response: Callable[[str, str, dict], None] = lambda *a: None
        self._on_samp_hub_event: Callable[[], None] = lambda: None
        self._names: dict[str, str] = {}
        self._names_lock = threading.Lock()
        for mtype in SAMP_HUB_EVENTS:
            self._client.bind_receive_notification(mtype, self._samp_hub_event, declare=False)
        self._client.declare_subscriptions()

    # --- discovery ------------------------------------------------------------------------
    def _running_samp_hub_params(self) -> dict | None:
        _samp()  # sets use_internet = False before any lockfile is read
        from pyvo.samp.lockfile_helpers import check_running_hub

        if not self.lockfile.is_file():
            return None
        running, params = check_running_hub(str(self.lockfile))
        return params if running else None

    @property
    def samp_hub_url(self) -> str:
        """The XML-RPC URL of the SAMP hub we are registered with."""
        return str(self._client.hub.lockfile.get("samp.hub.xmlrpc.url", ""))

    @property
    def self_id(self) -> str:
        """Our own public id on the SAMP hub."""
        return self._client.get_public_id()

    # --- wiring from SampLink ---------------------------------------------------------------
    def set_callbacks(
        self,
        *,
        on_response: Callable[[str, str, dict], None],
        on_samp_hub_event: Callable[[], None],
    ) -> None:
        """Where answers (responder_id, msg_tag, response) and SAMP hub events go."""
        self._on_response = on_response
        self._on_samp_hub_event = on_samp_hub_event

    def subscribe(self, mtype: str, handler: Callable[[str, dict], dict | None]) -> None:
        """Receive *mtype*: ``handler(sender_id, params)`` returns the samp.result map."""
        self._handlers[mtype] = handler

        def receive(private_key, sender_id, msg_id, mtype, params, extra):
            self._dispatch(sender_id, msg_id, mtype, params)

        def receive_notification(private_key, sender_id, mtype, params, extra):
            self._dispatch(sender_id, None, mtype, params)

        self._client.bind_receive_call(mtype, receive, declare=False)
        self._client.bind_receive_notification(mtype, receive_notification, declare=False)
        self._client.declare_subscriptions()

    def _dispatch(self, sender_id: str, msg_id: str | None, mtype: str, params: dict) -> None:
        try:
            result = self._handlers[mtype](sender_id, params) or {}
            response = {"samp.status": "samp.ok", "samp.result": result}
        except Exception as exc:  # answered to the sender, not raised into the SAMP hub
            response = {"samp.status": "samp.error", "samp.error": {"samp.errortxt": str(exc)}}
        if msg_id is not None:
            self._client.reply(msg_id, response)

    def _samp_hub_event(self, private_key, sender_id, mtype, params, extra) -> None:
        with self._names_lock:
            self._names.clear()
        self._on_samp_hub_event()

    # --- the SAMP hub ----------------------------------------------------------------------------
    def clients(self) -> dict[str, str]:
        """``{client_id: samp.name}`` of every other registered client."""
        out = {}
        hub_id = getattr(self._client.client, "_hub_id", None)
        for client_id in self._client.get_registered_clients():
            if client_id in (hub_id, self.self_id):
                continue
            out[client_id] = self.client_name(client_id)
        return out

    def client_name(self, client_id: str) -> str:
        """The ``samp.name`` of a client (cached until the next SAMP hub event)."""
        with self._names_lock:
            if client_id in self._names:
                return self._names[client_id]
        try:
            name = str(self._client.get_metadata(client_id).get("samp.name") or client_id)
        except Exception:
            name = client_id
        with self._names_lock:
            self._names[client_id] = name
        return name

    def subscribed(self, mtype: str) -> list[str]:
        """Ids of the clients that accept *mtype*."""
        return [c for c in self._client.get_subscribed_clients(mtype) if c != self.self_id]

    def call(self, recipient_id: str, tag: str, message: dict[str, Any]) -> None:
        """Send a call; the answer goes to ``on_response(responder_id, tag, response)``."""

        def receive_response(private_key, responder_id, msg_tag, response):
            self._client.unbind_receive_response(msg_tag)
            self._on_response(responder_id, msg_tag, response)

        self._client.bind_receive_response(tag, receive_response)
        try:
            self._client.call(recipient_id, tag, message)
        except Exception:
            self._client.unbind_receive_response(tag)
            raise

    def close(self) -> None:
        """Unregister, and stop the embedded SAMP hub if we started one."""
        try:
            if self._client.is_connected:
                self._client.disconnect()
        finally:
            self._stop_samp_hub()

    def _stop_samp_hub(self) -> None:
        if self.samp_hub is not None:
            # The SAMP hub warns about every client that left without unregistering.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", _samp().SAMPWarning)
                self.samp_hub.stop()
            self.samp_hub = None
