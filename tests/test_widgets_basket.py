"""The basket, the hub identity in the login box and the products list (issue 15, item 7):
datasets collected across searches and downloaded/exported/sent together; the
JupyterHub user shown and its archive token in use; products listed with links.
Against the embedded archive over real HTTP; SAMP through a real hub and a client."""

from __future__ import annotations

from pathlib import Path

import pytest
from astropy.table import Table

from ctanb.widgets import App

CRAB_RUNS = ["23523", "23526", "23559", "23592"]


@pytest.fixture(scope="module")
def archive(archive_url):
    import ctanb

    with ctanb.connect(archive_url, progress=False, offline=True) as archive:
        yield archive


@pytest.fixture
def app(archive, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the notebook's folder
    monkeypatch.delenv("CTANB_PRODUCTS", raising=False)
    return App(archive, use_aladin=False)


def search(app: App, **criteria) -> list[str]:
    app.search.set(**criteria)
    app.search.search()
    return [str(x) for x in app.table.table["obs_id"]]


def test_basket_collects_across_searches_and_downloads_exports_all(app, tmp_path):
    crab = search(app, target="Crab", radius=3, obs_collection="HESS-DL3-DR1")
    assert sorted(crab) == CRAB_RUNS
    app.table.select([0, 1])
    app.basket.add_button.click()
    assert "2 dataset(s) added" in app.basket.status.value
    # A second search (another target): its rows join the same basket.
    app.search.reset()
    other = search(app, target="PKS 2155-304", radius=3, obs_collection="HESS-DL3-DR1")
    assert other and not set(other) & set(crab)
    app.table.select([0])
    app.basket.add_button.click()
    app.basket.add_button.click()  # twice: kept once
    assert "already in the basket" in app.basket.status.value
    wanted = sorted([crab[0], crab[1], other[0]])
    assert sorted(str(r["obs_id"]) for r in app.basket.records.values()) == wanted
    assert "Basket: 3 dataset(s)" in app.basket.contents.value

    app.tools.format_box.value = "fits"
    app.basket.export_button.click()
    assert app.basket.error_display.value == ""
    (written,) = (tmp_path / "ctanb-products").glob("basket-*.fits")
    back = Table.read(written)
    assert sorted(str(x) for x in back["obs_id"]) == wanted
    assert back["s_ra"].unit == "deg"

    steps = []
    app.basket.progress.observe(lambda ch: steps.append(ch["new"]), "value")
    app.basket.download_button.click()
    assert app.basket.error_display.value == ""
    files = sorted(p.name for p in (tmp_path / "ctanb-products" / "downloads").iterdir())
    assert all(any(obs in f for f in files) for obs in wanted), files
    assert steps[-1] == 1.0 and len(steps) >= 3
    assert "ctanb-products/downloads" in app.basket.status.value

    # Every file written is listed with a link next to the notebook.
    app.tabs.selected_index = app.tabs.titles.index("Products")
    listing = app.products.listing.value
    assert f"href='ctanb-products/{written.name}'" in listing
    assert all(f"ctanb-products/downloads/{f}" in listing for f in files)

    app.basket.clear_button.click()
    app.basket.download_button.click()
    assert "the basket is empty" in app.basket.error_display.value


def test_basket_send_needs_samp_and_then_reaches_a_client(app, tmp_path):
    from conftest import wait_for
    from test_widgets import FakeTopcat

    search(app, target="Crab", radius=3, obs_collection="HESS-DL3-DR1")
    app.table.select([0, 1, 2])
    app.basket.add()
    app.basket.send_button.click()
    assert "SAMP is not connected" in app.basket.error_display.value
    lockfile = tmp_path / "samp-lockfile"
    link = app.connect_samp("desktop", lockfile=lockfile)
    try:
        topcat = FakeTopcat(lockfile)
        try:
            app.samp_controls.refresh()
            wait_for(lambda: "topcat" in app.samp_controls.chooser.options, 30, "topcat")
            delivery = app.basket.send()
            loaded = wait_for(lambda: topcat.received.get("table.load.votable"), 30,
                                "TOPCAT to receive the basket")  # fmt: skip
            assert loaded[-1]["table-id"] == delivery.table_id
            wait_for(lambda: delivery.done, 30, "the answer")
            assert "topcat" in app.basket.status.value
        finally:
            topcat.close()
    finally:
        link.close()


def test_login_box_shows_the_hub_identity_and_its_token_in_use(archive, monkeypatch):
    monkeypatch.setenv("JUPYTERHUB_USER", "alice")
    monkeypatch.setenv("CTANB_ARCHIVE_GROUP", "hess-team")
    monkeypatch.setenv("CTANB_TOKEN", "hess-team:s3cret-token")
    app = App(archive, use_aladin=False)
    box = app.login_box
    assert box.user_text in box.children and box.user_text.value == "alice"
    assert "logged in (as alice through JupyterHub, archive group hess-team)" in box.status.value
    assert box.token_text.value == "" and "group hess-team" in box.token_text.placeholder
    assert "s3cret" not in box.status.value + box.token_text.placeholder
    # A hub user without archive credentials: told so, and public data only.
    monkeypatch.delenv("CTANB_TOKEN")
    monkeypatch.delenv("CTANB_ARCHIVE_GROUP")
    plain = App(archive, use_aladin=False).login_box
    assert "signed in to JupyterHub as alice" in plain.status.value
    assert "public data only" in plain.status.value
    # Not on a hub: no user field.
    monkeypatch.delenv("JUPYTERHUB_USER")
    lone = App(archive, use_aladin=False).login_box
    assert lone.user_text not in lone.children and "not logged in" in lone.status.value


def test_products_list_says_where_products_go_when_empty(app, tmp_path):
    files = app.products.refresh()
    assert files == [] and "No products yet in ctanb-products" in app.products.listing.value
    assert Path(tmp_path / "ctanb-products").is_dir()
