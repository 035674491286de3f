"""The simulated CTAO collection: a small, deterministic GADF data store.

:func:`simulate` writes ~35 event lists sampled with gammapy's
:class:`~gammapy.datasets.MapDatasetEventSampler` from the prod5 IRFs in
``cta-caldb`` (North ``4LSTs09MSTs``, South ``14MSTs37SSTs``), with an
``obs-index``/``hdu-index`` pair, the two IRF files copied next to them, a README
and a manifest. :data:`SIMULATED_RUNS` lists every run and its metadata, so tests
and the client can assert exact answers to searches.

The CTA metadata are written as EVENTS header keywords, so that ingestion reads
them from the file like any other GADF header (nothing is passed on the side):

========  ==================  ============================================
keyword   ObsCore column      example
========  ==================  ============================================
OBSCOLL   obs_collection      ``CTAO-SIM``
SITE      site                ``CTAO-North``
TELESCOP  facility_name       ``CTAO``
INSTRUME  instrument_name     ``CTAO-North array``
SUBARRAY  sub_array_name      ``4LSTs09MSTs``
N_TELS    n_tels              ``13``
OBS_MODE  obs_mode            ``WOBBLE`` / ``ON`` / ``SCAN`` (GADF keyword)
PNTMODE   pointing_mode       ``parallel`` / ``divergent``
OBS_TYPE  obs_type            ``science``
PROPOSAL  proposal_id         ``CTAO-2026A-001``
OBJECT    target_name         ``Crab Nebula`` (GADF keyword)
TGTCLASS  target_class        ``pwn`` / ``blazar`` / ``field``
QUALITY   data_quality        ``good``
CALIBVER  calib_version       ``cal-2026.1``
RECOVER   reco_version        ``ctapipe-0.21``
RECOMETH  reco_method         ``hillas`` / ``ImPACT`` / ``FreePACT``
EV_CLASS  applied_cuts        ``loose`` / ``standard`` / ``hard``
========  ==================  ============================================

Simplifications (a demo, said again in the store's README): the sub-arrays of a
site share the one prod5 IRF of that site (only the ``SUBARRAY`` header and the
energy range differ); ``scan`` runs have a fixed pointing; divergent runs get a
wider field of view (4.5 deg radius instead of 3 deg). To stay fast, one dataset
per site and field-of-view size is made once, centred on (0, 0); each run's
events are sampled from it and rotated to the run's pointing, which keeps every
event's offset and position angle (the prod5 IRFs depend on offset only). Event
times are drawn uniformly within the run. Events are cut to the field-of-view
circle and to the run's energy range.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .._errors import ConfigError
from .._settings import release_dir

__all__ = ["SIMULATED_RUNS", "SimulatedRun", "describe_simulation", "simulate"]

#: Bumped whenever the simulation changes in a way that changes the files.
SIMULATION_VERSION = "1"
MANIFEST_NAME = "ctanb-simulation.json"
COLLECTION = "CTAO-SIM"
IRF_FILES = {
    "CTAO-North": "Prod5-North-20deg-AverageAz-4LSTs09MSTs.180000s-v0.1.fits.gz",
    "CTAO-South": "Prod5-South-20deg-AverageAz-14MSTs37SSTs.180000s-v0.1.fits.gz",
}
FOV_RADIUS_DEG = {"parallel": 3.0, "divergent": 4.5}
N_TELS = {"4LSTs09MSTs": 13, "4LSTs": 4, "9MSTs": 9, "14MSTs37SSTs": 51, "14MSTs": 14, "37SSTs": 37}
E_MIN_TEV = {"4LSTs09MSTs": 0.03, "4LSTs": 0.03, "9MSTs": 0.08, "14MSTs37SSTs": 0.05,
             "14MSTs": 0.08, "37SSTs": 1.0}  # fmt: skip
#: Reference time of the event TIME columns (MJD 51544.5 = 2000-01-01T12:00 TT, as 1DC).
MJDREFI, MJDREFF = 51544, 0.5

# name -> (ra, dec, class, spectral index, amplitude at 1 TeV [cm-2 s-1 TeV-1], sigma deg)
TARGETS: dict[str, tuple[float, float, str, float, float, float]] = {
    "Crab Nebula": (83.6331, 22.0145, "pwn", 2.6, 3.8e-11, 0.0),
    "Vela X": (128.287, -45.19, "pwn", 1.6, 1.5e-11, 0.4),
    "Mrk 421": (166.1138, 38.2088, "blazar", 2.8, 2.0e-11, 0.0),
    "1ES 0229+200": (38.2026, 20.2881, "blazar", 2.5, 1.0e-12, 0.0),
    "PKS 2155-304": (329.7169, -30.2256, "blazar", 3.3, 3.0e-11, 0.0),
    "Cygnus field": (305.0, 40.5, "field", 2.3, 5.0e-12, 1.0),
    "Galactic Centre field": (266.4168, -29.0078, "field", 2.3, 8.0e-12, 1.0),
}


@dataclass(frozen=True)
class SimulatedRun:
    """One simulated observation and the metadata written to its EVENTS header."""

    obs_id: int
    site: str
    sub_array: str
    target: str
    obs_mode: str  # wobble, on, scan
    pointing_mode: str  # parallel, divergent
    proposal_id: str
    start: str  # ISO UTC-ish start (TT), e.g. 2026-03-02T22:00:00
    livetime_s: float
    calib_version: str
    reco_version: str
    reco_method: str
    cuts: str
    emax_tev: float  # upper end of the configured reconstruction range
    pointing: tuple[float, float]  # (ra, dec) deg

    @property
    def target_class(self) -> str:
        return TARGETS[self.target][2]

    @property
    def fov_radius(self) -> float:
        return FOV_RADIUS_DEG[self.pointing_mode]


def _runs() -> tuple[SimulatedRun, ...]:
    # (count, site, sub_array, target, mode, pointing, proposal, first night, livetime,
    #  calib, reco, method, cuts, emax)
    groups = [
        (3, "CTAO-North", "4LSTs09MSTs", "Crab Nebula", "wobble", "parallel", "CTAO-2025A-003",
         "2025-01-20", 1800, "cal-2025.1", "ctapipe-0.19", "hillas", "standard", 40.0),
        (2, "CTAO-North", "4LSTs09MSTs", "Mrk 421", "wobble", "parallel", "CTAO-2025A-003",
         "2025-02-18", 1800, "cal-2025.1", "ctapipe-0.19", "hillas", "standard", 40.0),
        (2, "CTAO-North", "4LSTs", "Crab Nebula", "wobble", "parallel", "CTAO-2026A-004",
         "2026-01-15", 1200, "cal-2026.1", "ctapipe-0.21", "ImPACT", "loose", 20.0),
        (2, "CTAO-North", "9MSTs", "Crab Nebula", "wobble", "parallel", "CTAO-2026A-004",
         "2026-01-16", 1800, "cal-2026.1", "ctapipe-0.21", "hillas", "hard", 40.0),
        (2, "CTAO-North", "4LSTs09MSTs", "Mrk 421", "on", "parallel", "CTAO-2026A-005",
         "2026-04-10", 1200, "cal-2026.1", "ctapipe-0.21", "ImPACT", "standard", 40.0),
        (1, "CTAO-North", "4LSTs09MSTs", "Mrk 421", "on", "divergent", "CTAO-2026A-005",
         "2026-04-12", 1200, "cal-2026.1", "ctapipe-0.21", "FreePACT", "standard", 40.0),
        (3, "CTAO-North", "4LSTs09MSTs", "1ES 0229+200", "wobble", "parallel", "CTAO-2026A-006",
         "2026-09-14", 1800, "cal-2026.1", "ctapipe-0.21", "FreePACT", "hard", 40.0),
        (3, "CTAO-North", "9MSTs", "Cygnus field", "scan", "divergent", "CTAO-2026A-007",
         "2026-06-20", 1200, "cal-2026.1", "ctapipe-0.21", "hillas", "standard", 40.0),
        (3, "CTAO-South", "14MSTs37SSTs", "Vela X", "wobble", "parallel", "CTAO-2026A-001",
         "2026-03-02", 7200, "cal-2026.1", "ctapipe-0.21", "ImPACT", "hard", 200.0),
        (2, "CTAO-South", "37SSTs", "Vela X", "wobble", "parallel", "CTAO-2026A-001",
         "2026-03-05", 3600, "cal-2026.1", "ctapipe-0.21", "ImPACT", "hard", 200.0),
        (2, "CTAO-South", "14MSTs", "Vela X", "wobble", "parallel", "CTAO-2025B-002",
         "2025-11-25", 1800, "cal-2025.1", "ctapipe-0.19", "hillas", "standard", 40.0),
        (3, "CTAO-South", "14MSTs", "PKS 2155-304", "wobble", "parallel", "CTAO-2026A-002",
         "2026-07-22", 1800, "cal-2026.1", "ctapipe-0.21", "hillas", "loose", 30.0),
        (2, "CTAO-South", "14MSTs37SSTs", "PKS 2155-304", "wobble", "parallel", "CTAO-2025B-008",
         "2025-08-28", 1800, "cal-2025.1", "ctapipe-0.19", "hillas", "standard", 40.0),
        (3, "CTAO-South", "14MSTs37SSTs", "Galactic Centre field", "scan", "divergent",
         "CTAO-2026A-003", "2026-05-18", 1200, "cal-2026.1", "ctapipe-0.21", "FreePACT",
         "standard", 40.0),
        (2, "CTAO-South", "14MSTs", "Galactic Centre field", "on", "parallel", "CTAO-2026A-003",
         "2026-05-20", 1200, "cal-2026.1", "ctapipe-0.19", "hillas", "loose", 30.0),
    ]  # fmt: skip
    runs, obs_id = [], 100001
    for count, site, sub, target, mode, pnt, prop, night, lt, cal, reco, meth, cuts, emax in groups:
        for i in range(count):
            pointing = _pointing(target, mode, i)
            runs.append(
                SimulatedRun(
                    obs_id=obs_id, site=site, sub_array=sub, target=target, obs_mode=mode,
                    pointing_mode=pnt, proposal_id=prop, start=_start_time(night, i, lt, site, pointing[0]),
                    livetime_s=float(lt), calib_version=cal, reco_version=reco,
                    reco_method=meth, cuts=cuts, emax_tev=emax,
                    pointing=pointing,
                )
            )  # fmt: skip
            obs_id += 1
    return tuple(runs)


def _start_time(night: str, i: int, livetime: float, site: str, ra: float) -> str:
    # Runs of a night are centred on the upper transit of the pointing (lowest zenith
    # angle), two minutes apart, three per night.
    from astropy import units as u
    from astropy.time import Time
    from gammapy.data import observatory_locations

    location = observatory_locations["cta_north" if site == "CTAO-North" else "cta_south"]
    t0 = Time(f"{night}T00:00:00", scale="utc", location=location) + (i // 3) * u.day
    lst = t0.sidereal_time("mean").hour
    transit = t0 + ((ra / 15.0 - lst) % 24.0) * 0.99727 * u.hour
    step = livetime + 120.0
    t = transit - 1.5 * step * u.s + (i % 3) * step * u.s
    return t.tt.isot[:19]


def _pointing(target: str, mode: str, i: int) -> tuple[float, float]:
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    ra, dec = TARGETS[target][:2]
    center = SkyCoord(ra, dec, unit="deg")
    if mode == "wobble":  # 0.5 deg wobbles at position angles 0, 90, 180, 270
        p = center.directional_offset_by((90 * i % 360) * u.deg, 0.5 * u.deg)
    elif mode == "scan":  # steps of 2 deg along the Galactic plane
        g = center.galactic
        p = SkyCoord(g.l + (2.0 * (i - 1)) * u.deg, g.b, frame="galactic").icrs
    else:
        p = center
    return round(float(p.ra.deg), 4), round(float(p.dec.deg), 4)


#: Every simulated run, in obs_id order (100001 ...).
SIMULATED_RUNS: tuple[SimulatedRun, ...] = _runs()


def describe_simulation() -> list[dict]:
    """The simulated runs as plain dicts (``obs_id``, ``site``, ``sub_array``, ...).

    Includes the derived ``target_class`` and ``fov_radius``; the data rights come
    from the demo access policy (``ctanb/archive/demo_policy.yaml``), not from here.
    """
    return [
        {**asdict(r), "target_class": r.target_class, "fov_radius": r.fov_radius}
        for r in SIMULATED_RUNS
    ]


def _config_hash(seed: int) -> str:
    # The code of the simulation is part of the configuration: editing it re-simulates.
    code = "".join(
        (Path(__file__).parent / name).read_text() for name in ("simulate.py", "simulate_events.py")
    )
    payload = json.dumps(
        {"version": SIMULATION_VERSION, "seed": seed, "runs": describe_simulation(),
         "targets": TARGETS, "code": hashlib.sha256(code.encode()).hexdigest()},
        sort_keys=True,
    )  # fmt: skip
    return hashlib.sha256(payload.encode()).hexdigest()


def _is_complete(out: Path, config_hash: str) -> bool:
    manifest = out / MANIFEST_NAME
    if not manifest.is_file():
        return False
    try:
        info = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return False
    if info.get("config_hash") != config_hash:
        return False
    return all((out / name).is_file() and (out / name).stat().st_size == size
               for name, size in info.get("files", {}).items())  # fmt: skip


def simulate(out: str | Path, *, seed: int = 0) -> Path:
    """Write the simulated CTAO collection as a GADF data store in *out*.

    Parameters
    ----------
    out : str or Path
        Folder of the data store (created). A complete store made with the same
        configuration and seed (see ``ctanb-simulation.json``) is left as it is.
    seed : int
        Seed of the event sampling: the same seed gives byte-identical files.

    Returns
    -------
    Path
        *out*.
    """
    out = Path(out)
    config_hash = _config_hash(seed)
    if _is_complete(out, config_hash):
        return out
    caldb = release_dir("cta-caldb")
    for name in IRF_FILES.values():
        if not (caldb / name).is_file():
            raise ConfigError(f"the prod5 IRF file {caldb / name} is missing (cta-caldb release)")
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST_NAME).unlink(missing_ok=True)
    from .simulate_events import write_store

    files = write_store(out, SIMULATED_RUNS, seed=seed, caldb=caldb)
    (out / "README.md").write_text(_README)
    files["README.md"] = (out / "README.md").stat().st_size
    manifest = {"config_hash": config_hash, "seed": seed, "version": SIMULATION_VERSION,
                "files": files}  # fmt: skip
    (out / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return out


def copy_irfs(out: Path, caldb: Path) -> dict[str, Path]:
    """Copy the prod5 IRF files into ``out/irfs``; returns site -> copied path."""
    (out / "irfs").mkdir(parents=True, exist_ok=True)
    copied = {}
    for site, name in IRF_FILES.items():
        target = out / "irfs" / name
        if not target.is_file() or target.stat().st_size != (caldb / name).stat().st_size:
            shutil.copyfile(caldb / name, target)
        copied[site] = target
    return copied


def _event_checksum(path: Path) -> str:
    """sha256 of the EVENTS table bytes of one file (for determinism checks)."""
    from astropy.io import fits

    with fits.open(path) as hdul:
        return hashlib.sha256(np.ascontiguousarray(hdul["EVENTS"].data).tobytes()).hexdigest()


_README = """\
# CTAO-SIM: simulated CTAO DL3 data store (ctanb demo)

Written by `ctanb archive simulate` (ctanb.archive.simulate). A GADF data store:
`obs-index.fits`, `hdu-index.fits`, one `events/ctao_sim_<obs_id>.fits` per run
(EVENTS + GTI) and the prod5 v0.1 IRFs in `irfs/` (CC BY 4.0, Zenodo 5499840), to
which the hdu-index points for aeff/edisp/psf/bkg.

Events are sampled with gammapy's MapDatasetEventSampler. This is a demo:

- the sub-arrays of a site (4LSTs, 9MSTs, 4LSTs09MSTs; 14MSTs, 37SSTs,
  14MSTs37SSTs) all use the one prod5 IRF of that site (North 4LSTs09MSTs,
  South 14MSTs37SSTs); only the SUBARRAY header and the energy range differ;
- scan runs have a fixed pointing; divergent runs get a 4.5 deg FoV radius
  instead of 3 deg;
- event times are uniform within each run; proposals, release dates,
  pipeline versions, reconstruction methods and cut levels are labels.

The CTA metadata are EVENTS header keywords (OBSCOLL, SITE, SUBARRAY, PNTMODE,
OBS_TYPE, PROPOSAL, TGTCLASS, QUALITY, CALIBVER, RECOVER, RECOMETH, EV_CLASS),
read by ctanb's ingestion like any GADF header.
"""
