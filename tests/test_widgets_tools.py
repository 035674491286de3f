"""What TOPCAT and Distiller users expect in the App (issue 15, deliver item 7): export,
download of checked datasets with progress into a visible folder, column tooltips,
UTC dates beside MJD, form reset, a growing ADQL box, the whole history in time order,
and a token field. Against the embedded archive over real HTTP."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.table import Table
from astropy.time import Time

from ctanb.widgets import App

CRAB_RUNS = ["23523", "23526", "23559", "23592"]


@pytest.fixture(scope="module")
def archive(archive_url):
    import ctanb

    with ctanb.connect(archive_url, progress=False, offline=True) as archive:
        yield archive


@pytest.fixture
def crab_app(archive):
    app = App(archive, use_aladin=False)
    app.search.set(target="Crab", radius=3, obs_collection="HESS-DL3-DR1")
    app.search.search()
    assert sorted(app.table.table["obs_id"]) == CRAB_RUNS
    return app


@pytest.mark.parametrize(("suffix", "fmt"), [("vot", "votable"), ("fits", "fits"),
                                             ("csv", "ascii.csv"), ("ecsv", "ascii.ecsv")])  # fmt: skip
def test_export_writes_a_table_others_can_read(crab_app, tmp_path, suffix, fmt):
    written = crab_app.export(tmp_path / f"crab.{suffix}")
    back = Table.read(written, format=fmt)
    assert sorted(str(x) for x in back["obs_id"]) == CRAB_RUNS
    assert np.allclose(sorted(back["s_ra"]), sorted(crab_app.table.table["s_ra"]))
    if suffix != "csv":  # CSV keeps values only; the others keep units
        assert back["s_ra"].unit == "deg" and back["t_exptime"].unit == "s"
    crab_app.table.select([1])
    crab_app.tools.selected_box.value = True
    only = Table.read(crab_app.export(tmp_path / f"one.{suffix}"), format=fmt)
    assert [str(x) for x in only["obs_id"]] == [crab_app.table.table["obs_id"][1]]


def test_export_without_a_path_goes_to_the_visible_products_folder(crab_app, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the notebook's folder
    monkeypatch.delenv("CTANB_PRODUCTS", raising=False)
    crab_app.tools.format_box.value = "fits"
    crab_app.tools.export_button.click()
    assert crab_app.tools.error == "" or crab_app.tools.error_display.value == ""
    (written,) = (tmp_path / "ctanb-products").glob("results-*.fits")
    assert len(Table.read(written)) == 4
    assert f"ctanb-products/{written.name}" in crab_app.tools.status.value


def test_download_of_checked_datasets_with_progress_into_a_visible_folder(
    crab_app, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CTANB_PRODUCTS", raising=False)
    crab_app.table.select([0, 2])
    steps = []
    crab_app.tools.progress.observe(lambda ch: steps.append(ch["new"]), "value")
    crab_app.tools.download_button.click()
    assert crab_app.tools.error_display.value == ""
    folder = tmp_path / "ctanb-products" / "downloads"
    files = sorted(p.name for p in folder.iterdir())
    wanted = [crab_app.table.table["obs_id"][i] for i in (0, 2)]
    assert len(files) == 2 and all(any(w in f for f in files) for w in wanted), files
    assert steps[-2:] == [0.5, 1.0]
    assert "2 file(s)" in crab_app.tools.status.value
    assert "ctanb-products/downloads" in crab_app.tools.status.value


def test_download_without_checked_rows_says_so(crab_app):
    crab_app.tools.download_button.click()
    assert "no rows selected" in crab_app.tools.error_display.value


def test_column_tooltips_and_utc_dates_beside_mjd(crab_app):
    info = crab_app.table.column_info
    assert "unit: deg" in info["s_ra"] and "UCD: pos.eq.ra" in info["s_ra"]
    assert "Right ascension" in info["s_ra"]
    crab_app.table.show_columns(["obs_id", "t_min"])
    ids, times = crab_app.table.page_data["cells"]
    for obs_id, text in zip(ids, times, strict=True):
        row = list(crab_app.table.table["obs_id"]).index(obs_id)
        mjd = float(crab_app.table.table["t_min"][row])
        iso = Time(mjd, format="mjd", scale="tt").utc.iso[:19]
        assert text == f"{mjd:.5f}  ({iso})" and iso.startswith("2004-")


def test_reset_empties_the_form_and_the_query_but_keeps_the_results(crab_app):
    search = crab_app.search
    search.set(energy_min="1", limit=5)
    search.adql_text.value = "SELECT TOP 1 * FROM ivoa.obscore"
    search.reset_button.click()
    assert search.target_text.value == "" and search.resolved == {}
    assert all(box.value == "" for box in search.numbers.values())
    assert all(box.value == "(any)" for box in search.choices.values())
    assert not search.adql_edited and "WHERE" not in search.adql_text.value
    assert search.position_source == "" and crab_app.table.row_count == 4


def test_the_adql_box_grows_with_the_query_and_can_be_resized(archive):
    app = App(archive, use_aladin=False)
    search = app.search
    assert "resize:vertical" in search.children[0].value
    assert "ctanb-adql" in search.adql_text._dom_classes
    search.set(ra=83.6, dec=22.0, radius=2, time_start="2004-01-01", time_end="2005-01-01",
               energy_min=1, energy_max=10, max_zenith=40, limit=3)  # fmt: skip
    lines = search.adql_text.value.count("\n") + 1
    assert lines >= 8 and search.adql_text.rows >= lines


def test_history_lists_every_query_newest_first_in_full(archive):
    app = App(archive, use_aladin=False)
    long_query = (
        "SELECT TOP 1 obs_id, target_name, s_ra, s_dec, t_min, t_max, em_min, em_max "
        "FROM ivoa.obscore WHERE obs_collection = 'HESS-DL3-DR1' ORDER BY obs_id"
    )
    for n in range(22):
        app.search.adql_text.value = f"SELECT TOP {n + 1} obs_id FROM ivoa.obscore"
        app.search.search()
    app.search.adql_text.value = long_query
    app.search.search()
    entries = [e for e in archive.history.entries()]
    labels = [label for label, index in app.search.history_list.options if index >= 0]
    assert len(labels) == len(entries) >= 23  # none left out
    assert labels[0].endswith(long_query)  # newest first, the whole query
    assert "SELECT TOP 22 obs_id" in labels[1] and "SELECT TOP 21 obs_id" in labels[2]
    whens = [label[:19] for label in labels]
    assert whens == sorted(whens, reverse=True)


def test_token_field_logs_in_and_out_without_keeping_the_token(archive_url, tmp_path):
    import ctanb

    app = App(ctanb.connect(archive_url, progress=False, offline=True), use_aladin=False)
    assert "not logged in" in app.login_box.status.value
    app.search.adql_text.value = (
        "SELECT * FROM ivoa.obscore WHERE proposal_id = 'CTAO-2026A-001' ORDER BY obs_id"
    )
    app.search.search()
    assert app.table.table["data_rights"][0] == "proprietary"
    app.table.select([0])
    app.tools.download_button.click()
    refused = app.tools.error_display.value
    assert "2028-03-31" in refused and "log in with your token" in refused
    assert "CTANB_TOKEN" not in refused and "ctanb.connect" not in refused
    # The token typed and Log in clicked at once: the click carries it.
    app.login_box.login_button._handle_custom_msg(
        {"command": "click",
         "values": {app.login_box.token_text.model_id: {"value": "demo-token-vela"}}}, []
    )  # fmt: skip
    assert app.search.archive.has_token and app.login_box.token_text.value == ""
    assert "logged in" in app.login_box.status.value
    assert "demo-token-vela" not in app.login_box.status.value
    files = app.download_selected(tmp_path / "mine")
    assert files and all(f.stat().st_size > 0 for f in files)
    app.login("")
    assert not app.search.archive.has_token and "not logged in" in app.login_box.status.value


def test_samp_buttons_are_in_the_default_app_and_connect_on_demand(crab_app, tmp_path):
    from conftest import wait_for
    from test_widgets import FakeTopcat

    app = crab_app
    assert app.samp is None and "not connected" in app.samp_box.children[0].children[2].value
    lockfile = tmp_path / "samp-lockfile"
    link = app.connect_samp("desktop", lockfile=lockfile)  # what the Connect button does
    try:
        topcat = FakeTopcat(lockfile)
        try:
            controls = app.samp_controls
            assert controls.widget in app.samp_box.children
            controls.refresh()
            wait_for(lambda: "topcat" in controls.chooser.options, 30, "topcat in the list")
            controls.send_table_button.click()
            loaded = wait_for(lambda: topcat.received.get("table.load.votable"), 30,
                                "TOPCAT to receive the table")  # fmt: skip
            assert loaded[-1]["table-id"] == link.table_id(app.table.table)
        finally:
            topcat.close()
    finally:
        link.close()
