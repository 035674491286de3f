"""Helpers for the browser tests of the panels: JupyterLab / Voila servers, headless
Chromium (Debian's, driven by Playwright; nothing downloaded) and a kernel client
that reads the Python state of the very kernel the page talks to."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from samp_apps import free_port, require_program, running, wait_for

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts" / "widgets"

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

#: JupyterLab must not reach out (news, update checks) nor open toasts over the page.
LAB_OVERRIDES = {
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False}
}


def write_notebook(path: Path, cells: list[str]) -> Path:
    """A notebook with a kernelspec (without one, Lab opens a blocking kernel dialog)."""
    import nbformat

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                       "language": "python"}  # fmt: skip
    nbformat.write(notebook, path)
    return path


def _env(folder: Path) -> dict[str, str]:
    settings = folder / "lab-settings"
    settings.mkdir(parents=True, exist_ok=True)
    (settings / "overrides.json").write_text(json.dumps(LAB_OVERRIDES))
    return dict(
        os.environ,
        CTANB_HOME=str(folder / "home"),
        JUPYTER_CONFIG_DIR=str(folder / "config"),
        JUPYTER_RUNTIME_DIR=str(folder / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(settings),
        CTANB_OFFLINE="1",
    )


def _wait_http(url: str, app, what: str) -> None:
    import httpx

    def up():
        try:
            return httpx.get(url, timeout=2).status_code < 500
        except httpx.TransportError:
            return False

    try:
        wait_for(up, 90, what)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{app.output()[-3000:]}") from None


@contextmanager
def _jupyter(folder: Path, module: str, what: str, *options: str) -> Iterator[tuple[str, Path]]:
    """``python -m MODULE`` (a Jupyter server app) on loopback serving *folder*, with the
    Lab frontend's news and update checks off; yields ``(url with token, runtime dir)``."""
    port, token = free_port(), "ctanb-widgets-test"
    argv = [sys.executable, "-m", module, "--no-browser", "--allow-root", "--ip=127.0.0.1",
            f"--port={port}", f"--ServerApp.root_dir={folder}", f"--IdentityProvider.token={token}",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            f"--LabApp.app_settings_dir={folder / 'lab-settings'}", *options]  # fmt: skip
    env = _env(folder)
    with running(argv, folder / f"{module}.log", env) as app:
        base = f"http://127.0.0.1:{port}/"
        _wait_http(f"{base}api/status?token={token}", app, what)
        yield f"{base}?token={token}", Path(env["JUPYTER_RUNTIME_DIR"])


@contextmanager
def jupyterlab(folder: Path) -> Iterator[tuple[str, Path]]:
    """JupyterLab on loopback serving *folder*; yields ``(url with token, runtime dir)``."""
    with _jupyter(folder, "jupyterlab", "JupyterLab", "--LabApp.extension_manager=readonly") as up:
        yield up


@contextmanager
def notebook7(folder: Path) -> Iterator[tuple[str, Path]]:
    """Jupyter Notebook 7 on loopback serving *folder*; yields ``(url with token, runtime dir)``.

    Notebook 7 is built on the JupyterLab frontend: the same news/update toasts exist
    (the ``notification`` plugin) and are turned off by the same overrides.json as for
    :func:`jupyterlab`. A notebook without ``metadata.kernelspec`` opens a kernel
    dialog here too: write it with :func:`write_notebook`.
    """
    # Notebook 7's pages read their settings from /lab/api/settings, which the
    # jupyterlab extension serves: both apps need the overrides.
    settings = f"--JupyterNotebookApp.app_settings_dir={folder / 'lab-settings'}"
    with _jupyter(folder, "notebook", "Jupyter Notebook 7", settings) as up:
        yield up


@contextmanager
def voila(notebook: Path) -> Iterator[tuple[str, Path]]:
    """Voila rendering *notebook*; yields ``(url, runtime dir)``."""
    folder = notebook.parent
    port = free_port()
    argv = [sys.executable, "-m", "voila", str(notebook), "--no-browser", f"--port={port}",
            "--Voila.ip=127.0.0.1", "--show_tracebacks=True"]  # fmt: skip
    env = _env(folder)
    runtime = Path(env["JUPYTER_RUNTIME_DIR"])
    runtime.mkdir(parents=True, exist_ok=True)
    # Voila keeps connection files in <root>/voila_*/, by default under /tmp.
    argv.append(f"--Voila.connection_dir_root={runtime}")
    with running(argv, folder / "voila.log", env) as app:
        url = f"http://127.0.0.1:{port}/"
        _wait_http(url + "voila/static/", app, "Voila")
        yield url, Path(env["JUPYTER_RUNTIME_DIR"])


@contextmanager
def chromium() -> Iterator:
    """Headless Debian Chromium under Playwright."""
    from playwright.sync_api import sync_playwright

    path = require_program("chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, headless=True,
                                             args=CHROMIUM_ARGS)  # fmt: skip
        try:
            yield browser
        finally:
            browser.close()


def run_cell(page, index: int, expect, tries: int = 3, timeout_s: float = 240.0):
    """Run one notebook cell (Shift+Enter) and wait for *expect* (a text or a Playwright
    locator) to show up; returns its first match.

    A key press that lands before JupyterLab has wired the kernel session is
    dropped silently, so a cell that shows no execution (prompt ``[ ]``) is run
    again; a cell still running (``[*]``, slow on a loaded machine) is waited for
    up to *timeout_s*, never run twice.
    """
    cell = page.locator(".jp-Notebook .jp-Cell").nth(index)
    shown = page.get_by_text(expect) if isinstance(expect, str) else expect
    deadline = time.monotonic() + timeout_s
    presses = 0
    while True:
        if presses == 0 or "[ ]" in cell.locator(".jp-InputPrompt").inner_text():
            if presses == tries:
                raise AssertionError(f"cell {index} did not run after {tries} presses")
            cell.locator(".jp-InputArea-editor").click()
            page.keyboard.press("Shift+Enter")
            presses += 1
        try:
            shown.first.wait_for(timeout=20_000)
            return shown.first
        except Exception:
            prompt = cell.locator(".jp-InputPrompt").inner_text()
            if time.monotonic() > deadline or not ("[ ]" in prompt or "[*]" in prompt):
                raise


class KernelProbe:
    """A second client of the notebook's kernel: evaluates expressions silently."""

    def __init__(self, runtime_dir: Path) -> None:
        from jupyter_client import BlockingKernelClient

        files = wait_for(lambda: sorted(runtime_dir.rglob("kernel-*.json"),
                                        key=lambda p: p.stat().st_mtime), 90, "a kernel")  # fmt: skip
        self.client = BlockingKernelClient()
        self.client.load_connection_file(str(files[-1]))
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)

    def eval(self, expression: str, timeout: float = 60):
        """The value of *expression* in the kernel (``repr`` evaluated back here)."""
        import ast

        msg_id = self.client.execute("", silent=True, store_history=False,
                                     user_expressions={"value": expression})  # fmt: skip
        while True:
            reply = self.client.get_shell_msg(timeout=timeout)
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        result = reply["content"]["user_expressions"]["value"]
        if result["status"] != "ok":
            raise AssertionError(f"{expression}: {result.get('ename')}: {result.get('evalue')}")
        return ast.literal_eval(result["data"]["text/plain"])

    def wait(self, expression: str, timeout: float, what: str):
        """Poll *expression* until it is true."""
        return wait_for(lambda: self.eval(expression), timeout, what, every=0.5)

    def close(self) -> None:
        self.client.stop_channels()
