"""Flux points and SEDs as spectra for spectral tools (``spectrum.load.ssa-generic``).

A flux-point product (gammapy's ``gadf-sed`` format: ``e_ref``/``e_min``/``e_max`` and
``dnde``, ``e2dnde``, ``flux`` or ``eflux`` with errors and upper limits) becomes a
VOTable whose columns keep their units and carry the UCDs and IVOA Spectrum data-model
utypes a spectral tool reads (spectral axis ``em.energy``, flux axis
``phot.flux.density;em.energy`` for dN/dE, errors ``stat.error``), with the target and
the product's DID as PARAMs; :func:`spectrum_meta` gives the SSA fields of the SAMP
message's ``meta`` map (``Access.Format``, ``Target.Name``, ``Char.SpectralAxis.Unit``,
...). The same table can be sent as a plain table (``table.load.votable``).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from .._errors import CtanbError

__all__ = ["FLUX_UCDS", "is_spectrum_product", "spectrum_meta", "spectrum_table"]

_SPEC = "spec:Spectrum.Data."
#: Flux column of each gammapy SED type -> its UCD.
FLUX_UCDS = {
    "dnde": "phot.flux.density;em.energy",
    "e2dnde": "phot.flux;em.energy",
    "flux": "phot.flux",
    "eflux": "phot.flux;em.energy",
}
_ENERGY = {
    "e_ref": ("em.energy;meta.main", _SPEC + "SpectralAxis.Value", "Reference energy"),
    "e_min": ("em.energy;stat.min", _SPEC + "SpectralAxis.Accuracy.BinLow", "Bin low edge"),
    "e_max": ("em.energy;stat.max", _SPEC + "SpectralAxis.Accuracy.BinHigh", "Bin high edge"),
}
_EXTRA = {"ts": ("stat.value", "Test statistic"), "sqrt_ts": ("stat.snr", "Significance"),
          "is_ul": ("meta.code", "True when the point is an upper limit")}  # fmt: skip
#: dataproduct_type values that are spectra (ObsCore vocabulary).
SPECTRUM_TYPES = ("spectrum", "sed")


def is_spectrum_product(row: Any) -> bool:
    """True when an ObsCore row (record or mapping) is a spectrum or SED product."""
    try:
        kind = row["dataproduct_type"]
    except (KeyError, IndexError, TypeError, ValueError):
        return False
    kind = kind.decode() if isinstance(kind, bytes) else str(kind)
    return kind.strip().lower() in SPECTRUM_TYPES


def _sed_table(source: Any):
    """The first FITS table of *source* that holds flux points."""
    from astropy.io import fits
    from astropy.table import Table

    if isinstance(source, Table):
        return source, {}
    if isinstance(source, str | Path):
        path = Path(source)
        if not path.is_file():
            raise CtanbError(f"spectrum file not found: {path}")
        source = path.read_bytes()
    if isinstance(source, bytes | bytearray):
        try:
            source = fits.open(io.BytesIO(bytes(source)), memmap=False)
        except (OSError, ValueError):
            raise CtanbError("this file is not a FITS flux-point product") from None
    if not isinstance(source, fits.HDUList):
        raise CtanbError(f"cannot send a {type(source).__name__} as a spectrum: give flux "
                         "points (a FITS file, its bytes, an HDUList or an astropy Table)")  # fmt: skip
    primary = dict(source[0].header)
    for hdu in source[1:]:
        names = {n.lower() for n in getattr(getattr(hdu, "columns", None), "names", [])}
        if names & set(FLUX_UCDS) and names & {"e_ref", "e_min"}:
            table = Table.read(hdu)
            table.meta = {**primary, **table.meta}
            return table, primary
    raise CtanbError("no flux points in this file (a table with e_ref or e_min and dnde, "
                     "e2dnde, flux or eflux columns)")  # fmt: skip


def spectrum_table(source: Any, *, name: str = "", target: str = "", did: str = ""):
    """Flux points as a spectrum table with units, UCDs and Spectrum-DM utypes.

    Parameters
    ----------
    source : path, bytes, HDUList or astropy.table.Table
        A flux-point product (``gadf-sed``) or its table.
    name, target, did : str, optional
        The spectrum's title, target name and publisher DID (PARAMs of the VOTable).

    Returns
    -------
    astropy.table.Table
        Columns ``e_ref``, ``e_min``, ``e_max``, the flux with its errors and upper
        limits, ``ts``/``sqrt_ts``/``is_ul`` when present; ``meta`` holds the PARAMs.
    """
    import numpy as np
    from astropy.table import Column, Table

    raw, header = _sed_table(source)
    cols = {c.lower(): raw[c] for c in raw.colnames}
    flux_name = str(raw.meta.get("SED_TYPE", "")).lower()
    if flux_name not in FLUX_UCDS or flux_name not in cols:
        flux_name = next((n for n in FLUX_UCDS if n in cols), "")
    out = Table()
    if "e_ref" not in cols:  # the geometric mean of the bin edges, as gammapy does
        cols["e_ref"] = np.sqrt(cols["e_min"] * cols["e_max"].to(cols["e_min"].unit))
    for key, (ucd, utype, text) in _ENERGY.items():
        if key in cols:
            out[key] = Column(_one_d(cols[key]), unit=_unit(cols[key]), description=text)
            out[key].meta.update(ucd=ucd, utype=utype)
    flux_ucd = FLUX_UCDS[flux_name]
    first = flux_ucd.split(";")[0]
    parts = {
        flux_name: (flux_ucd, _SPEC + "FluxAxis.Value", "Flux"),
        f"{flux_name}_err": (f"stat.error;{first}", _SPEC + "FluxAxis.Accuracy.StatError",
                             "Symmetric error"),
        f"{flux_name}_errp": (f"stat.error;{first};stat.max",
                              _SPEC + "FluxAxis.Accuracy.StatErrHigh", "Positive error"),
        f"{flux_name}_errn": (f"stat.error;{first};stat.min",
                              _SPEC + "FluxAxis.Accuracy.StatErrLow", "Negative error"),
        f"{flux_name}_ul": (f"{first};stat.max", _SPEC + "FluxAxis.Accuracy.UpperLim",
                            "Upper limit"),
    }  # fmt: skip
    for key, (ucd, utype, text) in parts.items():
        if key in cols:
            out[key] = Column(_one_d(cols[key]), unit=_unit(cols[key]), description=text)
            out[key].meta.update(ucd=ucd, utype=utype)
    for key, (ucd, text) in _EXTRA.items():
        if key in cols:
            out[key] = Column(_one_d(cols[key]), description=text)
            out[key].meta["ucd"] = ucd
    target = target or str(header.get("OBJECT", "") or raw.meta.get("OBJECT", "") or "")
    out.meta.update(name=name or target or "spectrum", target=target, did=did,
                    sed_type=flux_name)  # fmt: skip
    return out


def _one_d(column: Any) -> Any:
    import numpy as np

    value = np.asarray(getattr(column, "value", column))
    # gammapy writes one value per point as (n, 1) (a source axis); spectral tools want n.
    return value.reshape(len(value), -1)[:, 0] if value.ndim > 1 else value


def _unit(column: Any) -> Any:
    return getattr(column, "unit", None)


def spectrum_votable(table: Any) -> bytes:
    """The VOTable of a :func:`spectrum_table`, with its PARAMs (target, DID, title)."""
    from astropy.io.votable import from_table
    from astropy.io.votable.tree import Param

    votable = from_table(table)
    resource = votable.resources[0]
    resource.type = "results"
    inner = votable.get_first_table()
    inner.ID = "spectrum"  # a name with spaces is no XML ID
    inner.name = str(table.meta.get("name") or "spectrum")
    inner.utype = "spec:Spectrum"
    params = (("Target.Name", "meta.id;src", "ssa:Target.Name", table.meta.get("target")),
              ("DataID.Title", "meta.title", "ssa:DataID.Title", table.meta.get("name")),
              ("Curation.PublisherDID", "meta.ref.ivoid", "ssa:Curation.PublisherDID",
               table.meta.get("did")),
              ("Dataset.Type", "meta.code.class", "ssa:Dataset.Type", "Spectrum"))  # fmt: skip
    for name, ucd, utype, value in params:
        if value:
            inner.params.append(Param(votable, name=name, ucd=ucd, utype=utype,
                                      datatype="char", arraysize="*", value=str(value)))  # fmt: skip
    buffer = io.BytesIO()
    votable.to_xml(buffer)
    return buffer.getvalue()


def spectrum_meta(table: Any, *, url: str = "", content_type: str = "") -> dict[str, str]:
    """The SSA fields of a ``spectrum.load.ssa-generic`` message for *table*."""
    flux = table.meta.get("sed_type") or next(n for n in FLUX_UCDS if n in table.colnames)
    meta = {
        "Access.Reference": url,
        "Access.Format": content_type,
        "Target.Name": str(table.meta.get("target") or ""),
        "DataID.Title": str(table.meta.get("name") or ""),
        "Curation.PublisherDID": str(table.meta.get("did") or ""),
        "Dataset.Type": "Spectrum",
        "Char.SpectralAxis.Ucd": "em.energy",
        "Char.SpectralAxis.Unit": _vounit(table["e_ref"].unit),
        "Char.FluxAxis.Ucd": FLUX_UCDS[flux],
        "Char.FluxAxis.Unit": _vounit(table[flux].unit),
    }
    return {k: v for k, v in meta.items() if v}


def _vounit(unit: Any) -> str:
    # The IVOA unit syntax (VOUnit), as in the VOTable served.
    return unit.to_string("vounit") if unit is not None else ""
