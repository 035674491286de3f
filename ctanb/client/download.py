"""Verified, resumable, parallel downloads into a per-user cache.

Each file lands in ``home_dir()/cache/<host>/<url path>`` (the port is left out
so that an embedded archive restarted on another port reuses the cache). A file
is trusted only when its size equals ``Content-Length`` and its SHA-256 equals
the server's ``ETag`` (64 hex digits) or ``Digest: sha-256=<base64>``. A cached
file is checked against the headers of a ``GET`` whose body is not read before it
is reused; a bad one is fetched again. Not ``HEAD``: DaCHS 2.7 never ends its answer
to a ``HEAD`` of a product (twisted's ``static.File`` leaves finishing a ``HEAD`` to
its caller, which DaCHS's product renderer does not do), so the check would hang
until the read timeout. An interrupted transfer leaves ``<file>.part``, continued
with ``Range``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import shutil
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import requests

from .._errors import AuthError, CtanbError, DownloadError
from .._hashing import sha256_file
from .._settings import home_dir
from ._protocol import server_message

__all__ = ["DownloadManager", "expected_sha256", "sha256_file"]

_CHUNK = 1 << 20
_TIMEOUT = (5.0, 60.0)  # connect, read


def expected_sha256(headers: requests.structures.CaseInsensitiveDict) -> str | None:
    """The SHA-256 the server vouches for: ``Digest: sha-256=`` or a hex ``ETag``."""
    digest = headers.get("Digest") or headers.get("Repr-Digest") or ""
    for part in digest.split(","):
        algo, _, value = part.strip().partition("=")
        if algo.lower() == "sha-256" and value:
            try:
                return base64.b64decode(value.strip(":")).hex()
            except (binascii.Error, ValueError):
                pass
    etag = (headers.get("ETag") or "").strip()
    etag = etag.removeprefix("W/").strip('"')
    if re.fullmatch(r"[0-9a-fA-F]{64}", etag):
        return etag.lower()
    return None


@dataclass
class _Remote:
    size: int | None
    sha256: str | None
    name: str | None


class DownloadManager:
    """Fetch files over HTTP into a cache, verified, in parallel.

    Parameters
    ----------
    session : requests.Session
        The HTTP session (carries the ``Authorization`` header).
    cache_dir : Path, optional
        Root of the cache (default ``home_dir()/cache``).
    workers : int
        Parallel transfers.
    progress : bool
        Show a tqdm progress bar of the bytes transferred.
    """

    def __init__(
        self,
        session: requests.Session,
        cache_dir: Path | None = None,
        *,
        workers: int = 4,
        progress: bool = True,
    ) -> None:
        self.session = session
        self.cache_dir = Path(cache_dir) if cache_dir else home_dir() / "cache"
        self.workers = max(1, int(workers))
        self.progress = progress
        self._bar = None
        self._bar_lock = threading.Lock()

    def cache_folder(self, url: str) -> Path:
        """The folder that holds the file of *url* in the cache.

        One folder per URL (path, without the port); the file inside keeps the
        name the server gives in ``Content-Disposition``, so that copies placed
        in a ``dest`` folder have their real names (``..._020136.fits.gz``).
        """
        parts = urlsplit(url)
        segments = [_safe(s) for s in unquote(parts.path).split("/") if s not in ("", ".", "..")]
        if parts.query:
            segments.append(_safe(parts.query))
        return self.cache_dir.joinpath(parts.hostname or "local", *segments)

    def cached(self, url: str) -> Path | None:
        """The cached file of *url*, unverified (None when absent)."""
        folder = self.cache_folder(url)
        if not folder.is_dir():
            return None
        done = [p for p in folder.iterdir() if p.is_file() and not p.name.endswith(".part")]
        return done[0] if done else None

    def fetch(self, urls: Sequence[str], dest: Path | str | None = None) -> list[Path]:
        """Download every URL (cached ones are verified, not fetched again).

        Parameters
        ----------
        urls : sequence of str
            File URLs (duplicates are fetched once).
        dest : Path, optional
            Also place the files in this folder (hard link when possible).

        Returns
        -------
        list of Path
            One path per URL, in order.

        Raises
        ------
        AuthError
            The server refused a file (its message says why and until when).
        DownloadError
            A transfer failed or a file stayed corrupt after a second attempt.
        """
        unique = list(dict.fromkeys(urls))
        results: dict[str, Path] = {}
        errors: list[CtanbError] = []
        self._open_bar(len(unique))
        try:
            with ThreadPoolExecutor(max_workers=min(self.workers, max(1, len(unique)))) as pool:
                futures = {url: pool.submit(self.fetch_one, url) for url in unique}
                for url, future in futures.items():
                    try:
                        results[url] = future.result()
                    except CtanbError as exc:
                        errors.append(exc)
        finally:
            self._close_bar()
        if errors:
            # An AuthError is the one a user can act on (token), show it first.
            errors.sort(key=lambda e: not isinstance(e, AuthError))
            raise errors[0]
        paths = [results[u] for u in urls]
        if dest is not None:
            paths = [_place(p, Path(dest)) for p in paths]
        return paths

    def fetch_one(self, url: str) -> Path:
        """Download one URL into the cache and return its verified path."""
        path = self.cached(url)
        if path is not None:
            remote = self._remote(url, path)
            if path.name == (remote.name or path.name) and self._matches(path, remote):
                self._advance(path.stat().st_size)
                return path
            path.unlink()  # corrupt or stale: fetch again
        problem, path = "", None
        for attempt in range(2):
            try:
                return self._transfer(url, resume=attempt == 0)
            except _Corrupt as exc:
                problem, path = str(exc), exc.path
        raise DownloadError(
            f"{path.name if path else url} from {url} is corrupt after two attempts: {problem}. "
            "The server's file or its checksum is wrong; report it to the archive.",
            path=str(path) if path else None,
            url=url,
        )

    # --- HTTP ---------------------------------------------------------------------------
    def _remote(self, url: str, path: Path) -> _Remote:
        """Size, checksum and name of *url* from the headers of a GET (body left unread)."""
        try:
            resp = self.session.get(url, stream=True, timeout=_TIMEOUT)
        except requests.RequestException as exc:
            raise DownloadError(
                f"cannot reach {url} to check the cached {path.name}: {exc}",
                path=str(path),
                url=url,
            ) from exc
        self._raise_for_status(resp, url, path)
        # Closing an unread streamed response drops its connection: nothing more is sent.
        resp.close()
        size = resp.headers.get("Content-Length")
        return _Remote(
            int(size) if size and size.isdigit() else None,
            expected_sha256(resp.headers),
            _filename(resp.headers),
        )

    def _get(self, url: str, path: Path, headers: dict[str, str]) -> requests.Response:
        try:
            return self.session.get(url, headers=headers, stream=True, timeout=_TIMEOUT)
        except requests.RequestException as exc:
            raise DownloadError(
                f"cannot download {path.name} from {url}: {exc}", path=str(path), url=url
            ) from exc

    def _raise_for_status(self, resp: requests.Response, url: str, path: Path) -> None:
        if resp.status_code < 400:
            return
        try:
            text = resp.text.strip()
        except (requests.RequestException, UnicodeDecodeError):
            text = ""
        text = server_message(text)
        resp.close()
        if resp.status_code in (401, 403):
            reason = text or resp.reason
            raise AuthError(
                f"access to {path.name} was refused ({resp.status_code}): {reason}. "
                "Proprietary data need a token of the right group: "
                "ctanb.connect(token=...) or set CTANB_TOKEN."
            )
        raise DownloadError(
            f"cannot download {path.name} from {url}: HTTP {resp.status_code} "
            f"{text or resp.reason}",
            path=str(path),
            url=url,
        )

    def _transfer(self, url: str, *, resume: bool) -> Path:
        folder = self.cache_folder(url)
        folder.mkdir(parents=True, exist_ok=True)
        parts = sorted(folder.glob("*.part"))
        if not resume:
            for p in parts:
                p.unlink(missing_ok=True)
            parts = []
        part = parts[0] if parts else None
        have = part.stat().st_size if part is not None else 0
        label = Path(part.name[: -len(".part")]) if part is not None else Path(folder.name)
        resp = self._get(url, label, {"Range": f"bytes={have}-"} if have else {})
        if resp.status_code == 416:  # our part is already complete (or longer): restart
            resp.close()
            part.unlink(missing_ok=True)
            have, resp = 0, self._get(url, label, {})
        name = _filename(resp.headers) or folder.name
        path = folder / name
        self._raise_for_status(resp, url, path)
        if part is not None and (resp.status_code != 206 or part.name != name + ".part"):
            part.unlink(missing_ok=True)
            have = 0
        part = folder / (name + ".part")
        digest = hashlib.sha256()
        if resp.status_code == 206 and have:
            total = _content_range_total(resp.headers.get("Content-Range", ""))
            with open(part, "rb") as fh:
                while block := fh.read(_CHUNK):
                    digest.update(block)
            mode = "ab"
            self._advance(have)
        else:
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            have, mode = 0, "wb"
        sha = expected_sha256(resp.headers)
        with resp, open(part, mode) as fh:
            try:
                for block in resp.iter_content(_CHUNK):
                    fh.write(block)
                    digest.update(block)
                    self._advance(len(block))
            except requests.RequestException as exc:
                raise DownloadError(
                    f"transfer of {path.name} from {url} broke off: {exc} "
                    f"(the partial file {part.name} is kept and resumed next time)",
                    path=str(path),
                    url=url,
                ) from exc
        got_size = part.stat().st_size
        if total is not None and got_size != total:
            part.unlink(missing_ok=True)
            raise _Corrupt(f"{got_size} bytes received, the server announced {total}", path)
        if sha is not None and digest.hexdigest() != sha:
            part.unlink(missing_ok=True)
            raise _Corrupt(f"SHA-256 {digest.hexdigest()} differs from the server's {sha}", path)
        os.replace(part, path)
        return path

    @staticmethod
    def _matches(path: Path, remote: _Remote) -> bool:
        if remote.size is not None and path.stat().st_size != remote.size:
            return False
        if remote.sha256 is not None and sha256_file(path) != remote.sha256:
            return False
        return True

    # --- progress -----------------------------------------------------------------------
    def _open_bar(self, n_files: int) -> None:
        if not self.progress:
            return
        from tqdm.auto import tqdm

        self._bar = tqdm(
            total=None, unit="B", unit_scale=True, unit_divisor=1024, desc=f"{n_files} file(s)"
        )

    def _advance(self, n: int) -> None:
        if self._bar is not None:
            with self._bar_lock:
                self._bar.update(n)

    def _close_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class _Corrupt(Exception):
    """A file arrived with the wrong size or checksum (retried once)."""

    def __init__(self, message: str, path: Path) -> None:
        super().__init__(message)
        self.path = path


def _safe(segment: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]", "_", segment) or "_"


def _filename(headers) -> str | None:
    """The file name of ``Content-Disposition`` (RFC 6266), made safe."""
    value = headers.get("Content-Disposition") or ""
    match = re.search(r"filename\*=(?:UTF-8'')?([^;]+)", value, re.I) or re.search(
        r'filename="?([^";]+)"?', value, re.I
    )
    if not match:
        return None
    name = Path(unquote(match.group(1).strip())).name
    return _safe(name) if name not in ("", ".", "..") else None


def _content_range_total(value: str) -> int | None:
    match = re.match(r"bytes\s+\d+-\d+/(\d+)", value.strip())
    return int(match.group(1)) if match else None


def _place(path: Path, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / path.name
    if target.exists():
        if target.samefile(path):
            return target
        target.unlink()
    try:
        os.link(path, target)
    except OSError:
        shutil.copy2(path, target)
    return target
