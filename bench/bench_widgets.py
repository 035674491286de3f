"""Widget timings: import ctanb, build ctanb.App(), and search click -> rendered rows in
a real browser (JupyterLab in headless Chromium); written to bench/results/widgets.json.

    .venv/bin/python bench/bench_widgets.py [--quick]

The archive is a synthetic one of 1000 ObsCore rows
(:func:`ctanb.archive.synthetic.make_synthetic_db`) served on loopback, unless
``--url``/CTANB_TAP_URL or ``--db`` is given. The browser figure is from the click
on Search to the table's DOM holding the 1000 rows (``data-rendered-rows``); the
kernel-side breakdown (HTTP + VOTable parse, table page, sky footprints) is
measured in the same kernel for the same query.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


def python_timings(url: str, repeats: int) -> dict:
    code = (
        "import time, sys; t0 = time.perf_counter(); import ctanb; t1 = time.perf_counter();"
        f"app = ctanb.App({url!r}); t2 = time.perf_counter();"
        "import ctanb.widgets.app; t3 = time.perf_counter(); app = ctanb.App(%r);"
        "t4 = time.perf_counter(); print(t1 - t0, t2 - t1, t4 - t3, 'gammapy' in sys.modules)"
    ) % url
    rows = []
    for _ in range(repeats):
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        rows.append([float(x) if x[0].isdigit() else x for x in out.stdout.split()])
    return {
        "import_ctanb_s": statistics.median(r[0] for r in rows),
        "first_app_incl_widget_imports_s": statistics.median(r[1] for r in rows),
        "app_construct_s": statistics.median(r[2] for r in rows),
        "gammapy_loaded_after_app": any(r[3] == "True" for r in rows),
    }


KERNEL_BREAKDOWN = """
import time as _t
_a = app.search.archive
_t0 = _t.perf_counter(); _r = _a.query({adql!r}); _t1 = _t.perf_counter()
_x = ctanb.widgets.ResultsTable(); _x.page_size = 1000; _x.set_results(_r); _t2 = _t.perf_counter()
_s = ctanb.widgets.SkyView(use_aladin=False); _s.set_results(_r); _t3 = _t.perf_counter()
_bench = [_t1 - _t0, _t2 - _t1, _t3 - _t2]
_x.close(); _s.close()
"""


def kernel_breakdown(probe, adql: str, repeats: int) -> dict:
    """Where the kernel's time goes for the same query (no front end involved)."""
    rows = []
    for _ in range(repeats):
        probe.client.execute(KERNEL_BREAKDOWN.format(adql=adql), silent=True)
        probe.wait("'_bench' in globals() and len(_bench) == 3", 60, "the kernel breakdown")
        rows.append(probe.eval("_bench"))
        probe.client.execute("del _bench", silent=True)
    return {
        "query_http_and_votable_parse": statistics.median(r[0] for r in rows),
        "table_first_page_1000_rows": statistics.median(r[1] for r in rows),
        "sky_1000_footprints": statistics.median(r[2] for r in rows),
    }


def browser_timings(url: str, repeats: int) -> dict:
    from browser import KernelProbe, chromium, jupyterlab, write_notebook

    out = {}
    with tempfile.TemporaryDirectory() as tmp, chromium() as browser:
        folder = Path(tmp)
        cells = [f"import ctanb\napp = ctanb.App({url!r}, use_aladin=False)\n"
                 "app.table.page_size = 1000\napp"]  # fmt: skip
        write_notebook(folder / "bench.ipynb", cells)
        with jupyterlab(folder) as (lab_url, runtime):
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(lab_url.replace("/?", "/lab/tree/bench.ipynb?reset&"))
            page.get_by_text("Python 3 (ipykernel) | Idle").wait_for(timeout=90_000)
            page.locator(".jp-Notebook .jp-Cell").first.locator(".jp-InputArea-editor").click()
            page.keyboard.press("Shift+Enter")
            page.get_by_text("ctanb Data Distiller").wait_for(timeout=60_000)
            probe = KernelProbe(runtime)
            adql = "SELECT TOP 1000 * FROM ivoa.obscore"
            probe.client.execute(f"app.search.adql_text.value = {adql!r}", silent=True)
            probe.wait(f"app.search.adql_text.value == {adql!r}", 30, "the ADQL")
            times, rows = [], 0
            for _ in range(repeats + 1):  # the first search also connects: reported apart
                # Empty the table first: the same 1000 rows again are no change to draw.
                probe.client.execute("app.table.set_results(app.results[:0]) "
                                     "if app.results is not None else None", silent=True)  # fmt: skip
                probe.wait("app.table.row_count == 0", 30, "the table to be emptied")
                page.wait_for_function(
                    "document.querySelector('.ctanb-table')?.dataset.renderedRows === '0'"
                )
                start = page.evaluate("performance.now()")
                page.get_by_role("button", name="Search").click()
                page.wait_for_function(
                    "Number(document.querySelector('.ctanb-table')?.dataset.renderedRows) >= 1000",
                    timeout=60_000,
                )
                done = float(page.evaluate(
                    "Number(document.querySelector('.ctanb-table').dataset.renderedAt)"))  # fmt: skip
                rows = int(
                    page.evaluate("document.querySelector('.ctanb-table').dataset.renderedRows")
                )
                times.append((done - start) / 1000)
            out["kernel_breakdown_s"] = kernel_breakdown(probe, adql, repeats)
            probe.close()
            page.close()
    out["first_search_click_to_rows_s"] = times.pop(0)
    out["search_click_to_rows_s"] = statistics.median(times)
    out["search_click_to_rows_all_s"] = times
    out["rows_rendered"] = rows
    return out


def synthetic_db(rows: int = 1000) -> Path:
    """A synthetic archive of *rows* ObsCore rows (cached in the system temp folder)."""
    from ctanb.archive.synthetic import make_synthetic_db

    path = Path(tempfile.gettempdir()) / f"ctanb-bench-widgets-{rows}.db"
    if not path.exists():
        make_synthetic_db(path, rows, seed=0)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--url", help="TAP URL of a running archive (default CTANB_TAP_URL)")
    parser.add_argument("--db", help="serve this archive.db on loopback for the run")
    args = parser.parse_args()
    repeats = 3 if args.quick else 7
    import os

    server = None
    url = args.url or os.environ.get("CTANB_TAP_URL")
    if not url:
        from ctanb.archive.policy import AccessPolicy
        from ctanb.archive.service import ArchiveServer

        db = Path(args.db) if args.db else synthetic_db()
        server = ArchiveServer(db, policy=AccessPolicy.demo()).__enter__()
        url = server.url
    try:
        results = {"python": python_timings(url, repeats)}
        try:
            results["browser"] = browser_timings(url, repeats)
        except Exception as exc:  # report what failed next to the figures that were measured
            results["browser"] = {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
    finally:
        if server is not None:
            server.__exit__(None, None, None)
    results["targets"] = {"search_click_to_1000_rows_s": 0.5, "app_construct_s": 0.3,
                          "import_ctanb_s": 0.5}  # fmt: skip
    out = ROOT / "bench" / "results" / "widgets.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    start = time.time()
    sys.exit(main())
