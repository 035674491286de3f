"""The notebook panels without a browser: set values, call the public methods, read traitlets.

Against the embedded archive over real HTTP (``archive_url``).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from ctanb import CtanbError
from ctanb.widgets import App, ProvenancePanel, ResultsTable, SearchPanel, SkyView

CRAB_RUNS = ["23523", "23526", "23559", "23592"]


@pytest.fixture(scope="module")
def archive(archive_url):
    import ctanb

    with ctanb.connect(archive_url, progress=False, record_history=True) as archive:
        yield archive


@pytest.fixture
def crab_app(archive):
    app = App(archive)
    app.search.set(target="Crab", radius=3, obs_collection="HESS-DL3-DR1")
    app.search.resolve()
    app.search.search()
    return app


def test_search_form_finds_the_four_crab_runs_and_fills_table_and_sky(crab_app):
    app = crab_app
    assert app.search.resolved["name"] == "Crab"
    assert abs(app.search.resolved["ra"] - 83.63) < 0.05
    assert "HESS-DL3-DR1" in app.search.adql and "INTERSECTS" in app.search.adql.upper()
    assert sorted(app.table.table["obs_id"]) == CRAB_RUNS
    assert app.table.row_count == 4 and app.search.phase == "COMPLETED"
    assert sorted(f["label"] for f in app.sky.footprints) == CRAB_RUNS
    assert all(len(f["polygon"]) >= 3 for f in app.sky.footprints)
    assert app.sky.target["name"] == "Crab"


def test_selection_is_shared_by_table_and_sky(crab_app):
    app = crab_app
    app.sky.toggle(2)  # a click on a footprint
    assert app.table.selected_rows == [2]
    app.table.select_page()
    assert app.sky.selected_rows == [0, 1, 2, 3]
    assert sorted(app.selected["obs_id"]) == CRAB_RUNS
    app.table.clear_page()
    assert len(app.selected) == 0 and app.sky.selected_rows == []


def test_choice_lists_come_from_the_data_model_and_the_archive(archive):
    panel = SearchPanel(archive)
    assert set(panel.choices) >= {"obs_collection", "site", "obs_mode", "data_quality",
                                  "applied_cuts"}  # fmt: skip
    assert "CTAO-South" in panel.choices["site"].options  # data-model choices before loading
    found = panel.load_choices()
    assert "HESS-DL3-DR1" in found["obs_collection"]
    assert "HESS-DL3-DR1" in panel.choices["obs_collection"].options


def test_edited_adql_is_sent_as_edited_and_history_lists_it(archive):
    panel = SearchPanel(archive)
    panel.set(obs_collection="HESS-DL3-DR1")
    assert "obs_collection = 'HESS-DL3-DR1'" in panel.adql
    panel.adql_text.value = "SELECT TOP 3 * FROM ivoa.obscore ORDER BY obs_id"
    assert panel.adql_edited
    results = panel.search()
    assert len(results) == 3 and panel.row_count == 3
    assert "SELECT TOP 3" in panel.history_list.options[1][0]
    panel.use_history(0)
    assert panel.adql_text.value == "SELECT TOP 3 * FROM ivoa.obscore ORDER BY obs_id"


def test_async_search_reports_phases_and_cancel_without_job_is_an_error(archive):
    panel = SearchPanel(archive)
    phases = []
    panel.observe(lambda ch: phases.append(ch["new"]), "phase")
    panel.mode = "async"
    panel.set(obs_collection="HESS-DL3-DR1")
    results = panel.search()
    assert len(results) == 105
    assert phases[-1] == "COMPLETED" and len(phases) >= 2
    with pytest.raises(CtanbError, match="no asynchronous query"):
        panel.cancel()


def test_errors_are_shown_in_the_panel_with_details(archive):
    panel = SearchPanel(archive)
    panel.target_text.value = "Not A Source 12345"
    panel.resolve_button.click()
    assert "Not A Source 12345" in panel.error
    assert "<details>" in panel.error_display.value and "ResolveError" in panel.error_display.value
    panel.target_text.value = ""
    panel.numbers["radius"].value = "wide"
    assert panel.error == "radius: 'wide' is not a number"
    panel.numbers["radius"].value = ""
    panel.adql_text.value = "SELECT FROM nowhere"
    panel.search_button.click()
    assert panel.error and "QueryError" in panel.error_display.value


def test_results_table_pages_sorts_and_chooses_columns(archive):
    results = archive.search(collection="HESS-DL3-DR1")
    table = ResultsTable(results)
    assert table.row_count == 105 and table.page_count == 2
    assert len(table.page_data["index"]) == 100
    table.page_size = 25
    table.next_page()
    assert table.page == 1 and len(table.page_data["index"]) == 25
    table.sort("obs_id", ascending=False)
    first = table.page_data["index"][0]
    assert table.table["obs_id"][first] == max(table.table["obs_id"][table.page_rows])
    table.show_columns(["obs_id", "target_name"])
    assert len(table.page_data["cells"]) == 2
    table.select_page()
    assert len(table.selected) == 25 and table.selected.colnames == results.table.colnames
    table._handle_command(table, {"command": "sort", "column": "no_such_column"}, [])
    assert table.error == "cannot sort: no column 'no_such_column' in the results"


def test_skyview_sends_bundled_aladin_and_rejects_tables_without_positions():
    from astropy.table import Table

    from ctanb.widgets.sky import aladin_module_path

    assert aladin_module_path().stat().st_size > 1_000_000, "run widgets/build.py"
    view = SkyView()
    sent = []
    view.send = lambda content, buffers=None: sent.append((content, buffers))
    view._handle_command(view, {"command": "aladin_source"}, [])
    assert sent[0][0] == {"kind": "aladin_source"} and sent[0][1][0][:100]
    with pytest.raises(CtanbError, match="no column s_ra"):
        view.set_results(Table({"obs_id": [1]}))


def test_provenance_panel_says_what_is_wrong_with_a_product(tmp_path):
    panel = ProvenancePanel()
    panel.product_list.value = str(tmp_path / "missing.fits")
    panel.show_button.click()
    assert panel.error == f"product {tmp_path / 'missing.fits'} does not exist"


def test_import_and_construction_are_fast_and_lazy(archive_url):
    code = (
        "import time, sys; t0 = time.perf_counter(); import ctanb; t1 = time.perf_counter();"
        f"app = ctanb.App({archive_url!r}); t2 = time.perf_counter();"
        "print(t1 - t0, t2 - t1, 'gammapy' in sys.modules, 'pyvo' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    import_s, build_s, gammapy, pyvo = out.stdout.split()
    assert float(import_s) < 0.5, f"import ctanb took {import_s} s"
    assert gammapy == "False" and pyvo == "False", "App() must not import gammapy or pyvo"
    assert float(build_s) < 3.0, f"ctanb.App() took {build_s} s (imports included)"


def test_analysis_and_provenance_panels_on_the_crab_runs(crab_app, tmp_path):
    app = crab_app
    app.analysis.out_dir = tmp_path
    app.table.select_page()
    app.analysis.prefill()
    assert app.analysis.spectrum_config["ra_deg"] == pytest.approx(83.63, abs=0.05)
    assert "83.6" in app.analysis.map_yaml.value
    app.analysis.spectrum_button.click()
    assert app.analysis.error == ""
    assert app.analysis.spectrum_png[:4] == b"\x89PNG"
    app.analysis.map_button.click()
    assert app.analysis.error == ""
    assert app.analysis.map_png[:4] == b"\x89PNG"
    assert app.provenance.products, "the products were not offered to the provenance panel"
    app.provenance.show(app.provenance.products[-1])
    assert "<svg" in app.provenance.svg and app.provenance.activities
    report = app.provenance.redo(tmp_path / "redo")
    assert report.ok and app.provenance.redo_ok, app.provenance.verdict


def test_analysis_without_selection_says_so(archive):
    app = App(archive)
    app.analysis.map_button.click()
    assert app.analysis.error == "no results yet: run a search first"
