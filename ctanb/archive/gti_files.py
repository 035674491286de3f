"""GTI tables of observation files (GADF DL3, X-ray, Fermi) read as astropy Times, and time MOC files.

Part of :mod:`ctanb.archive.gti`, which re-exports :func:`read_gti`, :func:`gti_mjd`
and :func:`read_tmoc`.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .._errors import TimeCoverageError

if TYPE_CHECKING:  # pragma: no cover
    from astropy.time import Time
    from mocpy import TimeMOC

__all__ = ["MAX_TMOC_FILE_BYTES", "gti_mjd", "read_gti", "read_tmoc"]

#: Largest time MOC file read (checked before reading): 16 MB holds far more than the
#: :data:`ctanb.client.during.MAX_INTERVALS` a search takes, while a bigger file would
#: take minutes and gigabytes to parse before being refused.
MAX_TMOC_FILE_BYTES = 16_000_000

_UNIT_SECONDS = {"s": 1.0, "sec": 1.0, "second": 1.0, "seconds": 1.0, "d": 86400.0,
                 "day": 86400.0, "days": 86400.0, "ms": 1e-3, "us": 1e-6}  # fmt: skip


def _mjdref(header: dict, path: Path) -> float:
    if "MJDREFI" in header:
        return float(header["MJDREFI"]) + float(header.get("MJDREFF", 0.0) or 0.0)
    if "MJDREF" in header:
        return float(header["MJDREF"])
    raise TimeCoverageError(f"{path}: the GTI and EVENTS headers lack MJDREFI/MJDREFF")


def _scale(header: dict, path: Path) -> str:
    scale = str(header.get("TIMESYS", "TT") or "TT").strip().lower()
    if scale == "gps":  # GPS = TAI - 19 s; astropy knows it only as a format
        return "tai"
    from astropy.time import Time

    # LOCAL (a free-running clock) is an astropy scale but has no link to TT
    usable = [s for s in Time.SCALES if s != "local"]
    if scale not in usable:
        raise TimeCoverageError(
            f"{path}: time system TIMESYS={header.get('TIMESYS')!r} cannot be placed on "
            f"the TT time line: it must be one of {', '.join(s.upper() for s in usable)}"
        )
    return scale


def _gti_extension(names: list[str], hdu: str) -> str | None:
    """*hdu* when the file has it, else the first extension named like a GTI table.

    X-ray missions name them differently (XMM-Newton ``STDGTI01``, Chandra ``GTI7``,
    Swift ``GTI``...): any extension whose name contains ``GTI`` is one.
    """
    if hdu.upper() in names:
        return hdu.upper()
    return next((n for n in names[1:] if "GTI" in n.upper()), None)


def read_gti(path: str | Path, *, hdu: str = "GTI") -> tuple[Time, Time]:
    """The good-time intervals of a GADF DL3 file.

    Parameters
    ----------
    path : str or Path
        A GADF event file (or any FITS file with a GTI table of ``START``/``STOP``
        columns).
    hdu : str, optional
        Name of the GTI extension (default ``"GTI"``); when the file has none of
        that name, the first extension whose name contains ``GTI`` (e.g. XMM-Newton's
        ``STDGTI01``).

    Returns
    -------
    start, stop : astropy.time.Time
        Start and stop of each interval, in the TT scale, sorted by start.

    Raises
    ------
    TimeCoverageError
        When the file cannot be read, has no GTI table (the message lists the
        extensions it has), lacks the time reference keywords, or holds an
        interval whose stop is not after its start.

    Notes
    -----
    The time reference is ``MJDREFI + MJDREFF`` (or ``MJDREF``) in the scale
    ``TIMESYS`` (default TT), plus ``TIMEZERO``; ``START``/``STOP`` are in the
    column unit, else ``TIMEUNIT`` (default seconds). Keywords missing from the GTI
    header are taken from the EVENTS header, as some writers put them only there.
    """
    from astropy.io import fits
    from astropy.time import Time, TimeDelta

    path = Path(path)
    try:
        with fits.open(path, memmap=False) as hdul:
            names = [h.name for h in hdul]
            hdu = _gti_extension(names, hdu)
            if hdu is None:
                raise TimeCoverageError(
                    f"{path}: no GTI extension (it has {', '.join(names) or 'none'})"
                )
            table = hdul[hdu]
            header = dict(hdul["EVENTS"].header) if "EVENTS" in names else {}
            header.update({k: v for k, v in table.header.items() if k})
            cols = {c.upper(): c for c in table.columns.names}
            if "START" not in cols or "STOP" not in cols:
                raise TimeCoverageError(f"{path}: the {hdu} table has no START/STOP columns")
            start = np.asarray(table.data[cols["START"]], dtype=float)
            stop = np.asarray(table.data[cols["STOP"]], dtype=float)
            unit = table.columns[cols["START"]].unit or header.get("TIMEUNIT", "s")
    except TimeCoverageError:
        raise
    except (OSError, EOFError, ValueError, TypeError, KeyError, IndexError) as exc:
        raise TimeCoverageError(f"{path}: cannot read FITS: {exc or type(exc).__name__}") from None
    factor = _UNIT_SECONDS.get(str(unit).strip().lower())
    if factor is None:
        raise TimeCoverageError(f"{path}: unknown time unit {unit!r} of the {hdu} table")
    ref = Time(_mjdref(header, path), format="mjd", scale=_scale(header, path))
    ref = ref + TimeDelta(float(header.get("TIMEZERO", 0.0) or 0.0) * factor, format="sec")
    t_start = (ref + TimeDelta(start * factor, format="sec")).tt
    t_stop = (ref + TimeDelta(stop * factor, format="sec")).tt
    bad = np.flatnonzero(~(t_stop > t_start)) if start.size else []
    if len(bad):
        i = int(bad[0])
        raise TimeCoverageError(
            f"{path}: GTI row {i} stops ({stop[i]}) before it starts ({start[i]})"
        )
    order = np.argsort(t_start.mjd, kind="stable")
    return t_start[order], t_stop[order]


def gti_mjd(path: str | Path, *, hdu: str = "GTI") -> np.ndarray:
    """The GTIs of *path* as an ``(n, 2)`` array of MJD (TT), merged and sorted.

    See :func:`read_gti` for the keywords honoured and the errors raised.
    """
    start, stop = read_gti(path, hdu=hdu)
    from .gti import merge_intervals

    return merge_intervals(np.column_stack([start.tt.mjd, stop.tt.mjd]))


def read_tmoc(path: str | Path) -> TimeMOC:
    """Read a time MOC file (MOC 2.0 FITS, else ASCII).

    Raises
    ------
    TimeCoverageError
        When the file does not exist or is neither a FITS nor an ASCII time MOC.
    """
    from mocpy import TimeMOC

    from .gti import (
        NOT_A_TMOC,
        tmoc_from_string,
    )  # ctanb.archive.gti imports this module: not at the top

    path = Path(path)
    check_file(path, "time MOC file")
    size = path.stat().st_size
    if size > MAX_TMOC_FILE_BYTES:  # before reading: a huge file would take minutes and GBs
        raise TimeCoverageError(
            f"{path}: {size / 1e6:.1f} MB, too large for a time MOC file (the limit is "
            f"{MAX_TMOC_FILE_BYTES // 1_000_000} MB): give fewer intervals or a coarser order"
        )
    if _is_fits(path):
        _check_fits_order(path)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return TimeMOC.from_fits(str(path))
        except Exception as exc:  # mocpy: ValueError, KeyError, or a Rust panic
            raise TimeCoverageError(f"{path}: not a readable time MOC FITS file ({exc})") from None
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise TimeCoverageError(f"{path}: neither a FITS nor an ASCII time MOC file") from None
    try:
        return tmoc_from_string(text)
    except TimeCoverageError as exc:
        if str(exc).startswith(NOT_A_TMOC):
            # that message quotes the text: not the content of a file
            raise TimeCoverageError(
                f"{path}: neither a FITS nor an ASCII time MOC (MOC 2.0) file"
            ) from None
        raise TimeCoverageError(f"{path}: {exc}") from None


def check_file(path: Path, what: str = "file") -> None:
    """Refuse a missing *path* or a folder, in the user's words."""
    if path.is_dir():
        raise TimeCoverageError(f"{path}: is a folder, not a {what}")
    if not path.is_file():
        raise TimeCoverageError(f"{path}: no such {what}")


def open_fits_quietly(path: Path) -> tuple[list[str], list]:
    """The extension names and headers of a FITS file; a truncated one is named so.

    astropy only warns (on stderr) about a truncated file and then lists fewer
    extensions: the warnings are caught here and turned into one clear error.
    """
    from astropy.io import fits

    damaged = f"{path}: the FITS file is truncated or damaged"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with fits.open(path, memmap=False) as hdul:
                headers = [h.header for h in hdul]
        except Exception as exc:  # astropy raises many types for a broken file
            raise TimeCoverageError(f"{damaged} ({exc or type(exc).__name__})") from None
    if any("corrupted" in str(w.message) or "truncated" in str(w.message) for w in caught):
        raise TimeCoverageError(damaged)
    names = [str(h.get("EXTNAME", "") or ("PRIMARY" if i == 0 else f"HDU {i} (no name)"))
             for i, h in enumerate(headers)]  # fmt: skip
    return names, headers


def _check_fits_order(path: Path) -> None:
    """The MOC orders a FITS header declares (MOCORD_T, TORDER, MOCORDER) are 0..61."""
    from astropy.io import fits

    from . import gti  # imports this module: not at the top

    try:
        with fits.open(path, memmap=False) as hdul:
            headers = [h.header for h in hdul[1:]]
    except Exception:  # damaged: mocpy's reading says so
        return
    for header in headers:
        for key in ("MOCORD_T", "TORDER", "MOCORDER"):
            if key in header:
                try:
                    try:
                        order = int(header[key])
                    except (TypeError, ValueError):
                        order = header[key]
                    gti._check_order(order)
                except TimeCoverageError as exc:  # a ValueError too: caught first
                    raise TimeCoverageError(f"{path}: {key}={header[key]}: {exc}") from None


def _is_fits(path: Path) -> bool:
    """True for a FITS file, also gzip-compressed (``.fits.gz``)."""
    import gzip

    with open(path, "rb") as fh:
        head = fh.read(2)
    if head == b"\x1f\x8b":
        try:
            with gzip.open(path, "rb") as fh:
                head = fh.read(6)
        except OSError:
            return False
        return head == b"SIMPLE"
    with open(path, "rb") as fh:
        return fh.read(6) == b"SIMPLE"
