"""The JobList panel in real JupyterLab (headless Chromium): clicking Abort aborts the job.

Same harness as test_samp_web.py: a JupyterLab server on loopback, Playwright
with Debian's chromium, a notebook run cell by cell. The test process then reads
the job store: the job is ABORTED and its process is gone.
"""

from __future__ import annotations

import time
from pathlib import Path

import psutil
import pytest
from browser import run_cell
from samp_apps import jupyter_server, require_program

from ctanb.jobs import JobManager, Phase

pytestmark = pytest.mark.slow

TESTS = Path(__file__).resolve().parent
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]  # fmt: skip


def _cells(store: Path, jobs_dir: Path) -> list[str]:
    return [
        "import os, sys\n"
        f"sys.path.insert(0, {str(TESTS)!r})\n"
        f"os.environ['PYTHONPATH'] = {str(TESTS)!r}\n"
        "from ctanb.jobs import JobManager\n"
        "from ctanb.widgets.joblist import JobList\n"
        f"jobs = JobManager({str(store)!r}, jobs_dir={str(jobs_dir)!r})\n"
        "job = jobs.submit('jobs_steps:add', {'a': 1, 'b': 2, 'sleep': 120}, name='long sum')\n"
        "panel = JobList(jobs, interval=0.5)\n"
        "panel",
    ]


def test_clicking_abort_in_jupyterlab_aborts_the_running_job(tmp_path):
    import nbformat
    from playwright.sync_api import sync_playwright

    store, jobs_dir = tmp_path / "jobs.db", tmp_path / "jobs"
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(c) for c in _cells(store, jobs_dir)]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nbformat.write(notebook, tmp_path / "jobs.ipynb")
    chromium = require_program("chromium")
    with (
        jupyter_server(tmp_path, tmp_path / "home", app="jupyterlab") as (url, token),
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page()
        try:
            page.goto(f"{url}lab/tree/jobs.ipynb?token={token}")
            page.get_by_text("Python 3 (ipykernel) | Idle").wait_for(timeout=60_000)
            # Pressed again only if the key press was dropped: a second run submits a second job.
            run_cell(page, 0, page.locator(".ctanb-joblist"))
            # The poller turns the badge EXECUTING without any click.
            page.locator(".ctanb-phase-executing").first.wait_for(timeout=60_000)
            (job,) = JobManager(store, jobs_dir=jobs_dir).list()
            pid = job.record.pid
            page.get_by_role("button", name="long sum").click()
            page.get_by_role("button", name="Abort").click()
            page.locator(".ctanb-phase-aborted").first.wait_for(timeout=30_000)
        finally:
            page.screenshot(path=str(tmp_path / "joblist.png"))
            browser.close()
    job = JobManager(store, jobs_dir=jobs_dir).get(job.id)
    assert job.record.phase == Phase.ABORTED
    deadline = time.monotonic() + 10
    while _alive(pid):
        assert time.monotonic() < deadline, f"job process {pid} still runs after the abort"
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
