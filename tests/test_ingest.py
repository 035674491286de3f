"""Ingestion of the real public releases into the embedded archive."""

from __future__ import annotations

import gzip
import re
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from gammapy.data import EventList

from ctanb.archive.db import ACCESS_URL_BASE
from ctanb.archive.ingest import IngestReport, ingest
from ctanb.datamodel import HC_TEV_M

HESS_FILE = "hess-dl3-dr1/data/hess_dl3_dr1_obs_id_023523.fits.gz"


@pytest.fixture(scope="module")
def releases_db(tmp_path_factory, data_dir: Path) -> tuple[Path, IngestReport]:
    db = tmp_path_factory.mktemp("ingest") / "releases.db"
    report = ingest(
        [data_dir / "hess-dl3-dr1", data_dir / "cta-1dc", data_dir / "magic" / "rad_max"], db
    )
    return db, report


def _rows(db: Path, where: str = "1", args: tuple = ()) -> list[dict]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(f'SELECT * FROM "ivoa.obscore" WHERE {where}', args)]
    finally:
        conn.close()


def _files(db: Path, did: str) -> dict[str, tuple[str, int, str]]:
    conn = sqlite3.connect(db)
    try:
        cur = conn.execute(
            'SELECT semantics, path, size, sha256 FROM "ctanb.files" WHERE did=?', (did,)
        )
        return {s: (p, n, h) for s, p, n, h in cur}
    finally:
        conn.close()


def test_every_run_of_every_release_is_ingested(releases_db):
    db, report = releases_db
    assert report.skipped == []
    counts: dict[str, int] = {}
    for row in _rows(db):
        counts[row["obs_collection"]] = counts.get(row["obs_collection"], 0) + 1
    assert counts == {"HESS-DL3-DR1": 105, "CTA-1DC": 4, "MAGIC-RAD-MAX": 2}
    assert len(report.ingested) == 111


def test_crab_run_23523_matches_its_header(releases_db, data_dir):
    db, _ = releases_db
    (row,) = _rows(db, "obs_collection='HESS-DL3-DR1' AND obs_id='23523'")
    with fits.open(data_dir / HESS_FILE) as hdul:
        h, energy = hdul["EVENTS"].header, np.array(hdul["EVENTS"].data["ENERGY"], float)
    mjdref = h["MJDREFI"] + h["MJDREFF"]
    assert row["t_min"] == pytest.approx(mjdref + h["TSTART"] / 86400, abs=1e-8)
    assert row["t_max"] == pytest.approx(mjdref + h["TSTOP"] / 86400, abs=1e-8)
    assert row["t_min"] == pytest.approx(53343.9223, abs=1e-4)  # 2004-12-04 22:08 TT
    assert row["em_min"] == pytest.approx(HC_TEV_M / energy.max())
    assert row["em_max"] == pytest.approx(HC_TEV_M / energy.min())
    assert row["energy_max"] == pytest.approx(energy.max())
    assert row["ev_xel"] == len(energy) == h["NAXIS2"]
    assert row["t_exptime"] == pytest.approx(h["LIVETIME"])
    assert (row["s_ra"], row["s_dec"]) == pytest.approx((h["RA_PNT"], h["DEC_PNT"]))
    assert row["obs_type"] == "science"
    assert row["target_class"] == "pwn"
    assert row["target_name"] == "Crab Nebula"
    assert row["obs_mode"] == "wobble" and row["pointing_mode"] == "parallel"
    assert row["sub_array_name"] == "CT1-4" and row["n_tels"] == 4
    assert row["dataproduct_type"] == "event" and row["calib_level"] == 2
    assert row["dataproduct_subtype"] == "DL3-events"
    assert row["data_rights"] == "public" and row["_access_group"] is None
    assert row["obs_publisher_did"] == "ivo://ctanb.archive/hess-dl3-dr1?23523"
    assert (
        row["access_url"]
        == ACCESS_URL_BASE + "files/ivo%3A%2F%2Fctanb.archive%2Fhess-dl3-dr1%3F23523"
    )
    size = (data_dir / HESS_FILE).stat().st_size
    assert row["access_estsize"] == -(-size // 1024)
    # The FoV polygon: 32 vertices 2.5 deg (the IRF offset range) from the pointing.
    nums = [float(x) for x in row["s_region"].split()]
    assert len(nums) == 64 and row["s_fov"] == 5.0
    from ctanb.archive.geometry import angular_distance

    for ra, dec in zip(nums[0::2], nums[1::2], strict=True):
        assert angular_distance(ra, dec, row["s_ra"], row["s_dec"]) == pytest.approx(2.5, abs=1e-5)
    files = _files(db, row["obs_publisher_did"])
    assert files["#this"][0] == files["#calibration"][0] == str((data_dir / HESS_FILE).resolve())
    assert files["#this"][1] == size


def test_hess_offdata_runs_are_background_observations(releases_db, data_dir):
    db, _ = releases_db
    index = Table.read(data_dir / "hess-dl3-dr1" / "obs-index.fits.gz")
    off = {str(r["OBS_ID"]) for r in index if r["TARGET_TAG"].strip() == "offdata"}
    rows = _rows(db, "obs_collection='HESS-DL3-DR1'")
    background = {r["obs_id"] for r in rows if r["obs_type"] == "background"}
    assert background == off and len(off) == 45
    classes = {r["target_name"]: r["target_class"] for r in rows if r["obs_id"] not in off}
    assert classes == {"Crab Nebula": "pwn", "MSH 15-52": "pwn", "PKS 2155-304": "blazar",
                       "RX J1713.7-3946": "snr"}  # fmt: skip


BLAZARS = ("1ES 0145+138", "1ES 0414+009", "1ES 2343-151", "PKS 0548-322", "PKS 2316-423")


def test_every_hess_target_has_its_real_class(releases_db, data_dir):
    """No run pointed at a known object is a 'field' (off-data runs included): the
    blazars, SN 1006 and Kepler's SNR are found by class; gamma-cat, read here on its
    own, agrees for every DR1 object it holds."""
    db, _ = releases_db
    index = Table.read(data_dir / "hess-dl3-dr1" / "obs-index.fits.gz")
    rows = {r["obs_id"]: r for r in _rows(db, "obs_collection='HESS-DL3-DR1'")}
    assert len(rows) == len(index)
    by_object: dict[str, set] = {}
    for r in index:
        by_object.setdefault(r["OBJECT"].strip(), set()).add(rows[str(r["OBS_ID"])]["target_class"])
    blazar_runs = [str(r["OBS_ID"]) for r in index if r["OBJECT"].strip() in BLAZARS]
    assert len(blazar_runs) == 9
    public_blazars = {
        r["obs_id"] for r in rows.values()
        if r["target_class"] == "blazar" and r["data_rights"] == "public"
    }  # fmt: skip
    assert set(blazar_runs) <= public_blazars
    assert by_object["SN 1006"] == by_object["Kepler SNR"] == {"snr"}
    coordinates = re.compile(r"[0-9:+\-. ]+")
    for name, classes in by_object.items():
        if coordinates.fullmatch(name):  # a pointing at no object
            assert classes == {"field"}, name
        else:
            assert None not in classes and "field" not in classes, (name, classes)
    # independently: gamma-cat's class of each DR1 object it holds
    cat = Table.read(data_dir / "catalogs" / "gammacat" / "gammacat.fits.gz")
    key = lambda text: re.sub(r"[^a-z0-9]", "", text.lower())  # noqa: E731
    fine = {}
    for src in cat:
        for col in ("common_name", "gamma_names", "other_names"):
            if src[col] is not np.ma.masked:
                for n in str(src[col]).split(","):
                    fine.setdefault(key(n), str(src["classes"]).split(",")[0])
    expected = {"hbl": "blazar", "fri": "radio-galaxy", "galaxy": "starburst", "snr": "snr",
                "pwn": "pwn", "psr": "pwn"}  # fmt: skip
    held = {n: fine[key(n)] for n in by_object if key(n) in fine}
    assert {"SN 1006", "PKS 0548-322", "1ES 0414+009", "NGC 253", "Crab Nebula"} <= set(held)
    for name, cls in held.items():
        assert by_object[name] == {expected[cls]}, (name, cls, by_object[name])


def test_cta_1dc_links_the_caldb_irf_file(releases_db, data_dir):
    db, _ = releases_db
    rows = _rows(db, "obs_collection='CTA-1DC'")
    assert {r["obs_id"] for r in rows} == {"110380", "111140", "111159", "111630"}
    irf = data_dir / "cta-1dc/caldb/data/cta/1dc/bcf/South_z20_50h/irf_file.fits"
    for row in rows:
        files = _files(db, row["obs_publisher_did"])
        assert files["#calibration"][0] == str(irf.resolve())
        assert files["#calibration"][1] == irf.stat().st_size
        assert "gps_baseline_" in files["#this"][0]
        assert row["site"] == "CTAO-South"
        assert row["sub_array_name"] == "South_z20_50h baseline"
        assert row["s_fov"] == 10.0  # DSVAL3 CIRCLE(...,5) of the event header


def test_magic_runs_are_rad_max_with_utc_times_converted_to_tt(releases_db, data_dir):
    db, _ = releases_db
    rows = {r["obs_id"]: r for r in _rows(db, "obs_collection='MAGIC-RAD-MAX'")}
    assert set(rows) == {"5029747", "5029748"}
    path = data_dir / "magic/rad_max/data/20131004_05029747_DL3_CrabNebula-W0.40+035.fits"
    # gammapy's reading of the GADF time keywords (MJDREF in UTC + SI seconds) in TT.
    expected = EventList.read(path).observation_time_start
    row = rows["5029747"]
    assert row["t_min"] == pytest.approx(expected.tt.mjd, abs=1e-9)
    assert (row["t_min"] - expected.utc.mjd) * 86400 == pytest.approx(67.184, abs=1e-3)
    assert row["applied_cuts"] == "rad_max" and row["sub_array_name"] == "M1+M2"
    assert row["obs_mode"] == "wobble" and row["target_name"] == "Crab Nebula"


def test_corrupt_and_non_fits_files_are_named_and_skipped(tmp_path, data_dir):
    folder = tmp_path / "events"
    folder.mkdir()
    good = folder / "good.fits.gz"
    shutil.copyfile(data_dir / HESS_FILE, good)
    raw = gzip.decompress((data_dir / HESS_FILE).read_bytes())
    (folder / "truncated.fits").write_bytes(raw[: len(raw) // 3])
    (folder / "truncated.fits.gz").write_bytes((data_dir / HESS_FILE).read_bytes()[:50_000])
    (folder / "random.fits").write_bytes(np.random.default_rng(1).bytes(5000))
    (folder / "notes.txt").write_text("not a FITS file")
    report = ingest([folder], tmp_path / "a.db")
    assert report.ingested == ["ivo://ctanb.archive/hess-dl3-dr1?23523"]
    skipped = {Path(p).name: reason for p, reason in report.skipped}
    assert set(skipped) == {"truncated.fits", "truncated.fits.gz", "random.fits", "notes.txt"}
    assert "truncated" in skipped["truncated.fits"]
    assert "not a FITS file" in skipped["random.fits"]
    for name, reason in skipped.items():
        assert name in reason  # every reason names its file


def test_missing_path_is_reported(tmp_path):
    report = ingest([tmp_path / "nowhere"], tmp_path / "a.db")
    assert report.ingested == []
    assert report.skipped == [(str(tmp_path / "nowhere"), "no such file or folder")]


def test_reingesting_is_idempotent(tmp_path, data_dir):
    db = tmp_path / "a.db"
    first = ingest([data_dir / "magic" / "rad_max" / "data", data_dir / "cta-1dc"], db)
    second = ingest([data_dir / "magic" / "rad_max" / "data", data_dir / "cta-1dc"], db)
    assert sorted(first.ingested) == sorted(second.ingested) and len(first.ingested) == 6
    assert len(_rows(db)) == 6
    conn = sqlite3.connect(db)
    try:
        assert conn.execute('SELECT count(*) FROM "ctanb.files"').fetchone()[0] == 12
        assert conn.execute('SELECT count(*) FROM "ivoa.obscore#point"').fetchone()[0] == 6
    finally:
        conn.close()
