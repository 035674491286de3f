"""SAMP messages ctanb sends and understands, and the per-recipient result objects.

Everything here is transport-neutral: the same messages go out through the
Standard Profile (kernel on the desktop) and through the browser bridge (Web
Profile, hosted kernel).
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .._errors import CtanbError

__all__ = [
    "MTYPE_COORD",
    "MTYPE_HIGHLIGHT",
    "MTYPE_IMAGE",
    "MTYPE_SELECT",
    "MTYPE_SPECTRUM",
    "MTYPE_TABLE",
    "Delivery",
    "SampResponse",
    "table_to_votable_bytes",
]

MTYPE_TABLE = "table.load.votable"
MTYPE_SELECT = "table.select.rowList"
MTYPE_HIGHLIGHT = "table.highlight.row"
MTYPE_COORD = "coord.pointAt.sky"
MTYPE_IMAGE = "image.load.fits"
MTYPE_SPECTRUM = "spectrum.load.ssa-generic"

#: Status of a recipient that did not answer within the time allowed.
STATUS_TIMEOUT = "timeout"
#: Status of a recipient the message could not be delivered to at all.
STATUS_UNDELIVERED = "undelivered"


def as_astropy_table(table: Any):
    """The astropy Table behind *table* (a Table, a ctanb ``Results`` or a pyvo result)."""
    from astropy.table import Table

    if isinstance(table, Table):
        return table
    inner = getattr(table, "table", None)
    if isinstance(inner, Table):
        return inner
    if hasattr(table, "to_table"):
        return table.to_table()
    raise CtanbError(
        f"cannot send a {type(table).__name__} as a table: give an astropy Table or ctanb Results"
    )


def table_to_votable_bytes(table: Any, *, name: str = "ctanb") -> bytes:
    """Serialize *table* as a VOTable document, keeping units, UCDs and descriptions.

    Parameters
    ----------
    table : astropy.table.Table or ctanb.client.Results
        The rows to send.
    name : str
        The TABLE name written into the document.

    Raises
    ------
    CtanbError
        When a column cannot be written to VOTable (names the column).

    Returns
    -------
    bytes
        The VOTable document.
    """
    from astropy.io.votable import from_table

    table = as_astropy_table(table)
    try:
        votable = from_table(table, table_id=None)
    except Exception as exc:  # astropy raises a variety of types for bad columns
        bad = _unwritable_column(table)
        where = f" (column {bad!r})" if bad else ""
        raise CtanbError(f"the table cannot be written as a VOTable{where}: {exc}") from exc
    votable.get_first_table().name = name
    buffer = io.BytesIO()
    votable.to_xml(buffer)
    return buffer.getvalue()


def _unwritable_column(table) -> str | None:
    from astropy.io.votable import from_table

    for colname in table.colnames:
        try:
            from_table(table[[colname]])
        except Exception:
            return colname
    return None


@dataclass(frozen=True)
class SampResponse:
    """What one recipient answered to one message.

    Attributes
    ----------
    client_id : str
        The recipient's public SAMP id on the SAMP hub.
    client_name : str
        Its ``samp.name`` (e.g. ``"topcat"``, ``"Aladin"``), or the id when it has none.
    status : str
        ``"samp.ok"``, ``"samp.warning"``, ``"samp.error"``, ``"timeout"`` or
        ``"undelivered"``.
    result : dict
        The ``samp.result`` map of a successful answer.
    error : str
        The recipient's ``samp.errortxt`` (or why there was no answer), "" when fine.
    """

    client_id: str
    client_name: str
    status: str
    result: dict = field(default_factory=dict)
    error: str = ""

    @property
    def ok(self) -> bool:
        """True for ``samp.ok`` and ``samp.warning``."""
        return self.status in ("samp.ok", "samp.warning")

    @classmethod
    def from_samp(cls, client_id: str, client_name: str, response: dict) -> SampResponse:
        """Build from a SAMP response map (``samp.status``, ``samp.result``, ``samp.error``).

        Parameters
        ----------
        client_id, client_name : str
            Who answered.
        response : dict
            The SAMP response map.

        Returns
        -------
        SampResponse
            The answer.
        """
        status = str(response.get("samp.status", "samp.error"))
        error_map = response.get("samp.error") or {}
        error = str(error_map.get("samp.errortxt", "")) if isinstance(error_map, dict) else ""
        if status == "samp.error" and not error:
            error = "the application reported an error without a message"
        result = response.get("samp.result") or {}
        return cls(client_id, client_name, status, dict(result), error)

    def __str__(self) -> str:
        text = f"{self.client_name}: {self.status}"
        return f"{text} ({self.error})" if self.error else text


class Delivery:
    """One message sent to one or more applications, and their answers as they arrive.

    With the Standard Profile, ``send_*`` methods wait (``wait=True``) and return a
    finished delivery. Through the browser bridge the answers arrive later: use
    :meth:`on_done` to be told, or look at :attr:`responses` afterwards.

    Attributes
    ----------
    mtype : str
        The SAMP MType that was sent.
    recipients : dict
        ``{client_id: client_name}`` of every application the message went to.
    url : str
        The URL of the data the message points to ("" for messages without data).
    table_id : str
        The ``table-id`` used (table messages only).
    """

    def __init__(
        self, mtype: str, recipients: dict[str, str], *, url: str = "", table_id: str = ""
    ) -> None:
        self.mtype = mtype
        self.recipients = dict(recipients)
        self.url = url
        self.table_id = table_id
        self._responses: dict[str, SampResponse] = {}
        self._lock = threading.Lock()
        self._finished = threading.Event()
        self._callbacks: list[Callable[[Delivery], None]] = []
        if not self.recipients:
            self._finished.set()

    # --- filled in by the transport ------------------------------------------------------
    def add_response(self, response: SampResponse) -> None:
        """Record the answer of one recipient (called by the transport).

        Parameters
        ----------
        response : SampResponse
            The recipient's answer.
        """
        with self._lock:
            if response.client_id in self._responses or self._finished.is_set():
                return
            self._responses[response.client_id] = response
            finished = set(self._responses) >= set(self.recipients)
        if finished:
            self._finish()

    def expire(self, reason: str = "no answer in time") -> None:
        """Mark every recipient that has not answered yet as timed out.

        Parameters
        ----------
        reason : str
            What the user is told about those recipients.
        """
        with self._lock:
            for client_id, name in self.recipients.items():
                self._responses.setdefault(
                    client_id, SampResponse(client_id, name, STATUS_TIMEOUT, error=reason)
                )
        self._finish()

    def _finish(self) -> None:
        if self._finished.is_set():
            return
        self._finished.set()
        for callback in list(self._callbacks):
            callback(self)

    # --- for the user ---------------------------------------------------------------------
    @property
    def done(self) -> bool:
        """True once every recipient has answered (or timed out)."""
        return self._finished.is_set()

    @property
    def responses(self) -> list[SampResponse]:
        """The answers received so far, one per recipient."""
        with self._lock:
            return list(self._responses.values())

    @property
    def ok(self) -> bool:
        """True when finished and every recipient answered ``samp.ok`` (or a warning)."""
        return self.done and all(r.ok for r in self.responses)

    @property
    def errors(self) -> list[SampResponse]:
        """The answers that were not ``samp.ok``."""
        return [r for r in self.responses if not r.ok]

    def wait(self, timeout: float | None = None) -> Delivery:
        """Block until every recipient answered or *timeout* seconds passed.

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait at most (default: no limit).

        Returns
        -------
        Delivery
            This delivery.
        """
        self._finished.wait(timeout)
        return self

    def on_done(self, callback: Callable[[Delivery], None]) -> None:
        """Call ``callback(delivery)`` once every recipient has answered (now if already).

        Parameters
        ----------
        callback : callable
            Called with this delivery.
        """
        with self._lock:
            if not self._finished.is_set():
                self._callbacks.append(callback)
                return
        callback(self)

    def raise_for_errors(self) -> Delivery:
        """Raise an error listing the recipients that failed, if any did.

        Returns
        -------
        Delivery
            This delivery, when no recipient failed.

        Raises
        ------
        CtanbError
            Naming each recipient that failed and why.
        """
        if self.errors:
            raise CtanbError(f"{self.mtype} failed: " + "; ".join(str(r) for r in self.errors))
        return self

    def summary(self) -> str:
        """One line per recipient, for showing to the user.

        Returns
        -------
        str
            The summary.
        """
        if not self.recipients:
            return f"{self.mtype}: no application received it"
        if not self.done:
            waiting = [n for i, n in self.recipients.items() if i not in self._responses]
            lines = [str(r) for r in self.responses] + [f"{n}: waiting" for n in waiting]
            return "\n".join(lines)
        return "\n".join(str(r) for r in self.responses)

    def __repr__(self) -> str:
        state = "done" if self.done else "pending"
        return f"<Delivery {self.mtype} {state}: {self.summary()!r}>"
