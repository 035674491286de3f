"""Fresh-eyes trial 5, finding 18: a job runs any importable function the user submits,
and its record stays on disk; a re-run from that record in a later session (a restarted
kernel, another user of a shared hub folder) is refused, and nothing runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SESSION = """
import sys
from ctanb.jobs import JobManager
from ctanb import JobError
db, action, arg = sys.argv[1:4]
with JobManager(db, jobs_dir=db + ".jobs") as jobs:
    if action == "submit":
        print(jobs.submit("t5_payload:run", {"path": arg}).wait(60).id)
    else:
        try:
            jobs.rerun(arg).wait(60)
            print("RAN")
        except JobError as exc:
            print("REFUSED:", exc)
"""


def _session(tmp_path: Path, *args: str) -> str:
    modules = tmp_path / "modules"
    modules.mkdir(exist_ok=True)
    (modules / "t5_payload.py").write_text(
        "def run(path):\n    with open(path, 'a') as fh:\n        fh.write('ran\\n')\n"
        "    return {'ok': True}\n"
    )
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(modules), os.environ.get("PYTHONPATH", "")])
    )
    env.pop("CTANB_JOB_TARGET", None)
    proc = subprocess.run(
        [sys.executable, "-c", SESSION, str(tmp_path / "jobs.db"), *args],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.strip().splitlines()[-1]


def test_a_record_from_an_earlier_session_is_not_rerun(tmp_path):
    marker = tmp_path / "ran.txt"
    job_id = _session(tmp_path, "submit", str(marker))
    assert marker.read_text() == "ran\n"  # submitted in its session: it runs
    answer = _session(tmp_path, "rerun", job_id)  # a new kernel, the same job store
    assert answer.startswith("REFUSED:"), answer
    assert "t5_payload:run" in answer and "Traceback" not in answer
    assert marker.read_text() == "ran\n"  # nothing ran again


def test_the_jobs_guide_says_what_a_job_may_run_and_where_records_stay():
    text = (Path(__file__).resolve().parent.parent / "docs" / "guide" / "jobs.md").read_text()
    for needle in ("any importable function", "kept on disk", "refused", "shared"):
        assert needle in text, f"the jobs guide does not say {needle!r}"
