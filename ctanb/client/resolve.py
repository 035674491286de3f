"""Target names to sky positions: Sesame online, with caches and offline fallbacks.

Resolution order (first hit wins):

1. the persistent cache of earlier Sesame answers, ``home_dir()/names.json``;
2. :data:`WELL_KNOWN_SOURCES`, a small bundled table of bright TeV sources
   (SIMBAD positions), so that "Crab" or "PKS 2155-304" resolve without network;
3. Sesame (CDS), through :meth:`astropy.coordinates.SkyCoord.from_name`, with a
   short timeout; skipped when ``CTANB_OFFLINE=1`` or ``offline=True``;
4. gamma-cat (``catalogs/gammacat/gammacat.fits.gz`` under ``CTANB_DATA``, when
   present): 160+ TeV sources with their other names;
5. the archive's own target names (mean pointing of each ``target_name``).

An unknown name raises :class:`~ctanb.ResolveError` listing close matches
(difflib) among every name known locally.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from difflib import get_close_matches
from pathlib import Path

from .._errors import CtanbError, ResolveError
from .._settings import data_dir, home_dir

__all__ = ["WELL_KNOWN_SOURCES", "NameResolver", "ResolvedName", "normalize_name"]

#: Bright TeV sources with ICRS positions in degrees (SIMBAD), and their aliases.
#: Kept small on purpose: it is the offline floor, gamma-cat and Sesame do the rest.
WELL_KNOWN_SOURCES: dict[str, tuple[float, float, tuple[str, ...]]] = {
    "Crab Nebula": (83.63308, 22.01450, ("Crab", "M 1", "M1", "Crab Pulsar", "CrabNebula")),
    "Mrk 421": (166.11381, 38.20883, ("Markarian 421",)),
    "Mrk 501": (253.46757, 39.76017, ("Markarian 501",)),
    "PKS 2155-304": (329.71694, -30.22559, ()),
    "PKS 2005-489": (302.35579, -48.83160, ()),
    "PKS 1510-089": (228.21055, -9.09995, ()),
    "1ES 1959+650": (299.99938, 65.14851, ()),
    "BL Lac": (330.68038, 42.27777, ()),
    "3C 279": (194.04653, -5.78931, ()),
    "3C 273": (187.27792, 2.05239, ()),
    "M 87": (187.70593, 12.39112, ("M87", "Virgo A")),
    "Cen A": (201.36506, -43.01911, ("Centaurus A", "NGC 5128")),
    "NGC 253": (11.88806, -25.28822, ()),
    "MSH 15-52": (228.48174, -59.13578, ("PSR B1509-58", "HESS J1514-591", "MSH 15-5-02")),
    "RX J1713.7-3946": (258.38750, -39.76667, ("RXJ 1713.7-3946", "HESS J1713-397")),
    "Vela X": (128.75000, -45.60000, ("HESS J0835-455",)),
    "Vela Pulsar": (128.83588, -45.17635, ("PSR B0833-45", "Vela")),
    "Sgr A*": (266.41684, -29.00781, ("Galactic Centre", "Galactic Center", "HESS J1745-290")),
    "Cas A": (350.85000, 58.81500, ("Cassiopeia A",)),
    "Tycho SNR": (6.33417, 64.13833, ("Tycho", "SN 1572")),
    "SN 1006": (225.59200, -41.93700, ()),
    "IC 443": (94.25000, 22.53000, ()),
    "Geminga": (98.47564, 17.77025, ()),
    "LS 5039": (276.56292, -14.84840, ()),
    "PSR B1259-63": (195.69854, -63.83569, ()),
    "Kepler SNR": (262.67083, -21.48722, ("SN 1604", "Kepler")),
    "Westerlund 1": (251.76667, -45.85000, ()),
    "Pictor A": (79.95708, -45.77883, ()),
    "SN 1987A": (83.86675, -69.26974, ()),
}

_SESAME_TIMEOUT_S = 3.0


def normalize_name(name: str) -> str:
    """The lookup key of a target name: lower case, without spaces or underscores."""
    return "".join(ch for ch in name.lower() if not ch.isspace() and ch != "_")


@dataclass(frozen=True)
class ResolvedName:
    """A target name and where it points.

    Attributes
    ----------
    name : str
        The name as asked.
    ra, dec : float
        ICRS position in degrees.
    source : str
        Who answered: ``cache``, ``bundled``, ``sesame``, ``gammacat`` or ``archive``.
    """

    name: str
    ra: float
    dec: float
    source: str

    def skycoord(self):
        """The position as an astropy SkyCoord."""
        from astropy.coordinates import SkyCoord

        return SkyCoord(self.ra, self.dec, unit="deg", frame="icrs")


class NameResolver:
    """Resolve target names (Sesame with persistent cache and offline fallbacks).

    Parameters
    ----------
    cache_file : Path, optional
        JSON file of earlier answers (default ``home_dir()/names.json``).
    offline : bool, optional
        Never contact Sesame. Default: true when ``CTANB_OFFLINE=1``.
    archive_names : callable, optional
        Returns ``{target_name: (ra, dec)}`` from the archive; called at most once,
        only when the other sources fail.
    timeout : float
        Seconds to wait for Sesame.
    """

    def __init__(
        self,
        cache_file: Path | None = None,
        *,
        offline: bool | None = None,
        archive_names: Callable[[], Mapping[str, tuple[float, float]]] | None = None,
        timeout: float = _SESAME_TIMEOUT_S,
    ) -> None:
        self.cache_file = Path(cache_file) if cache_file else home_dir() / "names.json"
        self._offline = offline
        self._archive_names_fn = archive_names
        self._archive_names: dict[str, tuple[str, float, float]] | None = None
        self.timeout = timeout
        self._lock = threading.Lock()

    @property
    def offline(self) -> bool:
        """True when Sesame is not asked (argument, else ``CTANB_OFFLINE``)."""
        if self._offline is not None:
            return self._offline
        return os.environ.get("CTANB_OFFLINE", "").strip().lower() in ("1", "true", "yes")

    def resolve(self, name: str) -> ResolvedName:
        """The ICRS position of *name*.

        Raises
        ------
        ResolveError
            When no source knows the name; ``suggestions`` lists close matches.
        """
        key = normalize_name(name)
        if not key:
            raise ResolveError("the target name is empty", name=name)
        cached = self._read_cache().get(key)
        if cached:
            return ResolvedName(name, cached["ra"], cached["dec"], "cache")
        bundled = _bundled_index().get(key)
        if bundled:
            return ResolvedName(name, bundled[1], bundled[2], "bundled")
        sesame_note = "Sesame skipped (offline)"
        if not self.offline:
            found, sesame_note = self._ask_sesame(name)
            if found is not None:
                self._write_cache(key, name, *found)
                return ResolvedName(name, found[0], found[1], "sesame")
        hit = _gammacat_index().get(key)
        if hit:
            return ResolvedName(name, hit[1], hit[2], "gammacat")
        hit = self._archive_index().get(key)
        if hit:
            return ResolvedName(name, hit[1], hit[2], "archive")
        suggestions = self._suggest(name)
        hint = f" Did you mean: {', '.join(suggestions)}?" if suggestions else ""
        raise ResolveError(
            f"cannot resolve target name {name!r} ({sesame_note}; not in the bundled "
            f"TeV source list, gamma-cat or the archive's target names).{hint} "
            "Give ra=/dec= in degrees instead.",
            name=name,
            suggestions=suggestions,
        )

    # --- sources --------------------------------------------------------------------
    def _ask_sesame(self, name: str) -> tuple[tuple[float, float] | None, str]:
        from astropy.coordinates import SkyCoord
        from astropy.coordinates.name_resolve import NameResolveError
        from astropy.utils.data import conf

        try:
            with conf.set_temp("remote_timeout", self.timeout):
                coord = SkyCoord.from_name(name, parse=False)
        except NameResolveError as exc:
            text = str(exc)
            unreachable = "unable to" in text.lower() or "timed out" in text.lower()
            return None, ("Sesame unreachable" if unreachable else "unknown to Sesame")
        except OSError:
            return None, "Sesame unreachable"
        icrs = coord.icrs
        return (float(icrs.ra.deg), float(icrs.dec.deg)), "Sesame"

    def _archive_index(self) -> dict[str, tuple[str, float, float]]:
        if self._archive_names is None:
            self._archive_names = {}
            if self._archive_names_fn is not None:
                try:
                    names = self._archive_names_fn()
                except CtanbError:  # the archive is only a fallback; its failure is not the name's
                    names = {}
                self._archive_names = {
                    normalize_name(n): (n, ra, dec) for n, (ra, dec) in names.items() if n
                }
        return self._archive_names

    def _suggest(self, name: str) -> list[str]:
        known: dict[str, str] = {}
        for index in (_bundled_index(), _gammacat_index(), self._archive_index()):
            for key, (display, *_rest) in index.items():
                known.setdefault(key, display)
        for key, entry in self._read_cache().items():
            known.setdefault(key, entry.get("name", key))
        keys = get_close_matches(normalize_name(name), list(known), n=5, cutoff=0.6)
        out: list[str] = []
        for k in keys:
            if known[k] not in out:
                out.append(known[k])
        return out

    # --- persistent cache -------------------------------------------------------------
    def _read_cache(self) -> dict[str, dict]:
        try:
            data = json.loads(self.cache_file.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _write_cache(self, key: str, name: str, ra: float, dec: float) -> None:
        with self._lock:
            data = self._read_cache()
            data[key] = {
                "name": name,
                "ra": ra,
                "dec": dec,
                "source": "sesame",
                "time": time.time(),
            }
            tmp = self.cache_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
            # Atomic replace: a second kernel reading at the same time sees old or new.
            tmp.replace(self.cache_file)


_BUNDLED: dict[str, tuple[str, float, float]] | None = None
_GAMMACAT: dict[str, tuple[str, float, float]] | None = None


def _bundled_index() -> dict[str, tuple[str, float, float]]:
    global _BUNDLED
    if _BUNDLED is None:
        index: dict[str, tuple[str, float, float]] = {}
        for name, (ra, dec, aliases) in WELL_KNOWN_SOURCES.items():
            for alias in (name, *aliases):
                index[normalize_name(alias)] = (name, ra, dec)
        _BUNDLED = index
    return _BUNDLED


def _gammacat_index() -> dict[str, tuple[str, float, float]]:
    global _GAMMACAT
    if _GAMMACAT is None:
        _GAMMACAT = {}
        path = data_dir() / "catalogs" / "gammacat" / "gammacat.fits.gz"
        if path.is_file():
            _GAMMACAT = _read_gammacat(path)
    return _GAMMACAT


def _read_gammacat(path: Path) -> dict[str, tuple[str, float, float]]:
    from astropy.table import Table

    index: dict[str, tuple[str, float, float]] = {}
    table = Table.read(path)
    for row in table:
        ra, dec = float(row["ra"]), float(row["dec"])
        if not (math.isfinite(ra) and math.isfinite(dec)):
            continue
        common = str(row["common_name"]).strip()
        names = [common]
        for col in ("gamma_names", "other_names", "tevcat_name"):
            value = row[col] if col in table.colnames else ""
            if value is not None and str(value) not in ("", "--"):
                names += [n.strip() for n in str(value).split(",") if n.strip()]
        for n in names:
            index.setdefault(normalize_name(n), (common, ra, dec))
    return index


def mean_positions(rows: list[tuple[str, float, float]]) -> dict[str, tuple[float, float]]:
    """Mean position per name of ``(name, ra, dec)`` rows (averaged as unit vectors)."""
    sums: dict[str, list[float]] = {}
    for name, ra, dec in rows:
        if name is None or ra is None or dec is None:
            continue
        r, d = math.radians(float(ra)), math.radians(float(dec))
        acc = sums.setdefault(str(name), [0.0, 0.0, 0.0])
        acc[0] += math.cos(d) * math.cos(r)
        acc[1] += math.cos(d) * math.sin(r)
        acc[2] += math.sin(d)
    out = {}
    for name, (x, y, z) in sums.items():
        norm = math.sqrt(x * x + y * y + z * z) or 1.0
        out[name] = (
            math.degrees(math.atan2(y, x)) % 360.0,
            math.degrees(math.asin(max(-1.0, min(1.0, z / norm)))),
        )
    return out
