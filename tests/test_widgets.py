"""The notebook panels without a browser: set values, call the public methods, read traitlets.

Against the embedded archive over real HTTP (``archive_url``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import wait_for

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


def test_refilling_the_choice_lists_never_changes_the_query(archive):
    # Resolving a target refills the lists on a thread while the user goes on: the
    # chosen values must stay, and no intermediate query may drop one of them.
    panel = SearchPanel(archive)
    panel.set(target="Crab", radius=3, obs_collection="HESS-DL3-DR1",
              pointing_mode="convergent")  # fmt: skip
    before = panel.update_adql()
    assert "'HESS-DL3-DR1'" in before and "'convergent'" in before
    queries = []
    panel.observe(lambda change: queries.append(change["new"]), "adql")
    panel.adql_text.observe(lambda change: queries.append(change["new"]), "value")
    panel.load_choices()
    assert queries == [] and panel.adql == panel.adql_text.value == before
    assert panel.choices["obs_collection"].value == "HESS-DL3-DR1"
    pointing = panel.choices["pointing_mode"]
    assert pointing.value == "convergent"  # not in the archive: still chosen and listed
    assert "convergent" in pointing.options
    assert "custom" not in pointing.options  # the archive's values replace the data model's


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
    assert phases[0] == "QUEUED" and phases[-1] == "COMPLETED"
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
    assert panel.error == "Radius: 'wide' is not an angle (e.g. 3, 3 deg or 30 arcmin)"
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


def test_skyview_sends_bundled_aladin_and_says_tables_without_positions_have_nothing_to_draw():
    from astropy.table import Table

    from ctanb.widgets.sky import aladin_module_path

    assert aladin_module_path().stat().st_size > 1_000_000, "run widgets/build.py"
    view = SkyView()
    sent = []
    view.send = lambda content, buffers=None: sent.append((content, buffers))
    view._handle_command(view, {"command": "aladin_source"}, [])
    assert sent[0][0] == {"kind": "aladin_source"} and sent[0][1][0][:100]
    view.set_results(Table({"obs_id": [1]}))  # a valid result, without positions
    assert view.footprints == [] and "Nothing to draw" in view.message


def test_provenance_panel_says_what_is_wrong_with_a_product(tmp_path):
    panel = ProvenancePanel()
    panel.product_list.value = str(tmp_path / "missing.fits")
    panel.show_button.click()
    assert panel.error == f"product {tmp_path / 'missing.fits'} does not exist"


def test_import_and_construction_are_lazy(archive_url):
    code = (
        "import sys; import ctanb; widgets = 'ipywidgets' in sys.modules;"
        f"app = ctanb.App({archive_url!r});"
        "print(widgets, 'gammapy' in sys.modules, 'pyvo' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    widgets, gammapy, pyvo = out.stdout.split()
    # Laziness is what keeps these fast; bench/bench_widgets.py measures the times against
    # their targets (0.5 s and 0.3 s): a test has no wall-clock bound.
    assert widgets == "False", "import ctanb must not import ipywidgets"
    assert gammapy == "False" and pyvo == "False", "App() must not import gammapy or pyvo"


def crab_map_summary(result) -> tuple[float, float, float]:
    """Counts in the map, the significance peak and its distance (deg) from the Crab."""
    import numpy as np
    from astropy.coordinates import SkyCoord

    counts = float(result.dataset.counts.data.sum())
    significance = result.significance
    cube = np.asarray(significance.data, dtype=float).reshape(-1, *significance.data.shape[-2:])
    data = np.nan_to_num(cube, nan=-np.inf).max(axis=0)
    y, x = np.unravel_index(np.argmax(data), data.shape)
    where = significance.geom.to_image().get_coord().skycoord[y, x]
    crab = SkyCoord(83.633, 22.0145, unit="deg")
    return counts, float(data[y, x]), float(where.separation(crab).deg)


def test_analysis_and_provenance_panels_on_the_crab_runs(crab_app, tmp_path):
    app = crab_app
    app.analysis.out_dir = tmp_path
    app.table.select_page()
    app.analysis.prefill()
    assert app.analysis.spectrum_config["ra_deg"] == pytest.approx(83.63, abs=0.05)
    assert "83.6" in app.analysis.map_yaml.value
    assert app.analysis.map_config["geom"]["axes"]["energy"]["nbins"] >= 2
    app.analysis.spectrum_button.click()
    assert app.analysis.error == ""
    assert app.analysis.spectrum_png[:4] == b"\x89PNG"
    app.analysis.map_button.click()
    assert app.analysis.error == ""
    assert app.analysis.map_png[:4] == b"\x89PNG"
    # The maps must show the Crab, not a uniform zero (an all-masked, empty stack).
    counts, peak, offset = crab_map_summary(app.analysis.last_map)
    assert counts > 1000, f"the count map of the four Crab runs holds {counts} counts"
    assert peak > 5 and offset < 0.15, f"significance peak {peak:.1f} at {offset:.2f} deg"
    products = app.provenance.products
    assert any("map_dataset" in p for p in products) and any("/spectrum/" in p for p in products)
    verdicts = {}
    for product in products:  # every product the panel made redoes to the same values
        app.provenance.show(product)
        assert "<svg" in app.provenance.svg and app.provenance.activities, product
        app.provenance.redo(tmp_path / "redo" / Path(product).stem)
        verdicts[product] = (app.provenance.redo_ok, app.provenance.verdict)
    failed = {p: v for p, (ok, v) in verdicts.items() if ok is not True}
    assert not failed, failed


def test_analysis_without_selection_says_so(archive):
    app = App(archive)
    app.analysis.map_button.click()
    assert app.analysis.error == "no results yet: run a search first"


class FakeTopcat:
    """A second SAMP client on the same hub, acting as TOPCAT: loads tables and images
    (records what it got) and sends ``table.select.rowList`` like a TOPCAT user would."""

    def __init__(self, lockfile: Path) -> None:
        from pyvo.samp import SAMPIntegratedClient
        from pyvo.samp.lockfile_helpers import check_running_hub

        running, params = check_running_hub(str(lockfile))
        assert running, f"no SAMP hub behind {lockfile}"
        self.received: dict[str, list[dict]] = {}
        self.client = SAMPIntegratedClient(metadata={"samp.name": "topcat"}, addr="127.0.0.1")
        self.client.connect(hub_params=params)
        for mtype in ("table.load.votable", "image.load.fits"):
            self.client.bind_receive_call(mtype, self._receive_call)
            self.client.bind_receive_notification(mtype, self._receive_notification)

    def _receive_call(self, private_key, sender_id, msg_id, mtype, params, extra):
        self.received.setdefault(mtype, []).append(params)
        self.client.reply(msg_id, {"samp.status": "samp.ok", "samp.result": {}})

    def _receive_notification(self, private_key, sender_id, mtype, params, extra):
        self.received.setdefault(mtype, []).append(params)

    def select_rows(self, table_id: str, url: str, rows: list[int]) -> None:
        message = {"samp.mtype": "table.select.rowList",
                   "samp.params": {"table-id": table_id, "url": url,
                                   "row-list": [str(r) for r in rows]}}  # fmt: skip
        self.client.notify_all(message)

    def close(self) -> None:
        self.client.disconnect()


def test_samp_selection_from_topcat_selects_rows_and_send_image_sends_the_count_map(
    archive, tmp_path
):
    from astropy.io import fits

    from ctanb.samp import SampLink

    lockfile = tmp_path / "samp-lockfile"
    with SampLink.connect(lockfile, start_samp_hub=True, serve="file", timeout=30) as link:
        topcat = FakeTopcat(lockfile)
        try:
            app = App(archive, samp=link)
            app.search.set(target="Crab", radius=3, obs_collection="HESS-DL3-DR1")
            app.search.resolve()
            app.search.search()
            controls = app.samp_controls
            wait_for(lambda: "topcat" in controls.chooser.options, 30, "topcat in the chooser")
            controls.send_table_button.click()
            loaded = wait_for(lambda: topcat.received.get("table.load.votable"), 30,
                                "TOPCAT to receive the table")  # fmt: skip
            table_id, url = loaded[-1]["table-id"], loaded[-1]["url"]
            assert table_id == link.table_id(app.table.table)

            topcat.select_rows(table_id, url, [1, 3])  # a subset selected in TOPCAT
            wait_for(lambda: app.table.selected_rows == [1, 3], 30, "the SAMP selection")
            assert app.sky.selected_rows == [1, 3]
            assert len(app.selected) == 2

            controls.send_image_button.click()  # no count map yet: said in the controls
            assert "make a count map first" in controls.status.value
            app.analysis.out_dir = tmp_path / "products"
            app.table.select_page()
            app.analysis.map_button.click()
            assert app.analysis.error == ""
            controls.send_image_button.click()
            images = wait_for(lambda: topcat.received.get("image.load.fits"), 30,
                                "TOPCAT to receive the count map")  # fmt: skip
            with fits.open(images[-1]["url"]) as hdus:
                assert hdus[0].data.ndim == 2 and hdus[0].data.sum() > 1000
        finally:
            topcat.close()
