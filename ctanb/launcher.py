"""``ctanb up``: the main job — build the embedded archive, serve it, open the notebooks.

1. Build (or refresh) the embedded archive from the public DL3 releases under
   ``CTANB_DATA`` plus the simulated CTAO collection, in ``CTANB_HOME``.
2. Serve it on loopback and write its URL to ``CTANB_HOME/archive.json``, where
   :func:`ctanb.connect` finds it.
3. Open JupyterLab on ``notebooks/`` or, headless (``--headless`` or
   ``CTANB_HEADLESS=1``), execute every notebook against the archive and exit
   non-zero if any cell fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import click

from ._errors import ConfigError, CtanbError
from ._settings import data_dir, home_dir, project_root

__all__ = ["archive_info_path", "build_default_archive", "run_notebooks", "up"]


def archive_info_path() -> Path:
    """The file in which the running embedded archive announces its URL."""
    return home_dir() / "archive.json"


def build_default_archive(db: Path, *, data: Path | None = None) -> Path:
    """Build the embedded archive at *db* from *data* (default ``CTANB_DATA``)."""
    from .archive.ingest import build_archive

    data = data or data_dir()
    if not data.is_dir():
        data = _fetch_public_releases(data)
    report = build_archive(db, data_dir=data, sim_dir=home_dir() / "ctao-sim")
    click.echo(f"archive: {len(report.ingested)} datasets in {db}")
    for path, reason in report.skipped:
        click.echo(f"archive: skipped {path}: {reason}", err=True)
    return db


def _fetch_public_releases(target: Path) -> Path:
    """Try gammapy's own download tooling; otherwise explain what to download."""
    click.echo(f"{target} does not exist; trying `gammapy download datasets` ...", err=True)
    cmd = [sys.executable, "-m", "gammapy", "download", "datasets", "--out", str(target)]
    try:
        subprocess.run(cmd, check=True, timeout=3600)
    except (subprocess.SubprocessError, OSError):
        data_dir(must_exist=True)  # raises ConfigError with the list of releases and sources
    # gammapy unpacks into OUT/<gammapy release>/
    found = sorted(p.parent for p in target.glob("*/hess-dl3-dr1"))
    if not found:
        raise ConfigError(f"the download into {target} did not produce hess-dl3-dr1")
    click.echo(f"downloaded the releases into {found[-1]}; set CTANB_DATA={found[-1]}", err=True)
    return found[-1]


def run_notebooks(
    folder: Path, *, env: dict[str, str] | None = None, timeout: int = 1200, save: bool = False
) -> int:
    """Execute every notebook in *folder* in order; return the number that failed.

    With *save*, each notebook that ran is written back with its outputs (the test
    suite renders those copies in the documentation).
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    failed = 0
    old_env = dict(os.environ)
    os.environ.update(env or {})
    try:
        for path in sorted(folder.glob("*.ipynb")):
            nb = nbformat.read(path, as_version=4)
            start = time.perf_counter()
            try:
                NotebookClient(
                    nb,
                    timeout=timeout,
                    kernel_name="python3",
                    resources={"metadata": {"path": str(folder)}},
                ).execute()
                if save:
                    nbformat.write(nb, path)
                click.echo(f"notebook {path.name}: ok ({time.perf_counter() - start:.1f} s)")
            except CellExecutionError as exc:
                failed += 1
                click.echo(f"notebook {path.name}: FAILED\n{exc}", err=True)
    finally:
        os.environ.clear()
        os.environ.update(old_env)
    return failed


@click.command("up")
@click.option(
    "--db",
    type=click.Path(path_type=Path),
    default=None,
    help="Archive database (default: CTANB_HOME/archive.db).",
)
@click.option(
    "--data",
    type=click.Path(path_type=Path),
    default=None,
    help="DL3 releases folder (default: CTANB_DATA or ../shared/data).",
)
@click.option(
    "--port", type=int, default=8765, show_default=True, help="Archive port on 127.0.0.1."
)
@click.option(
    "--headless",
    is_flag=True,
    default=False,
    help="Execute every notebook and exit (also: CTANB_HEADLESS=1).",
)
@click.option(
    "--notebooks",
    type=click.Path(path_type=Path),
    default=None,
    help="Notebook folder (default: notebooks/ of the checkout).",
)
def up(
    db: Path | None, data: Path | None, port: int, headless: bool, notebooks: Path | None
) -> None:
    """Build and serve the embedded archive, then open JupyterLab (or run the notebooks)."""
    from .archive.policy import AccessPolicy
    from .archive.service import ArchiveServer

    headless = headless or os.environ.get("CTANB_HEADLESS", "") not in ("", "0")
    root = project_root()
    notebooks = notebooks or (root / "notebooks" if root else Path.cwd())
    db = build_default_archive(db or home_dir() / "archive.db", data=data)
    with ArchiveServer(db, port=port, policy=AccessPolicy.demo()) as server:
        archive_info_path().write_text(json.dumps({"url": server.url, "db": str(db)}))
        click.echo(f"archive: TAP service at {server.url}")
        env = {"CTANB_TAP_URL": server.url}
        try:
            if headless:
                failed = run_notebooks(notebooks, env=env)
                if failed:
                    raise CtanbError(f"{failed} notebook(s) failed in {notebooks}")
                click.echo("all notebooks ran")
            else:
                lab = [sys.executable, "-m", "jupyterlab", "--notebook-dir", str(notebooks)]
                if hasattr(os, "geteuid") and os.geteuid() == 0:
                    lab.append("--allow-root")  # containers and CI machines run as root
                subprocess.run(
                    lab,
                    env={**os.environ, **env},
                    check=False,
                )
        finally:
            archive_info_path().unlink(missing_ok=True)
