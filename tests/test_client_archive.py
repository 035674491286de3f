"""The client against the embedded archive over real HTTP (fixture ``archive_url``).

Expected answers are computed here from the releases' own index files and the
simulation's run table (:data:`ctanb.archive.simulate.SIMULATED_RUNS`), never
from the client's query builder.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from astropy.io import fits
from astropy.table import Table

import ctanb
from ctanb import AuthError, QueryError, ResolveError, ServiceError
from ctanb.archive.geometry import angular_distance
from ctanb.archive.simulate import SIMULATED_RUNS

CRAB = (83.63308, 22.01450)


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("CTANB_OFFLINE", "1")
    monkeypatch.delenv("CTANB_TOKEN", raising=False)
    monkeypatch.delenv("CTANB_TAP_URL", raising=False)


@pytest.fixture(scope="module")
def archive(archive_url):
    return ctanb.connect(archive_url, progress=False)


def _ids(results) -> set[tuple[str, int]]:
    return {(str(r["obs_collection"]), int(r["obs_id"])) for r in results}


def _sim(pred) -> set[tuple[str, int]]:
    return {("CTAO-SIM", r.obs_id) for r in SIMULATED_RUNS if pred(r)}


def _released(proposal_id: str) -> bool:
    """Public today according to the demo policy file (not the service's code)."""
    policy = yaml.safe_load(
        (Path(ctanb.__file__).parent / "archive" / "demo_policy.yaml").read_text()
    )
    for rule in policy["rules"]:
        if rule["match"].get("proposal_id") == proposal_id:
            return dt.date.fromisoformat(rule["release_date"]) <= dt.date.today()
    return True


def _hess_index(data_dir: Path) -> Table:
    return Table.read(data_dir / "hess-dl3-dr1" / "obs-index.fits.gz")


def _hess_mjd(table: Table, column: str) -> np.ndarray:
    ref = table.meta["MJDREFI"] + table.meta["MJDREFF"]
    return ref + np.asarray(table[column], dtype=float) / 86400.0


def _all_pointings(data_dir: Path) -> list[tuple[str, int, float, float]]:
    """(collection, obs_id, ra_pnt, dec_pnt) of every run in every release."""
    out = []
    for coll, path in [
        ("HESS-DL3-DR1", data_dir / "hess-dl3-dr1" / "obs-index.fits.gz"),
        ("CTA-1DC", data_dir / "cta-1dc" / "index" / "gps" / "obs-index.fits.gz"),
        ("MAGIC-RAD-MAX", data_dir / "magic" / "rad_max" / "data" / "obs-index.fits.gz"),
    ]:
        for row in Table.read(path):
            out.append((coll, int(row["OBS_ID"]), float(row["RA_PNT"]), float(row["DEC_PNT"])))
    out += [("CTAO-SIM", r.obs_id, *r.pointing) for r in SIMULATED_RUNS]
    return out


# --- the seed's example searches ------------------------------------------------------------
def test_data_for_a_target_at_a_given_time(archive, data_dir):
    results = archive.search(target="Crab", time=("2004-12-04", "2004-12-06"))
    hess = _hess_index(data_dir)
    start, stop = _hess_mjd(hess, "TSTART"), _hess_mjd(hess, "TSTOP")
    t0, t1 = (53343 + 64.184 / 86400, 53345 + 64.184 / 86400)  # the two days, UTC -> TT
    expected = {
        ("HESS-DL3-DR1", int(row["OBS_ID"]))
        for row, a, b in zip(hess, start, stop, strict=True)
        if b >= t0 and a <= t1 and angular_distance(row["RA_PNT"], row["DEC_PNT"], *CRAB) < 2.0
    }
    assert expected == {("HESS-DL3-DR1", 23523), ("HESS-DL3-DR1", 23526)}
    assert _ids(results) == expected


def test_data_in_a_sky_region(archive, data_dir):
    centre, radius = (258.39, -39.77), 2.0  # around RX J1713.7-3946
    results = archive.search(ra=centre[0], dec=centre[1], radius=radius, spatial="pointing")
    expected = {
        (c, i) for c, i, ra, dec in _all_pointings(data_dir)
        if angular_distance(ra, dec, *centre) <= radius
    }  # fmt: skip
    assert len(expected) >= 10
    assert _ids(results) == expected


def test_data_in_a_sky_region_by_footprint(archive, data_dir):
    # A circle overlaps a field of view when centre distances are below the sum of radii;
    # the margin keeps polygon approximations of the footprints out of the question.
    centre, radius = (128.3, -45.2), 1.0  # Vela X, simulated CTAO-South fields of 3 deg
    results = archive.search(ra=centre[0], dec=centre[1], radius=radius, collection="CTAO-SIM")
    distances = {("CTAO-SIM", r.obs_id): (angular_distance(*r.pointing, *centre), r.fov_radius)
                 for r in SIMULATED_RUNS}  # fmt: skip
    assert all(abs(d - (radius + fov)) > 0.2 for d, fov in distances.values())
    expected = {k for k, (d, fov) in distances.items() if d < radius + fov}
    assert len(expected) == 7  # not empty: an empty answer must not pass
    assert expected == _sim(lambda r: r.target == "Vela X")
    assert _ids(results) == expected


def test_data_with_events_above_50_tev(archive, data_dir, sim_dir):
    results = archive.search(energy_min=50)
    # The runs whose event lists hold an event of 50 TeV or more, read from the files.
    expected = set()
    for collection, files in [
        ("HESS-DL3-DR1", (data_dir / "hess-dl3-dr1" / "data").glob("*.fits.gz")),
        ("CTA-1DC", (data_dir / "cta-1dc" / "data").rglob("*.fits")),
        ("MAGIC-RAD-MAX", (data_dir / "magic" / "rad_max" / "data").glob("*DL3*.fits")),
        ("CTAO-SIM", Path(sim_dir).rglob("*.fits*")),
    ]:
        for path in files:
            with fits.open(path) as hdul:
                if "EVENTS" not in hdul:
                    continue
                energy = hdul["EVENTS"].data["ENERGY"]
                if len(energy) and float(np.max(energy)) >= 50.0:
                    expected.add((collection, int(hdul["EVENTS"].header["OBS_ID"])))
    assert len(expected) >= 5
    assert _ids(results) == expected
    assert min(results["energy_max"]) >= 50


def test_public_data_for_all_blazars(archive):
    results = archive.search(target_class="blazar", data_rights="public", collection="CTAO-SIM")
    expected = _sim(lambda r: r.target_class == "blazar" and _released(r.proposal_id))
    assert len(expected) == 7  # Mrk 421 (2025A-003), 1ES 0229+200, PKS 2155-304 (2025B-008)
    assert _ids(results) == expected


def test_data_for_a_proposal(archive):
    results = archive.search(proposal_id="CTAO-2026A-003")
    expected = _sim(lambda r: r.proposal_id == "CTAO-2026A-003")
    assert len(expected) == 5  # not empty: an empty answer must not pass
    assert _ids(results) == expected


def test_data_that_include_the_lsts(archive):
    results = archive.search(sub_array_includes="LST")
    expected = _sim(lambda r: "LST" in r.sub_array)
    assert len(expected) == 13
    assert _ids(results) == expected


def test_a_target_without_divergent_pointing(archive):
    results = archive.search(target="Mrk 421", exclude_pointing_mode="divergent")
    expected = _sim(lambda r: r.target == "Mrk 421" and r.pointing_mode != "divergent")
    assert len(expected) == 4
    assert _ids(results) == expected
    assert "divergent" not in set(results["pointing_mode"])


def test_data_of_a_pipeline_version_for_a_target(archive):
    results = archive.search(target="Crab", reco_version="ctapipe-0.21")
    expected = _sim(lambda r: r.target == "Crab Nebula" and r.reco_version == "ctapipe-0.21")
    # Not empty, and fewer than all Crab runs: the version criterion is what selects.
    assert 0 < len(expected) < len(_sim(lambda r: r.target == "Crab Nebula"))
    assert _ids(results) == expected


def test_data_of_a_reconstruction_method(archive):
    results = archive.search(reco_method="FreePACT")
    expected = _sim(lambda r: r.reco_method == "FreePACT")
    assert len(expected) == 7
    assert _ids(results) == expected


def test_a_target_with_loose_cuts(archive):
    results = archive.search(target="PKS 2155-304", applied_cuts="loose")
    expected = _sim(lambda r: r.target == "PKS 2155-304" and r.cuts == "loose")
    # Not empty, and fewer than all PKS 2155-304 runs: the cuts criterion is what selects.
    assert 0 < len(expected) < len(_sim(lambda r: r.target == "PKS 2155-304"))
    assert _ids(results) == expected


def test_hostile_target_name_cannot_change_the_query(archive):
    for name in ["'; DROP TABLE ivoa.obscore; --", "Crab' OR '1'='1"]:
        assert len(archive.search(target_name=name)) == 0
    assert len(archive.search(target_name="Crab Nebula")) > 0  # the table is still there


# --- results ------------------------------------------------------------------------------
def test_results_keep_field_metadata_records_and_footprints(archive):
    results = archive.search(target="Crab", collection="HESS-DL3-DR1")
    table = results.table
    assert table["t_exptime"].unit == "s" and table["em_min"].unit == "m"
    assert table["s_ra"].meta["ucd"] == "pos.eq.ra"
    assert "Right ascension" in table["s_ra"].description
    record = results[0]
    assert record.obs_collection == "HESS-DL3-DR1" and record["obs_id"] == record.obs_id
    footprints = results.footprints()
    assert len(footprints) == len(results)
    assert str(table["s_region"][0]).startswith("POLYGON ICRS ")  # ObsCore 1.1 STC-S
    crab = ctanb.client.resolve.NameResolver().resolve("Crab").skycoord()
    assert all(f.vertices.separation(crab).max().deg < 10 for f in footprints)
    html = results._repr_html_()
    assert f"{len(results)} dataset(s)" in html and "<table" in html
    links = record.datalink()
    assert [x.semantics for x in links.by_semantics("#this")] == ["#this"]


def test_footprints_read_stcs_and_dali_polygons_alike():
    from ctanb.client.results import parse_polygon

    vertices = [(83.5, 21.0), (84.5, 21.0), (84.0, 22.5)]
    flat = [x for v in vertices for x in v]
    text = " ".join(map(str, flat))
    forms = [f"POLYGON ICRS {text}", f"Polygon ICRS {text}", f"polygon {text}", text,
             np.array(flat), f"POLYGON ICRS {text}".encode()]  # fmt: skip
    assert all(parse_polygon(f) == vertices for f in forms)
    assert parse_polygon(None) == [] and parse_polygon(np.ma.masked) == []
    for bad, word in [(f"CIRCLE ICRS {text}", "CIRCLE"), ("POLYGON ICRS 1 2 x 4 5 6", "'x'")]:
        with pytest.raises(QueryError, match=word):
            parse_polygon(bad)


# --- async, history ---------------------------------------------------------------------
def test_async_query_reports_phases_and_can_be_cancelled(archive):
    phases: list[str] = []
    results = archive.query(
        "SELECT TOP 3 obs_id FROM ivoa.obscore", mode="async", callback=phases.append
    )
    assert len(results) == 3 and phases[-1] == "COMPLETED"
    job = archive.submit("SELECT * FROM ivoa.obscore AS a, ivoa.obscore AS b, ivoa.obscore AS c")
    assert job.cancel() == "ABORTED"
    with pytest.raises(QueryError, match="aborted"):
        job.results(timeout=10)


def test_history_survives_a_new_process(archive_url, tmp_path):
    env = {**os.environ, "CTANB_HOME": str(tmp_path), "CTANB_OFFLINE": "1"}
    writer = (
        f"import ctanb; a = ctanb.connect({archive_url!r}, progress=False); "
        "a.search(proposal_id='CTAO-2026A-003')"
    )
    subprocess.run([sys.executable, "-c", writer], env=env, check=True, timeout=120)
    reader = (
        f"import json, ctanb; a = ctanb.connect({archive_url!r}, progress=False); "
        "print(json.dumps([(e.url, e.adql, e.rows, e.status) for e in a.history]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", reader], env=env, check=True, capture_output=True, text=True
    )
    ((url, adql, rows, status),) = json.loads(out.stdout)
    assert (url, rows, status) == (archive_url.rstrip("/"), 5, "COMPLETED")
    assert "proposal_id = 'CTAO-2026A-003'" in adql


# --- errors -------------------------------------------------------------------------------
def test_unreachable_archive_is_a_service_error_with_the_url():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/tap"
    sock.close()
    with pytest.raises(ServiceError) as info:
        ctanb.connect(url).query("SELECT TOP 1 * FROM ivoa.obscore")
    assert info.value.url.startswith(url) and url in str(info.value)


def test_bad_adql_is_a_query_error_with_the_servers_message_and_position(archive):
    with pytest.raises(QueryError) as info:
        archive.query("SELECT obs_id FROM ivoa.obscore\nWHERE obs_id = = 3")
    assert info.value.position is not None and info.value.position[0] == 2
    assert info.value.query.startswith("SELECT obs_id")
    with pytest.raises(QueryError, match="no_such_column"):
        archive.query("SELECT no_such_column FROM ivoa.obscore")


def test_unknown_target_is_a_resolve_error_with_suggestions(archive):
    with pytest.raises(ResolveError) as info:
        archive.search(target="Crab Nebulla")
    assert "Crab Nebula" in info.value.suggestions


def test_archive_target_names_resolve_offline(archive):
    found = archive.resolve("Cygnus field")
    assert found.source == "archive"
    assert angular_distance(found.ra, found.dec, 305.0, 40.5) < 3.0


def test_connect_without_configuration_explains_how_to_start_an_archive(monkeypatch, tmp_path):
    monkeypatch.setenv("CTANB_HOME", str(tmp_path))
    with pytest.raises(ctanb.ConfigError, match="ctanb archive serve"):
        ctanb.connect()
    (tmp_path / "archive.json").write_text(json.dumps({"url": "http://127.0.0.1:9/tap"}))
    assert ctanb.connect().url == "http://127.0.0.1:9/tap"
    monkeypatch.setenv("CTANB_TAP_URL", "http://127.0.0.1:8/tap")
    assert ctanb.connect().url == "http://127.0.0.1:8/tap"


# --- downloads and gammapy --------------------------------------------------------------------
def _events_naxis2(path: Path) -> int:
    with fits.open(path) as hdul:
        return int(hdul["EVENTS"].header["NAXIS2"])


def test_crab_run_from_hess_into_gammapy(archive):
    results = archive.search(
        target="Crab", collection="HESS-DL3-DR1", time=("2004-12-04", "2004-12-05")
    )
    observations = archive.observations(results)
    assert [int(o.obs_id) for o in observations] == [23523, 23526]
    paths = archive.download(results)
    for obs, path in zip(observations, paths, strict=True):
        assert len(obs.events.table) == _events_naxis2(path)
        assert obs.aeff is not None and obs.edisp is not None and obs.psf is not None
        assert obs.bkg is not None


def test_cta_1dc_run_with_caldb_irf_via_datalink(archive):
    results = archive.search(collection="CTA-1DC", obs_id="110380")
    links = results[0].datalink()
    (calibration,) = links.by_semantics("#calibration")
    assert calibration.access_url != results[0].access_url
    (obs,) = archive.observations(results)
    assert int(obs.obs_id) == 110380
    (path,) = archive.download(results)
    assert len(obs.events.table) == _events_naxis2(path)
    assert obs.aeff is not None and obs.edisp is not None and obs.psf is not None
    assert obs.bkg is not None


def test_magic_point_like_run_with_rad_max(archive):
    results = archive.search(collection="MAGIC-RAD-MAX")
    observations = archive.observations(results)
    assert len(observations) == 2
    for obs, path in zip(observations, archive.download(results), strict=True):
        assert obs.rad_max is not None and obs.aeff is not None and obs.edisp is not None
        assert len(obs.events.table) == _events_naxis2(path)


def test_download_to_dest_with_calibration(archive, tmp_path):
    results = archive.search(collection="CTA-1DC", obs_id=["110380", "111140"])
    paths = archive.download(results, dest=tmp_path / "out", calibration=True)
    assert all(p.parent == tmp_path / "out" and p.is_file() for p in paths)
    assert len(paths) == 4  # two event lists, each with its IRF file


def test_corrupt_cached_file_is_fetched_again_from_the_service(archive):
    results = archive.search(collection="MAGIC-RAD-MAX")
    (path, *_) = archive.download(results)
    good = path.read_bytes()
    path.write_bytes(good[:-10] + b"0123456789")
    (again, *_) = archive.download(results)
    assert again.read_bytes() == good


def test_proprietary_data_need_the_right_token(archive_url):
    vela = [r for r in SIMULATED_RUNS if r.proposal_id == "CTAO-2026A-001"]
    criteria = {"collection": "CTAO-SIM", "obs_id": str(vela[0].obs_id)}
    anonymous = ctanb.connect(archive_url, progress=False)
    results = anonymous.search(**criteria)
    assert results[0].data_rights == "proprietary"
    with pytest.raises(AuthError, match="2028-03-31") as info:
        anonymous.download(results)
    assert "token" in str(info.value)
    with pytest.raises(AuthError):
        ctanb.connect(archive_url, token="demo-token-pks2155", progress=False).download(results)
    (path,) = ctanb.connect(archive_url, token="demo-token-vela", progress=False).download(results)
    assert _events_naxis2(path) > 0
    assert math.isfinite(path.stat().st_size)


def test_group_colon_token_is_sent_as_basic_auth_and_accepted(archive_url):
    """``group:token`` is the credential DaCHS needs; the embedded archive takes it too."""
    vela = [r for r in SIMULATED_RUNS if r.proposal_id == "CTAO-2026A-001"]
    criteria = {"collection": "CTAO-SIM", "obs_id": str(vela[1].obs_id)}
    archive = ctanb.connect(archive_url, token="vela-team:demo-token-vela", progress=False)
    sent = archive.session.get(f"{archive_url}/availability").request.headers
    assert sent["Authorization"].startswith("Basic ")
    (path,) = archive.download(archive.search(**criteria))
    assert _events_naxis2(path) > 0
    # A wrong group:token used to read as anonymous (search answered, the download was
    # refused); the client now checks it with /whoami before the first request.
    wrong = ctanb.connect(archive_url, token="vela-team:not-a-token", progress=False)
    with pytest.raises(AuthError, match="does not know this token"):
        wrong.search(**criteria)


# --- astropy values (issue 15, item 8) ----------------------------------------------------------
def test_search_takes_astropy_quantities_coordinates_and_times(archive, data_dir):
    import astropy.units as u
    from astropy.coordinates import SkyCoord
    from astropy.time import Time

    hess = _hess_index(data_dir)
    crab = SkyCoord(83.6331, 22.0145, unit="deg")
    pointings = SkyCoord(hess["RA_PNT"], hess["DEC_PNT"], unit="deg")
    near = {int(i) for i in hess["OBS_ID"][pointings.separation(crab) < 2 * u.deg]}
    assert near  # independent: the release's own index, not our archive
    for radius in (2 * u.deg, "2 deg", "120 arcmin"):
        results = archive.search(position=crab, radius=radius, spatial="pointing",
                                 collection="HESS-DL3-DR1")  # fmt: skip
        assert {int(x) for x in results.table["obs_id"]} == near, radius
    by_name = archive.search(ra=crab.ra, dec=crab.dec, radius=2 * u.deg, spatial="pointing",
                             collection="HESS-DL3-DR1")  # fmt: skip
    assert {int(x) for x in by_name.table["obs_id"]} == near
    start, stop = Time("2004-12-04", scale="utc"), Time("2004-12-06", scale="utc")
    in_time = archive.search(position="Crab", radius=3 * u.deg, time=(start, stop),
                             energy_min=1000 * u.GeV, collection="HESS-DL3-DR1")  # fmt: skip
    tstart, tstop = _hess_mjd(hess, "TSTART"), _hess_mjd(hess, "TSTOP")
    expected = {int(i) for i, a, b in zip(hess["OBS_ID"], tstart, tstop, strict=True)
                if a <= stop.tt.mjd and b >= start.tt.mjd and int(i) in near}  # fmt: skip
    assert expected and {int(x) for x in in_time.table["obs_id"]} == expected
    # The results keep their units: quantities come back out.
    table = in_time.table
    assert table["s_ra"].unit == u.deg and table["t_exptime"].unit == u.s
    assert (table["t_exptime"].quantity.to(u.min) > 1 * u.min).all()
