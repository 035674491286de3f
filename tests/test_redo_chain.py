"""Redo of a published multi-step chain re-makes its intermediate products (issue 14, item 7).

A map analysis of one H.E.S.S. DR1 run with an exclusion mask is three recorded
activities: ``exclusion-mask`` -> ``map-dataset`` (the mask named by its configuration,
not by a parameter) -> ``excess-map``. The significance map is published; then

- the maker's folder is removed and another user (empty ``CTANB_HOME``, no token) redoes
  it from its DID: identical, and the mask and dataset are the redo's own, re-made files;
- the maker's folder is there but its mask was altered afterwards: the redo still uses
  the mask it re-made (identical), never the file at the recorded location.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

import ctanb
from ctanb.analysis import MapConfig, MapStep, inputs_from_datastore

CRAB_TOKEN = "demo-token-crab"
RUN = 20136  # MSH 15-52, public
CONFIG = {
    "geom": {
        "wcs": {
            "skydir": {"frame": "icrs", "lon": "228.53 deg", "lat": "-59.16 deg"},
            "binsize": "0.05 deg",
            "width": {"width": "2 deg", "height": "2 deg"},
            "binsize_irf": "0.25 deg",
        },
        "selection": {"offset_max": "2.5 deg"},
        "axes": {
            "energy": {"min": "1 TeV", "max": "10 TeV", "nbins": 1},
            "energy_true": {"min": "0.5 TeV", "max": "20 TeV", "nbins": 4},
        },
    },
    "safe_mask": {"methods": ["offset-max"], "parameters": {"offset_max": "2.5 deg"}},
    "exclusion": {"regions": ["icrs;circle(228.53,-59.16,0.3)"]},
    "excess_map": {"correlation_radius": "0.1 deg"},
}


@pytest.fixture(scope="module")
def own(tmp_path_factory, archive_db):
    """A copy of the session archive on its own ephemeral port (demo policy)."""
    from ctanb.archive.policy import AccessPolicy
    from ctanb.archive.service import ArchiveServer

    copy = tmp_path_factory.mktemp("redo-chain-archive") / "archive.db"
    src, dst = sqlite3.connect(archive_db), sqlite3.connect(copy)
    src.backup(dst)
    src.close()
    dst.close()
    with ArchiveServer(copy, policy=AccessPolicy.demo()) as server:
        yield server


def _make(data_dir: Path, out: Path) -> Path:
    runs = inputs_from_datastore(data_dir / "hess-dl3-dr1", [RUN])
    result = MapStep(MapConfig.from_dict(CONFIG)).run(runs, out=out)
    assert result.products["exclusion_mask"].is_file()
    return Path(result.products["significance"])


def _redo(product: str, out: Path, archive: str, home: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CTANB_TOKEN"}
    home.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", "ctanb", "prov", "redo", product, "--out", str(out),
         "--archive", archive],
        capture_output=True, text=True, timeout=600, check=False,
        env={**env, "CTANB_HOME": str(home)},
    )  # fmt: skip


def _says_remade(stdout: str) -> None:
    assert "re-ran: exclusion-mask 1.0, map-dataset 1.0, excess-map 1.0" in stdout, stdout
    line = next(x for x in stdout.splitlines() if "re-made by this redo" in x)
    assert "exclusion_mask.fits" in line and "map_dataset.fits" in line, line
    # the only input located (by sha256) is the chain's leaf: the DL3 run (IRFs inside)
    located = next(x for x in stdout.splitlines() if "inputs (checked by sha256)" in x)
    assert located.strip() == "inputs (checked by sha256): 1 at the recorded location", located


def test_redo_by_did_without_the_makers_folder_remakes_the_intermediates(own, data_dir, tmp_path):
    made = tmp_path / "maker" / "out"
    product = _make(data_dir, made)
    did = ctanb.connect(own.url, token=CRAB_TOKEN).publish(product).did
    shutil.rmtree(made)  # moved away: the other machine has none of it
    out = tmp_path / "redo"
    done = _redo(did, out, own.url, tmp_path / "empty-home")
    assert done.returncode == 0, done.stdout + done.stderr
    assert ": identical" in done.stdout, done.stdout
    _says_remade(done.stdout)
    assert str(made) not in done.stdout + done.stderr
    assert (out / "exclusion_mask.fits").is_file() and (out / "map_dataset.fits").is_file()


def test_an_altered_intermediate_at_the_recorded_location_is_not_used(own, data_dir, tmp_path):
    made = tmp_path / "maker" / "out"
    product = _make(data_dir, made)
    did = ctanb.connect(own.url, token=CRAB_TOKEN).publish(product).did
    mask = made / "exclusion_mask.fits"
    with fits.open(mask, mode="update") as hdus:  # exclude nothing any more
        hdus[0].data = np.ones_like(hdus[0].data)
    out = tmp_path / "redo"
    done = _redo(did, out, own.url, tmp_path / "empty-home")
    assert done.returncode == 0, done.stdout + done.stderr
    assert ": identical" in done.stdout, done.stdout
    _says_remade(done.stdout)
    remade = fits.getdata(out / "exclusion_mask.fits")
    assert not remade.all() and fits.getdata(mask).all()  # its own mask, not the altered one
