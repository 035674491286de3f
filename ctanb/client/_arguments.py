"""Checks of the arguments of the archive client's public methods, in the user's words.

A wrong type or value given to :func:`~ctanb.connect` or an :class:`~ctanb.client.Archive`
method is refused here, at the entry point, with a :class:`~ctanb.CtanbError` that names
the parameter and the value, not as a TypeError from deep inside requests or pyvo.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from difflib import get_close_matches
from pathlib import Path
from typing import Any

from .._errors import ConfigError, DownloadError, QueryError
from .._validation import short
from .results import Record, Results

__all__ = [
    "as_time_pairs",
    "check_archive_options",
    "check_options",
    "check_query",
    "download_folder",
    "records_of",
    "short",
]

#: The keyword options of :class:`~ctanb.client.Archive` that :func:`~ctanb.connect` passes on.
OPTIONS = ("trusted_origins", "session", "offline", "workers", "progress", "record_history")


def check_options(options: dict[str, Any]) -> None:
    """Refuse an option :func:`~ctanb.connect` does not know (with the closest one)."""
    unknown = [name for name in options if name not in OPTIONS]
    if unknown:
        close = get_close_matches(unknown[0], [*OPTIONS, "token", "url"], n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise ConfigError(
            f"connect: unknown option {unknown[0]!r}{hint} (options: token, "
            f"{', '.join(sorted(OPTIONS))})"
        )


def check_archive_options(token: Any, workers: Any, trusted_origins: Any) -> list[str]:
    """Check the token and workers; the trusted origins as a list (one URL as text is one)."""
    if token is not None and not isinstance(token, str):
        raise ConfigError(f"token: give the token as text (a string), not {token!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 64:
        raise ConfigError(
            f"workers: give a whole number of parallel downloads from 1 to 64, not {workers!r}"
        )
    # One URL given as text is one origin, not a list of characters.
    origins = [trusted_origins] if isinstance(trusted_origins, str) else list(trusted_origins or ())
    for origin in origins:
        if not isinstance(origin, str) or not origin.startswith(("http://", "https://")):
            raise ConfigError(f"trusted_origins: {origin!r} is not an http(s) URL")
    return origins


def check_query(adql: Any, mode: Any, timeout: Any, maxrec: Any) -> None:
    """Refuse a query that is not text, an unknown mode, a timeout or maxrec out of range."""
    if not isinstance(adql, str) or not adql.strip():
        raise QueryError(f"adql: give the query as ADQL text, not {short(adql)}")
    if mode not in ("sync", "async"):
        raise QueryError(f"mode must be 'sync' or 'async', not {mode!r}", query=adql)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        raise QueryError(f"timeout: give a positive number of seconds, not {timeout!r}", query=adql)
    if maxrec is not None and (
        isinstance(maxrec, bool) or not isinstance(maxrec, int) or maxrec < 0
    ):
        raise QueryError(
            f"maxrec: give a whole number of rows (0 or more), not {maxrec!r}", query=adql
        )


def records_of(results: Results | Record | Iterable[Record]) -> list[Record]:
    """The records of *results* (a Results, one Record or Records), else a DownloadError."""
    if isinstance(results, Record):
        return [results]
    if isinstance(results, Results):
        return list(results)
    iterable = isinstance(results, Iterable) and not isinstance(results, str | bytes | dict)
    items = list(results) if iterable else None
    if items is None or not all(isinstance(x, Record) for x in items):
        raise DownloadError(
            "give the results of a search (or some of their rows), e.g. "
            "archive.download(archive.search(obs_id='23523')), "
            f"not {short(results)}"
        )
    return items


def as_time_pairs(intervals: Any) -> list:
    """Checked ``(n, 2)`` MJD (TT) intervals as the ``[starts, stops]`` Times they stand for."""
    from astropy.time import Time

    return [
        Time(intervals[:, 0], format="mjd", scale="tt"),
        Time(intervals[:, 1], format="mjd", scale="tt"),
    ]


def download_folder(dest: Any) -> Path:
    """*dest* as a folder that exists (made if needed), or a DownloadError saying why not."""
    if not isinstance(dest, str | os.PathLike):
        raise DownloadError(f"dest: give a folder (a path), not {dest!r}")
    folder = Path(dest).expanduser()
    if folder.exists() and not folder.is_dir():
        raise DownloadError(f"dest: {folder} is a file, not a folder", path=str(folder))
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(
            f"dest: cannot make the folder {folder}: {exc.strerror or exc}", path=str(folder)
        ) from None
    return folder
