"""TOPCAT's JSAMP hub (Standard + Web Profile) with TOPCAT attached, reached two ways:

* directly by the kernel (``SampLink.connect``, Standard Profile);
* through the browser bridge: the built ES module runs in headless Chromium
  (Playwright, Debian's /usr/bin/chromium) in a plain page served on loopback,
  registers with the hub's Web Profile at http://localhost:21012/ and relays
  between the page and a kernel-side :class:`BridgeTransport`. The page server
  also serves the spool at ``/ctanb/samp/<token>/<name>`` exactly as the Jupyter
  server extension does, so the Jupyter-relative URLs are resolved by the browser.

The hub runs with ``-web:nourlcontrol``: JSAMP blocks web clients from sending
URLs of *local* servers, and here the stand-in for the remote Jupyter server has
to be on 127.0.0.1.
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from astropy.io.votable import parse_single_table
from browser import run_cell
from samp_apps import (
    crab_runs_table,
    jsamp_hub_argv,
    require_program,
    running,
    samp_env,
    topcat_argv,
    wait_for,
)

from ctanb import CtanbError
from ctanb.samp import SampLink, SpoolPublisher
from ctanb.samp.bridge import BridgeTransport, bridge_module_path
from ctanb.samp.serve import spool_item

pytestmark = pytest.mark.slow

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-features=LocalNetworkAccessChecks",
]

PAGE = """<!doctype html><html><body><div id="status"></div>
<script type="module">
import { Relay } from "/samp_bridge.js";
const params = new URLSearchParams(location.search);
const handlers = [];
const state = {
  app_name: params.get("name"), hub_url: "http://localhost:21012/", base_url: "",
  subscriptions: ["table.select.rowList", "table.highlight.row", "coord.pointAt.sky"],
};
const model = {
  get: (key) => state[key],
  on: (event, cb) => handlers.push(cb),
  send: (msg) => window.toKernel(JSON.stringify(msg)),
};
window.fromKernel = (json) => handlers.forEach((h) => h(JSON.parse(json)));
window.relay = new Relay(model);
window.relay.addEventListener("status", () => {
  document.getElementById("status").textContent = window.relay.status.message;
});
window.relay.connect();
</script></body></html>"""


class PageServer:
    """Loopback server for the test page, the bridge module and the spool."""

    def __init__(self, spool: Path) -> None:
        module = bridge_module_path().read_bytes()
        page = PAGE.encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                path = self.path.split("?", 1)[0]
                parts = path.strip("/").split("/")
                if path == "/samp_bridge.js":
                    body, ctype = module, "text/javascript"
                elif path == "/index.html":
                    body, ctype = page, "text/html"
                elif len(parts) == 4 and parts[:2] == ["ctanb", "samp"]:
                    item = spool_item(spool, parts[2], parts[3])
                    if item is None:
                        self.send_error(404)
                        return
                    body, ctype = item[0].read_bytes(), item[1]
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class PageEndpoint:
    """The kernel end of the bridge, talking to the page instead of a widget comm.

    Playwright's sync API is single-threaded: messages for the page are queued and
    delivered by :meth:`pump`, which also lets the page's messages come in.
    """

    def __init__(self, page) -> None:
        self.page = page
        self.outbox: list[dict] = []
        self._callbacks = []
        page.expose_function("toKernel", self._from_page)

    def on_msg(self, callback) -> None:
        self._callbacks.append(callback)

    def send(self, content: dict) -> None:
        self.outbox.append(content)

    def _from_page(self, text: str) -> None:
        for callback in self._callbacks:
            callback(self, json.loads(text), None)

    def pump(self, until, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        while True:
            while self.outbox:
                self.page.evaluate("m => window.fromKernel(m)", json.dumps(self.outbox.pop(0)))
            value = until()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
            self.page.wait_for_timeout(100)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    chromium = require_program("chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def spool(tmp_path_factory):
    return tmp_path_factory.mktemp("spool")


@pytest.fixture(scope="module")
def page_server(spool):
    server = PageServer(spool)
    yield server
    server.close()


def open_bridge(browser, page_server, spool, name: str):
    """A page running the bridge, and a SampLink on its kernel side."""
    page = browser.new_page()
    endpoint = PageEndpoint(page)
    link = SampLink(BridgeTransport(endpoint), SpoolPublisher(spool), timeout=20)
    page.goto(f"{page_server.url}index.html?name={name}")
    return page, endpoint, link


WEB_PROFILE_PORT = 21012  # fixed by the SAMP Web Profile standard


def start_jsamp_hub(folder: Path, web_auth: str):
    lockfile = folder / "lockfile"
    hub = running(jsamp_hub_argv(web_auth), folder / "hub.log", samp_env(lockfile))
    return hub, lockfile


def wait_jsamp_ready(lockfile: Path) -> None:
    """Wait for the JSAMP hub's lockfile and then its Web Profile port: JSAMP writes the
    lockfile first, and a page that comes too early would be told "no hub"."""
    wait_for(lockfile.is_file, 30, "the JSAMP hub's lockfile")

    def web_profile_listens() -> bool:
        try:
            socket.create_connection(("localhost", WEB_PROFILE_PORT), timeout=1).close()
            return True
        except OSError:
            return False

    wait_for(web_profile_listens, 30, f"the JSAMP Web Profile on port {WEB_PROFILE_PORT}")


# --- without the main hub (these run first: port 21012 is free) --------------------------------
def test_bridge_without_a_hub_says_so(browser, page_server, spool):
    page, endpoint, link = open_bridge(browser, page_server, spool, "ctanb-web")
    try:
        endpoint.pump(lambda: link.transport.state == "error", 20, "the bridge to give up")
        assert link.transport.error_kind == "no-hub"
        assert "No SAMP hub answers at http://localhost:21012/" in link.transport.message
        assert "Start TOPCAT or Aladin" in page.inner_text("#status")
        with pytest.raises(CtanbError, match="bridge not connected: No SAMP hub"):
            link.send_table(crab_runs_table_small(), to="topcat")
    finally:
        page.close()


def crab_runs_table_small():
    from astropy.table import Table

    return Table({"obs_id": [23523]})


def test_bridge_refused_by_the_hub_says_so(browser, page_server, spool, tmp_path):
    hub, lockfile = start_jsamp_hub(tmp_path, web_auth="false")
    with hub:
        wait_jsamp_ready(lockfile)
        page, endpoint, link = open_bridge(browser, page_server, spool, "ctanb-web")
        try:
            endpoint.pump(lambda: link.transport.state == "error", 20, "the refusal")
            assert link.transport.error_kind == "refused"
            assert "refused to register ctanb-web" in link.transport.message
        finally:
            page.close()


# --- the JSAMP hub with TOPCAT attached -----------------------------------------------------------
@pytest.fixture(scope="module")
def jsamp(tmp_path_factory):
    folder = tmp_path_factory.mktemp("jsamp-hub")
    hub, lockfile = start_jsamp_hub(folder, web_auth="true")
    with hub:
        wait_jsamp_ready(lockfile)
        with running(topcat_argv(), folder / "topcat.log", samp_env(lockfile)) as topcat:
            yield lockfile, topcat


@pytest.fixture(scope="module")
def direct_link(jsamp):
    lockfile, _ = jsamp
    with SampLink.connect(lockfile, start_samp_hub=False, serve="http", timeout=20) as link:
        assert link.samp_hub is None, "a SAMP hub was running: ctanb must not start its own"
        wait_for(lambda: "topcat" in link.client_names(), 60, "TOPCAT on the JSAMP hub")
        yield link


def topcat_table_url(link: SampLink, table_id: str, pump=None) -> str:
    """Ask TOPCAT (table.get.stil) for the table it holds; polls, TOPCAT loads lazily."""

    def ask():
        answer = link.send("table.get.stil", {"table-id": table_id, "format": "votable"}, "topcat")
        if pump is not None:
            pump(lambda: answer.done, 20, "TOPCAT's table.get.stil answer")
        return answer.ok and answer.responses[0].result.get("url")

    return wait_for(ask, 30, f"TOPCAT to hold {table_id}", every=0.5)


def test_standard_profile_on_the_jsamp_hub(direct_link, data_dir):
    crab = crab_runs_table(data_dir)
    delivery = direct_link.send_table(crab, to="topcat")
    assert delivery.ok, delivery.summary()
    held = parse_single_table(topcat_table_url(direct_link, delivery.table_id)).to_table()
    assert list(held["obs_id"]) == list(crab["obs_id"])


@pytest.fixture(scope="module")
def bridge(browser, page_server, spool, jsamp):
    page, endpoint, link = open_bridge(browser, page_server, spool, "ctanb-web")
    try:
        endpoint.pump(
            lambda: link.transport.state == "connected" and "topcat" in link.client_names(),
            30,
            "the bridge to register and see TOPCAT",
        )
        yield page, endpoint, link
    finally:
        page.close()


def test_bridge_sends_a_table_that_topcat_loads(bridge, data_dir, page_server):
    page, endpoint, link = bridge
    crab = crab_runs_table(data_dir)

    delivery = link.send_table(crab, to="topcat", name="crab_runs")
    assert delivery.url.startswith("ctanb-jupyter:ctanb/samp/")
    endpoint.pump(lambda: delivery.done, 30, "TOPCAT's answer through the bridge")

    assert delivery.ok, delivery.summary()
    assert [r.client_name for r in delivery.responses] == ["topcat"]
    held = parse_single_table(topcat_table_url(link, delivery.table_id, endpoint.pump))
    assert list(held.to_table()["obs_id"]) == list(crab["obs_id"])
    assert page.inner_text("#status") == "registered with the SAMP hub as ctanb-web"


def test_bridge_reports_a_bad_url_as_samp_error(bridge):
    _, endpoint, link = bridge
    delivery = link.send(
        "table.load.votable",
        {"url": "ctanb-jupyter:ctanb/samp/expired-token-0000000/x.vot", "table-id": "ctanb-x"},
        to="topcat",
    )
    endpoint.pump(lambda: delivery.done, 30, "TOPCAT's error through the bridge")
    [answer] = delivery.responses
    assert answer.status == "samp.error" and answer.error


def test_selection_from_topcat_reaches_the_kernel_through_the_bridge(bridge, jsamp):
    _, endpoint, link = bridge
    lockfile, _ = jsamp
    seen = []
    link.on_selection(seen.append)
    argv = [require_program("topcat"), "-jsamp", "messagesender", "-mtype", "table.select.rowList"]
    argv += ["-targetname", "ctanb-web", "-mode", "sync", "-sendername", "topcat-sender"]
    argv += ["-param", "table-id", "ctanb-abc", "-param", "url", "http://x/t.vot"]
    argv += ["-param", "row-list", '["0", "2"]']
    sender = subprocess.Popen(
        argv, env=samp_env(lockfile), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        endpoint.pump(lambda: seen, 60, "the selection to reach the kernel")
        endpoint.pump(lambda: sender.poll() is not None, 30, "the sender to get its answer")
    finally:
        sender.kill()
    assert seen[0].rows == (0, 2) and seen[0].source == "topcat-sender"
    assert link.selection["ctanb-abc"] == (0, 2)
    assert "samp.ok" in sender.stdout.read()


# --- the real thing: JupyterLab, a kernel, the anywidget bridge and the buttons --------------------
NOTEBOOK_CELLS = [
    "from astropy.table import Table\n"
    "from ctanb.samp import SampLink\n"
    "from ctanb.widgets.samp import SampControls\n"
    'link = SampLink.bridge(name="ctanb-lab")\n'
    "link.widget",
    'runs = Table({"obs_id": [23523, 23526, 23559, 23592]})\n'
    "controls = SampControls(link, table=runs)\n"
    'controls.chooser.value = "topcat"\n'
    "controls.widget",
    'print("TABLE-ID", link.table_id(runs))',
]


def write_notebook(path: Path) -> None:
    import nbformat

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in NOTEBOOK_CELLS]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nbformat.write(notebook, path)


def test_jupyterlab_bridge_button_sends_a_table_topcat_loads(browser, jsamp, direct_link, tmp_path):
    from samp_apps import jupyter_server

    write_notebook(tmp_path / "samp.ipynb")
    with jupyter_server(tmp_path, tmp_path / "home", app="jupyterlab") as (url, token):
        page = browser.new_page()
        try:
            page.goto(f"{url}lab/tree/samp.ipynb?token={token}")
            page.get_by_text("Python 3 (ipykernel) | Idle").wait_for(timeout=60_000)
            run_cell(page, 0, "SAMP: registered with the SAMP hub as ctanb-lab")
            run_cell(page, 1, "Send selected")
            page.get_by_role("button", name="Send table").click()
            page.get_by_text("topcat: samp.ok").wait_for(timeout=60_000)
            printed = run_cell(page, 2, "TABLE-ID ctanb-")
            table_id = printed.inner_text().split()[-1]
            assert page.get_by_text("topcat: samp.ok").is_visible()
        finally:
            page.screenshot(path=str(tmp_path / "jupyterlab.png"))
            page.close()
    # TOPCAT fetched the table from the Jupyter server at the URL the browser made absolute.
    held = parse_single_table(topcat_table_url(direct_link, table_id)).to_table()
    assert list(held["obs_id"]) == [23523, 23526, 23559, 23592]
