"""Build :class:`~ctanb.analysis.DL3Input` lists: from archive results, a gammapy DataStore, or paths.

>>> import ctanb
>>> from ctanb.analysis import inputs_from_archive, inputs_from_datastore
>>> archive = ctanb.connect()
>>> runs = inputs_from_archive(archive.search(target="MSH 15-52", radius=2))
>>> runs[0].events.name
'hess_dl3_dr1_obs_id_020136.fits.gz'

A data store on disk (not run by the doctests: the path is the reader's):

>>> runs = inputs_from_datastore("hess-dl3-dr1/", obs_ids=[20136, 20137])     # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .._errors import AnalysisError, ConfigError
from ._base import DL3Input

__all__ = ["as_inputs", "inputs_from_archive", "inputs_from_datastore", "inputs_from_paths"]


def inputs_from_archive(results: Any, archive: Any = None) -> list[DL3Input]:
    """Download the datasets of archive *results* (events and, via DataLink, IRFs).

    Parameters
    ----------
    results : ctanb.client.Results or iterable of Record
        The observations found by ``archive.search(...)``.
    archive : ctanb.client.Archive, optional
        Default: the archive the results came from.

    Returns
    -------
    list of DL3Input
        One per record, carrying its ObsCore row (publisher DID, versions, cuts).

    Raises
    ------
    AnalysisError
        The results hold no observation.
    ConfigError
        The results are not attached to an archive and *archive* is not given.
    """
    from ..client.results import Record

    iterable = isinstance(results, Iterable) and not isinstance(results, str | bytes | dict)
    records = list(results) if iterable else None
    if records is None or not all(isinstance(r, Record) for r in records):
        raise ConfigError(
            f"inputs_from_archive: give the results of archive.search(...), not {results!r}"
        )
    if not records:
        raise AnalysisError("no observation selected: the archive search found nothing")
    archive = archive or getattr(results, "archive", None)
    if archive is None:
        raise ConfigError("these archive results are not attached to an archive; pass archive=")
    # Event and #calibration URLs for all records in one DataLink request (the client's
    # batched lookup), then one parallel, cached download.
    pairs = archive._event_and_irf_urls(records)
    urls = list(dict.fromkeys(u for pair in pairs for u in pair if u))
    paths = dict(zip(urls, archive.downloads.fetch(urls), strict=True))
    return [
        DL3Input(
            obs_id=str(record["obs_id"]),
            events=Path(paths[event]),
            irf=Path(paths[irf]) if irf else None,
            obscore=record.as_dict(),
        )
        for record, (event, irf) in zip(records, pairs, strict=True)
    ]


def inputs_from_datastore(
    datastore: Any, obs_ids: Sequence[int | str] | None = None, *, obscore: bool = False
) -> list[DL3Input]:
    """The observations of a GADF data store (folder, index file or gammapy DataStore).

    Parameters
    ----------
    datastore : str, Path or gammapy.data.DataStore
        A folder with ``hdu-index.fits.gz``/``obs-index.fits.gz`` or a DataStore.
    obs_ids : sequence, optional
        Which observations (in this order); default all.
    obscore : bool
        Also build each observation's ObsCore row from its headers, as the archive
        ingestion does (publisher DID, reco version, cuts; ~0.2 s per file), so the
        products carry those provenance keywords.

    Returns
    -------
    list of DL3Input
        One per observation, in the order of *obs_ids*.

    Raises
    ------
    ConfigError
        The data store cannot be opened.
    AnalysisError
        An observation of *obs_ids* is not in the data store.
    """
    from gammapy.data import DataStore

    if not isinstance(datastore, DataStore):
        path = Path(datastore)
        try:
            datastore = DataStore.from_file(path) if path.is_file() else DataStore.from_dir(path)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot open the data store {path}: {exc}") from None
    table = datastore.hdu_table
    known = [int(x) for x in datastore.obs_table["OBS_ID"]]
    wanted = known if obs_ids is None else [int(x) for x in obs_ids]
    unknown = sorted(set(wanted) - set(known))
    if unknown:
        raise AnalysisError(
            f"observation(s) {', '.join(map(str, unknown))} not in the data store {datastore.hdu_table.base_dir}"
        )
    out = []
    for obs_id in wanted:
        events = table.hdu_location(obs_id, hdu_type="events").path()
        try:
            aeff = table.hdu_location(obs_id, hdu_type="aeff").path()
        except (IndexError, KeyError, ValueError):
            aeff = None
        irf = aeff if aeff is not None and aeff != events else None
        row = _obscore_row(Path(events), irf) if obscore else {"obs_id": str(obs_id)}
        out.append(DL3Input(str(obs_id), Path(events), irf and Path(irf), row))
    return out


def _obscore_row(events: Path, irf: Path | None) -> dict[str, Any]:
    from ..archive.ingest_gadf import build_row, read_event_file

    row, _files = build_row(read_event_file(events), calibration=irf and Path(irf))
    return row


def inputs_from_paths(
    events: Iterable[str | Path], irf: str | Path | None = None
) -> list[DL3Input]:
    """Observations from event files, with their IRFs bundled or in one separate *irf* file.

    Parameters
    ----------
    events : iterable of str or Path
        DL3 event files.
    irf : str or Path, optional
        One IRF file for all of them (default: the IRFs bundled in each file).

    Returns
    -------
    list of DL3Input
        One per event file.

    Raises
    ------
    AnalysisError
        A file is not a DL3 event file.
    """
    from astropy.io import fits

    out = []
    for path in map(Path, events):
        try:
            obs_id = fits.getheader(path, "EVENTS").get("OBS_ID", path.stem)
        except (OSError, KeyError) as exc:
            raise AnalysisError(f"{path} is not a DL3 event file: {exc}") from None
        out.append(DL3Input(obs_id=str(obs_id), events=path, irf=Path(irf) if irf else None))
    return out


def as_inputs(observations: Any) -> list[DL3Input]:
    """Whatever names DL3 observations, as a list of :class:`DL3Input`.

    Parameters
    ----------
    observations : object
        DL3Input objects, archive Results, a gammapy DataStore, or event file paths.

    Returns
    -------
    list of DL3Input
        The observations.

    Raises
    ------
    AnalysisError
        *observations* is none of these.
    """
    from gammapy.data import DataStore

    if isinstance(observations, DL3Input):
        return [observations]
    if isinstance(observations, DataStore):
        return inputs_from_datastore(observations)
    if hasattr(observations, "records") and hasattr(observations, "archive"):
        return inputs_from_archive(observations)
    if isinstance(observations, str | Path):
        return inputs_from_paths([observations])
    if not isinstance(observations, Iterable) or isinstance(observations, bytes | dict):
        raise AnalysisError(
            "observations must be DL3Input objects, archive results, a DataStore or event "
            f"file paths, not {observations!r}"
        )
    items = list(observations)
    if all(isinstance(item, DL3Input) for item in items):
        return items
    if all(isinstance(item, str | Path) for item in items):
        return inputs_from_paths(items)
    raise AnalysisError(
        "observations must be DL3Input objects, archive results, a DataStore or event file paths"
    )
