"""The selection model: which rows of which table are selected or highlighted.

SAMP applications (TOPCAT, Aladin) and ctanb's own panels both change it; the
panels subscribe with :meth:`SelectionModel.on_change` and redraw. A table is
keyed by its SAMP ``table-id`` (the one ctanb sent it with), with its URL as an
alias, because some applications answer with only one of the two.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

__all__ = ["Selection", "SelectionModel"]


@dataclass(frozen=True)
class Selection:
    """The state of one table, passed to observers on every change.

    Attributes
    ----------
    table_id : str
        The SAMP table-id (or the URL when the sender gave no id).
    url : str
        The table's URL ("" when unknown).
    rows : tuple of int
        Selected row indices, 0-based, in the order of the table ctanb sent.
    highlighted : int or None
        The highlighted row, if any.
    source : str
        Who made the change: a SAMP client name (``"topcat"``) or ``"ctanb"``.
    kind : str
        ``"rows"`` (a row list changed) or ``"highlight"``.
    """

    table_id: str
    url: str
    rows: tuple[int, ...]
    highlighted: int | None
    source: str
    kind: str


class SelectionModel:
    """Selected and highlighted rows per table, with observers.

    Observers are plain callables ``callback(selection)``; they run in the thread
    that made the change (the SAMP receiver thread for remote changes), so a
    widget observer should only set traits.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._rows: dict[str, tuple[int, ...]] = {}
        self._highlight: dict[str, int | None] = {}
        self._urls: dict[str, str] = {}
        self._aliases: dict[str, str] = {}
        self._observers: list[Callable[[Selection], None]] = []

    def register_table(self, table_id: str, url: str = "") -> None:
        """Make *url* an alias of *table_id*, so answers naming either land on one key.

        Parameters
        ----------
        table_id : str
            The table's SAMP table-id.
        url : str
            The URL it was sent with.
        """
        with self._lock:
            self._urls[table_id] = url
            if url:
                self._aliases[url] = table_id

    def key(self, table_id: str | None = None, url: str | None = None) -> str:
        """The canonical key of a table known by id and/or URL.

        Parameters
        ----------
        table_id : str, optional
            The table's SAMP table-id.
        url : str, optional
            Or the URL it was sent with.

        Returns
        -------
        str
            The key selections of that table are kept under.
        """
        with self._lock:
            if table_id and table_id in self._urls:
                return table_id
            if url and url in self._aliases:
                return self._aliases[url]
            return table_id or url or ""

    def rows(self, table_id: str) -> tuple[int, ...]:
        """Selected rows of one table.

        Parameters
        ----------
        table_id : str
            The table.

        Returns
        -------
        tuple of int
            0-based row indices; empty when nothing is selected.
        """
        with self._lock:
            return self._rows.get(self.key(table_id, table_id), ())

    def highlighted(self, table_id: str) -> int | None:
        """The highlighted row of one table.

        Parameters
        ----------
        table_id : str
            The table.

        Returns
        -------
        int or None
            None when no row is highlighted.
        """
        with self._lock:
            return self._highlight.get(self.key(table_id, table_id))

    @property
    def selection(self) -> dict[str, tuple[int, ...]]:
        """A copy of ``{table_id: rows}`` for every table with a selection."""
        with self._lock:
            return dict(self._rows)

    def set_rows(
        self,
        rows: Iterable[int],
        *,
        table_id: str | None = None,
        url: str | None = None,
        source: str = "ctanb",
    ) -> Selection:
        """Replace the selected rows of a table and notify observers.

        Parameters
        ----------
        rows : iterable of int
            0-based row indices.
        table_id : str, optional
            The table's SAMP table-id.
        url : str, optional
            Or the URL it was sent with.
        source : str
            Who made the change (an application name, or ``ctanb``).

        Returns
        -------
        Selection
            The new selection.
        """
        clean = tuple(sorted({int(r) for r in rows}))
        with self._lock:
            key = self.key(table_id, url)
            self._rows[key] = clean
        return self._notify(key, source, "rows")

    def set_highlight(
        self,
        row: int | None,
        *,
        table_id: str | None = None,
        url: str | None = None,
        source: str = "ctanb",
    ) -> Selection:
        """Set the highlighted row of a table and notify observers.

        Parameters
        ----------
        row : int or None
            0-based row index; None removes the highlight.
        table_id : str, optional
            The table's SAMP table-id.
        url : str, optional
            Or the URL it was sent with.
        source : str
            Who made the change (an application name, or ``ctanb``).

        Returns
        -------
        Selection
            The new selection.
        """
        with self._lock:
            key = self.key(table_id, url)
            self._highlight[key] = None if row is None else int(row)
        return self._notify(key, source, "highlight")

    def on_change(self, callback: Callable[[Selection], None]) -> Callable[[], None]:
        """Call ``callback(selection)`` after every change.

        Parameters
        ----------
        callback : callable
            Called with the new :class:`Selection`.

        Returns
        -------
        callable
            Call it to unsubscribe.
        """
        with self._lock:
            self._observers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._observers:
                    self._observers.remove(callback)

        return unsubscribe

    def _notify(self, key: str, source: str, kind: str) -> Selection:
        with self._lock:
            state = Selection(
                table_id=key,
                url=self._urls.get(key, key if "://" in key else ""),
                rows=self._rows.get(key, ()),
                highlighted=self._highlight.get(key),
                source=source,
                kind=kind,
            )
            observers = list(self._observers)
        for callback in observers:
            callback(state)
        return state
