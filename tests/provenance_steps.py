"""Real recorded analysis steps used by the provenance tests (importable, so redo can call them).

- :class:`CountsMapStep`: DL3 -> DL4, a gammapy counts map of H.E.S.S. DR1 event lists
  (a class step configured once by a strict pydantic config, gammapy style);
- :func:`smooth_counts_map`: DL4 -> DL4, a Gaussian-smoothed counts map (a function step).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import astropy.units as u
from pydantic import BaseModel, ConfigDict

from ctanb.archive.db import publisher_did
from ctanb.provenance import recorded

__all__ = ["CountsMapConfig", "CountsMapStep", "hess_obscore", "smooth_counts_map"]

_CUTS = {"std": "standard", "hard": "hard", "loose": "loose"}


def hess_obscore(path: Path) -> dict[str, Any]:
    """ObsCore description of a H.E.S.S. DR1 file, derived from its EVENTS header.

    ``calib_version`` is the release name and ``reco_version`` the event-list
    version (EVTVER): the DR1 headers carry no pipeline versions of their own.
    """
    from astropy.io import fits

    header = fits.getheader(path, "EVENTS")
    obs_id = int(header["OBS_ID"])
    return {
        "obscore": {
            "obs_id": str(obs_id),
            "obs_publisher_did": publisher_did("hess-dl3-dr1", obs_id),
            "dataproduct_subtype": "DL3-events",
            "calib_version": "hess-dl3-dr1",
            "reco_version": f"EVTVER {header['EVTVER']}",
            "applied_cuts": _CUTS.get(str(header.get("EV_CLASS", "")).strip(), ""),
        }
    }


class CountsMapConfig(BaseModel):
    """Geometry and energy range of a counts map."""

    model_config = ConfigDict(extra="forbid")
    ra_deg: float = 83.633
    dec_deg: float = 22.0145
    width_deg: float = 2.0
    binsz_deg: float = 0.05
    energy_min_tev: float = 0.5
    energy_max_tev: float = 50.0


class CountsMapStep:
    """Fill a counts map from DL3 event lists (configured once, run on files)."""

    def __init__(self, config: CountsMapConfig | None = None) -> None:
        self.config = config or CountsMapConfig()

    @recorded(
        name="counts-map",
        version="1.0",
        inputs={"event_files": hess_obscore},
        outputs={"out": "counts"},
        data_level="DL4",
    )
    def run(self, event_files: list[str], out: str) -> None:
        """Counts map of the events of all files, in the configured geometry."""
        from astropy.coordinates import SkyCoord
        from gammapy.data import EventList
        from gammapy.maps import Map, MapAxis, WcsGeom

        c = self.config
        axis = MapAxis.from_energy_edges(
            [c.energy_min_tev, c.energy_max_tev] * u.TeV, name="energy"
        )
        geom = WcsGeom.create(
            skydir=SkyCoord(c.ra_deg, c.dec_deg, unit="deg"),
            width=c.width_deg * u.deg,
            binsz=c.binsz_deg,
            axes=[axis],
            frame="icrs",
        )
        counts = Map.from_geom(geom, unit="")
        for path in event_files:
            counts.fill_events(EventList.read(path))
        counts.write(out, overwrite=True)


@recorded(
    name="smooth-counts",
    version="0.2",
    inputs=["counts_file"],
    outputs={"out": "smoothed"},
    data_level="DL4",
)
def smooth_counts_map(counts_file: str, out: str, *, radius_deg: float = 0.1) -> None:
    """Gaussian-smoothed copy of a counts map."""
    from gammapy.maps import Map

    counts = Map.read(counts_file)
    counts.smooth(radius_deg * u.deg, kernel="gauss").write(out, overwrite=True)
