"""The archive client: :func:`connect` and :class:`Archive` (search, query, DataLink,
downloads, gammapy observations).

Layers, pyvo-like: :class:`Archive` is the service (one ``requests.Session``,
shared with :class:`pyvo.dal.TAPService`, carries the token); a query is either
run at once (``mode="sync"``) or becomes an :class:`~ctanb.client.query.AsyncQuery`
(UWS job); answers are :class:`~ctanb.client.results.Results` of
:class:`~ctanb.client.results.Record`. Errors say which layer failed: the
network or HTTP (:class:`~ctanb.ServiceError`), the query
(:class:`~ctanb.QueryError`), the criteria (:class:`~ctanb.CriteriaError`), the
name (:class:`~ctanb.ResolveError`), the rights (:class:`~ctanb.AuthError`) or a
file (:class:`~ctanb.DownloadError`).
"""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import requests

from .._errors import (
    AuthError,
    ConfigError,
    CriteriaError,
    DownloadError,
    NotFoundError,
    ResolveError,
    ServiceError,
)
from .._settings import home_dir
from ._arguments import (
    as_time_pairs,
    check_archive_options,
    check_options,
    check_query,
    download_folder,
    records_of,
    short,
)
from .auth import ScopedToken, Session
from .criteria import Criteria, build_adql
from .download import DownloadManager
from .during import during_adql, during_intervals, during_tmoc, exact_overlaps
from .history import HistoryEntry, QueryHistory
from .query import AsyncQuery, pyvo_errors, results_from_votable, run_sync
from .resolve import NameResolver, ResolvedName, mean_positions
from .results import DataLinks, Link, Record, Results

__all__ = ["Archive", "connect", "default_url"]

_USER_AGENT = "ctanb-client/0.1 (+pyvo)"


def default_url() -> str:
    """The archive URL used when none is given.

    ``CTANB_TAP_URL``, else the embedded archive that ``ctanb archive serve``
    announced in ``home_dir()/archive.json``.

    Raises
    ------
    ConfigError
        When neither is set, with how to start an archive.
    """
    env = os.environ.get("CTANB_TAP_URL", "").strip()
    if env:
        return env
    announce = home_dir() / "archive.json"
    if announce.is_file():
        try:
            url = json.loads(announce.read_text()).get("url")
        except (OSError, ValueError, AttributeError) as exc:
            raise ConfigError(f"{announce} is not valid JSON with a 'url': {exc}") from None
        if url:
            return str(url)
    raise ConfigError(
        "No archive is configured. Start the embedded one with\n"
        "  ctanb archive serve --db <archive.db>\n"
        f"(it writes its URL to {announce}), or set CTANB_TAP_URL to a TAP service, "
        "or call ctanb.connect('http://host:port/tap')."
    )


def connect(url: str | None = None, *, token: str | None = None, **options: Any) -> Archive:
    """Connect to an ObsCore archive (TAP service).

    Parameters
    ----------
    url : str, optional
        TAP root URL. Default: ``CTANB_TAP_URL``, else the embedded archive that
        ``ctanb archive serve`` runs (``home_dir()/archive.json``).
    token : str, optional
        Token for proprietary data (default ``CTANB_TOKEN``): a bare token is sent
        as ``Bearer``, ``group:token`` as HTTP Basic (what DaCHS needs). It goes to
        the archive's own origin (scheme, host, port) only, and to *trusted_origins*.
    **options
        Passed to :class:`Archive` (``trusted_origins``, ``offline``, ``workers``,
        ``progress``).

    Returns
    -------
    Archive

    Examples
    --------
    >>> import ctanb
    >>> archive = ctanb.connect()  # CTANB_TAP_URL, or the archive deploy/main started
    >>> crab = archive.search(target="Crab", radius=2.5, collection="HESS-DL3-DR1")
    >>> sorted(crab["obs_id"])
    ['23523', '23526', '23559', '23592']
    """
    check_options(options)
    return Archive(url or default_url(), token=token, **options)


class Archive:
    """An ObsCore archive reached over TAP, DataLink and HTTP.

    Parameters
    ----------
    url : str
        TAP root URL (``/sync``, ``/async`` below it).
    token : str, optional
        Bearer token (default ``CTANB_TOKEN``), sent with requests to the archive's
        own origin and to *trusted_origins* only; a DataLink or access URL on any
        other origin is fetched without it.
    trusted_origins : list of str, optional
        Other URLs (e.g. a data server of the same archive) whose origins may
        receive the token.
    session : requests.Session, optional
        HTTP session to use (shared with pyvo); one is made when omitted.
    offline : bool, optional
        Never ask Sesame for names (default from ``CTANB_OFFLINE``).
    workers : int
        Parallel downloads.
    progress : bool
        Progress bars for downloads and asynchronous queries.
    record_history : bool
        Append every query to ``home_dir()/history.jsonl``.
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        trusted_origins: Iterable[str] = (),
        session: requests.Session | None = None,
        offline: bool | None = None,
        workers: int = 4,
        progress: bool = True,
        record_history: bool = True,
    ) -> None:
        import pyvo

        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ConfigError(f"archive URL {url!r} is not an http(s) URL")
        trusted_origins = check_archive_options(token, workers, trusted_origins)
        self.url = url.rstrip("/")
        self.session = session or Session()
        adapter = requests.adapters.HTTPAdapter(pool_maxsize=max(10, 2 * workers))
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers.setdefault("User-Agent", _USER_AGENT)
        token = token if token is not None else os.environ.get("CTANB_TOKEN") or None
        self._trusted_origins = [self.url, *trusted_origins]
        self.set_token(token)
        self.service = pyvo.dal.TAPService(self.url, session=self.session)
        self.progress = progress
        self.record_history = record_history
        self.resolver = NameResolver(offline=offline, archive_names=self._target_positions)
        self.downloads = DownloadManager(self.session, workers=workers, progress=progress)

    def set_token(self, token: str | None) -> None:
        """Send *token* with every request to the archive (and its trusted origins) from
        now on; None or "" logs out. It never goes to other origins.

        Parameters
        ----------
        token : str or None
            A bare token (sent as ``Bearer``) or ``group:token`` (HTTP Basic).

        Notes
        -----
        The first request with the token asks the archive's ``/whoami`` (once per
        archive and token): a token it does not know makes that request, and every
        later one, raise :class:`~ctanb.AuthError` ("the archive at URL does not know
        this token (typo? expired?)") instead of reading public data as if no token
        were given. Archives without ``/whoami`` (DaCHS) are not asked.
        """
        if token:
            # One check per archive and token (:meth:`_check_token`), kept across set_token calls.
            checked = self.__dict__.setdefault("_scoped_tokens", {})
            if token not in checked:
                checked[token] = ScopedToken(token, self._trusted_origins, self._check_token)
            self.session.auth = checked[token]
        elif isinstance(self.session.auth, ScopedToken):
            self.session.auth = None

    @property
    def has_token(self) -> bool:
        """True when requests to the archive carry a token."""
        return isinstance(self.session.auth, ScopedToken)

    def whoami(self) -> dict | None:
        """Check the token with the archive: who it is and its groups.

        Returns
        -------
        dict or None
            ``{"identity": ..., "groups": [...]}``; None when the archive cannot
            check tokens (no ``/whoami``, as DaCHS).

        Raises
        ------
        AuthError
            The archive does not know the token.
        ServiceError
            The archive cannot be reached.
        """
        url = self.url + "/whoami"
        with pyvo_errors(url, None):
            resp = self.session.get(url, timeout=30)
        self._refuse_unknown_token(resp.status_code)
        if resp.status_code != 200 or "json" not in resp.headers.get("content-type", ""):
            return None
        return resp.json()

    def _refuse_unknown_token(self, status: int) -> None:
        if status in (401, 403) and self.has_token:
            raise AuthError(f"the archive at {self.url} does not know this token (typo? expired?)")

    def _check_token(self) -> None:
        """Before the first request with a token: refuse it when the archive's ``/whoami``
        does not know it (the archive would otherwise answer public data only, as if the
        token were absent). Archives without ``/whoami`` (DaCHS) are not asked; a failed
        connection is left to the request itself to report."""
        try:
            resp = self.session.get(self.url + "/whoami", timeout=30)
        except requests.RequestException:
            return
        self._refuse_unknown_token(resp.status_code)

    @property
    def history(self) -> QueryHistory:
        """Past queries sent to this archive (kept across kernel restarts)."""
        return QueryHistory(url=self.url)

    def __repr__(self) -> str:
        auth = ", with token" if self.has_token else ""
        return f"<Archive {self.url}{auth}>"

    def close(self) -> None:
        """Close the HTTP session."""
        self.session.close()

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- names and criteria ---------------------------------------------------------------
    def resolve(self, name: str) -> ResolvedName:
        """Resolve a target name (cache, bundled TeV sources, Sesame, gamma-cat, archive).

        Parameters
        ----------
        name : str
            The target name, e.g. ``"Crab"`` or ``"MSH 15-52"``.

        Returns
        -------
        ResolvedName
            ICRS ``ra``, ``dec`` (degrees), the name found and which source answered.

        Raises
        ------
        ResolveError
            The name is unknown everywhere (with close names as suggestions).
        """
        if not isinstance(name, str):
            raise ResolveError(
                f"resolve: give the target name as text, not {name!r}",
                name=None,
            )
        return self.resolver.resolve(name)

    def _criteria(self, criteria: Criteria | dict | None, kwargs: dict) -> Criteria:
        if isinstance(criteria, Criteria):
            if not kwargs:
                return criteria
            # Rebuilt, not model_copy(update=...): the added values must be validated too.
            return Criteria(**{**criteria.model_dump(exclude_defaults=True), **kwargs})
        if isinstance(criteria, dict):
            return Criteria(**{**criteria, **kwargs})
        if criteria is not None:
            raise CriteriaError(
                "criteria: give a Criteria, a dict or keywords (e.g. target='Crab'), "
                f"not {short(criteria)}"
            )
        return Criteria(**kwargs)

    def adql(
        self, criteria: Criteria | dict | None = None, /, *, during: Any = None, **kwargs: Any
    ) -> str:
        """The ADQL that :meth:`search` would send (the target is resolved first).

        Parameters
        ----------
        criteria : Criteria or dict, optional
            The criteria; keyword arguments are added to (or override) them.
        during : optional
            Time intervals the datasets must overlap (as :meth:`search`).
        **kwargs
            Criteria by name, see :class:`~ctanb.client.Criteria`.

        Returns
        -------
        str
            The query, not run.
        """
        crit = self._criteria(criteria, kwargs)
        position = None
        if crit.target is not None:
            found = self.resolve(crit.target)
            position = (found.ra, found.dec)
        if during is None:
            return build_adql(crit, position=position)
        tmoc, _ = during_tmoc(during)
        inner = build_adql(crit.model_copy(update={"limit": None}), position=position)
        return during_adql(inner, tmoc, top=crit.limit)

    # --- queries --------------------------------------------------------------------------
    def search(
        self, criteria: Criteria | dict | None = None, /, *, during: Any = None, **kwargs: Any
    ) -> Results:
        """Search the ObsCore table.

        Parameters
        ----------
        criteria : Criteria or dict, optional
            The criteria; keyword arguments are added to (or override) them.
        during : Table, TimeMOC, path or sequence of (start, stop), optional
            Keep the datasets whose good-time intervals overlap these times (a
            simultaneity search, see :mod:`ctanb.client.during`); the results get
            a column ``overlap_s``, the overlap in seconds. Accepts an astropy Table
            with start/stop, Time pairs, a mocpy TimeMOC, a TMOC file (FITS or
            ASCII) or another observation's file with a GTI table; bad intervals
            raise :class:`~ctanb.TimeCoverageError`.
        **kwargs
            Criteria by name, see :class:`~ctanb.client.Criteria`.

        Returns
        -------
        Results

        Examples
        --------
        >>> december = archive.search(target="Crab", time=("2004-12-04", "2004-12-05"))
        >>> sorted(december["obs_id"])
        ['23523', '23526']
        >>> public = archive.search(energy_min=50, data_rights="public")
        >>> set(public["data_rights"])
        {'public'}
        >>> archive.search(target="PKS 2155-304", during="xray_gti.fits")     # doctest: +SKIP
        """
        crit = self._criteria(criteria, kwargs)
        if during is not None:  # read once: the query and the exact overlaps use the same
            during = during_intervals(during)
        # Passed on as Time pairs: checked once, so ISO input is never re-checked as MJD numbers
        adql = self.adql(crit, during=None if during is None else as_time_pairs(during))
        given = crit.given() if during is None else {**crit.given(), "during": "time intervals"}
        results = self.query(adql, _criteria=given)
        # the server's answer may come from a coarser time MOC (a superset): make it exact
        return results if during is None else exact_overlaps(results, during)

    def query(
        self,
        adql: str,
        *,
        mode: str = "sync",
        maxrec: int | None = None,
        callback: Callable[[str], None] | None = None,
        timeout: float = 600.0,
        _criteria: dict | None = None,
    ) -> Results:
        """Run an ADQL query.

        Parameters
        ----------
        adql : str
            The query.
        mode : {"sync", "async"}
            ``async`` submits a UWS job and waits for it, reporting its phase.
        maxrec : int, optional
            Largest number of rows the service should return.
        callback : callable, optional
            Called with each new phase of an async job.
        timeout : float
            Seconds to wait for an async job.

        Returns
        -------
        Results
            The rows, with the query and the archive they came from.

        Raises
        ------
        QueryError
            The service rejected the query (message and position from the server), or
            *mode* is neither ``sync`` nor ``async``.
        ServiceError
            The service is unreachable or answered an HTTP error.
        """
        check_query(adql, mode, timeout, maxrec)
        if mode == "async":
            job = self.submit(adql, maxrec=maxrec, _criteria=_criteria)
            return job.results(callback=callback, timeout=timeout)
        start = time.time()
        try:
            raw = run_sync(self.service, adql, maxrec, session=self.session)
        except Exception as exc:
            self._remember(start, adql, None, "ERROR", "sync", error=exc, criteria=_criteria)
            raise
        results = results_from_votable(raw, adql, self)
        self._remember(start, adql, len(results), "COMPLETED", "sync", criteria=_criteria)
        return results

    def submit(
        self, adql: str, *, maxrec: int | None = None, _criteria: dict | None = None
    ) -> AsyncQuery:
        """Submit an asynchronous query (UWS job) and start it.

        Parameters
        ----------
        adql : str
            The query.
        maxrec : int, optional
            Largest number of rows the service should return.

        Returns
        -------
        AsyncQuery
            ``.phase``, ``.wait()``, ``.cancel()`` (UWS ABORT), ``.results()``.
        """
        with pyvo_errors(self.url + "/async", adql):
            job = self.service.submit_job(adql, maxrec=maxrec)
            job.run()
        return AsyncQuery(self, job, adql, criteria=_criteria)

    def _remember(
        self,
        start: float,
        adql: str,
        rows: int | None,
        status: str,
        mode: str,
        *,
        error: BaseException | None = None,
        criteria: dict | None = None,
        job_url: str = "",
    ) -> None:
        if not self.record_history:
            return
        self.history.append(
            HistoryEntry(
                time=start,
                url=self.url,
                adql=adql,
                rows=rows,
                status=status,
                mode=mode,
                duration=round(time.time() - start, 4),
                error=str(error) if error else "",
                criteria=criteria or {},
                job_url=job_url,
            )
        )

    def _target_positions(self) -> dict[str, tuple[float, float]]:
        adql = "SELECT target_name, s_ra, s_dec FROM ivoa.obscore"
        table = run_sync(self.service, adql, session=self.session).to_table()
        return mean_positions(
            [(str(r["target_name"]), r["s_ra"], r["s_dec"]) for r in table
             if r["target_name"] is not None]
        )  # fmt: skip

    # --- DataLink -------------------------------------------------------------------------
    def datalink(self, record: Record | str) -> DataLinks:
        """The DataLink links of one dataset.

        Parameters
        ----------
        record : Record or str
            A row of :class:`Results`, or the dataset's publisher DID.

        Returns
        -------
        DataLinks
            The links by semantics (``#this``, ``#calibration``, ``#progenitor``...);
            empty when the service knows none.

        Raises
        ------
        DownloadError
            *record* is neither a row of the results nor a DID.
        NotFoundError
            The archive has no dataset with this ID.
        """
        if not isinstance(record, str | Record):
            raise DownloadError(
                "datalink: give a row of the results (a Record) or a publisher DID (text), "
                f"not {short(record)}"
            )
        did = record if isinstance(record, str) else record["obs_publisher_did"]
        url = None if isinstance(record, str) else record._results.datalink_url
        url = url or getattr(self, "_declared_datalink", None)
        try:
            links = self._datalinks([did], url).get(did, DataLinks())
        except ServiceError as exc:
            if url is not None or exc.status != 404:
                raise
            # No DataLink at <TAP>/datalink (DaCHS): the service the archive declares with
            # the dataset's ObsCore row (its DataLink service descriptor), kept for next time.
            quoted = did.replace("'", "''")
            found = self.query(f"SELECT * FROM ivoa.obscore WHERE obs_publisher_did = '{quoted}'")
            if not len(found) or not found.datalink_url:
                raise NotFoundError(
                    f"the archive has no dataset {did!r}; give the obs_publisher_did of a "
                    "search result",
                    url=self.url + "/datalink",
                    status=404,
                ) from None
            url = self._declared_datalink = found.datalink_url
            links = self._datalinks([did], url).get(did, DataLinks())
        faults = [x.error_message for x in links if x.error_message.startswith("NotFoundFault")]
        if links and len(faults) == len(links):
            reason = faults[0].removeprefix("NotFoundFault:").strip()
            raise NotFoundError(
                f"the archive has no dataset {did!r} ({reason}); give the obs_publisher_did "
                "of a search result",
                url=url or self.url + "/datalink",
                status=404,
            )
        return links

    def _datalinks(self, dids: list[str], url: str | None = None) -> dict[str, DataLinks]:
        endpoint = url or self.url + "/datalink"
        out: dict[str, DataLinks] = {d: DataLinks() for d in dids}
        for start in range(0, len(dids), 500):
            chunk = dids[start : start + 500]
            answered, forwarded_to = self._datalink_request(endpoint, chunk, out)
            missing = [d for d in chunk if d not in answered]
            # DaCHS's DataLink of ivoa.obscore forwards: it redirects to the dataset's own
            # service with the first ID only. Ask that service for the others at once, and
            # whatever is still unanswered one ID at a time.
            if missing and forwarded_to:
                answered, _ = self._datalink_request(forwarded_to, missing, out)
                missing = [d for d in missing if d not in answered]
            for did in missing:
                self._datalink_request(endpoint, [did], out)
        return out

    def _datalink_request(
        self, endpoint: str, dids: list[str], out: dict[str, DataLinks]
    ) -> tuple[set[str], str | None]:
        """Links of *dids* from one DataLink request, added to *out*.

        Returns the IDs answered and, when the service redirected, where to.
        """
        from astropy.io.votable import parse_single_table

        with pyvo_errors(endpoint, None):
            resp = self.session.post(endpoint, data=[("ID", d) for d in dids])
            if resp.status_code >= 400:
                raise ServiceError(
                    f"DataLink at {endpoint} answered HTTP {resp.status_code}: {resp.text[:300]}",
                    url=endpoint,
                    status=resp.status_code,
                )
        answered: set[str] = set()
        for row in parse_single_table(io.BytesIO(resp.content)).to_table():
            did = _text(row["ID"])
            length = row["content_length"]
            answered.add(did)
            out.setdefault(did, DataLinks()).append(
                Link(
                    id=did,
                    semantics=_text(row["semantics"]),
                    access_url=_text(row["access_url"]),
                    content_type=_text(row["content_type"]),
                    content_length=None if _masked(length) else int(length),
                    description=_text(row["description"]),
                    error_message=_text(row["error_message"]),
                )
            )
        return answered, resp.url.split("?", 1)[0] if resp.history else None

    def coverage(
        self,
        *,
        collection: str | None = None,
        kind: str = "space",
        level: str | None = None,
        order: int | None = None,
    ) -> Any:
        """The archive's coverage as a mocpy MOC; see :func:`ctanb.client.coverage.fetch_coverage`.

        Parameters
        ----------
        collection : str, optional
            One collection (e.g. ``"HESS-DL3-DR1"``); default all.
        kind : {"space", "time", "space-time", "space-energy"}
            Which coverage: a ``MOC``, ``TimeMOC``, ``STMOC`` or ``SFMOC``.
        level : str, optional
            One data level (``"DL3"``, ``"DL4"``); default all.
        order : int, optional
            A coarser order (space and time coverage only).

        Returns
        -------
        mocpy.MOC or mocpy.TimeMOC or mocpy.STMOC or mocpy.SFMOC
            The coverage this archive serves to this client's rights.

        Examples
        --------
        >>> moc = archive.coverage(collection="HESS-DL3-DR1", kind="space")  # doctest: +SKIP
        """
        from .coverage import fetch_coverage

        return fetch_coverage(self, collection=collection, kind=kind, level=level, order=order)

    # --- files ----------------------------------------------------------------------------
    def publish(self, product: Any, *, curation: dict | None = None) -> Any:
        """Publish a product into this archive; see :func:`ctanb.client.publish.publish`.

        Parameters
        ----------
        product : str or Path
            The FITS product, with its provenance inside.
        curation : dict, optional
            ObsCore values to set on the product's row (e.g. ``obs_title``).

        Returns
        -------
        Published
            What the archive answered, with the product's publisher DID.
        """
        from .publish import publish

        return publish(self, product, curation=curation)

    def download(
        self,
        results: Results | Record | Iterable[Record],
        dest: Path | str | None = None,
        *,
        calibration: bool = False,
    ) -> list[Path]:
        """Download the datasets (``access_url``) of *results* into the cache.

        Parameters
        ----------
        results : Results, Record or iterable of Record
            What to download.
        dest : Path, optional
            Also place the files in this folder (hard links when possible).
        calibration : bool
            Also download each dataset's ``#calibration`` file (IRFs) via DataLink.

        Returns
        -------
        list of Path
            The files, in the order of the records (IRFs after their dataset).
        """
        records = records_of(results)
        if dest is not None:
            dest = download_folder(dest)
        urls = [r["access_url"] for r in records]
        if calibration:
            pairs = self._event_and_irf_urls(records)
            urls = [u for ev, irf in pairs for u in (ev, irf) if u]
        return self.downloads.fetch(urls, dest=dest)

    def _event_and_irf_urls(self, records: list[Record]) -> list[tuple[str, str | None]]:
        dids = [r["obs_publisher_did"] for r in records]
        url = records[0]._results.datalink_url if records else None
        links = self._datalinks(dids, url)
        pairs = []
        for record in records:
            these = links.get(record["obs_publisher_did"], DataLinks())
            this = [x for x in these.by_semantics("#this") if x.access_url]
            cal = [x for x in these.by_semantics("#calibration") if x.access_url]
            event = this[0].access_url if this else record["access_url"]
            irf = cal[0].access_url if cal and cal[0].access_url != event else None
            pairs.append((event, irf))
        return pairs

    def observations(self, results: Results | Record | Iterable[Record]):
        """Download events and IRFs and load them as gammapy observations.

        The IRFs come from each dataset's DataLink ``#calibration`` link (a
        CTA CALDB file), or from the event file itself (H.E.S.S. DL3 DR1,
        MAGIC point-like files with ``RAD_MAX``).

        Parameters
        ----------
        results : Results, Record or iterable of Record
            The datasets (event lists) to load.

        Returns
        -------
        gammapy.data.Observations
            One observation per dataset, in the order of *results*.

        Raises
        ------
        DownloadError
            A file could not be fetched, or gammapy cannot read it.
        """
        from gammapy.data import Observation, Observations

        from .._errors import DownloadError

        records = records_of(results)
        pairs = self._event_and_irf_urls(records)
        urls = [u for ev, irf in pairs for u in (ev, irf) if u]
        paths = dict(zip(urls, self.downloads.fetch(urls), strict=True))
        observations = []
        for event, irf in pairs:
            event_path = paths[event]
            try:
                obs = Observation.read(event_path, irf_file=paths[irf] if irf else None)
            except (OSError, KeyError, ValueError) as exc:
                raise DownloadError(
                    f"gammapy cannot read {event_path.name}: {exc}", path=str(event_path), url=event
                ) from exc
            observations.append(obs)
        return Observations(observations)


def _masked(value: Any) -> bool:
    import numpy as np

    return value is None or value is np.ma.masked or bool(np.ma.is_masked(value))


def _text(value: Any) -> str:
    if _masked(value):
        return ""
    return value.decode() if isinstance(value, bytes) else str(value)
