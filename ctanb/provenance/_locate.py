"""Find a recorded input file by its content, wherever it is now.

A product names its inputs by sha256, file name and (DL3 data from an archive) the
ObsCore publisher DID. Another user, or the same user with an empty ``CTANB_HOME``,
has the same bytes somewhere else. :class:`InputLocator` looks, in order, at

1. the recorded location;
2. the download cache (``<CTANB_HOME>/cache``) and ``CTANB_DATA``, by file name;
3. the archive: the dataset's DataLink ``#this`` and ``#calibration`` files, by
   publisher DID (for a file without a DID of its own, e.g. CTA IRFs, the links of
   the other inputs of the same activity); a models or configuration file the analyst
   wrote is kept by the archive with the published product: a ``#progenitor`` file of
   the product's own DID (``products``);

and accepts a file only when its sha256 is the recorded one.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .._errors import CtanbError, NotFoundError, ProvenanceError
from ._hashing import sha256_file
from .records import EntityRecord

__all__ = ["InputLocator"]

#: Seconds to wait for an archive's answer (connecting: 5 s) before redo gives up on it.
READ_TIMEOUT = 60.0


class InputLocator:
    """Locate input files by content (see the module docstring).

    Parameters
    ----------
    archive : ctanb.Archive, str or None
        The archive to fetch missing inputs from (an :class:`~ctanb.Archive`, its URL,
        or None for ``CTANB_TAP_URL`` when set; no archive otherwise).
    products : iterable of str
        DIDs of published products whose ``#progenitor`` files may be the input (the
        product being redone: the archive keeps its user-supplied inputs).
    """

    def __init__(self, archive: Any = None, products: Iterable[str] = ()) -> None:
        self.products = list(products)
        self._archive_arg = archive
        self._archive: Any = None
        self._names: dict[str, list[Path]] | None = None
        self.sources: dict[str, str] = {}  # entity id -> where it was found

    def _archive_client(self) -> Any:
        if self._archive is None:
            arg = self._archive_arg or os.environ.get("CTANB_TAP_URL")
            if not arg:
                return None
            if isinstance(arg, str):
                from ..client import connect

                self._archive = connect(arg)
                # An archive that accepts connections but never answers must not hang redo.
                self._archive.session.timeout = (5.0, READ_TIMEOUT)
            else:
                self._archive = arg
        return self._archive

    def _local_files(self) -> dict[str, list[Path]]:
        """Files of the cache and the data folder, by name (listed once)."""
        if self._names is None:
            from .._settings import data_dir, home_dir

            self._names = {}
            for root in (home_dir() / "cache", data_dir()):
                if root.is_dir():
                    for path in root.rglob("*"):
                        if path.is_file():
                            self._names.setdefault(path.name, []).append(path)
        return self._names

    def locate(self, entity: EntityRecord, siblings: Iterable[EntityRecord] = ()) -> Path:
        """The path of a file with *entity*'s recorded content.

        Raises
        ------
        ProvenanceError
            No copy with the recorded sha256 was found (says where it looked).
        """
        recorded = Path(entity.location or "")
        if self._matches(recorded, entity):
            self.sources[entity.id] = "recorded location"
            return recorded
        for path in self._local_files().get(recorded.name, []):
            if self._matches(path, entity):
                self.sources[entity.id] = "local copy"
                return path
        found = self._from_archive(entity, siblings)
        if found is not None:
            self.sources[entity.id] = "archive"
            return found
        where = "the recorded location, the download cache and CTANB_DATA"
        archive = "" if self._archive_client() else " (give --archive URL to fetch it)"
        did = f", publisher DID {entity.publisher_did}" if entity.publisher_did else ""
        raise ProvenanceError(
            f"missing input {recorded.name or entity.id}{did}: no copy with its recorded "
            f"sha256 in {where}{' or the archive' if not archive else ''}{archive}"
        )

    @staticmethod
    def _matches(path: Path, entity: EntityRecord) -> bool:
        if not path.is_file():
            return False
        if not entity.sha256:
            return True
        try:
            return sha256_file(path) == entity.sha256
        except ProvenanceError:
            return False

    def _from_archive(self, entity: EntityRecord, siblings: Iterable[EntityRecord]) -> Path | None:
        archive = self._archive_client()
        if archive is None:
            return None
        dids = [entity.publisher_did] if entity.publisher_did else []
        dids += [
            s.publisher_did for s in siblings if s.publisher_did and s.publisher_did not in dids
        ]
        name = Path(entity.location or "").name
        for did in dids:
            try:
                links = archive.datalink(did)
            except NotFoundError:  # not (or no longer) this archive's: try the next DID
                continue
            except Exception as exc:  # any failure of the archive, said in words
                raise ProvenanceError(
                    f"cannot fetch input {name or entity.id} from the archive at "
                    f"{getattr(archive, 'url', archive)}: {_plain(exc)}"
                ) from None
            urls = [
                link.access_url
                for link in links
                if link.access_url and link.semantics in ("#this", "#calibration")
            ]
            # The file of this name first; then the others (a renamed copy).
            urls.sort(key=lambda url: url.rsplit("/", 1)[-1].split("?")[0] != name)
            for url in urls:
                try:
                    path = archive.downloads.fetch_one(url)
                except Exception as exc:
                    raise ProvenanceError(
                        f"cannot fetch input {name or entity.id} from {url}: {_plain(exc)}"
                    ) from None
                if self._matches(path, entity):
                    return path
        return self._from_products(archive, entity, name)

    def _from_products(self, archive: Any, entity: EntityRecord, name: str) -> Path | None:
        """A user-supplied input kept with a published product (its ``#progenitor`` files
        of this size: the product's DL3 runs are other links, never fetched here)."""
        for did in [] if entity.publisher_did else self.products:
            try:
                links = archive.datalink(did)
            except Exception:  # the product's links are a last resort: say it missing
                return None
            for link in links:
                if (link.semantics != "#progenitor" or not link.access_url
                        or entity.size is None or link.content_length != entity.size):  # fmt: skip
                    continue
                try:
                    path = archive.downloads.fetch_one(link.access_url)
                except Exception as exc:
                    raise ProvenanceError(
                        f"cannot fetch input {name or entity.id} from {link.access_url}: "
                        f"{_plain(exc)}"
                    ) from None
                if self._matches(path, entity):
                    return path
        return None


def _plain(exc: BaseException) -> str:
    """A network or service failure in a few words (no library internals)."""
    import requests

    chain, seen = exc, 0
    while chain is not None and seen < 10:
        if isinstance(chain, requests.Timeout):
            return "it did not answer in time"
        if isinstance(chain, requests.ConnectionError):
            return "it cannot be reached (is the URL right and the service running?)"
        chain, seen = chain.__cause__ or chain.__context__, seen + 1
    text = str(exc)
    if isinstance(exc, CtanbError) and "Max retries" not in text:
        return text.splitlines()[0][:200]
    if "Max retries" in text or "Connection refused" in text:
        return "it cannot be reached (is the URL right and the service running?)"
    return "its answer is not a DataLink or file response"
