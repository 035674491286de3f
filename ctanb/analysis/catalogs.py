"""Published catalogs: Fermi-LAT 3FGL/3FHL, H.E.S.S. HGPS and gamma-cat (via gammapy.catalog).

The catalog files come from the shared data folder (``<CTANB_DATA>/catalogs``),
read with gammapy's catalog classes and explicit file names, so nothing needs
the network::

    from ctanb.analysis.catalogs import catalog_spectra
    for spectrum in catalog_spectra(83.633, 22.014):
        print(spectrum.catalog, spectrum.source_name, spectrum.reference)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from .._errors import AnalysisError, ConfigError
from .._settings import release_dir

__all__ = ["CATALOGS", "CatalogSpectrum", "catalog_spectra", "load_catalog"]

#: Catalog key -> gammapy class, file under ``catalogs/`` and the reference to cite.
CATALOGS: dict[str, dict[str, str]] = {
    "3fgl": {
        "class": "SourceCatalog3FGL",
        "file": "fermi/gll_psc_v16.fit.gz",
        "title": "Fermi-LAT 3FGL",
        "reference": "Acero et al. 2015, ApJS 218, 23 (3FGL), Fermi-LAT collaboration",
    },
    "3fhl": {
        "class": "SourceCatalog3FHL",
        "file": "fermi/gll_psch_v13.fit.gz",
        "title": "Fermi-LAT 3FHL",
        "reference": "Ajello et al. 2017, ApJS 232, 18 (3FHL), Fermi-LAT collaboration",
    },
    "hgps": {
        "class": "SourceCatalogHGPS",
        "file": "hgps_catalog_v1.fits.gz",
        "title": "H.E.S.S. HGPS",
        "reference": "H.E.S.S. Collaboration, Abdalla et al. 2018, A&A 612, A1 (HGPS)",
    },
    "gamma-cat": {
        "class": "SourceCatalogGammaCat",
        "file": "gammacat/gammacat.fits.gz",
        "title": "gamma-cat",
        "reference": "gamma-cat, Deil et al. 2017, AIP Conf. Proc. 1792, 070006 (CC BY 4.0)",
    },
}


@dataclass(frozen=True)
class CatalogSpectrum:
    """Flux points (and model) of one catalog source, with whom to cite.

    Parameters
    ----------
    catalog : str
        The catalog's key (``hgps``, ``gamma-cat``, ``3fhl``, ...).
    source_name : str
        The source's name in the catalog.
    separation_deg : float
        Its distance from the position asked for, in degrees.
    flux_points : gammapy.estimators.FluxPoints
        Its flux points.
    spectral_model : gammapy spectral model
        Its spectral model in the catalog.
    reference : str
        Whom to cite for these points.
    """

    catalog: str
    source_name: str
    separation_deg: float
    flux_points: Any
    spectral_model: Any
    reference: str

    @property
    def label(self) -> str:
        """Legend text: catalog and source name."""
        return f"{CATALOGS[self.catalog]['title']}: {self.source_name}"


def catalog_path(key: str) -> Path:
    """The file of catalog *key* in the shared data folder."""
    if key not in CATALOGS:
        raise ConfigError(f"unknown catalog {key!r}; known: {', '.join(CATALOGS)}")
    path = release_dir("catalogs") / CATALOGS[key]["file"]
    if not path.is_file():
        raise ConfigError(f"catalog file {path} is missing (catalog {key!r})")
    return path


@cache
def load_catalog(key: str) -> Any:
    """The gammapy catalog object of *key* (``"3fgl"``, ``"3fhl"``, ``"hgps"``, ``"gamma-cat"``), cached."""
    import gammapy.catalog as catalog_module

    path = catalog_path(key)
    cls = getattr(catalog_module, CATALOGS[key]["class"])
    try:
        return cls(filename=str(path))
    except (OSError, KeyError, ValueError) as exc:
        raise ConfigError(f"cannot read catalog {key!r} from {path}: {exc}") from None


def catalog_spectra(
    ra_deg: float,
    dec_deg: float,
    *,
    radius_deg: float = 0.1,
    catalogs: tuple[str, ...] = ("3fgl", "3fhl", "gamma-cat"),
) -> list[CatalogSpectrum]:
    """Every catalog source within *radius_deg* of a position that has flux points.

    A source may appear as several entries (3FGL lists the Crab pulsar and the
    nebula's synchrotron and inverse-Compton components separately).

    Parameters
    ----------
    ra_deg, dec_deg : float
        ICRS position in degrees.
    radius_deg : float
        Search radius in degrees.
    catalogs : tuple of str
        Which catalogs (gammapy's names: ``3fgl``, ``3fhl``, ``gamma-cat``, ...).

    Returns
    -------
    list of CatalogSpectrum
        The sources found, each with its flux points and model.

    Raises
    ------
    AnalysisError
        No source with flux points there.
    """
    from astropy.coordinates import SkyCoord

    position = SkyCoord(ra_deg, dec_deg, unit="deg", frame="icrs")
    found = []
    for key in catalogs:
        cat = load_catalog(key)
        separation = cat.positions.separation(position).deg
        for index in separation.argsort():
            if separation[index] > radius_deg:
                break
            source = cat[int(index)]
            try:
                points = source.flux_points
            except (AttributeError, KeyError, ValueError):
                continue  # a gamma-cat source without a published SED
            if points is None or len(points.energy_ref) == 0:
                continue
            found.append(
                CatalogSpectrum(
                    catalog=key,
                    source_name=str(source.name),
                    separation_deg=float(separation[index]),
                    flux_points=points,
                    spectral_model=_model_or_none(source),
                    reference=_reference(key, source),
                )
            )
    if not found:
        raise AnalysisError(
            f"no source with flux points within {radius_deg} deg of (ra={ra_deg}, dec={dec_deg}) "
            f"in {', '.join(catalogs)}"
        )
    return found


def _model_or_none(source: Any) -> Any:
    try:
        return source.spectral_model()
    except (AttributeError, KeyError, ValueError, TypeError):
        return None


def _reference(key: str, source: Any) -> str:
    base = CATALOGS[key]["reference"]
    if key == "gamma-cat":
        ref = source.data.get("reference_id")
        if ref:
            return f"{ref} (via {base})"
    return base
