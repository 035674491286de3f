"""Importable functions run as jobs by the job tests (a job process imports them by name)."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path

from ctanb.provenance import recorded

__all__ = ["add", "fail", "sleep_with_child", "write_table"]


def add(a: float, b: float, sleep: float = 0.0) -> dict:
    """Print, log, sleep, and return the sum."""
    print(f"adding {a} and {b}")
    logging.getLogger("jobs_steps").info("logged from the job")
    time.sleep(sleep)
    return {"sum": a + b}


def fail(reason: str) -> None:
    """Fail with a ValueError deep in a call chain (so the traceback has frames)."""

    def inner() -> None:
        raise ValueError(reason)

    inner()


def sleep_with_child(seconds: float, pid_file: str) -> None:
    """Start a child process (a grandchild of the job) and sleep; both pids go to *pid_file*."""
    child = subprocess.Popen([sys.executable, "-c", f"import time; time.sleep({seconds})"])
    Path(pid_file).write_text(f"{child.pid}\n")
    time.sleep(seconds)


@recorded(name="jobs-test-table", version="1.0", outputs={"out": "table"}, data_level="DL5")
def write_table(n_rows: int, out: str) -> None:
    """A recorded step: write a small FITS table."""
    import numpy as np
    from astropy.table import Table

    Table({"x": np.arange(n_rows), "y": np.arange(n_rows) ** 2}).write(out, overwrite=True)
