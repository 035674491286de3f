"""STILTS votlint on every kind of VOTable the embedded service answers with, hostile
requests included: results, errors, DataLink, TAP_SCHEMA, async results.

Needs the Debian package ``stilts``; a missing tool fails the test rather than skipping.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests

CONTROL = "".join(chr(c) for c in (1, 8, 11, 31)) + "\ufffe"
QUERIES = {
    "result": "SELECT TOP 5 obs_id, s_ra, s_dec, t_min, em_min FROM ivoa.obscore",
    "empty-result": "SELECT obs_id FROM ivoa.obscore WHERE 1 = 0",
    "aggregate": "SELECT COUNT(*) AS n, obs_collection FROM ivoa.obscore GROUP BY obs_collection",
    "tap-schema": "SELECT * FROM TAP_SCHEMA.columns",
    "syntax-error": "SELECT s_ra,, s_dec FROM ivoa.obscore",
    "unknown-column": "SELECT no_such_column FROM ivoa.obscore",
    "control-characters-in-literal": f"SELECT TOP 1 '{CONTROL}' AS label FROM ivoa.obscore",
    "control-characters-in-query": f"SELECT TOP 1 obs_id FROM ivoa.obscore -- {CONTROL}",
    "deep-nesting": "SELECT " + "(" * 60 + "1" + ")" * 60 + " FROM ivoa.obscore",
    "overflow": "SELECT TOP 1 DISTANCE(POINT(0, 0), POINT(1e999, 0)) FROM ivoa.obscore",
}


def _votlint(path: Path) -> list[str]:
    stilts = shutil.which("stilts")
    assert stilts, "STILTS is not installed: run `apt-get install stilts` (votlint is part of it)"
    proc = subprocess.run(
        [stilts, "votlint", f"votable={path}", "validate=true"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = (proc.stdout + proc.stderr).splitlines()
    return [line for line in lines if "ERROR" in line.upper() or "FATAL" in line.upper()]


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_sync_answers_pass_votlint(archive_url: str, tmp_path: Path, name: str) -> None:
    resp = requests.post(
        f"{archive_url}/sync",
        data={"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": QUERIES[name]},
        timeout=120,
    )
    assert resp.status_code < 500, resp.text[:500]
    path = tmp_path / f"{name}.xml"
    path.write_bytes(resp.content)
    assert not _votlint(path), (name, resp.text[:800])


def test_datalink_and_async_answers_pass_votlint(archive_url: str, tmp_path: Path) -> None:
    did = (
        requests.post(
            f"{archive_url}/sync",
            data={
                "LANG": "ADQL",
                "FORMAT": "csv",
                "QUERY": "SELECT TOP 1 obs_publisher_did FROM ivoa.obscore",
            },
            timeout=60,
        )
        .text.splitlines()[1]
        .strip('"')
    )
    answers = {
        "datalink": requests.get(f"{archive_url}/datalink", params={"ID": did}, timeout=60),
        "datalink-unknown": requests.get(
            f"{archive_url}/datalink", params={"ID": f"ivo://nowhere?{CONTROL}"}, timeout=60
        ),
    }
    job = requests.post(
        f"{archive_url}/async",
        data={"LANG": "ADQL", "QUERY": QUERIES["result"], "PHASE": "RUN"},
        timeout=60,
    )
    job_url = job.url
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        phase = requests.get(f"{job_url}/phase", timeout=30).text.strip()
        if phase in ("COMPLETED", "ERROR", "ABORTED"):
            break
        time.sleep(0.2)
    assert phase == "COMPLETED", phase
    answers["async-result"] = requests.get(f"{job_url}/results/result", timeout=60)
    for name, resp in answers.items():
        path = tmp_path / f"{name}.xml"
        path.write_bytes(resp.content)
        assert resp.status_code < 500, (name, resp.text[:300])
        assert not _votlint(path), (name, resp.text[:800])
