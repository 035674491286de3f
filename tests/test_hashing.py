"""ctanb._hashing.sha256_file: the one file hash of ctanb, with a bounded cache."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from ctanb import _hashing
from ctanb._hashing import CACHE_SIZE, sha256_file, sha256_file_cache_info
from ctanb.client.download import sha256_file as download_sha256_file
from ctanb.provenance import sha256_file as provenance_sha256_file


def _expected(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_cache_never_holds_more_than_its_size(tmp_path: Path) -> None:
    _hashing._cached_digest.cache_clear()
    paths = []
    for i in range(CACHE_SIZE + 40):
        path = tmp_path / f"f{i}.bin"
        path.write_bytes(f"file {i}".encode())
        paths.append(path)
        assert sha256_file(path) == _expected(path)
    info = sha256_file_cache_info()
    assert info.maxsize == CACHE_SIZE and info.currsize == CACHE_SIZE
    before = sha256_file_cache_info().hits
    assert sha256_file(paths[-1]) == _expected(paths[-1])  # a recent file: from the cache
    assert sha256_file_cache_info().hits == before + 1


def test_a_changed_file_gets_a_new_digest(tmp_path: Path) -> None:
    path = tmp_path / "irf.fits"
    path.write_bytes(b"A" * 1000)
    first = sha256_file(path)
    stat = path.stat()
    path.write_bytes(b"B" * 1000)  # same size, new content
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert sha256_file(path) == _expected(path) != first
    path.write_bytes(b"B" * 1001)  # new size
    assert sha256_file(path) == _expected(path)


def test_checks_that_must_not_trust_metadata_read_the_file_again(tmp_path: Path) -> None:
    path = tmp_path / "product.fits"
    path.write_bytes(b"genuine" * 100)
    genuine = sha256_file(path)
    stat = path.stat()
    path.write_bytes(b"forged!" * 100)  # same size, and the old time put back
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert sha256_file(path) == genuine  # the cache trusts size and time ...
    assert sha256_file(path, cache=False) == _expected(path) != genuine  # ... verify does not
    assert provenance_sha256_file(path) == _expected(path)


def test_every_layer_uses_the_same_function() -> None:
    assert download_sha256_file is sha256_file
