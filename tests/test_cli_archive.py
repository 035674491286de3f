"""The ``ctanb archive`` commands, run as a user runs them."""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
from click.testing import CliRunner

from ctanb.archive.cli import archive
from ctanb.archive.simulate import SIMULATED_RUNS

HESS_FILE = "hess-dl3-dr1/data/hess_dl3_dr1_obs_id_023523.fits.gz"


def _count(db: Path, where: str = "1") -> int:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(f'SELECT count(*) FROM "ivoa.obscore" WHERE {where}').fetchone()[0]
    finally:
        conn.close()


def test_ingest_names_skipped_files_and_succeeds_when_something_was_ingested(tmp_path, data_dir):
    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copyfile(data_dir / HESS_FILE, folder / "run23523.fits.gz")
    (folder / "broken.fits.gz").write_bytes((data_dir / HESS_FILE).read_bytes()[:20_000])
    (folder / "junk.fits").write_bytes(b"this is not FITS at all" * 200)
    db = tmp_path / "a.db"
    result = CliRunner().invoke(
        archive, ["ingest", str(folder), str(data_dir / "magic" / "rad_max"), "--db", str(db)]
    )
    assert result.exit_code == 0, result.output
    assert "ingested    1 dataset(s) of hess-dl3-dr1" in result.output
    assert "ingested    2 dataset(s) of magic-rad-max" in result.output
    assert f"skipped {folder / 'broken.fits.gz'}:" in result.output
    assert f"skipped {folder / 'junk.fits'}:" in result.output
    assert "not a FITS file" in result.output
    assert _count(db) == 3


def test_ingest_fails_when_nothing_could_be_ingested(tmp_path):
    (tmp_path / "junk.fits").write_text("nope")
    result = CliRunner().invoke(archive, ["ingest", str(tmp_path), "--db", str(tmp_path / "a.db")])
    assert result.exit_code != 0
    assert "junk.fits" in result.output and "nothing was ingested" in result.output


def test_ingest_with_a_policy_file(tmp_path, data_dir):
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "groups: {magic: {tokens: [t]}}\n"
        "rules: [{match: {obs_collection: MAGIC-*}, group: magic, release_date: 2099-01-01}]\n"
    )
    db = tmp_path / "a.db"
    args = ["ingest", str(data_dir / "magic"), "--db", str(db), "--policy", str(policy)]
    result = CliRunner().invoke(archive, args)
    assert result.exit_code == 0, result.output
    assert _count(db, "data_rights = 'proprietary' AND _access_group = 'magic'") == 2
    policy.write_text("groups: [")
    result = CliRunner().invoke(archive, args)
    assert result.exit_code != 0 and "not valid YAML" in result.output


def test_simulate_and_build(tmp_path, data_dir, sim_dir):
    result = CliRunner().invoke(archive, ["simulate", "--out", str(sim_dir)])  # complete: instant
    assert result.exit_code == 0, result.output
    assert f"{len(SIMULATED_RUNS)} runs" in result.output
    data = tmp_path / "data"
    (data / "magic").mkdir(parents=True)
    (data / "magic" / "rad_max").symlink_to(data_dir / "magic" / "rad_max")
    db = tmp_path / "archive.db"
    args = ["build", "--db", str(db), "--data", str(data), "--sim", str(sim_dir)]
    result = CliRunner().invoke(archive, args)
    assert result.exit_code == 0, result.output
    assert "release HESS-DL3-DR1 not found" in result.output
    assert _count(db) == 2 + len(SIMULATED_RUNS)
    assert _count(db, "data_rights = 'proprietary'") > 0


def test_serve_answers_over_http(tmp_path, data_dir):
    db = tmp_path / "a.db"
    assert (
        CliRunner().invoke(archive, ["ingest", str(data_dir / "magic"), "--db", str(db)]).exit_code
        == 0
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "ctanb", "archive", "serve", "--db", str(db), "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=os.environ)
    try:
        deadline, answer = time.monotonic() + 60, None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/availability", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.3)
        assert answer is not None, f"server did not start: {proc.poll()}"
        assert answer.status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_serve_refuses_a_missing_database(tmp_path):
    result = CliRunner().invoke(archive, ["serve", "--db", str(tmp_path / "none.db")])
    assert result.exit_code != 0 and "does not exist" in result.output


def test_build_without_sim_includes_the_simulated_collection(tmp_path, data_dir, sim_dir):
    # as its --help says: the simulated CTAO collection, in ctao-sim next to --db
    help_text = CliRunner().invoke(archive, ["build", "--help"]).output
    assert "simulated CTAO" in help_text and "ctao-sim next to --db" in help_text
    data = tmp_path / "data"
    (data / "magic").mkdir(parents=True)
    (data / "magic" / "rad_max").symlink_to(data_dir / "magic" / "rad_max")
    (tmp_path / "ctao-sim").symlink_to(sim_dir)  # complete: not simulated again
    db = tmp_path / "archive.db"
    result = CliRunner().invoke(archive, ["build", "--db", str(db), "--data", str(data)])
    assert result.exit_code == 0, result.output
    assert _count(db, "obs_collection = 'CTAO-SIM'") == len(SIMULATED_RUNS)
    bare = tmp_path / "bare.db"
    args = ["build", "--db", str(bare), "--data", str(data), "--no-sim"]
    assert CliRunner().invoke(archive, args).exit_code == 0
    assert _count(bare) == 2
