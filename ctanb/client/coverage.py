"""The archive's coverage as mocpy objects: :func:`fetch_coverage` behind ``Archive.coverage``.

The embedded archive serves its coverage MOCs at ``/coverage``
(:mod:`ctanb.archive.service.coverage_api`); the archive's token goes with the
request, so proprietary coverage comes back only to its group. An archive without
``/coverage`` below its TAP URL (DaCHS: :mod:`ctanb.archive.dachs_coverage`) names
its coverage service in the ``#coverage`` DataLink of its datasets.
"""

from __future__ import annotations

import re
from typing import Any

import requests

from .._errors import CoverageError, CtanbError, ServiceError
from ..archive.coverage import check_kind, check_order, moc_class
from ._protocol import server_message
from .query import _datalink_url, run_sync, unreachable

__all__ = ["fetch_coverage"]

_FOUND: dict[str, str] = {}  # archive URL -> its coverage service found by DataLink


def _discover(archive: Any) -> str | None:
    """The coverage service named by the ``#coverage`` DataLink of a dataset, or None."""
    adql = "SELECT TOP 1 obs_publisher_did FROM ivoa.obscore"
    try:  # not archive.query: the look-up is no search of the user's (history)
        raw = run_sync(archive.service, adql, 1, session=archive.session)
        dids = [str(d) for d in raw.to_table()["obs_publisher_did"]]
        found = archive._datalinks(dids, _datalink_url(raw)) if dids else {}
    except CtanbError:
        return None
    links = [link for got in found.values() for link in got.by_semantics("#coverage")]
    url = next((link.access_url for link in links if link.access_url), None)
    return url.split("?", 1)[0] if url else None


def _get(archive: Any, url: str, params: dict) -> requests.Response:
    try:
        return archive.session.get(url, params=params, timeout=120)
    except requests.RequestException as exc:
        raise ServiceError(unreachable(archive.url, exc), url=url) from None


def fetch_coverage(
    archive: Any,
    *,
    collection: str | None = None,
    kind: str = "space",
    level: str | None = None,
    order: int | None = None,
) -> Any:
    """The coverage of *archive* as a mocpy object.

    Parameters
    ----------
    archive : Archive
        The archive (its session carries the token).
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

    Raises
    ------
    CoverageError
        A bad kind, order, collection or level (checked here or by the archive).
    ServiceError
        The archive cannot be reached or does not serve coverage.
    """
    kind = check_kind(kind)
    check_order(kind, order)
    params = {"kind": kind, "format": "ascii"}
    for name, value in (("collection", collection), ("level", level), ("order", order)):
        if value is not None:
            params[name] = str(value)
    url = _FOUND.get(archive.url, archive.url + "/coverage")
    resp = _get(archive, url, params)
    if resp.status_code == 404 and (found := _discover(archive)):
        url = _FOUND[archive.url] = found
        resp = _get(archive, url, params)
    if resp.status_code == 400 or (
        resp.status_code == 200 and "QUERY_STATUS" in resp.text[:2000]
    ):  # DaCHS sends its error documents (DALI) with HTTP 200
        message = server_message(resp.content) or resp.text[:300]
        raise CoverageError(re.sub(r"^\w*Fault: ", "", message))
    if resp.status_code == 404:
        raise ServiceError(
            f"the archive at {archive.url} does not serve coverage maps (no /coverage endpoint)",
            url=url,
            status=404,
        )
    if resp.status_code != 200:
        raise ServiceError(
            f"coverage at {url} answered HTTP {resp.status_code}: "
            f"{server_message(resp.content) or resp.text[:300]}",
            url=url,
            status=resp.status_code,
        )
    return moc_class(kind).from_string(resp.text, format="ascii")
