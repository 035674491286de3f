"""A query history that survives kernel restarts (JSON lines under ``home_dir()``).

Every query :class:`~ctanb.client.Archive` runs, successful or not, appends one
line to ``home_dir()/history.jsonl``. Appends of one short line are atomic on
POSIX file systems, so several kernels can share the file.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .._settings import home_dir

__all__ = ["HistoryEntry", "QueryHistory"]


@dataclass(frozen=True)
class HistoryEntry:
    """One past query.

    Attributes
    ----------
    time : float
        When it was sent (Unix time).
    url : str
        TAP root URL of the archive.
    adql : str
        The query text.
    rows : int or None
        Number of rows returned (None when it failed).
    status : str
        ``COMPLETED``, ``ERROR`` or ``ABORTED``.
    mode : str
        ``sync`` or ``async``.
    duration : float
        Seconds from sending to the answer.
    error : str
        The error message when it failed.
    criteria : dict
        The search criteria, when the query came from :meth:`Archive.search`.
    job_url : str
        The UWS job URL of an asynchronous query.
    """

    time: float
    url: str
    adql: str
    rows: int | None
    status: str
    mode: str = "sync"
    duration: float = 0.0
    error: str = ""
    criteria: dict = field(default_factory=dict)
    job_url: str = ""

    @property
    def when(self) -> str:
        """Local time as ``YYYY-MM-DD HH:MM:SS``."""
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.time))


class QueryHistory:
    """The queries run from this machine, oldest first.

    Parameters
    ----------
    path : Path, optional
        The JSON-lines file (default ``home_dir()/history.jsonl``).
    url : str, optional
        Show only the queries sent to this archive.
    """

    def __init__(self, path: Path | None = None, *, url: str | None = None) -> None:
        self.path = Path(path) if path else home_dir() / "history.jsonl"
        self.url = url

    def append(self, entry: HistoryEntry) -> None:
        """Record one query."""
        line = json.dumps(asdict(entry), default=str) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # O_APPEND: concurrent kernels never interleave partial lines.
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)

    def entries(self) -> list[HistoryEntry]:
        """Every recorded query (unreadable lines are skipped)."""
        out: list[HistoryEntry] = []
        try:
            lines = self.path.read_text().splitlines()
        except OSError:
            return out
        known = set(HistoryEntry.__dataclass_fields__)
        for line in lines:
            try:
                data = json.loads(line)
                entry = HistoryEntry(**{k: v for k, v in data.items() if k in known})
            except (ValueError, TypeError):
                continue
            if self.url is None or entry.url == self.url:
                out.append(entry)
        return out

    def clear(self) -> None:
        """Forget every recorded query."""
        self.path.unlink(missing_ok=True)

    def __iter__(self) -> Iterator[HistoryEntry]:
        return iter(self.entries())

    def __len__(self) -> int:
        return len(self.entries())

    def __getitem__(self, index: int) -> HistoryEntry:
        return self.entries()[index]

    def to_table(self):
        """The history as an astropy Table (time, url, status, rows, mode, adql)."""
        from astropy.table import Table

        entries = self.entries()
        return Table(
            {
                "time": [e.when for e in entries],
                "url": [e.url for e in entries],
                "status": [e.status for e in entries],
                "rows": [-1 if e.rows is None else e.rows for e in entries],
                "mode": [e.mode for e in entries],
                "adql": [e.adql for e in entries],
            }
        )

    def __repr__(self) -> str:
        lines = [f"<QueryHistory {self.path} ({len(self)} queries)>"]
        for e in self.entries()[-10:]:
            rows = "-" if e.rows is None else e.rows
            lines.append(
                f"  {e.when} {e.status:<9} {rows!s:>6} rows  {' '.join(e.adql.split())[:90]}"
            )
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return self.to_table()._repr_html_()
