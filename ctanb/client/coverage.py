"""The archive's coverage as mocpy objects: :func:`fetch_coverage` behind ``Archive.coverage``.

The embedded archive serves its coverage MOCs at ``/coverage``
(:mod:`ctanb.archive.service.coverage_api`); the archive's token goes with the
request, so proprietary coverage comes back only to its group.
"""

from __future__ import annotations

from typing import Any

import requests

from .._errors import CoverageError, ServiceError
from ..archive.coverage import check_kind, check_order, moc_class
from ._protocol import server_message
from .query import unreachable

__all__ = ["fetch_coverage"]


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
    url = archive.url + "/coverage"
    try:
        resp = archive.session.get(url, params=params, timeout=120)
    except requests.RequestException as exc:
        raise ServiceError(unreachable(archive.url, exc), url=url) from None
    if resp.status_code == 400:
        raise CoverageError(server_message(resp.content) or resp.text[:300])
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
