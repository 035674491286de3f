"""Sphinx configuration of the ctanb documentation (built by tests/test_docs.py).

Three parts of the site are generated at build time so that they cannot go stale:

- the API reference, from ``__all__`` of ``ctanb`` and its public sub-packages;
- the command-line reference, one page per ``ctanb`` command, from the click
  definitions (``ctanb.cli._GROUPS``) through ``sphinx-click``;
- the tutorials, copied from ``notebooks/``: the executed copies the test suite saved
  (``CTANB_DOCS_NOTEBOOKS``) when given, otherwise the committed ones (no outputs).

myst-nb never executes a notebook here (``nb_execution_mode = "off"``): the tutorials
need the running archive and the DL3 data, and ``tests/test_notebooks.py`` already runs
each of them once; the site shows the outputs of that run.
"""

from __future__ import annotations

import inspect
import os
import shutil
import sys
from importlib import import_module
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))

import ctanb  # noqa: E402

project = "ctanb"
author = "the ctanb developers"
copyright = "2026, the ctanb developers"
version = release = ctanb.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.intersphinx",
    "numpydoc",
    "myst_nb",
    "sphinx_click",
]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
html_theme = "pydata_sphinx_theme"
html_title = "ctanb"
html_theme_options = {"navigation_with_keys": False, "secondary_sidebar_items": ["page-toc"]}
html_static_path: list[str] = []

# Nothing is fetched at build time (the tests run without the internet).
intersphinx_mapping: dict[str, tuple[str, str]] = {}

# "--out" stays two hyphens (docutils' smart dashes made it "–out", and pasted commands failed).
smartquotes_action = "qe"

autodoc_member_order = "bysource"
# The numpydoc sections give each type in words; pydantic's annotations (Annotated,
# BeforeValidator, PlainSerializer) are internals and stay out of the pages.
autodoc_typehints = "none"
autodoc_default_options = {
    "show-inheritance": False,
    "exclude-members": "model_config, model_fields, model_computed_fields, model_post_init",
}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_validation_checks: set[str] = set()  # the suite validates (tests/test_numpydoc.py)

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
nb_execution_mode = "off"
nb_merge_streams = True
# Widgets (the App, the panels) render from the widget state nbclient stores.
nb_render_priority_extra: list = []

# -- generated pages ------------------------------------------------------------------

#: Packages whose ``__all__`` make the API reference, in this order (the first page
#: naming an object describes it; later ones point to it).
API_PACKAGES = (
    "ctanb",
    "ctanb.client",
    "ctanb.widgets",
    "ctanb.analysis",
    "ctanb.analysis.examples",
    "ctanb.provenance",
    "ctanb.jobs",
    "ctanb.samp",
    "ctanb.archive.service",
)


def _kind(obj: object) -> str:
    if inspect.isclass(obj):
        return "autoexception" if issubclass(obj, BaseException) else "autoclass"
    if callable(obj):
        return "autofunction"
    return "autodata"


def _write(path: Path, text: str) -> None:
    # Rewrite only on change, so that Sphinx does not rebuild unchanged pages.
    if not path.exists() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def write_api_pages() -> None:
    out = DOCS / "api" / "generated"
    described: dict[int, str] = {}
    for package in API_PACKAGES:
        module = import_module(package)
        title = f"``{package}``"
        lines = [title, "=" * len(title), "", f".. module:: {package}", ""]
        doc = inspect.getdoc(module) or ""
        summary = doc.split("\n\n")[0]
        lines += [summary, ""] if summary else []
        for name in module.__all__:
            obj = getattr(module, name)
            where = described.get(id(obj))
            if where is not None and not isinstance(obj, (str, int, float, tuple, dict)):
                role = (
                    "exc"
                    if inspect.isclass(obj) and issubclass(obj, BaseException)
                    else ("class" if inspect.isclass(obj) else "func")
                )
                lines += [f"- ``{name}``: see :py:{role}:`{where}`", ""]
                continue
            kind = _kind(obj)
            if kind == "autodata" and isinstance(obj, str):
                # autodoc would show the docstring of str; the value is what a reader wants.
                lines += [f".. py:data:: {package}.{name}", f"   :value: {obj!r}", ""]
                continue
            lines.append(f".. {kind}:: {package}.{name}")
            if kind == "autodata":
                lines.append("   :no-value:")  # e.g. EXAMPLES: paths of the build machine
            if kind == "autoclass":
                lines.append("   :members:")
            lines.append("")
            described[id(obj)] = f"{package}.{name}"
        _write(out / f"{package}.rst", "\n".join(lines) + "\n")


def write_cli_pages() -> None:
    import click

    from ctanb.cli import _GROUPS, cli

    out = DOCS / "cli" / "generated"
    pages = {"ctanb": ".. click:: ctanb.cli:cli\n   :prog: ctanb\n   :nested: short\n"}
    with click.Context(cli) as ctx:
        names = cli.list_commands(ctx)
    for name in names:
        # A lazily imported group is documented from its own module; a command
        # registered on the top-level group from there.
        module, attr = _GROUPS[name][:2] if name in _GROUPS else ("ctanb.cli", "cli")
        options = "   :nested: full\n" if name in _GROUPS else f"   :commands: {name}\n"
        pages[f"ctanb-{name}"] = f".. click:: {module}:{attr}\n   :prog: ctanb {name}\n{options}"
    for page, text in pages.items():
        _write(out / f"{page}.rst", text)


def copy_tutorials() -> None:
    executed = os.environ.get("CTANB_DOCS_NOTEBOOKS")
    out = DOCS / "tutorials" / "generated"
    out.mkdir(parents=True, exist_ok=True)
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        source = Path(executed) / path.name if executed else path
        if not source.is_file():
            raise FileNotFoundError(f"no executed copy of {path.name} in {executed}")
        target = out / path.name
        if not target.exists() or target.read_bytes() != source.read_bytes():
            shutil.copyfile(source, target)


write_api_pages()
write_cli_pages()
copy_tutorials()
