"""Coverage on the sky and exposure charts (issue 18, items 4 and 5), headless: the
panels' state after public-method calls, against the embedded archive over HTTP."""

from __future__ import annotations

import pytest

import ctanb
from ctanb import CtanbError
from ctanb.archive import geometry
from ctanb.widgets import App, SkyView
from ctanb.widgets.coverage import RESULTS_LAYER, CoverageLayers
from ctanb.widgets.exposure import ExposurePlots

CRAB = (83.6331, 22.0145)
CRAB_RUNS = ["23523", "23526", "23559", "23592"]


@pytest.fixture(scope="module")
def archive(archive_url):
    with ctanb.connect(archive_url, progress=False, record_history=False) as archive:
        yield archive


@pytest.fixture(scope="module")
def crab(archive):
    return archive.search(target="Crab", radius=3, collection="HESS-DL3-DR1")


def _cells_hold(layer: dict, ra: float, dec: float) -> bool:
    return any(geometry.point_in_polygon(ra, dec, [tuple(v) for v in c]) for c in layer["cells"])


def test_collections_are_drawn_toggled_and_the_results_coverage_follows(archive, crab):
    sky = SkyView(use_aladin=False)
    layers = CoverageLayers(archive, sky=sky)
    loaded = layers.load()
    assert {"HESS-DL3-DR1", "CTAO-SIM", "CTA-1DC", "MAGIC-RAD-MAX"} <= set(loaded)
    by_name = {x["name"]: x for x in sky.coverage}
    hess = by_name["HESS-DL3-DR1"]
    # What the sky draws is the archive's MOC: the same cells (MOC-JSON for Aladin) and
    # polygons holding the Crab but not a field H.E.S.S. never looked at.
    assert hess["moc"] == {
        k: list(v) for k, v in archive.coverage(collection="HESS-DL3-DR1").serialize("json").items()
    }
    assert _cells_hold(hess, *CRAB) and not _cells_hold(hess, 150.0, 60.0)
    layers.toggle("HESS-DL3-DR1")
    assert "HESS-DL3-DR1" not in {x["name"] for x in sky.coverage}
    layers.show("HESS-DL3-DR1")
    assert "HESS-DL3-DR1" in {x["name"] for x in sky.coverage}
    # The current results' coverage: the Crab runs' footprints, inside the archive's.
    layers.set_results(crab)
    res = {x["name"]: x for x in sky.coverage}[RESULTS_LAYER]
    assert sky.coverage[-1]["name"] == RESULTS_LAYER  # drawn on top
    assert _cells_hold(res, *CRAB) and not _cells_hold(res, 329.7, -30.2)  # not PKS 2155
    assert layers.moc(RESULTS_LAYER).difference(layers.moc("HESS-DL3-DR1")).empty()
    assert 0 < res["sky_fraction"] < hess["sky_fraction"]
    layers.hide(RESULTS_LAYER)
    assert RESULTS_LAYER not in {x["name"] for x in sky.coverage}
    # The plain plot (matplotlib, no network): one filled collection per layer drawn.
    ax = layers.plot()
    assert [c.get_label() for c in ax.collections] == [x["name"] for x in layers.layers]


def test_unknown_layer_and_missing_archive_are_clear_errors():
    layers = CoverageLayers()
    with pytest.raises(CtanbError, match=r"no coverage layer 'Fermi'.*results"):
        layers.toggle("Fermi")
    with pytest.raises(CtanbError, match="no archive to load coverage from"):
        layers.load()


def test_exposure_nights_and_energy_bands_follow_the_selection(crab, data_dir):
    from astropy.time import Time
    from gammapy.data import GTI

    plots = ExposurePlots(crab)
    rows = [str(x) for x in crab.table["obs_id"]]
    assert sorted(rows) == CRAB_RUNS
    # Nights, independently: the UTC date 12 h before each run's GTI start (gammapy).
    expected = set()
    for obs in CRAB_RUNS:
        gti = GTI.read(data_dir / "hess-dl3-dr1" / "data" / f"hess_dl3_dr1_obs_id_0{obs}.fits.gz")
        expected.add(Time(gti.time_start[0].tt.mjd - 0.5, format="mjd", scale="tt").utc.iso[:10])
    assert {n["night"] for n in plots.nights} == expected
    assert sum(len(n["rows"]) for n in plots.nights) == 4
    assert {n["source"] for n in plots.nights} == {"Crab Nebula"}
    assert len(plots.bands) == 4
    assert all(0 < b["energy_min"] < 1 < b["energy_max"] for b in plots.bands)
    before = (bytes(plots.time_chart.value), bytes(plots.energy_chart.value))
    assert before[0].startswith(b"\x89PNG") and before[1].startswith(b"\x89PNG")
    # Selecting a row highlights its night and its band (the pictures change).
    plots.select([rows.index("23559")])
    night = next(n for n in plots.nights if rows.index("23559") in n["rows"])
    assert plots.selected_nights == [f"Crab Nebula|{night['night']}"]
    assert bytes(plots.time_chart.value) != before[0]
    assert bytes(plots.energy_chart.value) != before[1]
    # Picking a night selects all its runs.
    busiest = max(plots.nights, key=lambda n: len(n["rows"]))
    plots.night_picker.value = f"Crab Nebula|{busiest['night']}"
    assert plots.selected_rows == sorted(busiest["rows"])
    with pytest.raises(CtanbError, match="no observation of 'Vela' on the night of 2004-01-01"):
        plots.select_night("Vela", "2004-01-01")


def test_app_links_table_selection_to_exposure_and_results_to_coverage(archive, crab):
    app = App(archive, use_aladin=False)
    app.show_results(crab)
    assert [x["name"] for x in app.sky.coverage] == [RESULTS_LAYER]
    assert len(app.exposure.bands) == 4
    app.table.select([1, 2])
    assert app.exposure.selected_rows == [1, 2]
    night = app.exposure.nights[0]
    app.exposure.select_night(night["source"], night["night"])
    assert app.table.selected_rows == sorted(night["rows"]) == app.sky.selected_rows


_NODE_SKY = r"""
import fs from "node:fs";
const state = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
globalThis.requestAnimationFrame = (f) => f();
const svg = { innerHTML: "", addEventListener() {}, setAttribute() {} };
// Any other element the view looks up (banner, footprint chooser...) is a plain stub.
const stub = () => ({ style: {}, innerHTML: "", hidden: true, addEventListener() {},
  setAttribute() {}, classList: { add() {}, remove() {}, toggle() {} } });
const el = { classList: { add() {} }, innerHTML: "",
  querySelector: (s) => (s === ".ctanb-skyplot" ? svg : stub()) };
const model = { get: (k) => state[k], on() {}, set() {}, save_changes() {}, send() {} };
const mod = await import(process.argv[3]);
mod.default.render({ model, el });
process.stdout.write(svg.innerHTML);
"""


def test_plain_sky_plot_draws_the_coverage_cells_in_the_browser_code(archive, crab, tmp_path):
    """The shipped front end (ctanb/static/ctanb_skyview.js), run by node with the state the
    kernel sends: the plain plot (offline, no Aladin) has one group of cells per layer."""
    import json
    import shutil
    import subprocess
    from pathlib import Path

    node = shutil.which("node")
    assert node, "node is needed (deploy/setup-env installs it for the widgets build)"
    sky = SkyView(crab, use_aladin=False)
    layers = CoverageLayers(archive, sky=sky)
    layers.load(collections=["HESS-DL3-DR1"])
    layers.set_results(crab)
    state = {k: getattr(sky, k) for k in ("footprints", "target", "selected_rows", "fov",
                                          "use_aladin", "message", "coverage")}  # fmt: skip
    (tmp_path / "state.json").write_text(json.dumps(state))
    (tmp_path / "run.mjs").write_text(_NODE_SKY)
    module = Path(__import__("ctanb").__file__).parent / "static" / "ctanb_skyview.js"
    shutil.copy(module, tmp_path / "skyview.mjs")
    out = subprocess.run([node, str(tmp_path / "run.mjs"), str(tmp_path / "state.json"),
                          str(tmp_path / "skyview.mjs")], capture_output=True, text=True,
                         timeout=60, check=True).stdout  # fmt: skip
    assert 'data-layer="HESS-DL3-DR1"' in out and 'data-layer="results"' in out
    results_group = out.split('data-layer="results"')[1].split("</g>")[0]
    assert results_group.count("<polygon") > 10  # the Crab runs' cells, near the centre
    assert out.count("ctanb-pointing") == 4  # the footprints are still drawn on top
    layers.hide("HESS-DL3-DR1")
    state["coverage"] = sky.coverage
    (tmp_path / "state.json").write_text(json.dumps(state))
    out = subprocess.run([node, str(tmp_path / "run.mjs"), str(tmp_path / "state.json"),
                          str(tmp_path / "skyview.mjs")], capture_output=True, text=True,
                         timeout=60, check=True).stdout  # fmt: skip
    assert 'data-layer="HESS-DL3-DR1"' not in out and 'data-layer="results"' in out
