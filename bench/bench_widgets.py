"""Widget timings: import ctanb, build ctanb.App(), and search click -> rendered rows in
a real browser (JupyterLab in headless Chromium); written to bench/results/widgets.json.

    .venv/bin/python bench/bench_widgets.py [--quick]

Needs a running archive: CTANB_TAP_URL, or it builds/serves one like the tests do
(``--db path/to/archive.db``).
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
            # The archive may hold fewer than 1000 rows: a self-join gives 1000 real rows.
            adql = "SELECT TOP 1000 a.* FROM ivoa.obscore AS a, ivoa.obscore AS b"
            probe.client.execute(f"app.search.adql_text.value = {adql!r}", silent=True)
            probe.wait(f"app.search.adql_text.value == {adql!r}", 30, "the ADQL")
            times, rows = [], 0
            for _ in range(repeats):
                page.evaluate("document.querySelector('.ctanb-table').dataset.renderedRows = '0'")
                start = page.evaluate("performance.now()")
                page.get_by_role("button", name="Search").click()
                page.wait_for_function(
                    "Number(document.querySelector('.ctanb-table')?.dataset.renderedRows) >= 1000"
                    f" || Number(document.querySelector('.ctanb-table')?.dataset.renderedAt) > {start:f}"
                    " && document.querySelector('.ctanb-table').dataset.renderedRows !== '0'", timeout=60_000)  # fmt: skip
                done = float(page.evaluate(
                    "Number(document.querySelector('.ctanb-table').dataset.renderedAt)"))  # fmt: skip
                rows = int(
                    page.evaluate("document.querySelector('.ctanb-table').dataset.renderedRows")
                )
                times.append((done - start) / 1000)
            probe.close()
            page.close()
    out["search_click_to_rows_s"] = statistics.median(times)
    out["search_click_to_rows_all_s"] = times
    out["rows_rendered"] = rows
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--url", help="TAP URL of a running archive (default CTANB_TAP_URL)")
    parser.add_argument("--db", help="serve this archive.db on loopback for the run")
    args = parser.parse_args()
    repeats = 2 if args.quick else 5
    import os

    server = None
    url = args.url or os.environ.get("CTANB_TAP_URL")
    if not url:
        from ctanb.archive.policy import AccessPolicy
        from ctanb.archive.service import ArchiveServer

        if not args.db:
            parser.error("give --url, CTANB_TAP_URL or --db")
        server = ArchiveServer(Path(args.db), policy=AccessPolicy.demo()).__enter__()
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
