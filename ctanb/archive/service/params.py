"""Request parameters as TAP wants them: case-insensitive names, GET or POST, with limits.

Parameters come from the query string and, for POST, from an
``application/x-www-form-urlencoded`` or ``multipart/form-data`` body (parsed
here, without extra dependencies). Names are upper-cased; values keep their
order, since DataLink accepts repeated ``ID`` parameters.
"""

from __future__ import annotations

from email.parser import BytesParser
from email.policy import HTTP
from urllib.parse import parse_qsl

from starlette.requests import Request

__all__ = ["MAX_BODY_BYTES", "MAX_QUERY_CHARS", "Params", "ServiceFault", "read_params"]

#: Largest request body accepted (uploads are not supported).
MAX_BODY_BYTES = 1_000_000
#: Longest ADQL text accepted.
MAX_QUERY_CHARS = 100_000
#: Parameters that take one value: two values are refused rather than one picked silently
#: (a proxy and the service could otherwise read different queries from one request).
_SINGLE_VALUED = ("QUERY", "LANG", "MAXREC", "FORMAT", "RESPONSEFORMAT", "REQUEST")


class ServiceFault(Exception):
    """An error answered to the client with *status* and a DALI error document.

    ``plain`` answers text/plain instead (UWS phase-style endpoints).
    """

    def __init__(self, message: str, status: int = 400, *, plain: bool = False):
        super().__init__(message)
        self.message = message
        self.status = status
        self.plain = plain


class Params:
    """Case-insensitive multi-valued parameters (names are stored upper-case)."""

    def __init__(self, pairs: list[tuple[str, str]] = ()):  # type: ignore[assignment]
        self._values: dict[str, list[str]] = {}
        for name, value in pairs:
            self._values.setdefault(name.upper(), []).append(value)

    def get(self, name: str, default: str | None = None) -> str | None:
        """The last value of *name* (case-insensitive), or *default*."""
        values = self._values.get(name.upper())
        return values[-1] if values else default

    def getall(self, name: str) -> list[str]:
        """All values of *name*, in request order."""
        return list(self._values.get(name.upper(), []))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.upper() in self._values

    def items(self) -> list[tuple[str, str]]:
        """(NAME, last value) pairs."""
        return [(k, v[-1]) for k, v in self._values.items()]

    def update(self, other: Params) -> None:
        """Replace the values of every name present in *other*."""
        for key, values in other._values.items():
            self._values[key] = list(values)


def _multipart(body: bytes, content_type: str) -> list[tuple[str, str]]:
    msg = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    pairs = []
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if part.get_filename() is not None:
            raise ServiceFault(f"file uploads are not supported (part {name!r})")
        if name:
            payload = part.get_payload(decode=True) or b""
            pairs.append((str(name), payload.decode("utf-8", errors="replace")))
    return pairs


async def read_params(request: Request) -> Params:
    """Parse the query string and, for POST/PUT, the form body, enforcing the size limits."""
    pairs = parse_qsl(request.url.query, keep_blank_values=True)
    if request.method in ("POST", "PUT"):
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            raise ServiceFault(
                f"request body of {int(declared)} bytes is larger than the limit of "
                f"{MAX_BODY_BYTES} bytes",
                413,
            )
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise ServiceFault(
                    f"request body is larger than the limit of {MAX_BODY_BYTES} bytes", 413
                )
            chunks.append(chunk)
        body = b"".join(chunks)
        ctype = request.headers.get("content-type", "")
        if body:
            if ctype.lower().startswith("multipart/form-data"):
                pairs += _multipart(body, ctype)
            elif ctype.lower().startswith("application/x-www-form-urlencoded") or not ctype:
                try:
                    text = body.decode("utf-8")
                except UnicodeDecodeError:
                    raise ServiceFault("the request body is not valid UTF-8") from None
                pairs += parse_qsl(text, keep_blank_values=True)
            else:
                raise ServiceFault(
                    f"unsupported request body type {ctype!r}: send form parameters "
                    "(application/x-www-form-urlencoded)"
                )
    for name in _SINGLE_VALUED:
        if sum(1 for k, _ in pairs if k.upper() == name) > 1:
            raise ServiceFault(f"{name} is given more than once: send it once")
    query = [v for k, v in pairs if k.upper() == "QUERY"]
    if any(len(q) > MAX_QUERY_CHARS for q in query):
        raise ServiceFault(f"QUERY is longer than the limit of {MAX_QUERY_CHARS} characters")
    return Params(pairs)
