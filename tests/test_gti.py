"""ctanb.archive.gti: GTIs read from the real DL3 files, time MOCs, bad input.

The expected values are computed here with astropy alone (header keywords read
by hand), not with ctanb.archive.gti.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from astropy.time import Time, TimeDelta
from hypothesis import given, settings
from hypothesis import strategies as st

from ctanb import TimeCoverageError
from ctanb.archive import gti

US = 1e-6 / 86400  # one microsecond in days


def _by_hand(path: Path) -> np.ndarray:
    with fits.open(path) as hdul:
        g = hdul["GTI"]
        h = g.header
        ref = Time(h["MJDREFI"] + h["MJDREFF"], format="mjd", scale=h["TIMESYS"].strip().lower())
        start = (ref + TimeDelta(g.data["START"], format="sec")).tt.mjd
        stop = (ref + TimeDelta(g.data["STOP"], format="sec")).tt.mjd
    return np.column_stack([start, stop])


@pytest.mark.parametrize(
    "relative",
    [
        "hess-dl3-dr1/data/hess_dl3_dr1_obs_id_033790.fits.gz",  # TT
        "magic/rad_max/data/20131004_05029747_DL3_CrabNebula-W0.40+035.fits",  # UTC
        "cta-1dc/data/baseline/gps/gps_baseline_110380.fits",  # TT, MJDREF 51544.5
    ],
)
def test_gtis_of_real_files(data_dir, relative):
    path = data_dir / relative
    expected = _by_hand(path)
    got = gti.gti_mjd(path)
    assert np.allclose(got, expected, atol=US, rtol=0)
    # through a time MOC and its ASCII form and back: 1 us cells, rounded outwards
    back = gti.tmoc_intervals(gti.tmoc_from_string(gti.tmoc_to_string(gti.intervals_to_tmoc(got))))
    assert np.all(back[:, 0] <= got[:, 0] + US) and np.all(back[:, 1] >= got[:, 1] - US)
    assert np.allclose(back, got, atol=2 * US, rtol=0)


def test_timeunit_timezero_and_mjdref(tmp_path):
    hdu = fits.BinTableHDU(Table({"START": [0.25, 1.0], "STOP": [0.5, 1.5]}), name="GTI")
    hdu.header.update(MJDREF=55000.0, TIMESYS="UTC", TIMEUNIT="d", TIMEZERO=0.125)
    path = tmp_path / "days.fits"
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path)
    ref = Time(55000.125, format="mjd", scale="utc")
    expected = [[(ref + TimeDelta(x, format="jd")).tt.mjd for x in pair] for pair in
                [(0.25, 0.5), (1.0, 1.5)]]  # fmt: skip
    assert np.allclose(gti.gti_mjd(path), expected, atol=US, rtol=0)


def test_bad_files_are_named(tmp_path):
    with pytest.raises(TimeCoverageError, match="no GTI extension"):
        gti.read_gti(_events_only(tmp_path))
    reversed_ = tmp_path / "reversed.fits"
    hdu = fits.BinTableHDU(Table({"START": [10.0], "STOP": [5.0]}), name="GTI")
    hdu.header.update(MJDREFI=51910, MJDREFF=0.0)
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(reversed_)
    with pytest.raises(TimeCoverageError, match="GTI row 0 stops"):
        gti.read_gti(reversed_)
    with pytest.raises(TimeCoverageError, match="no such"):
        gti.as_intervals(tmp_path / "missing.moc")
    garbage = tmp_path / "garbage.fits"
    garbage.write_bytes(b"\x00\x01" * 500)
    with pytest.raises(TimeCoverageError, match="neither a FITS nor an ASCII"):
        gti.read_tmoc(garbage)


def _events_only(tmp_path: Path) -> Path:
    path = tmp_path / "events_only.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU(Table({"TIME": [1.0]}), name="EVENTS")]
                 ).writeto(path)  # fmt: skip
    return path


def test_orders_and_scales():
    with pytest.raises(TimeCoverageError, match="order 62 is out of range"):
        gti.intervals_to_tmoc([[55000.0, 55001.0]], order=62)
    with pytest.raises(TimeCoverageError, match="order -1 is out of range"):
        gti.intervals_to_tmoc([[55000.0, 55001.0]], order=-1)
    with pytest.raises(TimeCoverageError, match="order 70 is out of range"):
        gti.tmoc_from_string("70/1")
    with pytest.raises(TimeCoverageError, match="not an MJD"):
        gti.check_intervals([2455000.5], [2455001.5])  # a JD, not an MJD
    utc = gti.check_intervals(Time(["2020-01-01T00:00:00"]), Time(["2020-01-01T01:00:00"]))
    assert utc[0, 0] == pytest.approx(Time("2020-01-01T00:00:00", scale="utc").tt.mjd, abs=US)


def _brute_overlap(a, b) -> float:
    return sum(max(0.0, min(y, d) - max(x, c)) for x, y in a for c, d in b) * 86400


_intervals = st.lists(
    st.tuples(st.floats(45000, 62000), st.floats(1e-6, 2.0)), min_size=1, max_size=8
).map(lambda xs: gti.merge_intervals(np.array([(a, a + d) for a, d in xs])))


@settings(max_examples=60, deadline=None)
@given(_intervals, _intervals)
def test_overlap_is_the_brute_force_one(a, b):
    assert gti.overlap_seconds(a, b) == pytest.approx(_brute_overlap(a, b), abs=1e-6)


@settings(max_examples=60, deadline=None)
@given(_intervals)
def test_tmoc_ascii_round_trip(iv):
    text = gti.tmoc_to_string(gti.intervals_to_tmoc(iv))
    back = gti.tmoc_intervals(gti.tmoc_from_string(text))
    # cells of 1 us, rounded outwards; touching intervals may merge
    assert back[0, 0] <= iv[0, 0] + US and back[-1, 1] >= iv[-1, 1] - US
    assert gti.overlap_seconds(back, iv) == pytest.approx(
        gti.overlap_seconds(iv, iv), abs=2e-6 * len(iv)
    )


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="t0123456789/- ,\nxs", max_size=40))
def test_any_text_is_a_moc_or_a_named_error(text):
    try:
        moc = gti.tmoc_from_string(text)
    except TimeCoverageError as exc:
        assert "time MOC" in exc.message
    else:
        assert moc is not None


def test_xmm_style_gti_extensions_are_read(tmp_path):
    # XMM-Newton writes one GTI table per CCD, STDGTI01...; any *GTI* extension is one
    hdu = fits.BinTableHDU(Table({"START": [100.0, 400.0], "STOP": [200.0, 700.0]}),
                           name="STDGTI01")  # fmt: skip
    hdu.header.update(MJDREF=50814.0, TIMESYS="TT")
    path = tmp_path / "xmm_pn.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU(Table({"TIME": [1.0]}), name="EVENTS"),
                  hdu]).writeto(path)  # fmt: skip
    expected = 50814.0 + np.array([[100.0, 200.0], [400.0, 700.0]]) / 86400
    assert np.allclose(gti.gti_mjd(path), expected, atol=US, rtol=0)
    assert np.allclose(gti.as_intervals(path), expected, atol=US, rtol=0)


def test_local_time_system_is_named(tmp_path):
    hdu = fits.BinTableHDU(Table({"START": [0.0], "STOP": [10.0]}), name="GTI")
    hdu.header.update(MJDREF=55000.0, TIMESYS="LOCAL")
    path = tmp_path / "local.fits"
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path)
    with pytest.raises(TimeCoverageError) as err:
        gti.read_gti(path)
    message = str(err.value)
    assert "local.fits" in message and "TIMESYS='LOCAL'" in message
    assert "LOCAL" not in message.split("one of")[-1]  # not offered as a usable scale


@pytest.mark.parametrize("order", [62, 99])
def test_fits_moc_order_out_of_range_is_named(tmp_path, order):
    path = tmp_path / "bad_order.fits"
    gti.intervals_to_tmoc([[55000.0, 55001.0]], order=30).save(path, format="fits")
    with fits.open(path, mode="update") as hdul:
        key = next(k for k in ("MOCORD_T", "TORDER", "MOCORDER") if k in hdul[1].header)
        hdul[1].header[key] = order
    with pytest.raises(TimeCoverageError, match=f"order {order} is out of range"):
        gti.read_tmoc(path)


def test_ascii_moc_order_out_of_range_is_named(tmp_path):
    path = tmp_path / "bad_order.txt"
    path.write_text("t70/5\n")
    with pytest.raises(TimeCoverageError, match=r"bad_order.txt.*order 70 is out of range"):
        gti.read_tmoc(path)


def test_iso_strings_and_mixed_pairs():
    iso = gti.as_intervals([("2006-07-29T20:50:00", "2006-07-29T20:54:00")])
    t0, t1 = Time("2006-07-29T20:50:00", scale="utc"), Time("2006-07-29T20:54:00", scale="utc")
    assert np.allclose(iso, [[t0.tt.mjd, t1.tt.mjd]], atol=US, rtol=0)
    spaced = gti.as_intervals([("2006-07-29 20:50:00", "2006-07-29 20:54:00")])
    assert np.allclose(spaced, iso, atol=US, rtol=0)
    with pytest.raises(TimeCoverageError, match=r"read as UTC.*read as TT"):
        gti.as_intervals([("2006-07-29T20:50:00", 53945.87)])
    with pytest.raises(TimeCoverageError, match="'yesterday' is not a time"):
        gti.as_intervals([("yesterday", "2006-07-29T20:54:00")])
