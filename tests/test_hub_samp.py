"""SAMP from a kernel behind JupyterHub: the user's browser bridges it to the desktop.

The whole chain runs for real, on loopback:

* TOPCAT's JSAMP hub (Standard + Web Profile) with TOPCAT and Aladin Desktop attached
  (under Xvfb) and a Standard Profile image viewer (the user's desktop);
* ``deploy/hub/up`` (configurable-http-proxy, dummy authenticator, simple spawner)
  against the session's embedded archive; alice's server is spawned by the hub and
  has the ctanb Jupyter server extension enabled;
* headless Chromium logs in to the hub, opens JupyterLab at ``/user/alice/lab`` and
  runs a notebook whose ``SampLink.bridge()`` registers with the desktop hub through
  the page; a ``ctanb.App`` shows archive search results with its SAMP buttons.

What a user notices is asserted: TOPCAT holds the table sent with "Send table" (it
fetched ``/user/alice/ctanb/samp/...`` through the hub's proxy, without cookies),
the viewer downloads the count map sent with "Send image" (same pixels as in the
kernel), Aladin lists the count map and the table sent to it, and rows selected on
TOPCAT's side become the checked rows of the App's results table in the kernel
behind the hub (read over the kernel websocket).
"""

from __future__ import annotations

import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from astropy.io import fits
from astropy.io.votable import parse_single_table
from astropy.wcs import WCS
from browser import run_cell
from samp_apps import (
    aladin_argv,
    aladin_home,
    jsamp_hub_argv,
    require_program,
    running,
    samp_env,
    topcat_argv,
    wait_for,
)
from test_hub import Hub, Kernel, _up
from test_samp_web import CHROMIUM_ARGS, topcat_table_url, wait_jsamp_ready

from ctanb import CtanbError
from ctanb.samp import SampLink

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts" / "samp-hub"
USER = "alice"
BRIDGE_NAME = "ctanb-hub"

NOTEBOOK_CELLS = [
    # 0: the bridge (displayed: the page registers with the desktop hub)
    "import ctanb\n"
    "from ctanb.samp import SampLink\n"
    f'link = SampLink.bridge(name="{BRIDGE_NAME}")\n'
    "link.widget",
    # 1: search results and a count map in the App, with its SAMP buttons
    "from gammapy.data import EventList\n"
    "from gammapy.maps import WcsNDMap\n"
    "from ctanb._settings import data_dir\n"
    "archive = ctanb.connect(progress=False)\n"
    'results = archive.search(collection="HESS-DL3-DR1", ra=83.633, dec=22.014, radius=2.0,\n'
    '                         spatial="pointing")\n'
    'events = EventList.read(data_dir() / "hess-dl3-dr1" / "data" /\n'
    '                        "hess_dl3_dr1_obs_id_023523.fits.gz")\n'
    'counts = WcsNDMap.create(skydir=(83.633, 22.014), binsz=0.02, width=2.0, frame="icrs")\n'
    "counts.fill_events(events)\n"
    'counts.write("crab_counts.fits", overwrite=True)\n'
    "app = ctanb.App(archive, samp=link, use_aladin=False)\n"
    "app.show_results(results)\n"
    'app.samp_controls.image = "crab_counts.fits"\n'
    "app",
]


def write_notebook(path: Path) -> None:
    import nbformat

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in NOTEBOOK_CELLS]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                       "language": "python"}  # fmt: skip
    nbformat.write(notebook, path)


class NotebookKernel(Kernel):
    """The kernel JupyterLab started for a notebook (found through the sessions API)."""

    def __init__(self, hub: Hub, user: str, notebook: str) -> None:
        self.base = f"{hub.url}/user/{user}/api/kernels"
        self.hub = hub

        def session():
            resp = hub.session.get(f"{hub.url}/user/{user}/api/sessions", timeout=30)
            assert resp.status_code == 200, resp.text
            return next((s for s in resp.json() if s["path"].endswith(notebook)), None)

        found = wait_for(session, 60, f"JupyterLab's kernel session of {notebook}")
        self.id = found["kernel"]["id"]
        self.session = "ctanb-test-probe"


# --- the desktop: JSAMP hub, TOPCAT, an image viewer ---------------------------------------------
@pytest.fixture(scope="module")
def desktop(tmp_path_factory):
    """The JSAMP hub with TOPCAT (started; it joins while the JupyterHub comes up)."""
    folder = tmp_path_factory.mktemp("samp-desktop")
    require_program("chromium")
    lockfile = folder / "lockfile"
    env = samp_env(lockfile)
    with running(jsamp_hub_argv("true"), folder / "hub.log", env):
        wait_jsamp_ready(lockfile)
        # Aladin reads ~/.samp (its home's .samp is the lockfile); http=True: it loads
        # http: URLs, which is how data from a hosted kernel reaches it.
        home = aladin_home(folder / "aladin-home", lockfile)
        with (
            running(topcat_argv(), folder / "topcat.log", env) as topcat,
            running(aladin_argv(home, http=True), folder / "aladin.log"),
        ):
            yield lockfile, topcat


@pytest.fixture(scope="module")
def jupyterhub(tmp_path_factory, archive_url, desktop):
    with _up(tmp_path_factory, "--tap-url", archive_url) as hub:
        started = time.monotonic()
        hub.add_user(USER, [])
        hub.spawn(USER)
        print(f"spawn of {USER}'s server: {time.monotonic() - started:.1f} s")
        yield hub


class FitsViewer:
    """A Standard Profile image viewer: downloads what ``image.load.fits`` points to,
    so the test can compare the pixels with the kernel's map (Aladin only lists planes)."""

    name = "fits-viewer"

    def __init__(self, lockfile: Path) -> None:
        self.link = SampLink.connect(lockfile, start_samp_hub=False, name=self.name, timeout=20)
        self.received: list[tuple[dict, fits.HDUList]] = []
        self.link.transport.subscribe("image.load.fits", self._load)

    def _load(self, sender_id: str, params: dict) -> dict:
        # A plain download, as a desktop application does it: no cookies, no token.
        with urllib.request.urlopen(params["url"], timeout=30) as resp:
            data = resp.read()
        hdus = fits.HDUList.fromstring(data)
        self.received.append((params, hdus))
        return {}

    def close(self) -> None:
        self.link.close()


def aladin_status(link: SampLink) -> str | None:
    """Aladin's ``status`` script answer (its loaded planes), None while it cannot answer."""
    try:
        delivery = link.send("script.aladin.send", {"script": "status"}, "Aladin", timeout=5)
        delivery.raise_for_errors()
    except CtanbError:  # not ready yet: the caller waits
        return None
    return delivery.responses[0].result.get("script.result", "")


@pytest.fixture(scope="module")
def direct_link(desktop, jupyterhub):
    """A Standard Profile client of the desktop hub (asks TOPCAT what it holds), and a viewer."""
    lockfile, topcat = desktop
    viewer = FitsViewer(lockfile)
    try:
        with SampLink.connect(lockfile, start_samp_hub=False, serve="http", timeout=20) as link:
            try:
                wait_for(lambda: {"topcat", "Aladin", FitsViewer.name} <= set(link.client_names()),
                         90, "TOPCAT, Aladin and the viewer on the JSAMP hub")  # fmt: skip
                # Aladin registers before its windows (and subscriptions) exist.
                wait_for(lambda: aladin_status(link) is not None, 60, "Aladin to answer scripts")
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n{topcat.output()[-2000:]}") from None
            yield link, viewer
    finally:
        viewer.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=require_program("chromium"), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def lab(jupyterhub, direct_link, browser):
    """alice logged in through the hub, the notebook open and run: (page, kernel)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    home = jupyterhub.state / "home" / USER
    write_notebook(home / "samp_hub.ipynb")
    page = browser.new_page(viewport={"width": 1400, "height": 1600})
    started = time.monotonic()

    def lap(what: str) -> None:
        print(f"{what}: {time.monotonic() - started:.1f} s")

    try:
        page.goto(f"{jupyterhub.url}/hub/login")
        page.fill("#username_input", USER)
        page.fill("#password_input", "anything")  # the dummy authenticator takes any
        page.click("#login_submit")
        page.wait_for_url(f"**/user/{USER}/**", timeout=60_000)
        page.goto(f"{jupyterhub.url}/user/{USER}/lab/tree/samp_hub.ipynb")
        page.get_by_text("Python 3 (ipykernel) | Idle").wait_for(timeout=90_000)
        lap("log in through the hub and open JupyterLab")
        run_cell(page, 0, f"SAMP: registered with the SAMP hub as {BRIDGE_NAME}")
        lap("the bridge registered")
        run_cell(page, 1, "Send selected")
        lap("search, count map and App")
        kernel = NotebookKernel(jupyterhub, USER, "samp_hub.ipynb")
        yield page, kernel
    finally:
        page.screenshot(path=str(ARTIFACTS / "jupyterlab-through-hub.png"), full_page=True)
        page.close()


def test_the_notebook_runs_behind_the_hub(lab, jupyterhub):
    page, kernel = lab
    assert f"/user/{USER}/lab" in page.url
    state = kernel.run(
        "import os\n"
        "print(os.environ['JUPYTERHUB_USER'], link.transport.state, *app.table.table['obs_id'])"
    ).split()
    assert state[:2] == [USER, "connected"]
    assert sorted(state[2:]) == ["23523", "23526", "23559", "23592"]  # the H.E.S.S. Crab runs


def test_send_table_button_sends_results_topcat_loads(lab, direct_link):
    page, kernel = lab
    link, _ = direct_link
    page.get_by_label("Send to").select_option("topcat")
    page.get_by_role("button", name="Send table").click()
    page.get_by_text("topcat: samp.ok").wait_for(timeout=60_000)
    page.screenshot(path=str(ARTIFACTS / "send-table.png"), full_page=True)
    table_id, url = kernel.run(
        "tid = link.table_id(app.table.table)\nprint(tid, link.selection_model._urls.get(tid, ''))"
    ).split()[:2]
    assert url.startswith("ctanb-jupyter:ctanb/samp/")
    expected = kernel.run("print(*app.table.table['obs_id'])").split()

    # TOPCAT fetched the table from alice's server through the hub's proxy, and holds it.
    held = parse_single_table(topcat_table_url(link, table_id)).to_table()
    assert sorted(str(v) for v in held["obs_id"]) == sorted(expected)
    assert sorted(expected) == ["23523", "23526", "23559", "23592"]


def test_spool_links_work_without_cookies_through_the_proxy(lab, jupyterhub):
    """What TOPCAT does with a SAMP URL: a plain GET of /user/alice/ctanb/samp/..., no login."""
    import requests

    _, kernel = lab
    relative = kernel.run(
        "print(link.publisher.publish(b'SIMPLE', 'probe.txt', 'text/plain'))"
    ).strip()
    url = f"{jupyterhub.url}/user/{USER}/" + relative.removeprefix("ctanb-jupyter:")
    resp = requests.get(url, allow_redirects=False, timeout=30)
    assert (resp.status_code, resp.content) == (200, b"SIMPLE")
    # Everything else of the server still wants a login.
    other = requests.get(f"{jupyterhub.url}/user/{USER}/api/contents", allow_redirects=False,
                         timeout=30)  # fmt: skip
    assert other.status_code in (302, 403)
    bad = requests.get(url.rsplit("/", 2)[0] + "/" + "x" * 32 + "/probe.txt", timeout=30)
    assert bad.status_code == 404


def test_send_image_button_sends_a_count_map_a_viewer_downloads(lab, direct_link, jupyterhub):
    page, kernel = lab
    _, viewer = direct_link
    page.get_by_label("Send to").select_option(FitsViewer.name)
    page.get_by_role("button", name="Send image").click()
    page.get_by_text(f"{FitsViewer.name}: samp.ok").wait_for(timeout=60_000)
    page.screenshot(path=str(ARTIFACTS / "send-image.png"), full_page=True)

    [(params, hdus)] = viewer.received
    assert params["url"].startswith(f"{jupyterhub.url}/user/{USER}/ctanb/samp/")
    image = hdus[0]
    assert image.data.shape == (100, 100)  # 2 deg at 0.02 deg
    assert WCS(image.header).wcs.ctype[0] == "RA---CAR"  # gammapy's default projection
    expected = float(kernel.run("print(counts.data.sum())"))
    assert image.data.sum() == pytest.approx(expected) and expected > 100


def test_selection_in_topcat_checks_rows_of_the_app_behind_the_hub(lab, desktop):
    page, kernel = lab
    lockfile, _ = desktop
    table_id = kernel.run("print(link.table_id(app.table.table))").strip()
    assert table_id.startswith("ctanb-"), "Send table has not run"
    argv = [require_program("topcat"), "-jsamp", "messagesender", "-mtype", "table.select.rowList"]
    argv += ["-targetname", BRIDGE_NAME, "-mode", "sync", "-sendername", "topcat-sender"]
    argv += ["-param", "table-id", table_id, "-param", "row-list", '["1", "3"]']
    sender = subprocess.run(argv, env=samp_env(lockfile), capture_output=True, text=True,
                            timeout=60, check=False)  # fmt: skip
    assert "samp.ok" in sender.stdout, sender.stdout + sender.stderr

    deadline = time.monotonic() + 30
    while (rows := kernel.run("print(*app.table.selected_rows)").split()) != ["1", "3"]:
        assert time.monotonic() < deadline, f"the App's checked rows are {rows}, not [1, 3]"
        time.sleep(0.5)
    assert kernel.run("print(link.selection[link.table_id(app.table.table)])").strip() == "(1, 3)"
    # ... and the user sees those two runs checked in the results table of the page.
    selected = kernel.run("print(*app.selected['obs_id'])").split()
    checked = page.locator(".ctanb-app tr:has(input[type=checkbox]:checked)")
    wait_for(lambda: checked.count() == 2, 30, "two checked rows in the page")
    texts = checked.all_inner_texts()
    assert len(selected) == 2 and all(any(v in text for text in texts) for v in selected)
    page.screenshot(path=str(ARTIFACTS / "selection-from-topcat.png"), full_page=True)


def test_send_buttons_put_the_count_map_and_the_table_in_aladin(
    lab, direct_link, desktop, jupyterhub
):
    page, _ = lab
    link, _ = direct_link
    lockfile, _ = desktop
    page.get_by_label("Send to").select_option("Aladin")
    page.get_by_role("button", name="Send image").click()
    page.get_by_text("Aladin: samp.ok").first.wait_for(timeout=60_000)
    page.get_by_role("button", name="Send table").click()

    # Aladin's "status" lists its planes; through the JSAMP hub its answer does not come
    # back (it holds a degree sign, not a valid SAMP string), but Aladin prints it.
    log = lockfile.parent / "aladin.log"
    deadline = time.monotonic() + 60
    while True:
        aladin_status(link)
        status = log.read_text(errors="replace").rsplit("[status]", 1)[-1]
        image = f"Url     {jupyterhub.url}/user/{USER}/ctanb/samp/"
        if image in status and "Type    Catalog" in status and "NbObj   4" in status:
            break
        assert time.monotonic() < deadline, f"Aladin lists no count map and table:\n{status}"
        time.sleep(1)
    assert "Width   100" in status  # the 2 deg count map at 0.02 deg
    page.screenshot(path=str(ARTIFACTS / "aladin.png"), full_page=True)
