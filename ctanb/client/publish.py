"""Publishing a product into an archive (client side of ``POST /publish``).

:func:`publish` sends the product with its curation; the archive checks it (record,
content, inputs, rights, see :mod:`ctanb.archive.publish`) and answers its DID.
``Archive.publish`` and ``ctanb archive publish`` call it.
"""

from __future__ import annotations

import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._errors import AuthError, NotFoundError, ProvenanceError, ServiceError
from .query import unreachable

__all__ = ["PublishRefusedError", "Published", "fetch_published", "publish", "user_inputs"]


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
    import tempfile

    import requests

    path = Path(product)
    if not path.is_file():
        raise ProvenanceError(f"product {path} does not exist")
    url = archive.url + "/publish"
    sent = user_inputs(path)
    try:
        with tempfile.TemporaryDirectory(prefix="ctanb-publish-") as tmp:
            body, kind = path, "application/fits"
            if sent:  # the product and the models/configuration files it used, in one tar
                body, kind = Path(tmp) / "upload.tar", "application/x-tar"
                with tarfile.open(body, "w") as tar:
                    tar.add(path, arcname="product.fits", recursive=False)
                    for name, src in sent.items():
                        tar.add(src, arcname=f"inputs/{name}", recursive=False)
            with body.open("rb") as fh:
                resp = archive.session.post(
                    url, data=fh, params={"CURATION": json.dumps(curation or {})},
                    headers={"Content-Type": kind}, timeout=timeout,
                )  # fmt: skip
    except requests.RequestException as exc:
        raise ServiceError(unreachable(archive.url, exc)) from None
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


#: File name endings of the inputs sent with a product (the archive checks them again).
_SENT_SUFFIXES = (".yaml", ".yml")


def user_inputs(product: Path) -> dict[str, Path]:
    """Models or configuration files (YAML) the product's lineage used that no recorded
    step made and no archive holds (no publisher DID), found at their recorded location
    with their recorded sha256: the archive keeps them with the product so that anyone
    can redo it. A file found under its recorded name but with other content (altered
    after the analysis) is sent too, so that the archive's refusal says so. Anything
    unreadable is left to the archive's checks to name."""
    from ..provenance._hashing import sha256_file
    from ..provenance.verify import _source_entities, product_entity

    try:
        graph, entity = product_entity(product)
    except Exception:  # the archive says what is wrong with the product
        return {}
    out: dict[str, Path] = {}
    for leaf in _source_entities(graph, entity.id):
        where = Path(leaf.location or "")
        if (graph.generator_of(leaf.id) is not None or leaf.publisher_did
                or not where.name.lower().endswith(_SENT_SUFFIXES) or where.name in out):  # fmt: skip
            continue
        altered = None
        for candidate in (where, product.parent / where.name):
            try:
                if candidate.is_file() and sha256_file(candidate) == leaf.sha256:
                    out[where.name] = candidate
                    break
                if candidate.is_file() and altered is None:
                    altered = candidate
            except Exception:  # unreadable: not sent (the archive names it)
                continue
        else:
            if altered is not None:
                out[where.name] = altered
    return out


def fetch_published(ref: str, out_dir: str | Path, *, archive: str | None = None,
                    token: str | None = None, client: Any = None) -> tuple[Path, str]:  # fmt: skip
    """Download a published product by its DID or URL into *out_dir* (``original/``).

    Parameters
    ----------
    ref : str
        The product's DID (``ivo://...``; needs *archive*) or its access URL.
    out_dir : path
        The folder of the redo; the product goes to ``out_dir/original``.
    archive : str, optional
        Base URL of the archive (default: ``CTANB_TAP_URL``; from the URL when *ref* is one).
    token : str, optional
        Archive token for a proprietary product (default ``CTANB_TOKEN``).
    client : Archive, optional
        A connected archive whose session (and token) to use instead of *token*.

    Returns
    -------
    (Path, str)
        The downloaded product (its sha256 checked against the archive's) and the
        archive's base URL.
    """
    import hashlib
    import os
    from urllib.parse import quote, unquote

    from .archive import connect

    if ref.startswith(("http://", "https://")):
        if "/getproduct/" in ref:  # a file of DaCHS's products service; its TAP is /tap
            archive = archive or ref.split("/getproduct/", 1)[0] + "/tap"
            url, name = ref, unquote(ref.rsplit("/", 1)[1])
        elif "/files/" not in ref:
            raise ServiceError(f"{ref} is not the URL of an archive file (…/files/<DID>)")
        else:
            archive = archive or ref.split("/files/", 1)[0]
            url, name = ref, unquote(ref.rsplit("/files/", 1)[1])
    else:
        archive = archive or os.environ.get("CTANB_TAP_URL")
        if not archive:
            raise ServiceError(
                f"which archive holds {ref}? give --archive URL (or set CTANB_TAP_URL)"
            )
        url, name = f"{archive.rstrip('/')}/files/{quote(ref, safe='')}", ref
    client = client if client is not None else connect(archive, token=token)
    resp = _get(client, url, archive)
    refused = resp.text.strip()
    if resp.status_code == 404 and not ref.startswith(("http://", "https://")):
        # An archive without ctanb's /files/<DID> (DaCHS): the product's DataLink #this.
        url, refused = _this_link(client, ref, archive)
        if url:
            resp = _get(client, url, archive)
    if resp.status_code == 404:
        # The archive's 404 is a VOTable document: the user needs one sentence.
        raise ServiceError(f"no product {name} in this archive ({archive.rstrip('/')})")
    if resp.status_code != 200:
        raise AuthError(f"{name}: {refused}") if resp.status_code in (401, 403) else (
            ServiceError(f"{name}: the archive answered HTTP {resp.status_code}: "
                         f"{resp.text.strip()[:300]}"))  # fmt: skip
    sha = hashlib.sha256(resp.content).hexdigest()
    etag = resp.headers.get("ETag", "").strip('"')
    if etag and etag != sha:
        raise ServiceError(f"{name}: the download is damaged (sha256 differs from the archive's)")
    folder = Path(out_dir) / "original"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{name.rsplit('?', 1)[-1].rsplit('/', 1)[-1] or 'product'}.fits"
    target.write_bytes(resp.content)
    return target, archive.rstrip("/")


def _get(client: Any, url: str, archive: str) -> Any:
    try:
        return client.session.get(url, timeout=300)
    except Exception as exc:  # requests' errors, named by the layer that failed
        raise ServiceError(unreachable(archive, exc)) from None


def _this_link(client: Any, did: str, archive: str) -> tuple[str | None, str]:
    """The product's ``#this`` URL from the archive's DataLink, and what to say when its
    file is refused: DaCHS's link description names the group and the release date, where
    its HTTP 401 page only says that credentials are needed."""
    try:
        links = [link for link in client.datalink(did) if link.semantics == "#this"]
    except NotFoundError:  # the archive knows no such DID: "no product ... in this archive"
        return None, ""
    except Exception as exc:  # the DataLink service failed: said by the layer that failed
        raise ServiceError(unreachable(archive, exc)) from None
    if not links or not links[0].access_url:
        return None, ""
    said = (links[0].description or "").strip()
    return links[0].access_url, said if "proprietary" in said else "the archive refused it"
