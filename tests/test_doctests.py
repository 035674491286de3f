"""The ``>>>`` examples in ctanb's docstrings run, against the embedded archive.

Each module with examples is one test. The examples get what a reader has: an archive
(``CTANB_TAP_URL``; ``archive`` is ``ctanb.connect()``), a working folder holding
``archive.db`` (for :class:`~ctanb.archive.service.ArchiveServer`'s example), no
internet. An example that cannot run here says why in the docstring and is marked
``# doctest: +SKIP``; every module must run at least one example of its own, unless
it is listed in ``ONLY_SKIPPED`` with the reason (imports alone do not count).
"""

from __future__ import annotations

import doctest
import os
from importlib import import_module
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "ctanb"


def _modules_with_examples() -> list[str]:
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if ">>>" in path.read_text(encoding="utf-8"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


MODULES = _modules_with_examples()

#: Modules whose examples all need what the suite cannot give a doctest, and why.
ONLY_SKIPPED = {
    "ctanb.analysis.workflow": "a whole analysis (tests/test_analysis_workflow.py)",
    "ctanb.provenance.capture": "a DL3 file and a map to write (tests/test_provenance.py)",
    "ctanb.samp": "TOPCAT on a desktop SAMP hub (tests/test_samp_topcat.py)",
}


def test_the_examples_are_found():
    assert len(MODULES) >= 14, MODULES
    assert set(ONLY_SKIPPED) <= set(MODULES)


@pytest.fixture(scope="module")
def workdir(archive_url: str, archive_db: Path, tmp_path_factory, request):
    folder = tmp_path_factory.mktemp("doctest")
    (folder / "archive.db").symlink_to(archive_db)
    saved = os.getcwd(), {k: os.environ.get(k) for k in ("CTANB_TAP_URL", "CTANB_OFFLINE")}
    os.chdir(folder)
    os.environ.update(CTANB_TAP_URL=archive_url, CTANB_OFFLINE="1")
    yield folder
    os.chdir(saved[0])
    for key, value in saved[1].items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str, workdir: Path):
    import ctanb

    module = import_module(name)
    tests = [t for t in doctest.DocTestFinder().find(module) if t.examples]
    assert tests, f"{name} has '>>>' lines that doctest does not find"
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    runner = doctest.DocTestRunner(optionflags=flags)
    ran = 0
    for test in tests:
        test.globs["archive"] = ctanb.connect(progress=False)
        result = runner.run(test, out=lambda text: print(text, end=""))
        # Imports alone do not count as an example that ran.
        ran += sum(
            not example.options.get(doctest.SKIP)
            and not example.source.startswith(("import ", "from "))
            for example in test.examples
        )
        assert result.failed == 0, f"{result.failed} example(s) of {test.name} failed (above)"
    if name in ONLY_SKIPPED:
        assert ran == 0, f"{name} now runs examples: take it off ONLY_SKIPPED"
    else:
        assert ran > 0, f"every example of {name} is skipped"
