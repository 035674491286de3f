"""Issue 18 in a real browser: the archive's coverage MOCs drawn by Aladin Lite and by the
plain sky plot, toggled by their checkboxes (JupyterLab in headless Chromium, offline).

What a user sees is compared, not the widget's state: the Aladin canvas around the Crab
changes when the H.E.S.S. coverage is drawn, is back to the empty sky when every layer is
hidden, and stays empty when only a collection that observed elsewhere (the CTA 1DC
Galactic Centre survey) is shown. The plain plot draws the same layers as SVG cells.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from browser import KernelProbe, chromium, jupyterlab, run_cell, write_notebook
from conftest import wait_for

pytestmark = pytest.mark.slow

IDLE = "Python 3 (ipykernel) | Idle"
HESS, ELSEWHERE = "HESS-DL3-DR1", "CTA-1DC"


def _pixels(page) -> np.ndarray:
    from PIL import Image

    png = page.locator(".ctanb-aladin").screenshot()
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=int)


def _changed(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of the pixels that differ visibly between two pictures of the sky."""
    return float((np.abs(a - b).sum(axis=2) > 40).mean())


def _still(page) -> np.ndarray:
    """The Aladin view once two pictures half a second apart agree (it has settled)."""

    def settled() -> list | None:
        first = _pixels(page)
        page.wait_for_timeout(500)
        second = _pixels(page)
        return [second] if _changed(first, second) < 0.001 else None

    return wait_for(settled, 60, "a still sky")[0]


def _drawn(page, layer: str) -> int:
    return page.locator(f".ctanb-skyplot g.ctanb-coverage[data-layer='{layer}'] polygon").count()


def test_aladin_and_the_plain_sky_draw_and_hide_the_archive_coverage(archive_url, tmp_path,
                                                                     monkeypatch):  # fmt: skip
    monkeypatch.delenv("CTANB_TOKEN", raising=False)
    write_notebook(tmp_path / "cov.ipynb", [f"import ctanb\napp = ctanb.App({archive_url!r})\napp"])
    with chromium() as browser, jupyterlab(tmp_path) as (url, runtime):
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.goto(url.replace("/?", "/lab/tree/cov.ipynb?reset&"))
        page.get_by_text(IDLE).wait_for(timeout=90_000)
        run_cell(page, 0, "ctanb Data Distiller")
        probe = KernelProbe(runtime)
        try:
            page.get_by_placeholder("e.g. Crab").fill("Crab")
            page.get_by_role("button", name="Resolve").click()
            probe.wait("app.search.resolved.get('name') == 'Crab'", 60, "the Crab resolved")
            assert probe.eval("app.sky.mode") == "aladin"
            page.locator(".ctanb-aladin").scroll_into_view_if_needed()
            # The empty sky around the Crab, once Aladin has settled on it.
            empty = _still(page)

            page.get_by_role("button", name="Archive coverage").click()
            page.get_by_label(HESS).wait_for(timeout=60_000)
            # Plain plot: the H.E.S.S. cells are there; Aladin: the sky around the Crab changed.
            wait_for(lambda: _drawn(page, HESS) > 0, 60, "H.E.S.S. cells on the plain plot")
            wait_for(lambda: _changed(empty, _pixels(page)) > 0.05, 60, "the coverage in Aladin")

            # Every layer hidden, by its checkbox: the empty sky again, no cells.
            for name in probe.eval("list(app.coverage.shown)"):
                page.get_by_label(name, exact=True).uncheck()
            probe.wait("app.coverage.shown == []", 30, "every layer hidden")
            wait_for(lambda: _changed(empty, _pixels(page)) < 0.01, 60, "the coverage gone")
            assert _drawn(page, HESS) == 0

            # Only the CTA 1DC survey (the Galactic Centre, not the Crab): nothing drawn here.
            page.get_by_label(ELSEWHERE, exact=True).check()
            probe.wait(f"app.coverage.shown == [{ELSEWHERE!r}]", 30, "the 1DC layer shown")
            wait_for(lambda: _drawn(page, ELSEWHERE) > 0, 60, "the 1DC cells on the plain plot")
            page.wait_for_timeout(1500)
            assert _changed(empty, _pixels(page)) < 0.01
            # ... and H.E.S.S. back: drawn again where the Crab is.
            page.get_by_label(HESS, exact=True).check()
            probe.wait(f"sorted(app.coverage.shown) == {sorted([ELSEWHERE, HESS])!r}", 30,
                       "H.E.S.S. shown again")  # fmt: skip
            wait_for(lambda: _changed(empty, _pixels(page)) > 0.05, 60, "H.E.S.S. drawn again")
        finally:
            probe.close()
            page.close()
