"""What an IVOA service says when it fails, read in one place for the whole client.

- :func:`server_message`: the server's own words in an error answer: the DALI
  ``QUERY_STATUS`` INFO of a VOTable (read with astropy's VOTable parser), the
  ``message`` of a JSON answer, or plain text;
- :func:`status_error`: an HTTP status and that message as the
  :class:`~ctanb.CtanbError` that names the layer that failed;
- :func:`query_position`: the ``(line, column)`` a server names in its message.
"""

from __future__ import annotations

import io
import json
import re
import warnings

from .._errors import AuthError, CtanbError, QueryError, ServiceError

__all__ = ["query_position", "server_message", "status_error"]

#: Error documents are small; a body larger than this is not parsed as one.
_MAX_PARSED = 1 << 20
#: Longest message kept from a body that is not an error document.
_MAX_TEXT = 500


def query_position(message: str) -> tuple[int, int] | None:
    """``(line, column)`` named in a server message ("line 2, column 7"), if any.

    Parameters
    ----------
    message : str
        The server's message.

    Returns
    -------
    tuple of int or None
        1-based line and column; a bare character offset is given as line 1.

    Examples
    --------
    >>> query_position("syntax error at line 2, column 7")
    (2, 7)
    >>> query_position("Could not parse your query (line:1, col:38)")
    (1, 38)
    """
    # "line 2, column 7" (ctanb) and "(line:1, col:38)" (DaCHS) before a bare character offset
    match = re.search(r"line\s*:?\s*(\d+)\s*,?\s*col(?:umn)?\s*:?\s*(\d+)", message, re.I)
    if match:
        return int(match.group(1)), int(match.group(2))
    match = re.search(r"(?:at\s+)?(?:char(?:acter)?|position|offset)\s+(\d+)", message, re.I)
    if match:
        return 1, int(match.group(1))
    return None


def server_message(body: bytes | str | None) -> str:
    """The server's own words in an error answer (empty when it said nothing).

    Parameters
    ----------
    body : bytes or str or None
        The body of the answer.

    Returns
    -------
    str
        The content of a VOTable's ``QUERY_STATUS`` INFO (DALI error document),
        the ``message``, ``detail`` or ``error`` of a JSON object, or the text of
        anything else without its markup, on one line and at most 500 characters.

    Examples
    --------
    >>> server_message(b'<VOTABLE><RESOURCE type="results">'
    ...                b'<INFO name="QUERY_STATUS" value="ERROR">no column &lt;x&gt;</INFO>'
    ...                b'</RESOURCE></VOTABLE>')
    'no column <x>'
    >>> server_message('{"error": "no such collection"}')
    'no such collection'
    """
    if not body:
        return ""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
    text = text.strip()
    if text.startswith("{"):
        found = _json_message(text)
        if found:
            return _without_internals(found)
    elif text.startswith("<") and "QUERY_STATUS" in text and len(text) <= _MAX_PARSED:
        found = _votable_status(text)
        if found is not None:
            return _without_internals(found)
    if text.startswith("<"):
        text = re.sub(r"<(script|style)\b.*?</\1\s*>", " ", text, flags=re.S | re.I)
        text = re.sub(r"<[^>]+>", " ", text)
        import html

        text = html.unescape(text)
    return " ".join(_without_internals(text).split())[:_MAX_TEXT]


def _without_internals(text: str) -> str:
    """*text* without a database's internals: DaCHS's ``Field query: `` prefix and the
    PostgreSQL ``CONTEXT:`` lines (which PL/pgSQL function raised, at which line)."""
    text = re.sub(r"^\s*Field query:\s*", "", text)
    text = re.split(r"\s*\bCONTEXT:\s", text, maxsplit=1)[0]
    return text.strip()


def _json_message(text: str) -> str:
    try:
        data = json.loads(text)
    except ValueError:
        return ""
    if isinstance(data, dict):
        for key in ("message", "detail", "error"):
            if data.get(key):
                return str(data[key])
    return ""


def _votable_status(text: str) -> str | None:
    """The ``QUERY_STATUS`` message of a VOTable (the ERROR one first), or None."""
    from astropy.io.votable import parse

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a server's small deviations are not ours to report
            votable = parse(io.BytesIO(text.encode("utf-8")), verify="ignore")
    except Exception:  # astropy raises many types for a broken document
        return None
    infos = [i for i in votable.iter_info() if (i.name or "").upper() == "QUERY_STATUS"]
    infos.sort(key=lambda i: (i.value or "").upper() != "ERROR")
    for info in infos:
        content = (info.content or "").strip()
        if content:
            return content
    return None


def status_error(
    status: int | None, message: str, *, url: str, adql: str | None = None
) -> CtanbError:
    """The error for an HTTP *status* and the server's *message*.

    Parameters
    ----------
    status : int or None
        The HTTP status (None or 0: no answer).
    message : str
        The server's words (see :func:`server_message`).
    url : str
        The URL that was asked.
    adql : str, optional
        The query that was sent, if any.

    Returns
    -------
    CtanbError
        401/403: :class:`~ctanb.AuthError`; 400 for a query:
        :class:`~ctanb.QueryError` with the server's message and the position it
        names; any other status: :class:`~ctanb.ServiceError` with the status.
    """
    if status in (401, 403):
        what = "query" if adql is not None else "request"
        return AuthError(f"the archive refused the {what} ({status}): {message}")
    if status == 400 and adql is not None:
        return QueryError(message, query=adql, position=query_position(message))
    return ServiceError(
        f"the archive at {url} answered HTTP {status}: {message}", url=url, status=status
    )
