"""The class of an observation's target (ObsCore ``target_class``) from a real classification.

Two sources, in this order:

1. gamma-cat (``CTANB_DATA/catalogs/gammacat/gammacat.fits.gz``, the open TeV
   source catalogue shipped with the data): every name of a source
   (``common_name``, ``gamma_names``, ``other_names``, TeVCat names) gives its
   ``classes``, reduced to the coarse vocabulary below.
2. :data:`OBJECT_CLASSES`, a curated list for objects H.E.S.S. and the other
   releases point at that gamma-cat does not hold (not, or not yet, TeV sources:
   many H.E.S.S. DR1 "off data" runs), with the SIMBAD object type each follows.

A target neither knows keeps no class (``None``), except pointings named by
coordinates only, which are ``field``. The coarse vocabulary is what a search
asks for ("all blazars"): ``blazar`` (BL Lac objects of every peak frequency and
FSRQs), ``radio-galaxy``, ``starburst``, ``agn``, ``galaxy``, ``pwn``, ``snr``,
``psr``, ``binary``, ``globular-cluster``, ``grb``, ``gc``, ``unid``, ``field``.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

__all__ = ["GAMMACAT_CLASSES", "OBJECT_CLASSES", "classify", "gammacat_classes", "name_key"]

#: gamma-cat's ``classes`` values -> target_class (the first known one of a list wins).
GAMMACAT_CLASSES: dict[str, str] = {
    "hbl": "blazar", "ibl": "blazar", "lbl": "blazar", "fsrq": "blazar", "blazar": "blazar",
    "fri": "radio-galaxy",
    # gamma-cat's 'galaxy' class holds the starburst galaxies M 82 and NGC 253.
    "galaxy": "starburst",
    "pwn": "pwn", "psr": "pwn", "snr": "snr", "bin": "binary", "gc": "gc", "unid": "unid",
    "mc": "unid", "other": "unid",
}  # fmt: skip

#: Curated classes (keys: :func:`name_key` of the name), with the SIMBAD object type.
OBJECT_CLASSES: dict[str, str] = {
    # BL Lac objects (SIMBAD 'BLLac') and flat-spectrum radio quasars ('Blazar'/'QSO')
    "1es0145138": "blazar", "1es0414009": "blazar", "1es2343151": "blazar",
    "pks0548322": "blazar", "pks2316423": "blazar", "exo055643838": "blazar",
    "3c273": "blazar", "pks2155304": "blazar", "mrk421": "blazar", "1es0229200": "blazar",
    # radio galaxies: 3C 120 (broad-line FR I), Pictor A (FR II), Centaurus A (FR I)
    "3c120": "radio-galaxy", "pictora": "radio-galaxy", "cena": "radio-galaxy",
    "centaurusa": "radio-galaxy",
    # starburst galaxies (SIMBAD 'SBG'/'LIRG')
    "ngc253": "starburst", "arp220": "starburst", "m82": "starburst",
    # other galaxies: NGC 1068 (Seyfert 2), NGC 1399 (giant elliptical, Fornax),
    # Q J2254-2725 (quasar)
    "ngc1068": "agn", "ngc1399": "galaxy", "qj225482725": "agn",
    # supernova remnants (Kepler's SNR = SN 1604; SN 1987A's young remnant)
    "sn1006": "snr", "keplersnr": "snr", "kepler": "snr", "sn1987a": "snr",
    "rxj171373946": "snr",
    # pulsar wind nebulae and pulsars
    "crab": "pwn", "crabnebula": "pwn", "msh1552": "pwn", "velax": "pwn",
    "psrj04374715": "psr",
    # binaries: AE Aqr (cataclysmic variable), GX 339-4 and Sco X-1 (low-mass X-ray)
    "aeaqr": "binary", "gx3394": "binary", "scox1": "binary",
    # 47 Tucanae (a pointing north-west of the cluster centre)
    "47tuc": "globular-cluster", "47tucnw": "globular-cluster",
    # the position of a gamma-ray burst
    "grb040425north": "grb",
}  # fmt: skip

_COORDINATES = re.compile(r"[\d:+\-. ]+")


def name_key(name: str) -> str:
    """Lower-case letters and digits of *name* (how names are compared)."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


@functools.lru_cache(maxsize=4)
def gammacat_classes(path: Path | None = None) -> dict[str, str]:
    """Every name of every gamma-cat source -> its target_class (empty without the file)."""
    if path is None:
        from .._settings import data_dir

        path = data_dir() / "catalogs" / "gammacat" / "gammacat.fits.gz"
    if not path.is_file():
        return {}
    from astropy.table import Table

    table = Table.read(path)
    out: dict[str, str] = {}
    columns = ("common_name", "gamma_names", "other_names", "tevcat_name", "tgevcat_name")
    for row in table:
        fine = [c.strip() for c in str(row["classes"]).split(",")]
        coarse = next((GAMMACAT_CLASSES[c] for c in fine if c in GAMMACAT_CLASSES), None)
        if coarse is None:
            continue
        for column in columns:
            value = row[column]
            if value is None or getattr(value, "mask", False):
                continue
            for name in str(value).split(","):
                if name.strip() and name_key(name) not in out:
                    out[name_key(name)] = coarse
    return out


def classify(*names: str) -> str | None:
    """The target_class of the first of *names* gamma-cat or :data:`OBJECT_CLASSES` knows.

    A name made of coordinates only (``00:29:18 -73:00:00``) gives ``field``;
    otherwise None when no source knows the names.
    """
    catalog = gammacat_classes()
    for name in names:
        key = name_key(name or "")
        if not key:
            continue
        found = catalog.get(key) or OBJECT_CLASSES.get(key)
        if found:
            return found
    if any(name and _COORDINATES.fullmatch(name.strip()) for name in names):
        return "field"
    return None
