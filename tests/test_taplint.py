"""STILTS taplint against the live embedded service: no errors allowed.

Needs the Debian package ``stilts`` (``apt-get install stilts``); a missing tool
fails the test with that message rather than skipping it.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest


@pytest.mark.slow
def test_taplint_reports_no_errors(archive_url: str) -> None:
    stilts = shutil.which("stilts")
    assert stilts, "STILTS is not installed: run `apt-get install stilts` (taplint is part of it)"
    proc = subprocess.run(
        [stilts, "taplint", f"tapurl={archive_url}", "report=EW", "maxrepeat=3"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = proc.stdout + proc.stderr
    assert "Totals:" in out, out[-3000:]
    errors = [line for line in out.splitlines() if re.match(r"E-[A-Z0-9]{3}-", line)]
    assert not errors, "taplint errors:\n" + "\n".join(errors)
    warnings = [line for line in out.splitlines() if re.match(r"W-[A-Z0-9]{3}-", line)]
    assert len(warnings) <= 5, "taplint warnings:\n" + "\n".join(warnings)
