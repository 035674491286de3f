"""The whole journey of issue 15 ("Done when") in one real browser story: JupyterLab in
headless Chromium, ``ctanb.App()`` on the embedded archive, TOPCAT under Xvfb.

Resolve five targets typed and clicked at once; a misspelt one (Search must not re-run
an old query); a COUNT query; an asynchronous search cancelled; rows selected in the
table and on the sky (a click where footprints overlap offers a choice; the row chosen
is shown in the table); a count map and a spectrum of the selected runs while the last
target resolved is elsewhere; download, export and the basket; the table sent to
TOPCAT; a proprietary run refused, then downloaded after logging in with a token.
Clicks and typing go out without waiting in between; the test only waits to check.
A screenshot of each step is kept in ``test-artifacts/widgets/story/``.
"""

from __future__ import annotations

import time

import pytest
from browser import ARTIFACTS, KernelProbe, chromium, jupyterlab, run_cell, write_notebook
from samp_apps import running, samp_env, topcat_argv, wait_for

from ctanb.samp import SampLink

pytestmark = pytest.mark.slow

SHOTS = ARTIFACTS / "story"
#: name typed -> RA the form must show (the bundled TeV source list, offline).
TARGETS = {"MSH 15-52": 228.48174, "Crab": 83.63308, "Mrk 421": 166.11381,
           "PKS 2155-304": 329.71694, "RX J1713.7-3946": 258.3875}  # fmt: skip
CRAB_RUNS = ["23523", "23526", "23559", "23592"]
SLOW = "SELECT * FROM ivoa.obscore AS a, ivoa.obscore AS b, ivoa.obscore AS c"
PROPRIETARY = "SELECT * FROM ivoa.obscore WHERE proposal_id = 'CTAO-2026A-001' ORDER BY obs_id"
IDLE = "Python 3 (ipykernel) | Idle"


_CLOCK = [time.monotonic()]


def shot(page, name: str) -> None:
    """Keep a screenshot of the step; print how long the step took (for the CI budget)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    now = time.monotonic()
    print(f"STEP {name}: {now - _CLOCK[0]:.1f} s")
    _CLOCK[0] = now


def settle(probe: KernelProbe, page) -> None:
    """Until the kernel and the page have nothing left to do (to check, not to act)."""
    page.get_by_text(IDLE).wait_for(timeout=120_000)
    probe.eval("1")
    page.get_by_text(IDLE).wait_for(timeout=120_000)


@pytest.fixture
def topcat(tmp_path, monkeypatch):
    """A SAMP hub (ours) with TOPCAT under Xvfb; the Lab kernel finds it via SAMP_HUB."""
    lockfile = tmp_path / "samp" / "lockfile"
    lockfile.parent.mkdir()
    monkeypatch.setenv("SAMP_HUB", f"std-lockurl:file://{lockfile}")
    monkeypatch.delenv("CTANB_PRODUCTS", raising=False)  # next to the notebook
    monkeypatch.delenv("CTANB_TOKEN", raising=False)
    monkeypatch.delenv("JUPYTERHUB_USER", raising=False)
    with SampLink.connect(lockfile, serve="http", timeout=20) as link:
        with running(topcat_argv(), tmp_path / "topcat.log", samp_env(lockfile)):
            yield link  # TOPCAT starts (slow JVM) while JupyterLab does


def test_the_whole_journey_in_jupyterlab(archive_url, tmp_path, topcat):
    cells = [f"import ctanb\napp = ctanb.App({archive_url!r})\napp"]
    write_notebook(tmp_path / "story.ipynb", cells)
    with chromium() as browser, jupyterlab(tmp_path) as (url, runtime):
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        try:
            page.goto(url.replace("/?", "/lab/tree/story.ipynb?reset&"))
            page.get_by_text(IDLE).wait_for(timeout=90_000)
            run_cell(page, 0, "ctanb Data Distiller")
            probe = KernelProbe(runtime)
            _CLOCK[0] = time.monotonic()
            try:
                story(page, probe, topcat, tmp_path)
            finally:
                probe.close()
        finally:
            shot(page, "last")
            page.close()


def story(page, probe: KernelProbe, topcat: SampLink, folder) -> None:
    # Not exact: an icon's glyph is part of a button's accessible name.
    button = lambda name: page.get_by_role("button", name=name)  # noqa: E731
    target, adql = (
        page.get_by_placeholder("e.g. Crab"),
        page.get_by_placeholder("ADQL (follows the form; edit to send your own)"),
    )

    # 1. Five names typed (Enter) and Resolve clicked at once: the last one wins.
    for name in TARGETS:
        target.fill(name)
        target.press("Enter")
        button("Resolve").click()
    last = list(TARGETS)[-1]
    probe.wait(f"app.search.resolved.get('name') == {last!r}", 60, last)
    settle(probe, page)
    name, ra, query = probe.eval("(app.search.resolved.get('name'), "
                                 "app.search.numbers['ra'].value, app.search.adql)")  # fmt: skip
    assert name == last and abs(float(ra) - TARGETS[last]) < 1e-3
    assert f"{TARGETS[last]:.3f}"[:6] in query and probe.eval("app.sky.target['name']") == last
    page.get_by_text(f"Position used: {last}").wait_for(timeout=10_000)
    shot(page, "1-five-targets")

    # 2. A misspelt name, Resolve and Search at once: a "did you mean", no search at all.
    target.fill("Crabb Nebulla")
    button("Resolve").click()
    button("Search").click()
    page.get_by_text("Did you mean").first.wait_for(timeout=30_000)
    settle(probe, page)
    error, query, rows, marker = probe.eval(
        "(app.search.error, app.search.adql, app.table.row_count, app.sky.target)"
    )
    assert "Crabb Nebulla" in error and query == "" and rows == 0 and marker == {}
    shot(page, "2-misspelt")

    # 3. A COUNT: one row in the table, nothing to draw on the sky.
    adql.fill("SELECT COUNT(*) AS n FROM ivoa.obscore")
    button("Search").click()
    page.wait_for_function("document.querySelector('.ctanb-table')?.dataset.renderedRows === '1'",
                           timeout=60_000)  # fmt: skip
    page.locator(".ctanb-sky-message").get_by_text("Nothing to draw").wait_for(timeout=30_000)
    assert probe.eval("(app.search.error, app.table.columns)") == ("", ["n"])
    shot(page, "3-count")

    # 4. An asynchronous search, cancelled: an outcome (not red), listed in the Jobs tab.
    page.get_by_label("asynchronous (UWS job)").check()
    adql.fill(SLOW)
    button("Search").click()
    button("Cancel").click()  # as soon as it can be pressed
    page.get_by_text("Cancelled after").wait_for(timeout=60_000)
    status = probe.eval("app.search.status.value")
    assert "#b71c1c" not in status and probe.eval("app.search.phase") == "ABORTED"
    assert probe.eval("app.table.row_count") == 1  # the COUNT stays
    page.get_by_role("tab", name="Jobs").click()
    page.locator(".ctanb-search-jobs").get_by_text("ABORTED").wait_for(timeout=30_000)
    shot(page, "4-async-cancelled")
    page.get_by_role("tab", name="Search").click()
    page.get_by_label("asynchronous (UWS job)").uncheck()

    # 5. The Crab runs; one checked in the table, one chosen where footprints overlap.
    target.fill("Crab")
    button("Resolve").click()
    page.get_by_text("ObsCore", exact=True).first.click()
    page.get_by_label("obs_collection").select_option("HESS-DL3-DR1")
    button("Rebuild ADQL").click()
    button("Search").click()
    page.wait_for_function("document.querySelector('.ctanb-table')?.dataset.renderedRows === '4'",
                           timeout=60_000)  # fmt: skip
    assert sorted(probe.eval("[str(x) for x in app.table.table['obs_id']]")) == CRAB_RUNS
    page.locator(".ctanb-table tbody input[data-row='0']").click()
    plot = page.locator(".ctanb-skyplot")
    box = plot.bounding_box()
    plot.click(position={"x": box["width"] / 2, "y": box["height"] / 2})  # all four overlap
    choice = page.locator(".ctanb-sky-choice")
    choice.get_by_text("4 runs here: which one?").wait_for(timeout=10_000)
    first = probe.eval("str(app.table.table['obs_id'][0])")
    offered = sorted(choice.locator("button[data-row]").all_inner_texts())
    assert offered == sorted(f"{r} (selected)" if r == first else r for r in CRAB_RUNS)
    picked = probe.eval("str(app.table.table['obs_id'][2])")
    choice.get_by_role("button", name=picked, exact=True).click()
    page.wait_for_function(
        "document.querySelectorAll('.ctanb-table tr.ctanb-selected').length === 2", timeout=30_000
    )
    assert probe.eval("app.table.selected_rows") == [0, 2]  # one run per click, no more
    page.locator(".ctanb-table tr.ctanb-focus[data-row='2']").wait_for(timeout=10_000)
    assert choice.is_hidden()
    # Offline, the sky is plain: nothing fetched from alasky, no spinner, no banner.
    assert probe.eval("app.sky.mode") == "aladin"
    assert "plain sky" in probe.eval("app.sky.status")
    sky = page.locator(".ctanb-skyview")
    assert not sky.get_by_text("alasky").count() and not sky.get_by_text("loading").count()
    # The same choice in Aladin (its own click gives one shape, whichever it finds first).
    aladin = page.locator(".ctanb-aladin")
    box = aladin.bounding_box()
    aladin.click(position={"x": box["width"] / 2, "y": box["height"] / 2})
    choice.get_by_text("4 runs here: which one?").wait_for(timeout=10_000)
    choice.get_by_role("button", name="cancel").click()
    assert choice.is_hidden() and probe.eval("app.table.selected_rows") == [0, 2]
    shot(page, "5-selected-table-and-sky")

    # 6. Another target resolved last; the map and the spectrum are of the selected runs.
    target.fill("Mrk 421")
    button("Resolve").click()
    page.get_by_role("tab", name="Analysis").click()
    button("Count map").click()
    probe.wait("len(app.analysis.map_png) > 1000 or bool(app.analysis.error)", 300, "the map")
    assert probe.eval("app.search.resolved.get('name')") == "Mrk 421"
    assert probe.eval("app.analysis.error") == ""
    centre = probe.eval("tuple(float(v) for v in (lambda c: (c.ra.deg, c.dec.deg))("
                        "app.analysis.last_map.dataset.counts.geom.center_skydir.icrs))")  # fmt: skip
    from_crab, from_mrk = (separation(*centre, 83.633, 22.0145),
                           separation(*centre, TARGETS["Mrk 421"], 38.2088))  # fmt: skip
    assert from_crab < 0.6 and from_mrk > 50, (from_crab, from_mrk)
    page.locator(".ctanb-analysis .widget-image").first.wait_for(timeout=30_000)
    shot(page, "6-count-map")
    button("Spectrum").click()
    probe.wait("len(app.analysis.spectrum_png) > 1000 or bool(app.analysis.error)", 300,
               "the spectrum")  # fmt: skip
    assert probe.eval("app.analysis.error") == ""
    ra = probe.eval("app.analysis.spectrum_config['ra_deg']")
    assert abs(ra - 83.63) < 0.6, ra
    page.locator(".ctanb-analysis .widget-image").nth(1).wait_for(timeout=30_000)
    shot(page, "6-spectrum")

    # 7. Download and export; the runs kept in the basket; the products listed with links.
    page.get_by_role("tab", name="Search").click()
    button("Download checked datasets").click()
    button("Export table").click()
    button("Add checked to basket").click()
    page.get_by_text("row(s) written to ctanb-products/results-").wait_for(timeout=60_000)
    page.get_by_text("Basket: 2 dataset(s)").wait_for(timeout=60_000)
    # Download and export share the status line: the bar says the download finished.
    probe.wait("app.tools.progress.bar_style in ('success', 'danger')", 120, "the download")
    assert probe.eval("(app.tools.progress.bar_style, app.tools.error)") == ("success", "")
    downloads = sorted(p.name for p in (folder / "ctanb-products" / "downloads").iterdir())
    assert all(any(r in f for f in downloads) for r in probe.eval(
        "[str(x) for x in app.selected['obs_id']]")), downloads  # fmt: skip
    shot(page, "7-download-export-basket")
    page.get_by_role("tab", name="Products").click()
    link = page.locator("a.ctanb-product-link", has_text="ctanb-products/results-")
    link.first.wait_for(timeout=30_000)
    assert page.locator("a.ctanb-product-link", has_text="ctanb-products/downloads/").count() >= 2
    shot(page, "7-products")
    page.get_by_role("tab", name="Search").click()

    # 8. The table to TOPCAT (SAMP hub on this computer).
    wait_for(lambda: "topcat" in topcat.client_names(), 120, "TOPCAT to join the hub")
    button("Connect").click()
    button("Send table").click()
    page.get_by_text("topcat: samp.ok").wait_for(timeout=60_000)
    table_id = probe.eval("app.samp.table_id(app.table.table)")
    sent = probe.eval("sorted(str(x) for x in app.table.table['obs_id'])")
    held = topcat_table(topcat, table_id)
    assert sorted(str(x) for x in held["obs_id"]) == sent == CRAB_RUNS
    shot(page, "8-topcat")

    # 9. A proprietary run: refused without a token, downloaded after logging in.
    adql.fill(PROPRIETARY)
    button("Search").click()
    page.wait_for_function("document.querySelector('.ctanb-table')?.dataset.renderedRows > 0",
                           timeout=60_000)  # fmt: skip
    page.locator(".ctanb-table tbody input[data-row='0']").click()
    button("Download checked datasets").click()
    page.get_by_text("log in with your token").first.wait_for(timeout=60_000)
    shot(page, "9-proprietary-refused")
    page.get_by_placeholder("for proprietary data").fill("demo-token-vela")
    button("Log in").click()
    button("Download checked datasets").click()
    page.get_by_text("logged in: proprietary data").wait_for(timeout=30_000)
    probe.wait("'file(s)' in app.tools.status.value or bool(app.tools.error_display.value)", 120,
               "the proprietary download")  # fmt: skip
    assert probe.eval("app.tools.error_display.value") == ""
    assert probe.eval("app.search.archive.has_token") is True
    assert page.get_by_placeholder("for proprietary data").input_value() == ""
    shot(page, "9-proprietary-downloaded")


def separation(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    from astropy.coordinates import SkyCoord

    return SkyCoord(ra1, dec1, unit="deg").separation(SkyCoord(ra2, dec2, unit="deg")).deg


def topcat_table(link: SampLink, table_id: str):
    """The table as TOPCAT holds it (its own ``table.get.stil`` answer, read back)."""
    from astropy.io.votable import parse_single_table

    def ask():
        answer = link.send("table.get.stil", {"table-id": table_id, "format": "votable"}, "topcat")
        return answer.ok and answer.responses[0].result.get("url")

    return parse_single_table(wait_for(ask, 60, f"TOPCAT to hold {table_id}", every=0.5)).to_table()
