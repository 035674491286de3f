"""Publishing a product into an archive (client side of ``POST /publish``).

:func:`publish` sends the product with its curation; the archive checks it (record,
content, inputs, rights, see :mod:`ctanb.archive.publish`) and answers its DID.
``Archive.publish`` and ``ctanb archive publish`` call it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._errors import AuthError, ProvenanceError, ServiceError

__all__ = ["PublishRefusedError", "Published", "publish"]


class PublishRefusedError(AuthError):
    """The archive refused the publication; ``condition`` names the failed check."""

    def __init__(self, message: str, condition: str = "") -> None:
        super().__init__(message)
        self.condition = condition


@dataclass(frozen=True)
class Published:
    """A published product: its DID in the archive and where to get it."""

    did: str
    created: bool
    data_rights: str
    release_date: str | None
    access_url: str
    product: str

    def __str__(self) -> str:
        how = "published" if self.created else "already published"
        rights = self.data_rights + (f" until {self.release_date[:10]}" if self.release_date
                                     else "")  # fmt: skip
        return f"{self.product}: {how} as {self.did} ({rights})"


def publish(archive: Any, product: str | Path, *, curation: dict[str, Any] | None = None,
            timeout: float = 300) -> Published:  # fmt: skip
    """Publish *product* into *archive* (an :class:`~ctanb.client.archive.Archive`).

    Parameters
    ----------
    archive : Archive
        The archive; its token (``CTANB_TOKEN`` or ``token=``) is the publisher's.
    product : path
        A FITS product made by ctanb steps (with its provenance).
    curation : dict, optional
        Curation fields: title, publisher, creator, contact, version, creation_type,
        reference, analysis, background_method, cuts_description, fit_hypothesis.

    Returns
    -------
    Published
        The DID (the same for the same product published again).

    Raises
    ------
    PublishRefusedError
        The archive refused it; the message names the check that failed.
    ServiceError
        The archive could not be reached or answered an error.
    """
    import requests

    path = Path(product)
    if not path.is_file():
        raise ProvenanceError(f"product {path} does not exist")
    url = archive.url + "/publish"
    try:
        with path.open("rb") as fh:
            resp = archive.session.post(
                url, data=fh, params={"CURATION": json.dumps(curation or {})},
                headers={"Content-Type": "application/fits"}, timeout=timeout,
            )  # fmt: skip
    except requests.RequestException as exc:
        raise ServiceError(f"cannot reach the archive at {archive.url}: {exc}") from None
    try:
        body = resp.json()
    except ValueError:
        body = {}
    if resp.status_code in (200, 201) and "did" in body:
        return Published(body["did"], body["created"], body["data_rights"],
                         body.get("release_date"), body["access_url"], str(path))  # fmt: skip
    if "condition" in body:
        raise PublishRefusedError(f"{path.name}: {body['error']}", body["condition"])
    if resp.status_code == 404:
        raise ServiceError(f"the archive at {archive.url} does not accept publications")
    raise ServiceError(f"the archive answered HTTP {resp.status_code}: {resp.text[:300]}")
