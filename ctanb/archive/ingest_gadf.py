"""One GADF event list -> one ObsCore row (the metadata rules of ingestion).

Everything here is read from the EVENTS header and columns, helped by the
observation's ``obs-index`` row when there is one. Choices that the files do not
settle are made here and documented:

Energy
    ``energy_min``/``energy_max`` are the lowest and highest *event* energies (not
    the safe energy range of an analysis); ``em_min = hc / energy_max``.
Time
    ``t_min``/``t_max`` = MJDREF + TSTART/TSTOP (converted to TT when TIMESYS is
    UTC); ``t_exptime`` = LIVETIME.
Field of view
    ``s_region`` is a 32-vertex polygon of the FoV circle around the pointing and
    ``s_fov`` its diameter. Its radius comes, in this order, from the GADF data
    sub-space keyword ``DSVAL`` of ``POS(RA,DEC)`` (CTA 1DC: 5 deg, CTAO-SIM: 3 or
    4.5 deg); from the largest offset of the full-enclosure effective area when
    the IRFs are in the same file (H.E.S.S. DR1: 2.5 deg; its event lists keep
    badly reconstructed events out to tens of degrees, so the event offsets are
    no guide); else from the largest event offset rounded up to 0.5 deg (MAGIC:
    3 deg).
Resolution
    ``s_resolution*`` and ``em_res_power`` are typical values of each instrument
    (:data:`INSTRUMENT_TYPICAL`), not computed from each run's PSF.
Observation type
    ``OBS_TYPE`` header if present; H.E.S.S. runs tagged ``offdata`` in the
    obs-index are ``background``; everything else, including the simulated
    1DC and CTAO-SIM data, is ``science`` (``obs_collection`` says they are
    simulated).
Target
    Names are made canonical with :data:`KNOWN_TARGETS`; the class is the
    ``TGTCLASS`` header, else the object's class in gamma-cat or the curated list
    of :mod:`~ctanb.archive.ingest_targets`. Off-data runs keep the pointed
    object's name and class (``field`` only for a pointing at no known object).
"""

from __future__ import annotations

import math
import re
import urllib.parse
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._errors import IngestError
from .._hashing import sha256_file
from ..datamodel import CHOICES, HC_TEV_M
from .db import ACCESS_URL_BASE, FileRecord, publisher_did
from .geometry import circle_polygon
from .ingest_targets import classify

__all__ = [
    "COLLECTIONS",
    "INSTRUMENT_TYPICAL",
    "KNOWN_TARGETS",
    "EventFile",
    "build_row",
    "fov_polygon",
    "read_event_file",
]

N_POLYGON_VERTICES = 32

#: Known releases: facility, default site, creator, reference and title stem.
COLLECTIONS: dict[str, dict[str, str | None]] = {
    "HESS-DL3-DR1": {"facility": "H.E.S.S.", "site": "H.E.S.S.",
                     "creator": "H.E.S.S. Collaboration", "bib": "2018arXiv181004516H",
                     "title": "H.E.S.S. DL3 DR1"},
    "CTA-1DC": {"facility": "CTAO", "site": "CTAO-South", "creator": "CTA Consortium (1DC)",
                "bib": None, "title": "CTA first data challenge (simulated)"},
    "MAGIC-RAD-MAX": {"facility": "MAGIC", "site": "MAGIC", "creator": "MAGIC Collaboration",
                      "bib": "2016APh....72...76A", "title": "MAGIC Crab (RAD_MAX IRFs)"},
    "CTAO-SIM": {"facility": "CTAO", "site": None, "creator": "ctanb simulation (gammapy)",
                 "bib": None, "title": "Simulated CTAO"},
}  # fmt: skip

#: Typical angular resolution (68 %, arcsec: at 1 TeV, best, worst) and E/dE per facility.
INSTRUMENT_TYPICAL: dict[str, dict[str, float]] = {
    "H.E.S.S.": {"s_resolution": 360.0, "s_resolution_min": 216.0, "s_resolution_max": 720.0,
                 "em_res_power": 6.7},
    "MAGIC": {"s_resolution": 252.0, "s_resolution_min": 180.0, "s_resolution_max": 540.0,
              "em_res_power": 6.0},
    "CTAO": {"s_resolution": 180.0, "s_resolution_min": 72.0, "s_resolution_max": 720.0,
             "em_res_power": 10.0},
}  # fmt: skip

#: Curated target names and classes, keyed by lower-case letters+digits of the name or tag.
KNOWN_TARGETS: dict[str, tuple[str, str]] = {
    "crab": ("Crab Nebula", "pwn"),
    "crabnebula": ("Crab Nebula", "pwn"),
    "msh1552": ("MSH 15-52", "pwn"),
    "msh15502": ("MSH 15-52", "pwn"),  # H.E.S.S. OBJECT 'MSH 15-5-02'
    "velax": ("Vela X", "pwn"),
    "pks2155": ("PKS 2155-304", "blazar"),
    "pks2155flare": ("PKS 2155-304", "blazar"),
    "pks2155steady": ("PKS 2155-304", "blazar"),
    "pks2155304": ("PKS 2155-304", "blazar"),
    "mrk421": ("Mrk 421", "blazar"),
    "1es0229200": ("1ES 0229+200", "blazar"),
    "rxj1713": ("RX J1713.7-3946", "snr"),
    "rxj171373946": ("RX J1713.7-3946", "snr"),
    "galacticplanesurvey": ("Galactic Plane Survey", "field"),
    "offdata": ("Off data", "field"),
}

_EV_CLASS = {"std": "standard", "standard": "standard", "loose": "loose", "hard": "hard",
             "rad_max": "rad_max"}  # fmt: skip
_QUALITY = {0: "good", 1: "fair", 2: "bad"}


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


@dataclass
class EventFile:
    """What ingestion reads from one event list."""

    path: Path
    header: dict
    energy: np.ndarray
    ra: np.ndarray
    dec: np.ndarray
    hdu_classes: dict[str, str]  # HDU name -> HDUCLAS2 (or HDUCLAS1)
    aeff_theta_max: float | None  # largest offset of a full-enclosure AEFF in the file


def read_event_file(path: str | Path) -> EventFile:
    """Read the EVENTS header and columns of *path*; IngestError says what is wrong."""
    from astropy.io import fits

    path = Path(path)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with fits.open(path, memmap=False) as hdul:
                names = [h.name for h in hdul]
                if "EVENTS" not in names:
                    raise IngestError(f"{path}: no EVENTS extension (not a GADF event list)")
                events = hdul["EVENTS"]
                header = dict(events.header)
                data = events.data
                cols = {c.upper() for c in events.columns.names}
                missing = [c for c in ("ENERGY", "RA", "DEC") if c not in cols]
                if missing:
                    raise IngestError(f"{path}: EVENTS lacks column(s) {', '.join(missing)}")
                energy = np.asarray(data["ENERGY"], dtype=float)
                ra = np.asarray(data["RA"], dtype=float)
                dec = np.asarray(data["DEC"], dtype=float)
                classes, theta_max = {}, None
                for h in hdul[1:]:
                    classes[h.name] = str(h.header.get("HDUCLAS2") or h.header.get("HDUCLAS1", ""))
                    if classes[h.name] == "EFF_AREA" and "THETA_HI" in h.columns.names:
                        if str(h.header.get("HDUCLAS3", "FULL-ENCLOSURE")) == "FULL-ENCLOSURE":
                            theta_max = float(np.max(h.data["THETA_HI"]))
        truncated = [str(w.message) for w in caught if "truncated" in str(w.message).lower()]
        if truncated:
            raise IngestError(f"{path}: file is truncated ({truncated[0]})")
    except IngestError:
        raise
    except (OSError, EOFError, ValueError, TypeError, KeyError, IndexError) as exc:
        reason = str(exc) or type(exc).__name__
        if "header missing END card" in reason or "No SIMPLE card" in reason:
            reason = "not a FITS file"
        raise IngestError(f"{path}: cannot read FITS: {reason}") from None
    if energy.size == 0:
        raise IngestError(f"{path}: the event list is empty")
    return EventFile(path, header, energy, ra, dec, classes, theta_max)


def _require(header: dict, path: Path, *keys: str) -> None:
    missing = [k for k in keys if k not in header]
    if missing:
        raise IngestError(f"{path}: EVENTS header lacks {', '.join(missing)}")


def fov_polygon(ra: float, dec: float, radius: float, n: int = N_POLYGON_VERTICES) -> str:
    """DALI polygon ``"ra1 dec1 ..."`` of a circle, counter-clockwise on the sky."""
    return " ".join(f"{lon:.6f} {lat:.6f}" for lon, lat in circle_polygon(ra, dec, radius, n))


def _offsets(ra0: float, dec0: float, ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    ra0, dec0, ra, dec = map(np.radians, (ra0, dec0, ra, dec))
    h = np.sin((dec - dec0) / 2) ** 2 + np.cos(dec) * np.cos(dec0) * np.sin((ra - ra0) / 2) ** 2
    return np.degrees(2 * np.arcsin(np.sqrt(np.clip(h, 0, 1))))


def _fov_radius(ev: EventFile, ra0: float, dec0: float) -> float:
    for i in range(1, int(ev.header.get("NDSKEYS", 0) or 0) + 1):
        if str(ev.header.get(f"DSTYP{i}", "")).strip().upper().startswith("POS("):
            m = re.match(r"\s*CIRCLE\(([^)]*)\)", str(ev.header.get(f"DSVAL{i}", "")), re.I)
            if m:
                return float(m.group(1).split(",")[2])
    if ev.aeff_theta_max:
        return ev.aeff_theta_max
    return math.ceil(float(np.max(_offsets(ra0, dec0, ev.ra, ev.dec))) * 2 - 1e-9) / 2


def _collection(header: dict) -> str:
    if header.get("OBSCOLL"):
        return str(header["OBSCOLL"]).strip()
    telescope = str(header.get("TELESCOP", "")).strip().upper()
    if telescope == "HESS":
        return "HESS-DL3-DR1"
    if telescope == "MAGIC":
        return "MAGIC-RAD-MAX"
    if telescope == "CTA" and str(header.get("CALDB", "")).strip().lower() == "1dc":
        return "CTA-1DC"
    return f"{telescope or 'UNKNOWN'}-DL3"


def _time_mjd_tt(header: dict, seconds: float) -> float:
    from astropy.time import Time, TimeDelta

    if "MJDREFI" in header:
        mjdref = float(header["MJDREFI"]) + float(header.get("MJDREFF", 0.0))
    else:
        mjdref = float(header["MJDREF"])
    scale = str(header.get("TIMESYS", "TT")).strip().lower() or "tt"
    t = Time(mjdref, format="mjd", scale=scale) + TimeDelta(float(seconds), format="sec")
    return float(t.tt.mjd)


def _sub_array(header: dict, collection: str) -> str | None:
    if header.get("SUBARRAY"):
        return str(header["SUBARRAY"]).strip()
    tellist = str(header.get("TELLIST", "")).strip()
    if collection == "HESS-DL3-DR1" and tellist:
        ids = sorted(int(t) for t in tellist.split(",") if t.strip().isdigit())
        if ids and ids == list(range(ids[0], ids[-1] + 1)) and len(ids) > 1:
            return f"CT{ids[0]}-{ids[-1]}"
        return "CT" + ",".join(map(str, ids))
    if collection == "CTA-1DC":
        # The 1DC GPS runs all use the baseline arrays (data/baseline); some TELLISTs
        # say 'Baseline', others only 'string'.
        return f"{str(header.get('IRF', '')).strip()} baseline".strip()
    if collection == "MAGIC-RAD-MAX":
        return "M1+M2"
    return tellist or None


def _target(header: dict, info: dict) -> tuple[str, str | None, bool]:
    """(target_name, target_class, is_off_data).

    The class is the ``TGTCLASS`` header when there is one, else the real class of
    the object (gamma-cat or the curated list, :mod:`.ingest_targets`). An
    off-data run keeps the class of the object it pointed at: a blazar observed
    and not detected is still a blazar; only a pointing at no known object is a
    ``field``.
    """
    obj = str(header.get("OBJECT", "")).strip()
    tag = str(info.get("TARGET_TAG", "") or "").strip()
    given = str(header["TGTCLASS"]) if header.get("TGTCLASS") else None
    if _key(tag) == "offdata":
        return obj or "Off data", given or classify(obj) or "field", True
    for candidate in (tag, info.get("TARGET_NAME", ""), obj):
        if candidate and _key(str(candidate)) in KNOWN_TARGETS:
            name, cls = KNOWN_TARGETS[_key(str(candidate))]
            return name, given or classify(name) or cls, False
    return obj or "unknown", given or classify(obj), False


def _obs_mode(header: dict) -> str:
    mode = str(header.get("OBS_MODE", "")).strip().lower()
    if mode in CHOICES["obs_mode"]:
        return mode
    if mode == "pointing" and "RA_OBJ" in header:  # MAGIC: wobble if pointed off target
        off = _offsets(header["RA_OBJ"], header["DEC_OBJ"], np.array([header["RA_PNT"]]),
                       np.array([header["DEC_PNT"]]))[0]  # fmt: skip
        return "wobble" if off > 0.05 else "on"
    return "on"


def _quality(header: dict, info: dict) -> str | None:
    value = header.get("QUALITY", info.get("QUALITY"))
    if value is None:
        return None
    if isinstance(value, str) and value.strip().lower() in CHOICES["data_quality"]:
        return value.strip().lower()
    try:
        return _QUALITY.get(int(value), "bad")
    except (TypeError, ValueError):
        return None


def build_row(
    ev: EventFile, *, info: dict | None = None, calibration: Path | None = None
) -> tuple[dict, list[FileRecord]]:
    """The ObsCore row and the files of one event list.

    Parameters
    ----------
    ev : EventFile
        From :func:`read_event_file`.
    info : dict, optional
        The observation's obs-index row (column name -> value), if any.
    calibration : Path, optional
        The IRF file named by the hdu-index; defaults to the event file itself when
        it holds IRF HDUs.
    """
    info, path = info or {}, ev.path
    # Some 1DC event headers lack CALDB/IRF; the obs-index has them.
    h = {**{k: info[k] for k in ("CALDB", "IRF") if info.get(k)}, **ev.header}
    h.update({k: info[k] for k in ("CALDB", "IRF") if info.get(k) and not h.get(k)})
    _require(h, path, "OBS_ID", "TSTART", "TSTOP", "RA_PNT", "DEC_PNT")
    if "MJDREFI" not in h and "MJDREF" not in h:
        raise IngestError(f"{path}: EVENTS header lacks MJDREFI/MJDREFF")
    collection = _collection(h)
    profile = COLLECTIONS.get(collection, {})
    facility = str(profile.get("facility") or h.get("TELESCOP", "unknown")).strip()
    obs_id = str(int(h["OBS_ID"]))
    did = publisher_did(collection, obs_id)
    ra0, dec0 = float(h["RA_PNT"]), float(h["DEC_PNT"])
    radius = _fov_radius(ev, ra0, dec0)
    target_name, target_class, off_data = _target(h, info)
    e_min, e_max = float(np.min(ev.energy)), float(np.max(ev.energy))
    size = path.stat().st_size
    zen = info.get("ZEN_PNT")
    if zen is None and "ALT_PNT" in h:
        zen = 90.0 - float(h["ALT_PNT"])
    n_tels = int(h.get("N_TELS") or 0) or (2 if collection == "MAGIC-RAD-MAX" else None)
    site = str(h.get("SITE") or profile.get("site") or facility)
    if collection == "CTA-1DC" and str(h.get("IRF", "")).startswith("North"):
        site = "CTAO-North"
    if h.get("EV_CLASS"):
        cuts = _EV_CLASS.get(str(h["EV_CLASS"]).strip().lower())
    else:
        cuts = "rad_max" if "RAD_MAX" in ev.hdu_classes.values() else None
    reco_version = h.get("RECOVER") or " ".join(
        str(h[k]).strip() for k in ("CREATOR", "VERSION") if h.get(k)
    )
    tag = str(info.get("TARGET_NAME", "") or "")
    flavour = f" ({tag.split('(')[1]}" if "(" in tag else ""
    title = f"{profile.get('title') or collection} observation {obs_id} of {target_name}{flavour}"
    if off_data:
        title += ", used as off data for background"
    typical = INSTRUMENT_TYPICAL.get(facility, {})
    instrument = str(h.get("INSTRUME") or "").strip()
    if collection == "CTA-1DC":
        instrument = f"CTA {site.split('-')[-1]} array (1DC baseline)"
    creation = str(h["DATE"]).strip() if h.get("DATE") else None
    row = {
        "dataproduct_type": "event",
        "dataproduct_subtype": "DL3-events",
        "calib_level": 2,
        "obs_collection": collection,
        "obs_id": obs_id,
        "obs_publisher_did": did,
        "access_url": ACCESS_URL_BASE + "files/" + urllib.parse.quote(did, safe=""),
        "access_format": "application/fits",
        "access_estsize": math.ceil(size / 1024),
        "target_name": target_name,
        "target_class": target_class,
        "s_ra": ra0,
        "s_dec": dec0,
        "s_fov": 2 * radius,
        "s_region": fov_polygon(ra0, dec0, radius),
        "s_xel1": -1,
        "s_xel2": -1,
        "t_min": _time_mjd_tt(h, float(h["TSTART"])),
        "t_max": _time_mjd_tt(h, float(h["TSTOP"])),
        "t_exptime": float(h.get("LIVETIME", info.get("LIVETIME", 0.0)) or 0.0),
        "t_resolution": float(h.get("TIMEDEL", 1e-6)),
        "t_xel": -1,
        "em_min": HC_TEV_M / e_max,
        "em_max": HC_TEV_M / e_min,
        "em_xel": -1,
        "o_ucd": "phot.count",
        "facility_name": facility,
        "instrument_name": instrument or facility,
        "obs_creation_date": creation,
        "data_rights": "public",
        "proposal_id": str(h["PROPOSAL"]).strip() if h.get("PROPOSAL") else None,
        "obs_title": title,
        "obs_creator_name": profile.get("creator"),
        "bib_reference": profile.get("bib"),
        "site": site,
        "sub_array_name": _sub_array(h, collection),
        "pointing_mode": str(h.get("PNTMODE") or "").strip().lower()
        or ("convergent" if float(h.get("CONV_DEP", 0) or 0) > 0 else "parallel"),
        "obs_mode": _obs_mode(h),
        "obs_type": str(h.get("OBS_TYPE") or ("background" if off_data else "science")),
        "n_tels": n_tels,
        "zen_pnt": float(zen) if zen is not None else None,
        "data_quality": _quality(h, info),
        "calib_version": str(h["CALIBVER"]).strip() if h.get("CALIBVER") else None,
        "reco_version": str(reco_version) or None,
        "reco_method": str(h["RECOMETH"]).strip() if h.get("RECOMETH") else None,
        "applied_cuts": cuts,
        "energy_min": e_min,
        "energy_max": e_max,
        "ev_xel": int(ev.energy.size),
        **typical,
    }
    files = [FileRecord("#this", str(path.resolve()), size=size, sha256=sha256_file(path),
                        description=f"DL3 event list of observation {obs_id}")]  # fmt: skip
    irf_in_file = any(c in ("EFF_AREA", "EDISP", "RPSF", "BKG") for c in ev.hdu_classes.values())
    if calibration is None and irf_in_file:
        calibration = path
    if calibration is not None:
        calibration = Path(calibration)
        same = calibration.resolve() == path.resolve()
        files.append(FileRecord(
            "#calibration", str(calibration.resolve()), size=calibration.stat().st_size,
            sha256=files[0].sha256 if same else sha256_file(calibration),
            description=("IRFs (effective area, energy dispersion, PSF/RAD_MAX, background) "
                         "are HDUs of the same file as the events") if same else
                        f"IRF file {calibration.name} (CALDB) used for this observation",
        ))  # fmt: skip
    return row, files
