"""SAMP from a hosted page with Chromium's Local Network Access checks on (issue 15, item 9).

JupyterLab runs on loopback, but Chromium is told to treat its origin as *public*
(``--ip-address-space-overrides``), as for a notebook served by a hub on the
internet: the page's requests to the user's SAMP hub on ``localhost`` then need the
"local network access" permission. The hub is ctanb's embedded hub with the Web
Profile on an ephemeral port (``CTANB_SAMP_WEB_HUB``), consenting to web clients as a
user would; a Python SAMP client stands in for TOPCAT (it loads the table from the URL
it is sent and sends a row selection back).

* permission granted: ``ctanb.App()`` -> SAMP "through this browser" -> Connect ->
  Send table: the viewer loads the rows; its selection checks rows in the App;
* permission denied: the panel says the browser blocked it and what to do.
"""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from astropy.io.votable import parse_single_table
from browser import ARTIFACTS, KernelProbe, jupyterlab, run_cell, write_notebook
from samp_apps import require_program

pytestmark = pytest.mark.slow

BLOCKED = "The browser blocked this page's access to the local network"


class Viewer:
    """A SAMP application on the hub (Standard Profile): loads tables, selects rows."""

    def __init__(self, hub) -> None:
        from pyvo.samp import SAMPIntegratedClient

        self.loaded: list[dict] = []
        self.client = SAMPIntegratedClient(name="viewer", addr="127.0.0.1")
        self.client.connect(hub=hub)
        self.client.bind_receive_call("table.load.votable", self._load)

    def _load(self, _key, _sender, msg_id, _mtype, params, _extra) -> None:
        table = parse_single_table(_fetch(params["url"])).to_table()
        self.loaded.append({**params, "obs_id": [str(x) for x in table["obs_id"]]})
        self.client.reply(msg_id, {"samp.status": "samp.ok", "samp.result": {}})

    def select(self, rows: list[int]) -> None:
        """Select *rows* of the last table loaded (``table.select.rowList`` to all)."""
        last = self.loaded[-1]
        self.client.notify_all({"samp.mtype": "table.select.rowList", "samp.params": {
            "table-id": last["table-id"], "url": last["url"], "row-list": [str(r) for r in rows]}})  # fmt: skip

    def close(self) -> None:
        self.client.disconnect()


def _fetch(url: str):
    import io

    return io.BytesIO(httpx.get(url, timeout=10).raise_for_status().content)


@pytest.fixture(scope="module")
def web_hub(tmp_path_factory):
    """ctanb's embedded hub with the Web Profile on an ephemeral port, saying yes to pages."""
    from pyvo.samp.hub import WebProfileDialog

    from ctanb.samp._samp_hub import EmbeddedSampHub

    class Consent(WebProfileDialog):  # the user clicking "yes" in the hub's dialog
        def show_dialog(self, *args) -> None:
            self.consent()

    consent = Consent()
    folder = tmp_path_factory.mktemp("web-hub")
    hub = EmbeddedSampHub(lockfile=str(folder / "lockfile"), web_profile=True, web_port=0,
                      web_profile_dialog=consent, addr="127.0.0.1", label="lna")  # fmt: skip
    hub.start(wait=False)
    running = True

    def answer() -> None:
        while running:
            consent.handle_queue()
            time.sleep(0.05)

    threading.Thread(target=answer, daemon=True).start()
    try:
        yield hub
    finally:
        running = False
        hub.stop()


def lab_page(playwright, url: str, port: int, notebook: str, granted: bool):
    """Chromium treating the Lab origin as public, with LNA checks on; the notebook open."""
    browser = playwright.chromium.launch(
        executable_path=require_program("chromium"), headless=True,
        args=["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
              "--disable-component-update", "--disable-sync",
              "--enable-features=LocalNetworkAccessChecks",
              f"--ip-address-space-overrides=127.0.0.1:{port}=public"],
    )  # fmt: skip
    context = browser.new_context(viewport={"width": 1400, "height": 1100})
    if granted:
        context.grant_permissions(["local-network-access"], origin=f"http://127.0.0.1:{port}")
    page = context.new_page()
    page.goto(url.replace("/?", f"/lab/tree/{notebook}?reset&"))
    page.get_by_text("Python 3 (ipykernel) | Idle").wait_for(timeout=90_000)
    return browser, page


def cells(archive_url: str) -> list[str]:
    return [f"import ctanb\napp = ctanb.App({archive_url!r}, use_aladin=False)\n"
            "app.show_results(app.search.archive.search(target='Crab', radius=3))\napp"]  # fmt: skip


def connect_through_browser(page) -> None:
    page.get_by_label("SAMP").select_option(label="through this browser (hosted notebook)")
    page.get_by_role("button", name="Connect").click()


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_samp_bridge_under_local_network_access(web_hub, archive_url, tmp_path, monkeypatch):
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("CTANB_SAMP_WEB_HUB", f"http://localhost:{web_hub._web_port}/")
    write_notebook(tmp_path / "granted.ipynb", cells(archive_url))
    write_notebook(tmp_path / "denied.ipynb", cells(archive_url))
    viewer = Viewer(web_hub)
    with jupyterlab(tmp_path) as (url, runtime), sync_playwright() as playwright:
        port = int(url.split(":")[2].split("/")[0])
        # Denied: the page may not reach the hub; the panel says so and what to do.
        browser, page = lab_page(playwright, url, port, "denied.ipynb", granted=False)
        try:
            run_cell(page, 0, "ctanb Data Distiller")
            connect_through_browser(page)
            message = page.get_by_text(BLOCKED)
            message.wait_for(timeout=60_000)
            assert "Allow \u201clocal network access\u201d" in message.inner_text() or (
                'Allow "local network access" for this site' in message.inner_text()
            )
            assert "reconnect" in message.inner_text()
            probe = KernelProbe(runtime)
            assert probe.eval("app.samp.transport.error_kind") == "blocked"
            probe.close()
            shot(page, "samp-lna-denied")
        finally:
            browser.close()

        # Granted: the table goes to the viewer, the viewer's selection comes back.
        browser, page = lab_page(playwright, url, port, "granted.ipynb", granted=True)
        try:
            run_cell(page, 0, "ctanb Data Distiller")
            probe = KernelProbe(runtime)
            connect_through_browser(page)
            page.get_by_text("SAMP: registered with the SAMP hub as ctanb").wait_for(timeout=60_000)
            page.get_by_role("button", name="Send table").click()
            page.get_by_text("viewer: samp.ok").wait_for(timeout=60_000)
            expected = probe.eval("[str(x) for x in app.table.table['obs_id']]")
            assert len(expected) >= 4 and viewer.loaded[-1]["obs_id"] == expected
            viewer.select([0, 2])
            page.wait_for_function(
                "document.querySelectorAll('.ctanb-table tr.ctanb-selected').length === 2",
                timeout=30_000,
            )
            assert probe.eval("app.table.selected_rows") == [0, 2]
            assert not page.get_by_text(BLOCKED).count()
            shot(page, "samp-lna-granted")
            probe.close()
        finally:
            browser.close()
    viewer.close()
