"""Where the archive token goes: only to the archive's own origin and origins trusted explicitly.

A TAP result or a DataLink document names URLs chosen by whoever wrote the
rows; a token attached to the session's default headers went to every one of
them. :class:`ScopedToken` is the session's ``auth`` instead: it adds the
``Authorization`` header only when the request's origin (scheme, host, port) is
trusted, removes any other, and is applied again to each redirect hop.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

import requests

from .._errors import ConfigError

__all__ = ["ScopedToken", "authorization_header", "origin"]

_DEFAULT_PORTS = {"http": 80, "https": 443}


def authorization_header(token: str) -> str:
    """The ``Authorization`` value for an archive token.

    ``group:token`` (the form DaCHS needs, also accepted by the embedded archive)
    is sent as HTTP Basic; a bare token as ``Bearer``.
    """
    if ":" in token:
        return "Basic " + base64.b64encode(token.encode()).decode()
    return f"Bearer {token}"


def origin(url: str) -> tuple[str, str, int]:
    """The origin of *url*: (scheme, host, port), default port filled in.

    Raises
    ------
    ConfigError
        When *url* is not an absolute http(s) URL.
    """
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        host = (parts.hostname or "").lower()
        port = parts.port or _DEFAULT_PORTS.get(scheme, 0)
    except ValueError:
        raise ConfigError(f"{url!r} is not a valid URL") from None
    if scheme not in _DEFAULT_PORTS or not host:
        raise ConfigError(f"{url!r} is not an http(s) URL with a host")
    return scheme, host, port


class ScopedToken(requests.auth.AuthBase):
    """A ``requests`` auth sending the token to trusted origins only.

    Parameters
    ----------
    token : str
        The archive token (``group:token`` is sent as HTTP Basic).
    trusted : iterable of str
        URLs whose origins may receive the token (the archive's own URL first).
    check : callable, optional
        Called once, before the first request that carries the token (requests it
        makes itself pass unchecked): it raises when the archive does not know the
        token, so that a mistyped token is refused instead of silently reading as
        anonymous. Its refusal is kept: later requests raise it again without asking.
        A failure other than :class:`~ctanb.AuthError` is not kept (asked again).
    """

    def __init__(
        self, token: str, trusted: Iterable[str], check: Callable[[], object] | None = None
    ):
        self._header = authorization_header(token)
        self.origins = frozenset(origin(u) for u in trusted)
        self._check = check
        self._checked = check is None
        self._refused: Exception | None = None
        self._lock = threading.RLock()  # re-entrant: the check's own request comes back here
        self._checking = False

    def verify(self) -> None:
        """Run the check once (see *check*); raise its refusal, now and every later time."""
        from .._errors import AuthError

        if self._checked and self._refused is None:
            return
        with self._lock:
            if self._refused is not None:
                raise self._refused
            if self._checked or self._checking:
                return
            self._checking = True
            try:
                self._check()
            except AuthError as exc:
                self._refused = exc
                raise
            else:
                self._checked = True
            finally:
                self._checking = False

    def trusts(self, url: str) -> bool:
        """True when a request to *url* carries the token."""
        try:
            return origin(url) in self.origins
        except ConfigError:
            return False

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if self.trusts(request.url or ""):
            self.verify()
            request.headers["Authorization"] = self._header
        else:
            request.headers.pop("Authorization", None)
        return request

    def __repr__(self) -> str:  # never shows the token
        shown = ", ".join(f"{s}://{h}:{p}" for s, h, p in sorted(self.origins))
        return f"<ScopedToken for {shown}>"


class Session(requests.Session):
    """A requests session with a default timeout (pyvo sets none) that re-scopes the
    token on each redirect (requests only strips it when the host changes)."""

    timeout: tuple[float, float] = (5.0, 300.0)

    def request(self, method, url, **kwargs):  # type: ignore[override]
        kwargs.setdefault("timeout", self.timeout)
        return super().request(method, url, **kwargs)

    def rebuild_auth(self, prepared_request, response):  # type: ignore[override]
        super().rebuild_auth(prepared_request, response)
        if isinstance(self.auth, ScopedToken):
            self.auth(prepared_request)
