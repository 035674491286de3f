"""SHA-256 of a file: the one implementation every layer of ctanb uses.

Files are hashed with :func:`hashlib.file_digest`, which reads in large chunks
straight into the C hash. Hashing the same unchanged file again (an IRF file shared
by many runs, a file the archive serves again) is answered from a bounded cache
keyed by the file's resolved path, size and modification time in nanoseconds: a
file that changed has a new key and is hashed again, and the cache never holds
more than :data:`CACHE_SIZE` digests. A check that must not trust a file's
metadata (provenance verification) passes ``cache=False``.
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

__all__ = ["CACHE_SIZE", "sha256_file", "sha256_file_cache_info"]

#: How many file digests are kept (least recently used ones are dropped).
CACHE_SIZE = 256


def sha256_file(path: str | Path, *, cache: bool = True) -> str:
    """The hex SHA-256 of a file.

    Parameters
    ----------
    path : str or Path
        The file.
    cache : bool
        Reuse the digest of the same file with the same size and modification
        time (default); False reads the file again whatever its metadata says.

    Returns
    -------
    str
        The 64 hexadecimal digits of the digest.

    Raises
    ------
    OSError
        The file does not exist or cannot be read.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile() as f:
    ...     sha256_file(f.name)[:16]
    'e3b0c44298fc1c14'
    """
    if not cache:
        return _digest(path)
    stat = os.stat(path)
    return _cached_digest(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


def sha256_file_cache_info() -> functools._CacheInfo:
    """Hits, misses and size of the digest cache (:func:`functools.lru_cache` statistics).

    Returns
    -------
    functools._CacheInfo
        ``hits``, ``misses``, ``maxsize`` and ``currsize``.
    """
    return _cached_digest.cache_info()


@functools.lru_cache(maxsize=CACHE_SIZE)
def _cached_digest(path: str, size: int, mtime_ns: int) -> str:
    del size, mtime_ns  # part of the cache key only: a changed file is hashed again
    return _digest(path)


def _digest(path: str | Path) -> str:
    with open(path, "rb", buffering=0) as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
