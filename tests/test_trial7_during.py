"""Bad input to the simultaneity search (issue 18, item 7), as a fresh-eyes tester tried it.

Masked (blank) times, huge and crafted time MOC files, a space MOC given for a time
MOC, truncated FITS, folders, durations instead of times, a JD typed in the panel,
and DaCHS's PL/pgSQL internals: each refused with a message naming the problem.
The search runs against the embedded archive (fixture ``archive_url``).
"""

from __future__ import annotations

import time

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from astropy.table import MaskedColumn, Table
from astropy.time import Time
from hypothesis import given, settings
from hypothesis import strategies as st
from mocpy import MOC, TimeMOC

import ctanb
from ctanb import QueryError, TimeCoverageError
from ctanb.archive import gti
from ctanb.archive.gti_files import MAX_TMOC_FILE_BYTES
from ctanb.client._protocol import server_message


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("CTANB_OFFLINE", "1")
    monkeypatch.delenv("CTANB_TOKEN", raising=False)


@pytest.fixture(scope="module")
def archive(archive_url):
    return ctanb.connect(archive_url, progress=False)


def _search(archive, during):
    return archive.search(target_name="PKS 2155-304", during=during)


# ------------------------------------------------------------------- 1. masked times
def test_a_masked_start_time_is_refused_naming_the_row(archive):
    start = Time([53945.0, 53946.05], format="mjd")
    start[0] = np.ma.masked
    stop = Time([53946.1] * 2, format="mjd")
    with pytest.raises(TimeCoverageError, match=r"time interval 0 has a missing"):
        _search(archive, Table({"start": start, "stop": stop}))
    # the same rows without the mask do find runs: the refusal is the mask's
    assert len(_search(archive, Table({"start": Time([53946.05], format="mjd"),
                                       "stop": Time([53946.1], format="mjd")})))  # fmt: skip


def test_blank_cells_of_a_csv_file_are_refused_naming_the_rows(archive, tmp_path):
    csv = tmp_path / "xray.csv"
    csv.write_text("start,stop\n53946.05,53946.1\n,53946.1\n53946.06,\n")
    table = Table.read(csv, format="ascii.csv")
    assert isinstance(table["start"], MaskedColumn)
    with pytest.raises(TimeCoverageError, match=r"time intervals 1, 2 have a missing"):
        _search(archive, table)


# ------------------------------------------------------------------ 2. huge MOC files
def test_a_huge_ascii_time_moc_file_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "huge.txt"
    with open(path, "wb") as fh:
        fh.write(b"t61/1\n")
        fh.truncate(MAX_TMOC_FILE_BYTES + 1)  # sparse: big on stat, nothing to read
    t0 = time.perf_counter()
    with pytest.raises(
        TimeCoverageError, match=r"too large for a time MOC file \(the limit is 16 MB\)"
    ):
        gti.as_intervals(path)
    assert time.perf_counter() - t0 < 0.5


def test_a_huge_fits_time_moc_file_is_refused_before_its_data_are_read(tmoc_fits):
    with fits.open(tmoc_fits) as hdul:
        header = hdul[1].header.copy()
        rows = MAX_TMOC_FILE_BYTES // 8 + 1
        big = fits.BinTableHDU.from_columns(
            [fits.Column(name="RANGE", format="1K", array=np.zeros(rows, dtype=np.int64))],
            header=header,
        )
        fits.HDUList([hdul[0].copy(), big]).writeto(tmoc_fits.with_name("big.fits"))
    with pytest.raises(TimeCoverageError, match=r"big.fits: .*\(the limit is 16 MB\)"):
        gti.as_intervals(tmoc_fits.with_name("big.fits"))


# --------------------------------------------------------------------- 3. space MOCs
SPACE_MESSAGE = r"'3/1-5' is a space MOC \(order/cells without 't'\): give a time MOC"


def test_a_space_moc_in_adql_is_refused(archive):
    with pytest.raises(QueryError, match=SPACE_MESSAGE):
        archive.query(
            "SELECT COUNT(*) FROM ivoa.obscore_hea WHERE ivo_tmoc_overlap(t_intervals, '3/1-5') > 0"
        )


def test_a_space_moc_file_is_refused(tmp_path):
    ascii_file = tmp_path / "space.txt"
    ascii_file.write_text("3/1-5\n")
    with pytest.raises(TimeCoverageError, match=SPACE_MESSAGE):
        gti.as_intervals(ascii_file)
    fits_file = tmp_path / "space.fits"
    MOC.from_str("3/1-5").save(fits_file, format="fits", overwrite=True)
    with pytest.raises(TimeCoverageError, match=r"space.fits: a space MOC, not a time MOC") as e:
        gti.as_intervals(fits_file)
    assert "PRIMARY, )" not in str(e.value)


# ---------------------------------------------------------------- 4. named problems
@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("t61/999999999999999999999", r"cell 999999999999999999999 is out of range for order 61"),
        ("t3/16", r"cell 16 is out of range for order 3: its cells are 0 to 15"),
        ("t61/500-100", r"range 500-100 is reversed"),
        ("t62/1", r"order 62 is out of range"),
    ],
)
def test_a_bad_ascii_moc_file_names_its_problem(tmp_path, text, named):
    path = tmp_path / "bad.txt"
    path.write_text(text + "\n")
    with pytest.raises(TimeCoverageError, match=named) as e:
        gti.as_intervals(path)
    assert str(path) in str(e.value) and "neither" not in str(e.value)


@pytest.fixture
def tmoc_fits(tmp_path):
    start, stop = Time([53945.9], format="mjd", scale="tt"), Time([53946.1], format="mjd")
    path = tmp_path / "ok.fits"
    TimeMOC.from_time_ranges(start.tcb, stop.tt.tcb, order=61).save(
        path, format="fits", overwrite=True
    )
    return path


@pytest.mark.parametrize("cut", [0.5, None])
def test_a_truncated_fits_file_is_named_so_and_astropy_stays_quiet(tmoc_fits, capsys, cut):
    data = tmoc_fits.read_bytes()
    damaged = tmoc_fits.with_name("cut.fits")
    damaged.write_bytes(data[: int(len(data) * cut)] if cut else data[: 2880 + 10])
    with pytest.raises(TimeCoverageError, match=r"cut.fits: the FITS file is truncated or damaged"):
        gti.as_intervals(damaged)
    err = capsys.readouterr().err
    assert "2880" not in err and "WARNING" not in err


def test_a_folder_is_named_a_folder(tmp_path):
    with pytest.raises(TimeCoverageError, match=r"is a folder, not a file"):
        gti.as_intervals(tmp_path)
    from ctanb.client.during import intervals_from_text

    with pytest.raises(TimeCoverageError, match=r"is a folder, not a file"):
        intervals_from_text(str(tmp_path) + "/")


def test_a_fits_order_out_of_range_names_the_file(tmoc_fits):
    with fits.open(tmoc_fits) as hdul:
        hdul[1].header["MOCORD_T"] = 70
        hdul.writeto(tmoc_fits.with_name("o70.fits"))
    with pytest.raises(TimeCoverageError, match=r"o70.fits: MOCORD_T=70: time MOC order 70"):
        gti.as_intervals(tmoc_fits.with_name("o70.fits"))


def test_durations_are_not_times(archive):
    with pytest.raises(TimeCoverageError, match=r"0 s is a duration, not a time: give .*Time"):
        _search(archive, [(0 * u.s, 10 * u.s)])
    # days are MJDs
    assert len(_search(archive, [(53946.05 * u.d, 53946.1 * u.d)]))


def test_a_jd_typed_in_the_panel_says_what_to_type(archive):
    from ctanb.widgets.search import SearchPanel

    panel = SearchPanel(archive)
    panel.during_input.text_box.value = "2453946.4 2453946.6"
    assert "2453946.4 is not an MJD" in panel.error
    assert "Type ISO dates" in panel.error and "MJD numbers (TT)" in panel.error
    assert "astropy Time" not in panel.error
    box = panel.during_input.text_box
    assert "MJD in TT" in box.placeholder and "MJD numbers are TT" in box.tooltip


# ----------------------------------------------------- 5. DaCHS's internals removed
DACHS_ERROR = (
    b'<?xml version="1.0" encoding="utf-8"?>\n'
    b'<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">'
    b'<RESOURCE type="results"><INFO name="QUERY_STATUS" value="ERROR">Field query: '
    b"ivo_tmoc_overlap: the MJD start 2453946.4 is not an MJD (expected days between 15020 = "
    b"1900 and 88069 = 2100): mission seconds or a JD?\n"
    b"CONTEXT:  PL/pgSQL function ivoa.ctanb_tmoc_overlap_mjd(text,double precision,double "
    b"precision) line 7 at RAISE\n</INFO></RESOURCE></VOTABLE>"
)


def test_dachs_messages_lose_the_plpgsql_internals():
    expected = (
        "ivo_tmoc_overlap: the MJD start 2453946.4 is not an MJD (expected days between "
        "15020 = 1900 and 88069 = 2100): mission seconds or a JD?"
    )
    assert server_message(DACHS_ERROR) == expected
    # pyvo hands the same words over as text (DALQueryError.reason)
    text = DACHS_ERROR.split(b'"ERROR">')[1].split(b"</INFO>")[0].decode()
    assert server_message(text) == expected


# --------------------------------------------------- crafted ASCII MOCs (hypothesis)
_cell = st.integers(min_value=0, max_value=2**70)
_word = st.one_of(
    st.tuples(st.integers(-2, 70), _cell).map(lambda t: f"{t[0]}/{t[1]}"),
    st.tuples(_cell, _cell).map(lambda t: f"{t[0]}-{t[1]}"),
    _cell.map(str),
    st.sampled_from(["", "x", "/", "-", "t", "s3/1"]),
)


@pytest.mark.filterwarnings("ignore::erfa.ErfaWarning")  # leap seconds after today
@settings(max_examples=150, deadline=None)
@given(t=st.booleans(), words=st.lists(_word, min_size=1, max_size=5))
def test_crafted_ascii_mocs_are_read_or_refused_by_name(t, words):
    text = ("t" if t else "") + " ".join(words)
    try:
        tmoc = gti.tmoc_from_string(text)
    except TimeCoverageError as exc:
        message = str(exc)
        kinds = ("out of range", "reversed", gti.NOT_A_TMOC) + (() if t else ("space MOC",))
        assert any(kind in message for kind in kinds), message
        return
    ranges = np.asarray(tmoc.to_depth61_ranges, dtype=np.uint64).reshape(-1, 2)
    assert np.all(ranges <= 2**62)  # every cell within its order (mocpy takes some beyond)
    if not t and len(ranges):  # mocpy's form without 't': it covers some of 1900-2100
        lo, hi = gti.mjd_to_tcb_microseconds(np.array(gti.MJD_RANGE))[0]
        assert np.any((ranges[:, 0] < hi) & (ranges[:, 1] > lo))


@pytest.mark.filterwarnings("ignore::erfa.ErfaWarning")
@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.floats(15021, 88000), st.floats(1e-6, 30)), min_size=1, max_size=20),
    st.sampled_from([61, 45, 33, 20]),
)
def test_mocpy_written_time_mocs_are_never_taken_for_space_mocs(pairs, order):
    iv = np.array([(a, a + d) for a, d in pairs])
    text = gti.tmoc_to_string(gti.intervals_to_tmoc(iv, order=order))
    assert not text.startswith("t")  # mocpy's form: no 't'
    back = gti.tmoc_intervals(gti.tmoc_from_string(text))
    assert gti.overlap_seconds(back, iv) == pytest.approx(
        gti.overlap_seconds(iv, iv), rel=1e-9, abs=1e-3
    )
