"""The ObsCore row of a published product, from the product and its DL3 inputs.

``dataproduct_type`` is ObsCore's vocabulary (image, cube, spectrum, sed, timeseries,
measurements); ``dataproduct_subtype`` is ``<data level>-<kind>``; ``calib_level`` 3 for
DL4 and 4 for DL5. The footprint, pixels and energy range come from the product's WCS
image and energy bands when it has them, else from its inputs; times, target, facility
and instrument lists (a joint H.E.S.S.+MAGIC fit names both), proposal and pipeline
versions (``calib_version``, ``reco_version``, ``applied_cuts``) from the inputs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..datamodel import energy_tev_to_wavelength_m

__all__ = [
    "PRODUCT_COLLECTION",
    "analysis_context",
    "analysis_owner",
    "obscore_values",
    "step_config",
]

#: The ObsCore collection of published products.
PRODUCT_COLLECTION = "CTANB-PRODUCTS"

#: product_type recorded by ctanb steps -> ObsCore dataproduct_type (ObsCore vocabulary).
_PRODUCT_TYPES = {
    "flux_points": "sed",
    "flux": "sed",  # what SpectrumStep records for its flux points
    "sed": "sed",
    "spectrum": "spectrum",
    "lightcurve": "timeseries",
    "light_curve": "timeseries",
    "fit": "measurements",
    "model": "measurements",
}
_CALIB_LEVEL = {"DL3": 2, "DL4": 3, "DL5": 4}


def _unique(rows: list[dict[str, Any]], key: str) -> str | None:
    values = sorted({str(r[key]) for r in rows if r.get(key) not in (None, "")})
    return ", ".join(values) if values else None


def _image_geometry(path: Path) -> dict[str, Any]:
    """Footprint, pixels and energy range of a WCS image product (empty when none)."""
    import numpy as np
    from astropy.io import fits
    from astropy.wcs import WCS

    out: dict[str, Any] = {}
    with fits.open(path, memmap=False) as hdus:
        for hdu in hdus:
            header = hdu.header
            if hdu.is_image and header.get("NAXIS", 0) >= 2 and "CTYPE1" in header:
                wcs = WCS(header).celestial
                nx, ny = header["NAXIS1"], header["NAXIS2"]
                corners = wcs.pixel_to_world_values(
                    np.array([-0.5, nx - 0.5, nx - 0.5, -0.5]),
                    np.array([-0.5, -0.5, ny - 0.5, ny - 0.5]),
                )
                center = wcs.pixel_to_world_values((nx - 1) / 2, (ny - 1) / 2)
                out["s_region"] = " ".join(
                    f"{ra % 360:.6f} {dec:.6f}" for ra, dec in zip(*corners, strict=True)
                )
                out["s_ra"], out["s_dec"] = float(center[0]) % 360, float(center[1])
                scale = abs(float(wcs.proj_plane_pixel_scales()[0].to_value("deg")))
                out["s_fov"] = max(nx, ny) * scale
                out["s_resolution"] = scale * 3600
                out["s_xel1"], out["s_xel2"] = nx, ny
                out["em_xel"] = header.get("NAXIS3", 1)
                break
        # A fitted product's own range first (FIT_EMIN/FIT_EMAX, TeV, written by the
        # spectrum step), then its energy bands (E_MIN/E_MAX, or gadf-sed's e_min/e_max).
        fit = [h.header for h in hdus if "FIT_EMIN" in h.header and "FIT_EMAX" in h.header]
        if fit:
            out["energy_min"] = float(fit[0]["FIT_EMIN"])
            out["energy_max"] = float(fit[0]["FIT_EMAX"])
            return out
        for hdu in hdus:
            cols = getattr(hdu, "columns", None)
            names = {n.upper(): n for n in (cols.names if cols is not None else [])}
            if {"E_MIN", "E_MAX"} <= set(names):
                lo, hi = names["E_MIN"], names["E_MAX"]
                unit = cols[lo].unit or "TeV"
                factor = {"TeV": 1.0, "GeV": 1e-3, "MeV": 1e-6, "keV": 1e-9}.get(unit.strip(), 1.0)
                out["energy_min"] = float(np.min(hdu.data[lo])) * factor
                out["energy_max"] = float(np.max(hdu.data[hi])) * factor
                break
    return out


def _product_kind(path: Path, entity: Any) -> tuple[str, str]:
    kind = (entity.product_type or "product").lower()
    level = (entity.data_level or "DL4").upper()
    ptype = _PRODUCT_TYPES.get(kind)
    if ptype is None:
        from astropy.io import fits

        naxis3 = fits.getheader(path).get("NAXIS3", 1)
        ptype = "cube" if naxis3 > 1 else "image"
    return ptype, f"{level}-{kind}"


def obscore_values(
    path: Path, graph: Any, entity: Any, inputs: list[dict[str, Any]], curation: Any
) -> dict[str, Any]:
    """The ObsCore values of a product (without DID, access URL and rights).

    Parameters
    ----------
    path : Path
        The product file.
    graph, entity : ProvenanceGraph, EntityRecord
        Its embedded provenance and its own entity in it.
    inputs : list of dict
        The ObsCore rows of its DL3 inputs.
    curation : Curation
        Its curation (title, creator, reference).

    Returns
    -------
    dict
        Column name to value.
    """
    ptype, subtype = _product_kind(path, entity)
    level = subtype.split("-")[0]
    row: dict[str, Any] = {
        "dataproduct_type": ptype,
        "dataproduct_subtype": subtype,
        "calib_level": _CALIB_LEVEL.get(level, 3),
        "obs_collection": PRODUCT_COLLECTION,
        "access_format": "application/fits",
        "access_estsize": max(1, path.stat().st_size // 1024),
        "target_name": _unique(inputs, "target_name"),
        "target_class": _unique(inputs, "target_class"),
        "facility_name": _unique(inputs, "facility_name"),
        "instrument_name": _unique(inputs, "instrument_name"),
        "site": _unique(inputs, "site"),
        "proposal_id": _unique(inputs, "proposal_id"),
        "calib_version": _unique(inputs, "calib_version"),
        "reco_version": _unique(inputs, "reco_version"),
        "reco_method": _unique(inputs, "reco_method"),
        "applied_cuts": _unique(inputs, "applied_cuts"),
        "t_min": min((r["t_min"] for r in inputs if r.get("t_min") is not None), default=None),
        "t_max": max((r["t_max"] for r in inputs if r.get("t_max") is not None), default=None),
        "t_exptime": sum(r.get("t_exptime") or 0 for r in inputs) or None,
        "o_ucd": "phot.count" if "count" in subtype else "phot.flux",
        "pol_states": None,
        "obs_title": curation.title or f"{subtype} of {_unique(inputs, 'target_name')}",
        "obs_creator_name": curation.creator or _creator(graph, entity),
        "bib_reference": curation.reference,
        "zen_pnt": _mean(inputs, "zen_pnt"),
    }
    if len(inputs) == 1:
        for key in ("s_ra", "s_dec", "s_region", "s_fov"):
            row[key] = inputs[0].get(key)
    else:
        row["s_ra"], row["s_dec"] = _mean(inputs, "s_ra"), _mean(inputs, "s_dec")
    try:
        row.update(_image_geometry(path))
    except Exception:  # a WCS astropy cannot read: the inputs' footprint stays
        pass
    row.setdefault("energy_min", min((r["energy_min"] for r in inputs if r.get("energy_min")),
                                     default=None))  # fmt: skip
    row.setdefault("energy_max", max((r["energy_max"] for r in inputs if r.get("energy_max")),
                                     default=None))  # fmt: skip
    if row.get("energy_min") and row.get("energy_max"):
        row["em_min"] = energy_tev_to_wavelength_m(row["energy_max"])
        row["em_max"] = energy_tev_to_wavelength_m(row["energy_min"])
    generator = graph.generator_of(entity.id)
    if generator is not None:
        row["obs_creation_date"] = generator.end_time or generator.start_time or None
        model = (generator.config or {}).get("spectral_model") or generator.parameters.get(
            "spectral_model"
        )
        if model:
            row["spectral_model"] = json.dumps(model) if not isinstance(model, str) else model
        cfg = step_config(generator)
        if "spectral_model" not in row and isinstance(cfg.get("model"), str):
            row["spectral_model"] = cfg["model"]  # the model the step fitted (e.g. log-parabola)
        if "s_xel1" not in row and cfg.get("on_radius_deg") and "ra_deg" in cfg:
            # A spectrum's sky region is its on region, not its runs' fields of view.
            from .ingest_gadf import fov_polygon

            ra, dec, radius = cfg["ra_deg"], cfg["dec_deg"], cfg["on_radius_deg"]
            row.update(s_ra=ra, s_dec=dec, s_fov=2 * radius, s_region=fov_polygon(ra, dec, radius))
    return row


#: How the off counts of a spectrum were measured, by the step's ``region_finder``.
_BACKGROUND = {
    "reflected": "reflected regions",
    "wobble": "wobble (off regions opposite the target)",
    "auto": "reflected regions, or wobble off regions where too few fit (auto)",
}


def step_config(activity: Any) -> dict[str, Any]:
    """The configuration values an activity recorded (a pydantic config is unwrapped)."""
    cfg = activity.config or {}
    model = cfg.get("__model__") if isinstance(cfg, dict) else None
    if isinstance(model, list) and len(model) == 2 and isinstance(model[1], dict):
        return model[1]
    return cfg if isinstance(cfg, dict) else {}


def analysis_context(graph: Any, entity: Any) -> dict[str, str]:
    """Curation fields the provenance tells: fit hypothesis and background method."""
    generator = graph.generator_of(entity.id)
    cfg = step_config(generator) if generator is not None else {}
    out = {}
    if isinstance(cfg.get("model"), str):
        out["fit_hypothesis"] = f"{cfg['model']} spectrum of {cfg.get('source') or 'the source'}"
    if cfg.get("region_finder") in _BACKGROUND:
        out["background_method"] = _BACKGROUND[cfg["region_finder"]]
    return out


def _mean(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [float(r[key]) for r in rows if r.get(key) is not None]
    return sum(values) / len(values) if values else None


def _creator(graph: Any, entity: Any) -> str | None:
    generator = graph.generator_of(entity.id)
    if generator is None:
        return None
    people = [a.name for a in generator.agents if a.kind == "person"]
    return people[0] if people else None


def analysis_owner(conn: Any, table: str, analysis: str | None) -> str | None:
    """The publisher who first published under *analysis* (None: a new name).

    An analysis name belongs to that publisher: products of another one are refused
    under it, so that DataLink ``#coderived`` never joins two publishers' products.
    Called inside the publication's write transaction, so two first publications under
    one name cannot both win.
    """
    if not analysis:
        return None
    found = conn.execute(
        f"SELECT json_extract(curation, '$.publisher') FROM \"{table}\" WHERE analysis = ? "
        "ORDER BY published_at, rowid LIMIT 1",
        (analysis,),
    ).fetchone()
    return found[0] if found else None
