"""Every tutorial in notebooks/ runs end to end against the embedded archive."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest

from ctanb.launcher import run_notebooks

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


def test_there_are_tutorials():
    assert [p.name for p in NOTEBOOKS][:1] == ["01_search.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_clean(path: Path):
    """Outputs are stripped in git and a kernelspec is set (else JupyterLab asks for one)."""
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"outputs in {path.name}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path: Path, archive_url: str, tmp_path: Path, executed_notebooks: Path):
    folder = tmp_path / "nb"
    folder.mkdir()
    (folder / path.name).write_text(path.read_text())
    env = {"CTANB_TAP_URL": archive_url, "CTANB_OFFLINE": "1"}
    failed = run_notebooks(folder, env=env, save=True)
    assert failed == 0, f"{path.name} failed (see the captured output above)"
    # The executed copy is what the documentation shows (tests/test_docs.py).
    shutil.copyfile(folder / path.name, executed_notebooks / path.name)
