"""environment.yml (conda) and pyproject.toml (pip) must list the same packages."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _split(spec: str) -> tuple[str, str]:
    # Extras are pip's business: conda's "dask" already brings "distributed".
    name, _extras, constraint = re.match(
        r"^([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*(.*)$", spec.strip()
    ).groups()
    return name.lower().replace("_", "-"), constraint.replace(" ", "")


def _pyproject() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = project["dependencies"] + project["optional-dependencies"]["notebook"]
    return dict(_split(s) for s in specs)


def _conda() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    specs = [d for d in env["dependencies"] if isinstance(d, str)]
    return {n: c for n, c in map(_split, specs) if n not in ("python", "pip")}


def test_same_packages_and_constraints():
    pip, conda = _pyproject(), _conda()
    assert sorted(set(pip) - set(conda)) == [], "in pyproject.toml but not environment.yml"
    assert sorted(set(conda) - set(pip)) == [], "in environment.yml but not pyproject.toml"
    differ = {n: (pip[n], conda[n]) for n in pip if pip[n] != conda[n]}
    assert differ == {}, f"version constraints differ (pip, conda): {differ}"


def test_python_version_agrees():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda_python = next(
        d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python")
    )
    assert conda_python.replace("python", "") == project["requires-python"]
