"""Binder (repo2docker): binder/postBuild and binder/start run as repo2docker runs them.

No Docker here: the same two scripts run on this machine, with the project's
environment on PATH. postBuild gets ``CTANB_DATA`` pointing at the shared releases
(so it downloads nothing) and the session's simulated CTAO collection (so it does
not simulate again); start then serves the archive it built to a command that checks
the archive answers through ``CTANB_TAP_URL``.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
BINDER = ROOT / "binder"


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    for name in ("CTANB_TAP_URL", "CTANB_DATA", "CTANB_TOKEN"):
        env.pop(name, None)
    return env | extra


def _stop(pid_file: Path) -> None:
    if pid_file.is_file():
        try:
            os.kill(int(pid_file.read_text()), signal.SIGTERM)
        except ProcessLookupError:
            pass


def test_binder_environment_has_the_projects_packages():
    root = yaml.safe_load((ROOT / "environment.yml").read_text())
    binder = yaml.safe_load((BINDER / "environment.yml").read_text())
    conda = [d for d in root["dependencies"] if isinstance(d, str)]
    extra = [d for d in binder["dependencies"] if d not in conda]
    assert [d for d in binder["dependencies"] if d in conda] == conda
    assert {d.split(">")[0] for d in extra} == {"jupyterhub-singleuser", "dask-gateway", "psycopg"}
    assert binder["channels"] == root["channels"]


@pytest.fixture(scope="module")
def built(tmp_path_factory, data_dir: Path, sim_dir: Path) -> Path:
    """``binder/postBuild`` run once; returns its CTANB_BINDER_HOME."""
    home = tmp_path_factory.mktemp("binder-home")
    (home / "ctao-sim").symlink_to(sim_dir, target_is_directory=True)
    prefix = home / "prefix"
    started = time.monotonic()
    proc = subprocess.run(
        ["bash", str(BINDER / "postBuild")], cwd=ROOT, capture_output=True, text=True,
        env=_env(CTANB_BINDER_HOME=str(home), CTANB_DATA=str(data_dir),
                 NB_PYTHON_PREFIX=str(prefix)),
        timeout=900, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, f"binder/postBuild failed:\n{proc.stderr[-4000:]}"
    print(f"binder/postBuild: {time.monotonic() - started:.1f} s")
    assert "downloading" not in proc.stderr  # the releases were there: no download
    assert f"using the releases in {data_dir}" in proc.stderr
    return home


def test_postbuild_builds_the_archive_and_configures_jupyter(built, data_dir):
    with sqlite3.connect(built / "archive.db") as db:
        collections = dict(db.execute(
            'SELECT obs_collection, COUNT(*) FROM "ivoa.obscore" GROUP BY obs_collection'
        ).fetchall())  # fmt: skip
    assert collections["HESS-DL3-DR1"] == 105
    assert collections["CTAO-SIM"] > 0
    assert (built / "data-dir").read_text().strip() == str(data_dir.resolve())
    conf = built / "prefix" / "etc" / "jupyter" / "jupyter_server_config.d"
    landing = json.loads((conf / "ctanb-binder.json").read_text())
    assert landing["ServerApp"]["default_url"] == "/lab/tree/notebooks/01_search.ipynb"
    assert (ROOT / landing["ServerApp"]["default_url"].removeprefix("/lab/tree/")).is_file()


CHECK = """
import os, ctanb
archive = ctanb.connect(progress=False)
n = archive.query("SELECT COUNT(*) AS n FROM ivoa.obscore").table["n"][0]
print(os.environ["CTANB_TAP_URL"], os.environ["CTANB_DATA"], n)
"""


def test_start_serves_the_archive_then_runs_the_command(built, data_dir):
    port = _free_port()
    started = time.monotonic()
    try:
        proc = subprocess.run(
            ["bash", str(BINDER / "start"), sys.executable, "-c", CHECK], cwd=ROOT,
            capture_output=True, text=True, timeout=120, check=False,
            env=_env(CTANB_BINDER_HOME=str(built), CTANB_BINDER_PORT=str(port)),
        )  # fmt: skip
    finally:
        _stop(built / "archive.pid")
    assert proc.returncode == 0, proc.stderr[-3000:]
    print(f"binder/start + query: {time.monotonic() - started:.1f} s")
    url, data, count = proc.stdout.split()
    assert url == f"http://127.0.0.1:{port}"
    assert data == str(data_dir.resolve())
    with sqlite3.connect(built / "archive.db") as db:
        assert int(count) == db.execute('SELECT COUNT(*) FROM "ivoa.obscore"').fetchone()[0]


def test_start_uses_an_archive_given_by_the_hub(built):
    archive_url = "http://127.0.0.1:9/tap"  # never contacted: start only passes it on
    (built / "archive.pid").unlink(missing_ok=True)
    proc = subprocess.run(
        ["bash", str(BINDER / "start"), "sh", "-c", 'echo "$CTANB_TAP_URL"'],
        capture_output=True, text=True, timeout=60, check=False,
        env=_env(CTANB_BINDER_HOME=str(built), CTANB_TAP_URL=archive_url),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == archive_url
    assert not (built / "archive.pid").exists()  # no second archive was started


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
