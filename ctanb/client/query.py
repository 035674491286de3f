"""Running queries: pyvo errors mapped to the ctanb tree, VOTable answers turned into
:class:`~ctanb.client.results.Results`, and asynchronous (UWS) queries."""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import requests

from .._errors import QueryError, ServiceError
from .._uws import FINAL_PHASES, Phase
from ._protocol import query_position, server_message, status_error
from .results import Results

if TYPE_CHECKING:  # pragma: no cover
    from .archive import Archive

__all__ = [
    "AsyncQuery",
    "pyvo_errors",
    "query_position",
    "results_from_votable",
    "run_sync",
    "unreachable",
]

_DATALINK_STANDARD = "ivo://ivoa.net/std/datalink"
#: Longest blocking wait asked of the server at once (seconds; pyvo asks at most 60 too).
_MAX_WAIT = 60
#: First pause between two polls of a server that does not block.
_POLL_START = 0.05


def _response_message(exc: Exception) -> str:
    """The server's own words from a pyvo or requests exception."""
    response = getattr(getattr(exc, "cause", None), "response", None)
    if response is None:
        response = getattr(exc, "response", None)
    if response is not None:
        try:
            message = server_message(response.content)
        except (requests.RequestException, RuntimeError):
            message = ""
        if message:
            return message
    reason = getattr(exc, "reason", None)
    return str(reason if reason else exc)


@contextmanager
def pyvo_errors(url: str, adql: str | None) -> Iterator[None]:
    """Turn pyvo and requests errors into :class:`~ctanb.CtanbError` subclasses.

    - the service rejected the query (DALQueryError, or an HTTP 400 with a DALI
      error document) -> :class:`~ctanb.QueryError` with the server's message and
      the position it names;
    - 401/403 -> :class:`~ctanb.AuthError`;
    - no connection, other HTTP errors, unreadable answers -> :class:`~ctanb.ServiceError`.
    """
    from pyvo.dal import DALFormatError, DALQueryError, DALServiceError

    try:
        yield
    except DALQueryError as exc:
        message = server_message(str(exc.reason or exc)) or str(exc)
        raise QueryError(message, query=adql, position=query_position(message)) from exc
    except DALFormatError as exc:
        raise ServiceError(
            f"the archive at {url} answered something that is not a VOTable: {exc.reason}",
            url=url,
        ) from exc
    except DALServiceError as exc:
        if exc.code:
            raise status_error(exc.code, _response_message(exc), url=url, adql=adql) from exc
        raise ServiceError(unreachable(url, exc), url=url) from exc
    except requests.RequestException as exc:
        status = exc.response.status_code if exc.response is not None else None
        raise ServiceError(unreachable(url, exc), url=url, status=status) from exc


def unreachable(url: str, exc: BaseException) -> str:
    """``cannot reach the archive at <url>: connection refused (is it running?)``.

    The user's words for a failed connection, not the HTTP library's
    (``HTTPConnectionPool(...) Max retries exceeded ... [Errno 111]``).
    """
    chain, seen = [], exc
    while seen is not None and len(chain) < 10:
        chain.append(seen)
        seen = getattr(seen, "cause", None) or seen.__cause__ or seen.__context__
    text = " ".join(f"{e.__class__.__name__} {e}" for e in chain).lower()
    if "refused" in text:
        why = "connection refused (is it running?)"
    elif "timeout" in text or "timed out" in text:
        why = "no answer in time (is the network or the archive slow?)"
    elif (
        "name or service not known" in text
        or "nodename nor servname" in text
        or ("name resolution" in text)
    ):
        why = "unknown host name (is the address right?)"
    elif "ssl" in text or "certificate" in text:
        why = "the secure connection failed (certificate or TLS problem)"
    else:
        why = "the connection failed (is it running, is the address right?)"
    return f"cannot reach the archive at {url}: {why}"


def run_sync(service: Any, adql: str, maxrec: int | None = None, *, session: Any = None) -> Any:
    """Run *adql* on a pyvo TAPService at once and return pyvo TAPResults.

    Reads the HTTP status itself (pyvo keeps it aside), so that the layer that
    failed is named (:func:`~ctanb.client._protocol.status_error`): 400 ->
    :class:`~ctanb.QueryError` (server message and position), 401/403 ->
    :class:`~ctanb.AuthError`, other statuses -> :class:`~ctanb.ServiceError` with
    the server's message.
    """
    from astropy.io.votable import parse as parse_votable
    from pyvo.dal import DALServiceError
    from pyvo.dal.tap import TAPResults

    url = service.baseurl.rstrip("/") + "/sync"
    with pyvo_errors(url, adql):
        query = service.create_query(adql, maxrec=maxrec)
        body = query.execute_stream(post=True).read()
        try:
            query.raise_if_error()
        except DALServiceError as exc:
            message = server_message(body) or str(exc)
            raise status_error(exc.code or None, message, url=url, adql=adql) from exc
        try:
            votable = parse_votable(io.BytesIO(body))
        except Exception as exc:  # astropy raises many types for a broken document
            raise ServiceError(
                f"the archive at {url} answered something that is not a VOTable: {exc}", url=url
            ) from exc
        return TAPResults(votable, url=url, session=session)


def _datalink_url(raw: Any) -> str | None:
    """The DataLink endpoint from the VOTable's service descriptor (adhoc:service)."""
    votable = getattr(raw, "votable", None)
    for resource in getattr(votable, "resources", []) or []:
        if resource.type != "meta" or (resource.utype or "") != "adhoc:service":
            continue
        params = {p.name: p.value for p in resource.params}
        standard = str(params.get("standardID") or "").lower()
        access = params.get("accessURL")
        if access and (not standard or standard.startswith(_DATALINK_STANDARD)):
            return access.decode() if isinstance(access, bytes) else str(access)
    return None


def results_from_votable(raw: Any, adql: str, archive: Archive) -> Results:
    """:class:`Results` from pyvo TAPResults (metadata kept: unit, ucd, description)."""
    table = raw.to_table()
    fields = {f.name: f for f in raw.fielddescs}
    for name in table.colnames:
        f = fields.get(name)
        if f is None:
            continue
        col = table[name]
        if f.ucd and "ucd" not in col.meta:
            col.meta["ucd"] = f.ucd
        if f.utype and "utype" not in col.meta:
            col.meta["utype"] = f.utype
        if f.xtype and "xtype" not in col.meta:
            col.meta["xtype"] = f.xtype
    overflow = getattr(raw, "query_status", None) == "OVERFLOW"
    return Results(
        table,
        query=adql,
        url=archive.url,
        archive=archive,
        datalink_url=_datalink_url(raw) or archive.url + "/datalink",
        overflow=overflow,
    )


class AsyncQuery:
    """An asynchronous query (UWS job) on the archive.

    Attributes
    ----------
    job : pyvo.dal.AsyncTAPJob
        The underlying pyvo job.
    adql : str
        The query.
    url : str
        The job URL.
    """

    def __init__(
        self, archive: Archive, job: Any, adql: str, *, criteria: dict | None = None
    ) -> None:
        self.archive = archive
        self.job = job
        self.adql = adql
        self.url = job.url
        self._criteria = criteria
        self._start = time.time()
        self._recorded = False
        self._blocking = True  # the server takes UWS 1.1 WAIT (until it says otherwise)

    def __repr__(self) -> str:
        return f"<AsyncQuery {self.url} phase={self.phase}>"

    @property
    def phase(self) -> str:
        """The UWS phase: PENDING, QUEUED, EXECUTING, COMPLETED, ERROR, ABORTED."""
        with pyvo_errors(self.url, self.adql):
            return str(self.job.phase)

    def wait(
        self,
        *,
        callback: Callable[[str], None] | None = None,
        timeout: float = 600.0,
        progress: bool | None = None,
    ) -> str:
        """Wait for a final phase, reporting each new phase.

        The server is asked to answer when the phase changes (UWS 1.1 blocking
        ``WAIT``), so a waiting client sends one request per phase, not a poll every
        fraction of a second; a server that does not block is polled instead.

        Parameters
        ----------
        callback : callable, optional
            Called with the phase whenever it changes.
        timeout : float
            Seconds before giving up (the job keeps running; cancel() stops it).
        progress : bool, optional
            Show the phase in a tqdm bar (default: the archive's ``progress``).

        Returns
        -------
        str
            The final phase.

        Raises
        ------
        ServiceError
            The job is still running after *timeout* seconds, or the archive failed.
        """
        show = self.archive.progress if progress is None else progress
        bar = None
        if show:
            from tqdm.auto import tqdm

            bar = tqdm(total=None, desc="async query", bar_format="{desc}: {postfix} [{elapsed}]")
        phase = None
        try:
            for phase in self._phases(timeout):
                if callback is not None:
                    callback(phase)
                if bar is not None:
                    bar.set_postfix_str(phase)
        finally:
            if bar is not None:
                bar.close()
        if phase not in FINAL_PHASES:
            raise ServiceError(
                f"the async query {self.url} is still {phase} after {timeout:g} s "
                "(cancel() it or wait longer)",
                url=self.url,
            )
        return phase

    def cancel(self, *, timeout: float = 10.0) -> str:
        """Abort the job (UWS ``PHASE=ABORT``), wait for it to stop, return its phase."""
        with pyvo_errors(self.url, self.adql):
            self.job.abort()
        # The server stops the query at its next check; wait for the final phase.
        *_, phase = self._phases(timeout)
        self._record(None, phase)
        return phase

    def _phases(self, timeout: float) -> Iterator[str]:
        """The job's phases as they change, until a final one or *timeout* seconds."""
        deadline = time.monotonic() + timeout
        phase = self.phase
        yield phase
        delay = _POLL_START
        while phase not in FINAL_PHASES:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            new = self._next_phase(phase, remaining)
            if new != phase:
                phase, delay = new, _POLL_START
                yield phase
                continue
            # Unchanged: the server's wait ran out, or it does not block (UWS 1.0,
            # WAIT=0 allowed only): poll, more and more slowly.
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 1.5, 1.0)

    def _next_phase(self, phase: str, remaining: float) -> str:
        """The phase once it is no longer *phase*, or after at most *remaining* seconds:
        UWS 1.1 blocking (``GET {job}?WAIT=s&PHASE=phase``), or the phase now if the
        server refused WAIT before."""
        if not self._blocking:
            return self.phase
        # whole seconds: DaCHS reads WAIT as an integer
        seconds = max(1, min(int(remaining), _MAX_WAIT))
        with pyvo_errors(self.url, None):
            resp = self.archive.session.get(
                self.url,
                params={"WAIT": str(seconds), "PHASE": str(phase)},
                timeout=(5.0, seconds + 30.0),
            )
        if resp.status_code == 400:  # a server that takes no WAIT or PHASE: poll it
            self._blocking = False
            return self.phase
        if resp.status_code >= 400:
            raise status_error(resp.status_code, server_message(resp.content), url=self.url)
        from pyvo.io.uws import parse_job

        try:
            return str(parse_job(io.BytesIO(resp.content), filename=self.url).phase)
        except Exception as exc:  # the XML parser raises many types for a broken document
            raise ServiceError(
                f"the archive answered something that is not a UWS job for {self.url}: {exc}",
                url=self.url,
            ) from exc

    def results(
        self, *, callback: Callable[[str], None] | None = None, timeout: float = 600.0
    ) -> Results:
        """Wait for the job and return its results.

        Raises
        ------
        QueryError
            The job ended in ERROR (the server's message) or was ABORTED.
        """
        phase = self.wait(callback=callback, timeout=timeout)
        if phase == Phase.ERROR:
            with pyvo_errors(self.url, self.adql):
                message = server_message(str(self.job.job.errorsummary.message.content or ""))
            message = message or "the job ended in ERROR"
            self._record(None, phase, message)
            raise QueryError(message, query=self.adql, position=query_position(message))
        if phase == Phase.ABORTED:
            self._record(None, phase)
            raise QueryError(f"the async query {self.url} was aborted", query=self.adql)
        with pyvo_errors(self.url, self.adql):
            # pyvo takes the result URL from its own copy of the job document, which the
            # blocking waits above did not update: fetch it (the property reads it anew)
            self.job.job  # noqa: B018
            raw = self.job.fetch_result()
        results = results_from_votable(raw, self.adql, self.archive)
        self._record(len(results), phase)
        return results

    def delete(self) -> None:
        """Delete the job on the server."""
        with pyvo_errors(self.url, self.adql):
            self.job.delete()

    def _record(self, rows: int | None, phase: str, error: str = "") -> None:
        if self._recorded:
            return
        self._recorded = True
        self.archive._remember(
            self._start,
            self.adql,
            rows,
            phase,
            "async",
            error=RuntimeError(error) if error else None,
            criteria=self._criteria,
            job_url=self.url,
        )
