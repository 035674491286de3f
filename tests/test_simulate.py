"""The simulated CTAO collection: determinism, coverage of the CTA fields, footprint."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from ctanb._settings import release_dir
from ctanb.archive.ingest import ingest
from ctanb.archive.simulate import (
    MANIFEST_NAME,
    SIMULATED_RUNS,
    _event_checksum,
    describe_simulation,
    simulate,
)
from ctanb.archive.simulate_events import write_store


@pytest.fixture(scope="module")
def sim_rows(sim_dir: Path, tmp_path_factory) -> dict[int, dict]:
    db = tmp_path_factory.mktemp("sim") / "sim.db"
    report = ingest([sim_dir], db)
    assert report.skipped == []
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    rows = {int(r["obs_id"]): dict(r) for r in conn.execute('SELECT * FROM "ivoa.obscore"')}
    conn.close()
    return rows


def test_store_is_a_gadf_data_store_with_one_file_per_run(sim_dir):
    obs = Table.read(sim_dir / "obs-index.fits")
    hdu = Table.read(sim_dir / "hdu-index.fits")
    ids = [r.obs_id for r in SIMULATED_RUNS]
    assert list(obs["OBS_ID"]) == ids == list(range(100001, 100001 + len(ids)))
    assert 30 <= len(ids) <= 40
    assert len(hdu) == 6 * len(ids)
    assert (sim_dir / "README.md").read_text().startswith("# CTAO-SIM")
    for run in SIMULATED_RUNS:
        assert (sim_dir / "events" / f"ctao_sim_{run.obs_id}.fits").is_file()


def test_same_seed_gives_identical_events_other_seed_differs(sim_dir, tmp_path):
    runs = SIMULATED_RUNS[:2]  # one site and field of view: one template dataset to make
    caldb = release_dir("cta-caldb")
    write_store(tmp_path / "same", runs, seed=0, caldb=caldb)
    write_store(tmp_path / "other", runs[:1], seed=1, caldb=caldb)
    for run in runs:
        name = f"events/ctao_sim_{run.obs_id}.fits"
        assert _event_checksum(tmp_path / "same" / name) == _event_checksum(sim_dir / name)
        assert (tmp_path / "same" / name).read_bytes() == (sim_dir / name).read_bytes()
    name = f"events/ctao_sim_{runs[0].obs_id}.fits"
    assert _event_checksum(tmp_path / "other" / name) != _event_checksum(sim_dir / name)


def test_complete_store_is_not_simulated_again(sim_dir, monkeypatch):
    before = {p: p.stat().st_mtime_ns for p in sim_dir.rglob("*.fits")}

    def no_simulation(*args, **kwargs):
        raise AssertionError("a complete store was simulated again")

    # No wall-clock bound (speed targets live in bench/): the simulation must not run.
    monkeypatch.setattr("ctanb.archive.simulate_events.write_store", no_simulation)
    assert simulate(sim_dir) == sim_dir
    assert {p: p.stat().st_mtime_ns for p in sim_dir.rglob("*.fits")} == before
    assert (sim_dir / MANIFEST_NAME).is_file()


def test_ingested_rows_carry_the_header_metadata_of_each_run(sim_rows):
    assert set(sim_rows) == {r.obs_id for r in SIMULATED_RUNS}
    for run in SIMULATED_RUNS:
        row = sim_rows[run.obs_id]
        assert row["obs_collection"] == "CTAO-SIM"
        assert (row["site"], row["sub_array_name"]) == (run.site, run.sub_array)
        assert (row["target_name"], row["target_class"]) == (run.target, run.target_class)
        assert (row["obs_mode"], row["pointing_mode"]) == (run.obs_mode, run.pointing_mode)
        assert row["proposal_id"] == run.proposal_id
        assert (row["calib_version"], row["reco_version"]) == (run.calib_version, run.reco_version)
        assert (row["reco_method"], row["applied_cuts"]) == (run.reco_method, run.cuts)
        assert row["t_exptime"] == run.livetime_s
        assert (row["s_ra"], row["s_dec"]) == pytest.approx(run.pointing)
        assert row["s_fov"] == 2 * run.fov_radius
        assert row["obs_type"] == "science" and row["data_quality"] == "good"
        assert row["facility_name"] == "CTAO"


def test_every_cta_field_takes_several_values(sim_rows):
    rows = list(sim_rows.values())

    def values(name):
        return {r[name] for r in rows}

    assert values("site") == {"CTAO-North", "CTAO-South"}
    assert values("sub_array_name") == {"4LSTs09MSTs", "4LSTs", "9MSTs", "14MSTs37SSTs",
                                        "14MSTs", "37SSTs"}  # fmt: skip
    assert values("obs_mode") == {"wobble", "on", "scan"}
    assert values("pointing_mode") == {"parallel", "divergent"}
    assert values("target_class") == {"pwn", "blazar", "field"}
    assert values("reco_version") == {"ctapipe-0.19", "ctapipe-0.21"}
    assert values("reco_method") == {"hillas", "ImPACT", "FreePACT"}
    assert values("applied_cuts") == {"loose", "standard", "hard"}
    assert len(values("proposal_id")) >= 6 and len(values("calib_version")) == 2
    assert values("data_rights") == {"public", "proprietary"}
    high = {i for i, r in sim_rows.items() if r["energy_max"] > 50}
    assert high == {r.obs_id for r in SIMULATED_RUNS if r.emax_tev > 50} and high
    assert len(high) < len(rows)
    released = [r for r in rows if r["data_rights"] == "public" and r["obs_release_date"]]
    assert {r["proposal_id"] for r in released} == {"CTAO-2025A-003"}
    closed = [r for r in rows if r["data_rights"] == "proprietary"]
    assert all(r["obs_release_date"] > "2027" and r["_access_group"] for r in closed)


def test_example_searches_have_non_trivial_answers():
    runs = describe_simulation()

    def count(pred):
        n = sum(1 for r in runs if pred(r))
        assert 0 < n < len(runs)
        return n

    count(lambda r: r["target"] == "Crab Nebula" and r["start"].startswith("2026-01-15"))
    count(lambda r: r["emax_tev"] > 50)
    count(lambda r: r["target_class"] == "blazar")
    count(lambda r: r["proposal_id"] == "CTAO-2026A-003")
    count(lambda r: "LST" in r["sub_array"])
    assert count(lambda r: r["target"] == "Mrk 421" and r["pointing_mode"] != "divergent") < count(
        lambda r: r["target"] == "Mrk 421"
    )
    count(lambda r: r["target"] == "Crab Nebula" and r["reco_version"] == "ctapipe-0.21")
    count(lambda r: r["reco_method"] == "ImPACT")
    count(lambda r: r["target"] == "PKS 2155-304" and r["cuts"] == "loose")


def _offsets(ra, dec, ra0, dec0):
    ra, dec, ra0, dec0 = (np.radians(np.asarray(x, float)) for x in (ra, dec, ra0, dec0))
    cos = np.sin(dec) * np.sin(dec0) + np.cos(dec) * np.cos(dec0) * np.cos(ra - ra0)
    return np.degrees(np.arccos(np.clip(cos, -1, 1)))


def test_events_lie_in_the_field_of_view_and_energy_range(sim_dir):
    for run in SIMULATED_RUNS[::4]:
        with fits.open(sim_dir / "events" / f"ctao_sim_{run.obs_id}.fits") as hdul:
            data, header = hdul["EVENTS"].data, hdul["EVENTS"].header
            offsets = _offsets(data["RA"], data["DEC"], *run.pointing)
            assert np.max(offsets) <= run.fov_radius + 1e-4
            assert np.max(offsets) > run.fov_radius - 0.2  # the footprint is filled
            assert np.max(data["ENERGY"]) <= run.emax_tev
            assert header["EV_COUNT"] == len(data) > 500
            assert (
                header["TSTART"] <= np.min(data["TIME"]) <= np.max(data["TIME"]) <= header["TSTOP"]
            )
