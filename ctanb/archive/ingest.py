"""Fill the embedded archive from GADF DL3 data: one ObsCore row per event list.

:func:`ingest` takes folders or files:

- a folder holding ``hdu-index.fits[.gz]`` (and usually ``obs-index``) is a GADF
  data store, read through its indexes (H.E.S.S. DR1, MAGIC ``rad_max/data``,
  CTA 1DC ``index/gps`` whose events and CALDB IRF live in other folders,
  the simulated CTAO store);
- a folder without one is searched for indexes below it; when there are none,
  every file in it is read as a stand-alone GADF event list;
- a file is read as a stand-alone event list.

A corrupt or non-GADF file is reported by name in :attr:`IngestReport.skipped`
and the rest is ingested. Re-ingesting is idempotent: rows are keyed on
``obs_publisher_did``. The metadata rules are in :mod:`ctanb.archive.ingest_gadf`; each
dataset also gets its ``ivoa.obscore_hea`` row (:mod:`ctanb.archive.obscore_hea`) with
the good-time intervals of its GTI table (:mod:`ctanb.archive.gti`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .._errors import ConfigError, IngestError, TimeCoverageError
from .._settings import data_dir as default_data_dir
from . import db as archive_db
from .coverage import refresh_coverage
from .gti import gti_mjd
from .ingest_gadf import EventFile, build_row, read_event_file
from .obscore_hea import hea_row, upsert_hea
from .policy import AccessPolicy

__all__ = ["KNOWN_RELEASES", "IngestReport", "build_archive", "ingest"]

#: Release folders under CTANB_DATA that :func:`build_archive` ingests (relative paths).
KNOWN_RELEASES: dict[str, str] = {
    "HESS-DL3-DR1": "hess-dl3-dr1",
    "CTA-1DC": "cta-1dc/index/gps",
    "MAGIC-RAD-MAX": "magic/rad_max/data",
}

_INDEX_NAMES = ("hdu-index.fits.gz", "hdu-index.fits")
_OBS_INDEX_NAMES = ("obs-index.fits.gz", "obs-index.fits")


@dataclass
class IngestReport:
    """What one ingestion did.

    Attributes
    ----------
    ingested : list of str
        ``obs_publisher_did`` of every dataset written.
    skipped : list of (str, str)
        ``(file path, reason)`` of every file that could not be ingested.
    """

    ingested: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def extend(self, other: IngestReport) -> None:
        """Add the results of another report."""
        self.ingested += other.ingested
        self.skipped += other.skipped

    def summary(self) -> str:
        """One line: how many datasets were ingested and files skipped."""
        return f"ingested {len(self.ingested)} dataset(s), skipped {len(self.skipped)} file(s)"


@dataclass
class _Job:
    """One event list to ingest, with what the indexes say about it."""

    events: Path
    info: dict
    calibration: Path | None


def _find_index(folder: Path, names: tuple[str, ...]) -> Path | None:
    return next((folder / n for n in names if (folder / n).is_file()), None)


def _read_table(path: Path):
    from astropy.table import Table

    try:
        return Table.read(path, hdu=1)
    except Exception as exc:  # astropy raises many kinds for a broken file
        raise IngestError(f"{path}: cannot read index table: {exc}") from None


def _store_jobs(folder: Path, report: IngestReport) -> Iterator[_Job]:
    """The event lists of a GADF data store, read through its hdu-index/obs-index."""
    hdu_path = _find_index(folder, _INDEX_NAMES)
    assert hdu_path is not None
    try:
        hdu = _read_table(hdu_path)
        obs_path = _find_index(folder, _OBS_INDEX_NAMES)
        obs = _read_table(obs_path) if obs_path else None
    except IngestError as exc:
        report.skipped.append((str(hdu_path), exc.message))
        return
    infos = {}
    if obs is not None:
        for row in obs:
            infos[int(row["OBS_ID"])] = {
                name: (v.strip() if isinstance(v := row[name], str) else v.item())
                for name in obs.colnames
                if getattr(row[name], "shape", ()) == ()
            }
    by_obs: dict[int, dict[str, Path]] = {}
    for row in hdu:
        path = folder / str(row["FILE_DIR"]).strip() / str(row["FILE_NAME"]).strip()
        by_obs.setdefault(int(row["OBS_ID"]), {})[str(row["HDU_TYPE"]).strip().lower()] = path
    for obs_id, hdus in sorted(by_obs.items()):
        if "events" not in hdus:
            report.skipped.append((str(hdu_path), f"observation {obs_id} has no events HDU"))
            continue
        events = hdus["events"]
        aeff = hdus.get("aeff")
        yield _Job(events.resolve(), infos.get(obs_id, {}), aeff.resolve() if aeff else None)


def _discover(paths: Sequence[str | Path], report: IngestReport) -> list[_Job]:
    jobs: list[_Job] = []
    for given in paths:
        path = Path(given).expanduser()
        if not path.exists():
            report.skipped.append((str(path), "no such file or folder"))
        elif path.is_file():
            jobs.append(_Job(path, {}, None))
        elif _find_index(path, _INDEX_NAMES):
            jobs += _store_jobs(path, report)
        else:
            stores = sorted({p.parent for n in _INDEX_NAMES for p in path.rglob(n)})
            if stores:
                for store in stores:
                    jobs += _store_jobs(store, report)
            else:
                files = sorted(p for p in path.rglob("*") if p.is_file()
                               and not any(part.startswith(".") for part in p.parts))  # fmt: skip
                if not files:
                    report.skipped.append((str(path), "folder holds no files"))
                jobs += [_Job(p, {}, None) for p in files]
    return jobs


def _intervals(path: Path):
    """The run's GTIs (MJD TT); None when the file has no GTI table (t_min/t_max then)."""
    try:
        return gti_mjd(path)
    except TimeCoverageError as exc:
        if "no GTI extension" in exc.message:
            return None
        raise IngestError(exc.message) from None


def _prepare(job: _Job) -> tuple[dict, list[archive_db.FileRecord]]:
    if not job.events.is_file():
        raise IngestError(f"{job.events}: file not found (named by the hdu-index)")
    ev: EventFile = read_event_file(job.events)
    calibration = job.calibration
    if calibration is not None and not calibration.is_file():
        raise IngestError(f"{job.events}: its IRF file {calibration} is missing")
    if calibration is not None and calibration.resolve() == job.events.resolve():
        calibration = None  # build_row describes IRFs bundled in the event file
    return build_row(ev, info=job.info, calibration=calibration)


def ingest(
    paths: Sequence[str | Path], db: str | Path, *, policy: AccessPolicy | None = None
) -> IngestReport:
    """Ingest GADF event lists into the archive database *db*.

    Parameters
    ----------
    paths : sequence of str or Path
        Data-store folders, folders of event files, or event files.
    db : str or Path
        The SQLite archive (created with its schema when missing).
    policy : AccessPolicy, optional
        Sets ``data_rights``, ``obs_release_date`` and the access group of each
        row; default :meth:`AccessPolicy.demo`.

    Returns
    -------
    IngestReport
        The datasets written and the files skipped, with reasons.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    policy = policy or AccessPolicy.demo()
    report = IngestReport()
    jobs = _discover(paths, report)
    conn = archive_db.connect(db)
    touched: set[str] = set()
    try:
        archive_db.create_schema(conn)
        for job in jobs:
            try:
                row, files = _prepare(job)
                hea = hea_row(row, files, _intervals(job.events))
            except IngestError as exc:
                report.skipped.append((str(job.events), exc.message))
                continue
            access = policy.apply(row)
            row["data_rights"] = access["data_rights"]
            row["obs_release_date"] = access["obs_release_date"]
            archive_db.upsert_dataset(conn, row, files, access_group=access["_access_group"])
            upsert_hea(conn, hea)
            report.ingested.append(row["obs_publisher_did"])
            touched.add(str(row["obs_collection"]))
        # Coverage MOCs (issue 18) are committed with the rows they describe.
        refresh_coverage(conn, touched)
        conn.commit()
    finally:
        conn.close()
    return report


def build_archive(
    db: str | Path,
    *,
    data_dir: Path | None = None,
    sim_dir: Path | None = None,
    policy: AccessPolicy | None = None,
) -> IngestReport:
    """Create the archive *db* from every known release plus the simulated collection.

    Parameters
    ----------
    db : str or Path
        The SQLite archive to create or update.
    data_dir : Path, optional
        Folder of the public releases (default ``CTANB_DATA``); the releases in
        :data:`KNOWN_RELEASES` found there are ingested, missing ones are
        reported in ``skipped``.
    sim_dir : Path, optional
        Folder of the simulated CTAO store; simulated first when empty or
        incomplete (:func:`ctanb.archive.simulate.simulate`). None: no simulated data.
    policy : AccessPolicy, optional
        Default :meth:`AccessPolicy.demo`.
    """
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    if not data_dir.is_dir():
        raise ConfigError(f"the data folder {data_dir} does not exist (set CTANB_DATA)")
    report = IngestReport()
    paths: list[Path] = []
    for collection, rel in KNOWN_RELEASES.items():
        if (data_dir / rel).is_dir():
            paths.append(data_dir / rel)
        else:
            report.skipped.append((str(data_dir / rel), f"release {collection} not found"))
    if sim_dir is not None:
        from .simulate import simulate

        paths.append(simulate(sim_dir))
    db_path = Path(db)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    conn = archive_db.connect(db_path)
    try:
        archive_db.create_schema(conn)
    finally:
        conn.close()
    report.extend(ingest(paths, db_path, policy=policy))
    return report
