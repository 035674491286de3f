"""The one exception tree of ctanb.

Every error that ctanb raises on purpose is a :class:`CtanbError`, so a notebook
panel or a script can catch that one class and show its message. The subclass
says which layer failed::

    CtanbError
    ├── ConfigError          a setting, config file or data folder is missing or wrong
    ├── ServiceError         the archive service is unreachable or answered an HTTP error
    │   └── NotFoundError    the archive has no dataset/product with that ID
    ├── QueryError           the service rejected a query (ADQL syntax, unknown name)
    │   └── AdqlError        raised by the embedded service's ADQL translator
    ├── CriteriaError        a search criterion is invalid (names the field)
    ├── TimeCoverageError    time intervals or a time MOC are invalid (order, scale, file)
    ├── ResolveError         a target name could not be resolved (lists close matches)
    ├── AuthError            data refused: proprietary, wrong or missing token
    ├── DownloadError        a transfer failed or a file is corrupt (names the file)
    ├── IngestError          a file could not be ingested into the archive
    ├── ProvenanceError      provenance could not be recorded, read or verified
    ├── AnalysisError        an analysis step failed (no observations, bad region, …)
    └── JobError             a job failed, was aborted or is unknown

Messages are written for the person who sees them: they name the thing that was
wrong (the file, the field, the position in the query) and, where it helps, what
to do about it.
"""

from __future__ import annotations

__all__ = [
    "AdqlError",
    "AnalysisError",
    "AuthError",
    "ConfigError",
    "CriteriaError",
    "CtanbError",
    "DownloadError",
    "IngestError",
    "JobError",
    "NotFoundError",
    "ProvenanceError",
    "QueryError",
    "ResolveError",
    "ServiceError",
    "TimeCoverageError",
]


class CtanbError(Exception):
    """Base class of every error ctanb raises on purpose."""

    @property
    def message(self) -> str:
        """The human-readable message (the first argument)."""
        return str(self.args[0]) if self.args else self.__class__.__name__


class ConfigError(CtanbError, ValueError):
    """A setting, configuration file or data folder is missing or invalid.

    Also a :class:`ValueError`, as pydantic's own validation error is, so code that
    caught that around a configuration keeps working.
    """


class ServiceError(CtanbError):
    """The archive service is unreachable or answered with an HTTP error.

    Parameters
    ----------
    message : str
        What went wrong.
    url : str, optional
        The URL that was requested.
    status : int, optional
        The HTTP status code, if a response was received.
    """

    def __init__(self, message: str, *, url: str | None = None, status: int | None = None):
        super().__init__(message)
        self.url = url
        self.status = status


class NotFoundError(ServiceError, LookupError):
    """The archive has no dataset or product with the ID asked for (the ID is named).

    Parameters
    ----------
    message : str
        What was not found.
    url : str, optional
        The URL that was requested.
    status : int, optional
        The HTTP status code, if a response was received.
    """


class QueryError(CtanbError):
    """The service rejected a query.

    Parameters
    ----------
    message : str
        The server's message.
    query : str, optional
        The ADQL text that was sent.
    position : tuple of int, optional
        ``(line, column)`` of the problem in the query, both 1-based, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        query: str | None = None,
        position: tuple[int, int] | None = None,
    ):
        super().__init__(message)
        self.query = query
        self.position = position


class AdqlError(QueryError):
    """An ADQL query could not be translated by the embedded service."""


class CriteriaError(CtanbError, ValueError):
    """A search criterion is invalid.

    Parameters
    ----------
    message : str
        What is wrong with the value.
    field : str, optional
        The name of the criterion.
    """

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.field = field


class TimeCoverageError(CtanbError, ValueError):
    """Time intervals or a time MOC are invalid: a start after its stop, an unknown
    time scale, an unreadable MOC file or a MOC order out of range."""


class ResolveError(CtanbError):
    """A target name could not be resolved to coordinates.

    Parameters
    ----------
    message : str
        What went wrong.
    name : str, optional
        The name that was looked up.
    suggestions : list of str, optional
        Close matches among the names that are known.
    """

    def __init__(
        self, message: str, *, name: str | None = None, suggestions: list[str] | None = None
    ):
        super().__init__(message)
        self.name = name
        self.suggestions = list(suggestions or [])


class AuthError(CtanbError):
    """Access to data was refused (proprietary data, missing or wrong token)."""


class DownloadError(CtanbError):
    """A download failed or a downloaded file is corrupt.

    Parameters
    ----------
    message : str
        What went wrong.
    path : str, optional
        The file concerned.
    url : str, optional
        The URL it came from.
    """

    def __init__(self, message: str, *, path: str | None = None, url: str | None = None):
        super().__init__(message)
        self.path = path
        self.url = url


class IngestError(CtanbError):
    """A file could not be ingested into the archive (names the file)."""


class ProvenanceError(CtanbError):
    """Provenance could not be recorded, read, verified or replayed."""


class AnalysisError(CtanbError):
    """An analysis step failed for a reason the user can act on."""


class JobError(CtanbError):
    """A job failed, was aborted, or does not exist."""


class CoverageError(CtanbError, ValueError):
    """A coverage (MOC) request is invalid: unknown kind, collection or level, order out of range.

    Parameters
    ----------
    message : str
        What is wrong, in the user's words.
    field : str, optional
        The parameter concerned (``kind``, ``order``, ``collection``, ``level``).
    """

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.field = field
