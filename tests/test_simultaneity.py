"""Simultaneity search and ivoa.obscore_hea on the embedded archive (fixture ``archive_url``).

"Which H.E.S.S. PKS 2155-304 runs overlap these X-ray pointings?" The X-ray
pointings are made up; the expected runs and overlap durations are computed here
independently, from the GTI tables of the DL3 files read with astropy.io.fits and
plain interval arithmetic (not with ctanb.archive.gti).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from astropy.time import Time, TimeDelta
from mocpy import TimeMOC

import ctanb
from ctanb import QueryError, TimeCoverageError

#: Made-up X-ray pointings (UTC): two on the 2006 flare night, one on a night without
#: H.E.S.S. data, one on the 2008 steady night.
XRAY_UTC = [
    ("2006-07-29T21:00:00", "2006-07-29T21:45:00"),
    ("2006-07-30T01:30:00", "2006-07-30T02:10:00"),
    ("2006-07-31T12:00:00", "2006-07-31T13:00:00"),
    ("2008-08-27T19:50:00", "2008-08-27T20:10:00"),
]
#: The runs a person finds by looking at the run list (the durations come from the GTIs).
EXPECTED_RUNS = {33788, 33789, 33796, 33797, 33798, 47802, 47803}


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("CTANB_OFFLINE", "1")
    monkeypatch.delenv("CTANB_TOKEN", raising=False)


@pytest.fixture(scope="module")
def archive(archive_url):
    return ctanb.connect(archive_url, progress=False)


def _xray(pointings=XRAY_UTC) -> tuple[Time, Time]:
    start, stop = zip(*pointings, strict=True)
    return Time(list(start), scale="utc"), Time(list(stop), scale="utc")


def _expected(data_dir: Path, pointings=XRAY_UTC) -> dict[int, float]:
    """Overlap (s) of each PKS 2155-304 run's GTIs with the X-ray pointings."""
    store = data_dir / "hess-dl3-dr1"
    obs = Table.read(store / "obs-index.fits.gz")
    hdus = Table.read(store / "hdu-index.fits.gz")
    runs = {int(r["OBS_ID"]) for r in obs if "PKS 2155" in str(r["TARGET_NAME"])}
    xs, xe = _xray(pointings)
    x = np.column_stack([xs.tt.mjd, xe.tt.mjd])
    out = {}
    for row in hdus:
        if int(row["OBS_ID"]) not in runs or str(row["HDU_TYPE"]).strip() != "events":
            continue
        path = store / str(row["FILE_DIR"]).strip() / str(row["FILE_NAME"]).strip()
        with fits.open(path) as hdul:
            g = hdul["GTI"]
            ref = Time(g.header["MJDREFI"] + g.header["MJDREFF"], format="mjd",
                       scale=g.header["TIMESYS"].strip().lower())  # fmt: skip
            start = (ref + TimeDelta(g.data["START"], format="sec")).tt.mjd
            stop = (ref + TimeDelta(g.data["STOP"], format="sec")).tt.mjd
        total = 0.0
        for a, b in zip(start, stop, strict=True):
            for c, d in x:
                total += max(0.0, min(b, d) - max(a, c)) * 86400.0
        if total > 0:
            out[int(row["OBS_ID"])] = total
    return out


def _check(results, expected: dict[int, float]) -> None:
    got = {int(r["obs_id"]): float(r["overlap_s"]) for r in results}
    assert set(got) == set(expected)
    for run, seconds in expected.items():
        assert got[run] == pytest.approx(seconds, abs=2e-3), run  # TMOC cells are 1 us


def test_pks2155_runs_overlapping_xray_pointings(archive, data_dir, tmp_path):
    expected = _expected(data_dir)
    assert set(expected) == EXPECTED_RUNS
    start, stop = _xray()
    # an astropy Table with start/stop (UTC)
    table = Table({"start": start, "stop": stop})
    _check(archive.search(target_name="PKS 2155-304", during=table), expected)
    # pairs of Time
    _check(archive.search(target_name="PKS 2155-304", during=list(zip(start, stop, strict=True))),
           expected)  # fmt: skip
    # a TMOC FITS file and an ASCII one, written by mocpy
    tmoc = TimeMOC.from_time_ranges(start.tcb, stop.tcb, order=61)
    tmoc.save(tmp_path / "xray.fits", format="fits")
    tmoc.save(tmp_path / "xray.txt", format="ascii")
    for path in (tmp_path / "xray.fits", tmp_path / "xray.txt"):
        _check(archive.search(target_name="PKS 2155-304", during=path), expected)
    # the GTIs of another observation's file (an X-ray event file with its own MJDREF)
    ref = Time(50814.0, format="mjd", scale="tt")  # XMM-Newton's
    gti = fits.BinTableHDU(Table({"START": (start - ref).sec, "STOP": (stop - ref).sec}),
                           name="GTI")  # fmt: skip
    gti.header.update(MJDREFI=50814, MJDREFF=0.0, TIMESYS="TT", TIMEUNIT="s")
    fits.HDUList([fits.PrimaryHDU(), gti]).writeto(tmp_path / "xmm_events.fits")
    _check(archive.search(target_name="PKS 2155-304", during=tmp_path / "xmm_events.fits"),
           expected)  # fmt: skip


def test_adql_tmoc_overlap_function(archive, data_dir):
    expected = _expected(data_dir)
    start, stop = _xray()
    moc = TimeMOC.from_time_ranges(start.tcb, stop.tcb, order=61).to_string(format="ascii")
    m = moc.strip()
    adql = (
        f"SELECT o.obs_id, ivo_tmoc_overlap(h.t_intervals, '{m}') AS overlap_s "
        "FROM ivoa.obscore AS o JOIN ivoa.obscore_hea AS h USING (obs_publisher_did) "
        f"WHERE o.target_name = 'PKS 2155-304' AND ivo_tmoc_overlap(h.t_intervals, '{m}') > 0"
    )
    _check(archive.query(adql), expected)
    # an MJD pair: the first X-ray pointing alone
    first = _expected(data_dir, XRAY_UTC[:1])
    assert first
    a, b = float(start[0].tt.mjd), float(stop[0].tt.mjd)
    adql = (
        f"SELECT o.obs_id, ivo_tmoc_overlap(h.t_intervals, {a!r}, {b!r}) AS overlap_s "
        "FROM ivoa.obscore AS o JOIN ivoa.obscore_hea AS h USING (obs_publisher_did) "
        f"WHERE ivo_tmoc_overlap(h.t_intervals, {a!r}, {b!r}) > 0"
    )
    _check(archive.query(adql), first)


def test_obscore_hea_rows_follow_the_note(archive, data_dir):
    rows = archive.query(
        "SELECT h.*, o.energy_min AS e_min_tev, o.ev_xel AS n_obscore, o.obs_id, "
        "o.obs_collection FROM ivoa.obscore AS o JOIN ivoa.obscore_hea AS h "
        "USING (obs_publisher_did) WHERE o.obs_collection = 'HESS-DL3-DR1'"
    )
    assert len(rows) == 105
    table = rows.to_table()
    assert str(table["energy_min"].unit) == "eV"
    assert np.allclose(table["energy_min"], table["e_min_tev"] * 1e12)
    assert list(table["ev_xel"]) == list(table["n_obscore"])
    assert set(table["dataproduct_type"]) == {"hea-event-bundle"}  # IRFs in the event file
    assert set(table["messenger"]) == {"photon"}
    # t_intervals is the run's GTI, read here from the file with astropy
    row = next(r for r in rows if int(r["obs_id"]) == 33790)
    moc = TimeMOC.from_string(str(row["t_intervals"]), format="ascii")
    path = data_dir / "hess-dl3-dr1" / "data" / "hess_dl3_dr1_obs_id_033790.fits.gz"
    with fits.open(path) as hdul:
        g = hdul["GTI"]
        ref = Time(g.header["MJDREFI"] + g.header["MJDREFF"], format="mjd", scale="tt")
        gstart = ref + TimeDelta(g.data["START"][0], format="sec")
        gstop = ref + TimeDelta(g.data["STOP"][0], format="sec")
    assert moc.total_duration.sec == pytest.approx((gstop - gstart).sec, abs=1e-4)
    ms = TimeDelta([-1e-3, 1e-3], format="sec")
    # mocpy reads Time.jd in the scale it is given: hand it TCB, as the MOC 2.0 standard says
    assert list(moc.contains((gstart + ms).tcb)) == [False, True]
    assert list(moc.contains((gstop + ms).tcb)) == [True, False]
    one_dc = archive.query(
        "SELECT h.dataproduct_type FROM ivoa.obscore_hea AS h JOIN ivoa.obscore AS o "
        "USING (obs_publisher_did) WHERE o.obs_collection = 'CTA-1DC'"
    )
    assert {r["dataproduct_type"] for r in one_dc} == {"hea-event-list"}  # CALDB IRF apart


def test_capabilities_declare_the_udf(archive_url):
    import requests

    text = requests.get(archive_url + "/capabilities", timeout=30).text
    assert "TAPRegExt#features-udf" in text
    assert "ivo_tmoc_overlap(tmoc1 TEXT, tmoc2 TEXT)" in text


def test_bad_time_input_is_named(archive, tmp_path):
    start, stop = _xray()
    with pytest.raises(TimeCoverageError, match="interval 0 is in the wrong order"):
        archive.search(during=Table({"start": stop, "stop": start}))
    with pytest.raises(TimeCoverageError, match="not an MJD"):
        archive.search(during=[(175897474.0, 175899163.0)])  # mission seconds, not MJD
    with pytest.raises(TimeCoverageError, match="time scale 'local'"):
        archive.search(during=(Time([0.0], format="mjd", scale="local") + 53000,
                               Time([0.5], format="mjd", scale="local") + 53000))  # fmt: skip
    bad = tmp_path / "broken.fits"
    bad.write_bytes(b"SIMPLE  =                    T" + b"\0" * 100)
    with pytest.raises(TimeCoverageError, match=r"broken\.fits"):
        archive.search(during=bad)
    junk = tmp_path / "notes.txt"
    junk.write_text("these are my notes, not a MOC")
    with pytest.raises(TimeCoverageError, match="neither a FITS nor an ASCII time MOC"):
        archive.search(during=junk)
    # through ADQL: a 400 with the problem named, never a 500
    for moc, words in (("t62/1", "order 62 is out of range"), ("hello", "not a time MOC")):
        with pytest.raises(QueryError, match=words):
            archive.query(
                f"SELECT obs_publisher_did FROM ivoa.obscore_hea "
                f"WHERE ivo_tmoc_overlap(t_intervals, '{moc}') > 0"
            )
    with pytest.raises(QueryError, match="wrong order"):
        archive.query(
            "SELECT obs_publisher_did FROM ivoa.obscore_hea "
            "WHERE ivo_tmoc_overlap(t_intervals, 53946.1, 53946.0) > 0"
        )


def test_datalink_qualifies_irfs_as_response_functions(archive_url):
    import io

    import requests
    from astropy.io.votable import parse_single_table

    did = "ivo://ctanb.archive/hess-dl3-dr1?33790"
    body = requests.get(archive_url + "/datalink", params={"ID": did}, timeout=60).content
    links = parse_single_table(io.BytesIO(body)).to_table()
    by_semantics = {str(r["semantics"]): r for r in links}
    assert str(by_semantics["#calibration"]["content_qualifier"]) == "#response-function"
    assert str(by_semantics["#this"]["content_qualifier"]) == "#event-list"
