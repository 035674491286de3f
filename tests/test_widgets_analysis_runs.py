"""Each analysis run of the App's panel writes into its own new folder (no overwrite).

A tester published ``spectrum/source_flux_points.fits`` of Mrk 421, ran the
spectrum of the Crab next and found the file replaced by the Crab's. Here two
count maps of different runs in a row (fast: one run each) must keep both
products, each folder's provenance naming its own run, and the panel and the
products list must show where they went.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ctanb.provenance import read_provenance
from ctanb.widgets import App
from ctanb.widgets.analysis import run_folder


@pytest.fixture(scope="module")
def archive(archive_url):
    import ctanb

    with ctanb.connect(archive_url, progress=False) as archive:
        yield archive


def _provenance_text(path: Path) -> str:
    return read_provenance(path).serialize()


def test_two_analysis_runs_in_a_row_keep_both_products(archive, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the products folder is next to the "notebook"
    monkeypatch.delenv("CTANB_PRODUCTS", raising=False)
    app = App(archive)
    app.search.set(target="Crab", radius=3, obs_collection="HESS-DL3-DR1")
    app.search.resolve()
    app.search.search()
    runs = [str(v) for v in app.results.table["obs_id"]][:2]
    assert len(runs) == 2

    made = []
    for index, run in enumerate(runs):
        app.table.selected_rows = [index]
        assert [str(v) for v in app.selected_results().table["obs_id"]] == [run]
        app.analysis.map_button.click()
        assert app.analysis.error == ""
        folder = Path(app.analysis.last_folder)
        # Recognisable: under maps/, with the target and the run in its name.
        assert folder.parent == tmp_path / "ctanb-products" / "maps"
        assert "_Crab" in folder.name and folder.name.endswith(f"_{run}"), folder.name
        # The panel says where the products went.
        assert str(folder.relative_to(tmp_path)) in app.analysis.stage_label.value
        counts = folder / "counts.fits"
        assert counts.is_file()
        made.append((run, counts, counts.read_bytes()))

    (run_a, counts_a, bytes_a), (run_b, counts_b, _) = made
    assert counts_a.parent != counts_b.parent
    assert counts_a.read_bytes() == bytes_a, "the second run changed the first run's count map"
    text_a, text_b = _provenance_text(counts_a), _provenance_text(counts_b)
    assert run_a in text_a and run_b not in text_a
    assert run_b in text_b and run_a not in text_b
    # The products list links both runs' count maps.
    app.products.refresh()
    listing = app.products.listing.value
    for counts in (counts_a, counts_b):
        assert str(counts.relative_to(tmp_path)) in listing


def test_run_folder_never_reuses_a_folder(tmp_path):
    from astropy.table import Table

    table = Table({"target_name": ["Crab", "Crab", "Crab"], "obs_id": [23523, 23526, 23559]})
    first = run_folder(tmp_path / "spectrum", table, when=0)
    (first / "source_flux_points.fits").write_bytes(b"kept")
    second = run_folder(tmp_path / "spectrum", table, when=0)  # same second, same runs
    assert first != second and first.name.endswith("_Crab_23523+2")
    assert second.name == first.name + "-2" and not any(second.iterdir())
    assert (first / "source_flux_points.fits").read_bytes() == b"kept"
    # A hostile target name cannot leave the products folder.
    odd = run_folder(tmp_path, Table({"target_name": ["../../etc x"], "obs_id": [1]}))
    assert odd.parent == tmp_path and odd.name.endswith("_etc-x_1")
