"""The panels read what is on screen when an action runs, and a failed step disarms
what depends on it (issue 15, deliver items 1-3).

Driven like a user: values put in the widgets, buttons clicked through the message
their front end sends (``{"command": "click", "values": ...}``, values of the
form's inputs as the browser holds them, which may reach the kernel before the
inputs' own updates). Against the embedded archive over real HTTP.
"""

from __future__ import annotations

import pytest

from ctanb.widgets import App, SearchPanel

CRAB_RA, MSH_RA, MSH_DEC = 83.633, 228.48174, -59.13578


@pytest.fixture(scope="module")
def archive(archive_url):
    import ctanb

    with ctanb.connect(archive_url, progress=False, record_history=True, offline=True) as archive:
        yield archive


def front_end_click(button, shown: dict | None = None) -> None:
    """What the browser sends for a click: the button's message, carrying the edits
    (*shown*: widget -> value) whose own updates the browser still holds back."""
    values = {}
    for widget, value in (shown or {}).items():
        if hasattr(widget, "index"):
            values[widget.model_id] = {"index": list(widget.options).index(value)}
        else:
            values[widget.model_id] = {"value": value}
    button._handle_custom_msg({"command": "click", "values": values}, [])


def resolved_crab(archive) -> SearchPanel:
    panel = SearchPanel(archive)
    panel.set(target="Crab", radius=3)
    panel.resolve()
    assert abs(panel.resolved["ra"] - CRAB_RA) < 0.05
    return panel


def test_name_typed_and_resolve_clicked_at_once_resolves_the_new_name(archive):
    panel = resolved_crab(archive)
    # The click arrives before the text box's own update: it carries the new name.
    front_end_click(panel.resolve_button, {panel.target_text: "MSH 15-52"})
    assert panel.error == ""
    assert panel.resolved["name"] == "MSH 15-52"
    assert abs(float(panel.numbers["ra"].value) - MSH_RA) < 1e-3
    assert "228.48" in panel.adql_text.value and "83.63" not in panel.adql_text.value
    assert "MSH 15-52" in panel.position_label.value


def test_search_clicked_at_once_searches_what_the_form_shows(archive):
    panel = resolved_crab(archive)
    front_end_click(panel.search_button, {panel.target_text: "MSH 15-52"})
    assert panel.error == ""
    assert "228.48" in panel.adql and "83.63" not in panel.adql
    names = {str(n) for n in panel.results.table["target_name"]}
    assert names and all("MSH" in n for n in names), names


def test_enter_in_the_target_box_resolves(archive):
    panel = resolved_crab(archive)
    # Enter commits the box (continuous_update=False): the value arrives, nothing else.
    panel.target_text.value = "MSH 15-52"
    assert panel.resolved["name"] == "MSH 15-52"
    assert abs(float(panel.numbers["dec"].value) - MSH_DEC) < 1e-3
    assert "228.48" in panel.adql_text.value


def test_failed_resolve_clears_position_query_and_marker_and_search_does_not_rerun(archive):
    app = App(archive, use_aladin=False)
    panel = app.search
    panel.set(target="Crab", radius=3)
    panel.resolve()
    panel.search()
    assert len(app.table.table) > 0 and app.sky.target["name"] == "Crab"
    crab_rows = app.table.row_count
    panel.target_text.value = "Crabb Nebulla"
    panel.resolve_button.click()
    assert "Crabb Nebulla" in panel.error
    assert panel.resolved == {} and app.sky.target == {}
    assert panel.numbers["ra"].value == panel.numbers["dec"].value == ""
    assert panel.adql_text.value == "" and panel.adql == ""
    assert "no position: the name could not be resolved" in panel.position_label.value
    before = panel.results
    panel.search_button.click()
    assert "Crabb Nebulla" in panel.error, "Search re-ran a query instead of saying why not"
    assert panel.results is before and app.table.row_count == crab_rows


def test_typed_ra_dec_win_over_the_target_name_until_it_is_resolved_again(archive):
    panel = resolved_crab(archive)
    panel.numbers["ra"].value = f"{MSH_RA}"
    panel.numbers["dec"].value = f"{MSH_DEC}"
    assert panel.position_source == "coordinates"
    assert f"{MSH_RA}" in panel.adql and "83.63" not in panel.adql
    label = panel.position_label.value
    assert "typed RA" in label and "not used" in label and "Crab" in label
    front_end_click(panel.resolve_button)  # the name, resolved again, takes over
    assert panel.position_source == "name"
    assert "83.63" in panel.adql and f"{MSH_RA}" not in panel.adql
    assert abs(float(panel.numbers["ra"].value) - CRAB_RA) < 0.05


def test_edited_adql_is_kept_until_rebuild_is_pressed(archive):
    panel = SearchPanel(archive)
    panel.set(obs_collection="HESS-DL3-DR1")
    mine = "SELECT TOP 2 * FROM ivoa.obscore ORDER BY obs_id"
    panel.adql_text.value = mine
    panel.set(radius="", limit=7)  # touching fields never drops the edit
    panel.choices["obs_collection"].value = "(any)"
    assert panel.adql_text.value == mine and panel.adql == mine and panel.adql_edited
    assert "Rebuild ADQL" in panel.adql_note.value
    assert len(panel.search()) == 2
    front_end_click(panel.rebuild_button)
    assert panel.error == "" and not panel.adql_edited
    assert panel.adql_text.value.startswith("SELECT TOP 7 *") and panel.adql_note.value == ""


def test_a_form_error_empties_the_query_so_search_cannot_send_an_old_one(archive):
    panel = SearchPanel(archive)
    panel.set(obs_collection="HESS-DL3-DR1")
    assert panel.adql_text.value
    front_end_click(panel.search_button, {panel.numbers["limit"]: "many"})
    assert panel.error == "Limit: 'many' is not a number"
    assert panel.adql_text.value == "" and panel.results is None


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_count_query_goes_to_the_table_with_nothing_to_draw(archive, mode):
    app = App(archive, use_aladin=False)
    app.search.set(target="Crab", radius=3)
    app.search.search()
    assert app.sky.footprints and app.table.row_count > 1
    app.search.adql_text.value = "SELECT COUNT(*) AS n FROM ivoa.obscore"
    app.search.async_box.value = mode == "async"
    app.search.search()
    assert app.search.error == "" and app.table.error == "" and app.sky.error == ""
    assert app.table.row_count == 1 and app.table.columns == ["n"]
    assert int(app.table.page_data["cells"][0][0]) > 100
    assert app.sky.footprints == [] and "Nothing to draw" in app.sky.message
    app.table.select([0])  # the sky and the analysis only react to rows they can use
    assert app.sky.footprints == []
    with pytest.raises(Exception, match="not datasets"):
        app.selected_results()


def test_columns_without_positions_are_shown_and_positions_come_back(archive):
    app = App(archive, use_aladin=False)
    app.search.adql_text.value = "SELECT TOP 5 obs_id, target_name FROM ivoa.obscore"
    app.search.search()
    assert app.table.row_count == 5 and app.table.columns == ["obs_id", "target_name"]
    assert app.sky.footprints == [] and "no positions (s_ra, s_dec)" in app.sky.message
    app.search.adql_text.value = "SELECT TOP 5 * FROM ivoa.obscore"
    app.search.search()
    assert len(app.sky.footprints) == 5 and app.sky.message == ""


def test_prefill_takes_the_position_from_the_selected_rows_not_the_search_target(archive):
    app = App(archive, use_aladin=False)
    app.search.set(target="Crab", radius=3)
    app.search.resolve()
    app.search.search()
    app.search.adql_text.value = (
        "SELECT * FROM ivoa.obscore WHERE obs_collection = 'HESS-DL3-DR1' "
        "AND target_name LIKE 'MSH%' ORDER BY obs_id"
    )
    app.search.search()
    assert app.search.resolved["name"] == "Crab"  # the form still says Crab
    app.table.select([0])
    app.analysis.prefill_button.click()
    assert app.analysis.error == ""
    lon = float(app.analysis.map_config["geom"]["wcs"]["skydir"]["lon"].split()[0])
    lat = float(app.analysis.map_config["geom"]["wcs"]["skydir"]["lat"].split()[0])
    assert abs(lon - MSH_RA) < 0.1 and abs(lat - MSH_DEC) < 0.1, (lon, lat)
    assert abs(app.analysis.spectrum_config["ra_deg"] - MSH_RA) < 0.1


def test_a_failed_analysis_clears_its_stale_plot_and_label(archive):
    app = App(archive, use_aladin=False)
    app.search.set(target="Crab", radius=3)
    app.search.search()
    app.table.select([0])
    panel = app.analysis
    panel.map_png = panel.map_image.value = b"\x89PNG an earlier map"
    panel.spectrum_image.value = b"\x89PNG an earlier spectrum"
    panel._stage("downloading 1 observation(s)", 0.1)
    panel.map_yaml.value = "no_such_setting: 1\n"
    panel.map_button.click()
    assert "no_such_setting" in panel.error
    assert panel.map_image.value == b"" and panel.map_png == b"" and panel.last_map is None
    assert "downloading" not in panel.stage_label.value and "failed" in panel.stage_label.value
    assert panel.progress_bar.value == 0.0
    assert panel.spectrum_image.value == b"\x89PNG an earlier spectrum"  # not this run's


def test_the_form_takes_numbers_with_units_as_astronomers_type_them(archive):
    panel = SearchPanel(archive)
    panel.set(ra="05h34m31.9s", dec="22d00m52s", radius="90 arcmin", energy_min="500 GeV")
    assert panel.error == ""
    criteria = panel.criteria
    assert abs(criteria["ra"] - 83.633) < 1e-3 and abs(criteria["dec"] - 22.0144) < 1e-3
    assert criteria["radius"] == 1.5 and criteria["energy_min"] == 0.5
    assert "1.5)" in panel.adql and "83.63" in panel.adql
    panel.numbers["energy_max"].value = "3 m"
    assert panel.error == "E max: '3 m' is not an energy (e.g. 0.5 for TeV, or 500 GeV)"
    assert panel.adql_text.value == ""


def test_the_sky_field_of_view_fits_the_results(archive):
    app = App(archive, use_aladin=False)
    app.search.set(target="Crab", radius=3, obs_collection="HESS-DL3-DR1")
    app.search.search()
    crab = app.sky.fov
    assert 2.0 <= crab <= 10.0  # four wobble fields of ~5 deg around the Crab
    app.search.adql_text.value = "SELECT * FROM ivoa.obscore"
    app.search.search()
    assert app.sky.fov >= 150.0  # the whole archive: all over the sky
    app.search.adql_text.value = "SELECT COUNT(*) AS n FROM ivoa.obscore"
    app.search.search()
    assert app.sky.fov == 6.0


def test_a_click_never_sends_a_held_back_value_back_to_the_browser(archive):
    # The browser shows what was typed (and maybe more since): an update from the
    # kernel with the value the click carried would overwrite the newer typing.
    panel = resolved_crab(archive)
    sent = []
    original = panel.target_text._send
    panel.target_text._send = lambda msg, buffers=None: sent.append(msg) or original(msg, buffers)
    front_end_click(panel.resolve_button, {panel.target_text: "MSH 15-52"})
    assert panel.resolved["name"] == "MSH 15-52"
    assert not [m for m in sent if m.get("method") == "update" and "value" in m.get("state", {})]


def test_a_footprint_clicked_on_the_sky_shows_its_row_in_the_table(archive):
    app = App(archive, use_aladin=False)
    app.search.adql_text.value = "SELECT TOP 60 * FROM ivoa.obscore ORDER BY obs_id"
    app.search.search()
    app.table.page_size = 25
    app.table.sort("obs_id", ascending=False)
    row = 3  # fourth smallest obs_id: on the last page when sorted the other way
    app.sky._handle_command(app.sky, {"command": "toggle", "row": row}, [])  # the click
    assert app.table.selected_rows == [row]
    assert app.table.focus_row == row and row in app.table.page_data["index"]
    assert app.table.page == app.table.page_count - 1
    app.table.go_to(0)
    app.sky._handle_command(app.sky, {"command": "toggle", "row": row}, [])  # again: unselect
    assert app.table.selected_rows == [] and row in app.table.page_data["index"]


def test_the_sky_marker_follows_the_position_the_query_uses(archive):
    app = App(archive, use_aladin=False)
    app.search.set(target="Crab", radius=3)
    assert app.sky.target["name"] == "Crab"
    app.search.numbers["ra"].value = f"{MSH_RA}"
    app.search.numbers["dec"].value = f"{MSH_DEC}"
    assert app.sky.target == {"name": "typed position", "ra": MSH_RA, "dec": MSH_DEC}
    app.search.resolve_button.click()  # the name again
    assert app.sky.target["name"] == "Crab"
    app.search.reset_button.click()
    assert app.sky.target == {}
