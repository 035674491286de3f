"""The search panel's "During" input (simultaneity search), headless, against the
embedded archive. The expected runs and overlaps come from the GTI files read with
astropy (tests/test_simultaneity.py's independent computation)."""

from __future__ import annotations

import pytest
from test_simultaneity import EXPECTED_RUNS, XRAY_UTC, _expected

import ctanb
from ctanb.widgets.search import SearchPanel


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("CTANB_OFFLINE", "1")
    monkeypatch.delenv("CTANB_TOKEN", raising=False)


@pytest.fixture(scope="module")
def archive(archive_url):
    return ctanb.connect(archive_url, progress=False)


def test_during_box_finds_the_simultaneous_runs(archive, data_dir):
    panel = SearchPanel(archive)
    assert panel.during_input in panel.children
    panel.during_input.set_text("; ".join(f"{a} {b}" for a, b in XRAY_UTC))
    assert "ivo_tmoc_overlap(h.t_intervals" in panel.adql
    results = panel.search()
    table = results.to_table()
    found = {int(r["obs_id"]): float(r["overlap_s"]) for r in table
             if "PKS 2155" in str(r["target_name"])}  # fmt: skip
    expected = _expected(data_dir)
    assert set(found) == EXPECTED_RUNS == set(expected)
    for run, seconds in expected.items():
        assert found[run] == pytest.approx(seconds, abs=2e-3)
    # clearing the box gives the plain search back
    panel.during_input.clear()
    assert "ivo_tmoc_overlap" not in panel.adql


def test_bad_intervals_are_named_in_the_panel(archive, tmp_path):
    panel = SearchPanel(archive)
    panel.during_input.text_box.value = "2006-07-29T21:45 2006-07-29T21:00"
    assert "wrong order" in panel.error and "2006-07-29T21:00" in panel.error
    assert panel.adql == ""  # no earlier query can be sent in its place
    panel.during_input.text_box.value = str(tmp_path / "missing.fits")
    assert "no such file" in panel.error
    junk = tmp_path / "notes.txt"
    junk.write_text("not a MOC")
    panel.during_input.text_box.value = str(junk)
    assert "neither a FITS nor an ASCII time MOC" in panel.error
    assert "Traceback" not in panel.error
    panel.during_input.text_box.value = "53946.0 53946.1"
    assert panel.error == "" and "ivo_tmoc_overlap" in panel.adql


def test_panel_time_words(archive):
    panel = SearchPanel(archive)
    panel.during_input.text_box.value = "nan nan"
    assert "not a number" in panel.error and "wrong order" not in panel.error
    panel.during_input.text_box.value = "2006-07-29 20:50:00 2006-07-29 20:54:00"
    assert panel.error == "" and "ivo_tmoc_overlap" in panel.adql
    iso = panel.during_input.intervals
    panel.during_input.text_box.value = "2006-07-29T20:50:00 2006-07-29T20:54:00"
    assert panel.during_input.intervals == iso
    panel.during_input.text_box.value = "2006-07-29T20:50:00 53945.87"
    assert "read as UTC" in panel.error and "read as TT" in panel.error


def test_a_failed_search_clears_what_it_replaced(archive):
    panel = SearchPanel(archive)
    panel.during_input.set_text(f"{XRAY_UTC[0][0]} {XRAY_UTC[0][1]}")
    assert len(panel.search()) > 0 and "row(s)" in panel.status.value
    panel.during_input.text_box.value = "2006-07-29T21:45 2006-07-29T21:00"  # wrong order
    panel.search_button.click()
    assert "wrong order" in panel.error
    assert "row(s)" not in panel.status.value and "not searched" in panel.status.value
    assert panel.row_count == -1 and panel.stale.startswith("previous results")
