"""The documentation site builds with no warning and shows what a reader looks for:
every tutorial with its outputs, every command, every public name, a page per panel,
the deployment guides.

The tutorials are rendered from the copies tests/test_notebooks.py executed (this file
runs after it, see conftest.py); run alone, it executes the missing ones itself.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import sys
from importlib import import_module
from pathlib import Path

import click
import pytest

from ctanb.cli import cli
from ctanb.launcher import run_notebooks

# Run alone, the build first executes the nine tutorials (about 12 minutes on a loaded
# two-core machine); in the suite they are already executed and the build takes minutes.
pytestmark = pytest.mark.timeout(2700)

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
API_PACKAGES = ("ctanb", "ctanb.client", "ctanb.widgets", "ctanb.analysis", "ctanb.provenance",
                "ctanb.jobs", "ctanb.samp", "ctanb.archive.service")  # fmt: skip


@pytest.fixture(scope="module")
def site(request, executed_notebooks: Path, tmp_path_factory) -> Path:
    """The HTML site, built once by sphinx-build with warnings as errors."""
    missing = [p for p in NOTEBOOKS if not (executed_notebooks / p.name).is_file()]
    if missing:
        archive_url = request.getfixturevalue("archive_url")
        folder = tmp_path_factory.mktemp("docs-notebooks")
        for path in missing:
            shutil.copyfile(path, folder / path.name)
        env = {"CTANB_TAP_URL": archive_url, "CTANB_OFFLINE": "1"}
        assert run_notebooks(folder, env=env, save=True) == 0, "a tutorial failed to run"
        for path in missing:
            shutil.copyfile(folder / path.name, executed_notebooks / path.name)
    out = tmp_path_factory.mktemp("docs-html")
    env = {**os.environ, "CTANB_DOCS_NOTEBOOKS": str(executed_notebooks)}
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-E", "-b", "html",
           "-d", str(out / ".doctrees"), str(DOCS), str(out)]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, f"sphinx-build failed:\n{proc.stderr[-6000:]}"
    assert "WARNING" not in proc.stderr, proc.stderr[-6000:]
    return out


def _text(page: Path) -> str:
    return page.read_text(encoding="utf-8")


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_tutorial_is_rendered_with_its_outputs(site: Path, path: Path):
    page = site / "tutorials" / "generated" / f"{path.stem}.html"
    assert 'class="cell_output' in _text(page), f"{page.name} shows no cell output"


@pytest.mark.slow
def test_every_command_has_its_usage_in_the_cli_reference(site: Path):
    pages = "".join(_text(p) for p in (site / "cli" / "generated").glob("*.html"))
    text = html.unescape(re.sub(r"<[^>]+>", "", pages))  # usage lines are highlighted
    seen = []

    def walk(command: click.Command, prog: str) -> None:
        seen.append(prog)
        assert f"{prog} [OPTIONS]" in text, f"no usage of `{prog}` in the CLI reference"
        if isinstance(command, click.Group):
            with click.Context(command) as ctx:
                for name in command.list_commands(ctx):
                    walk(command.get_command(ctx, name), f"{prog} {name}")

    walk(cli, "ctanb")
    assert {"ctanb archive serve", "ctanb prov verify", "ctanb run", "ctanb up"} <= set(seen)


@pytest.mark.slow
@pytest.mark.parametrize("package", API_PACKAGES)
def test_every_public_name_is_in_the_api_reference(site: Path, package: str):
    page = _text(site / "api" / "generated" / f"{package}.html")
    ids = set(re.findall(r'id="([\w.]+)"', page))
    hrefs = set(re.findall(r'href="[^"]*#([\w.]+)"', page))
    module = import_module(package)
    missing = [n for n in module.__all__ if f"{package}.{n}" not in ids
               and not any(h.endswith(f".{n}") for h in hrefs)]  # fmt: skip
    assert missing == [], f"not in the API reference of {package}: {missing}"


@pytest.mark.slow
def test_the_user_guide_has_a_page_per_panel_and_the_deployment_guides(site: Path):
    widgets = import_module("ctanb.widgets")
    guide = {p.stem: _text(p) for p in (site / "guide").glob("*.html")}
    for name in widgets.__all__:
        pages = [stem for stem, page in guide.items() if f"#ctanb.widgets.{name}" in page
                 or (name == "App" and "#ctanb.App" in page)]  # fmt: skip
        assert pages, f"no user guide page links the {name} panel"
    dachs = _text(site / "deploy" / "dachs.html")
    assert "What DaCHS does with hostile input" in dachs
    assert "Single sign-on" in _text(site / "deploy" / "hub.html")
    assert "postBuild" in _text(site / "deploy" / "binder.html")
    assert "_call_and_wait" in _text(site / "upstream" / "pyvo-samp-hub.html")


def test_cli_reference_keeps_double_hyphens(site: Path):
    """Options in the descriptions read ``--out``, not ``–out``: a pasted command works
    (trial 5, finding 14)."""
    pages = "".join(_text(p) for p in (site / "cli" / "generated").glob("*.html"))
    assert "--out" in pages and "--db" in pages
    dashed = sorted(set(re.findall(r"\u2013[a-z][a-z-]+", pages)))
    assert dashed == [], f"options shown with an en dash: {dashed}"


def test_api_reference_hides_pydantic_internals_and_shows_values(site: Path):
    """No Annotated/BeforeValidator/PlainSerializer or model_config on the config pages;
    no build-machine paths."""
    pages = {p.stem: _text(p) for p in (site / "api" / "generated").glob("*.html")}
    text = "".join(pages.values())
    for internal in ("PlainSerializer", "BeforeValidator", "Annotated[", "model_config"):
        assert internal not in text, f"{internal} shown in the API reference"
    assert str(ROOT) not in text, "a path of the build machine in the API reference"


def test_the_run_configuration_page_names_every_section_and_example(site: Path):
    from ctanb.analysis import EXAMPLES
    from ctanb.analysis.workflow import STEPS

    page = _text(site / "guide" / "run-config.html")
    for name in [*STEPS, *EXAMPLES, "observations", "datastore", "archive"]:
        assert name in page, f"the ctanb run configuration page does not name {name}"
