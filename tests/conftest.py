"""Shared fixtures: the real DL3 data, a built embedded archive, and that archive served
over real HTTP on loopback.

Nothing here is mocked: ``archive_db`` is built by the same ingestion and
simulation code that ``ctanb archive build`` runs, and ``archive_url`` is the
Starlette/uvicorn TAP service on an ephemeral port.

A missing data folder fails loudly (no silent skips): the tests need the public
releases under ``CTANB_DATA`` (default ``../shared/data``).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from ctanb._settings import data_dir as _data_dir

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Each test session gets its own CTANB_HOME, so no user state leaks in or out."""
    home = tmp_path_factory.mktemp("ctanb-home")
    os.environ["CTANB_HOME"] = str(home)
    return home


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The folder of public DL3 releases; fails (not skips) when it is missing."""
    return _data_dir(must_exist=True)


@pytest.fixture(scope="session")
def sim_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The simulated CTAO collection (GADF data store), generated once per session."""
    from ctanb.archive.simulate import simulate

    cache = os.environ.get("CTANB_TEST_SIM_DIR")
    out = Path(cache) if cache else tmp_path_factory.mktemp("ctao-sim")
    return simulate(out)


@pytest.fixture(scope="session")
def archive_db(tmp_path_factory: pytest.TempPathFactory, data_dir: Path, sim_dir: Path) -> Path:
    """An embedded archive built from all releases plus the simulated collection."""
    from ctanb.archive.ingest import build_archive

    db = tmp_path_factory.mktemp("archive") / "archive.db"
    report = build_archive(db, data_dir=data_dir, sim_dir=sim_dir)
    assert report.ingested, "the archive build ingested nothing"
    return db


@pytest.fixture(scope="session")
def archive_server(archive_db: Path):
    """The embedded TAP service on loopback (demo access policy), for the whole session."""
    from ctanb.archive.policy import AccessPolicy
    from ctanb.archive.service import ArchiveServer

    with ArchiveServer(archive_db, policy=AccessPolicy.demo()) as server:
        yield server


@pytest.fixture(scope="session")
def archive_url(archive_server) -> str:
    """Base URL of the embedded TAP service (``/sync``, ``/async``, ... below it)."""
    return archive_server.url


@pytest.fixture(scope="module")
def prov_store_url(tmp_path_factory: pytest.TempPathFactory):
    """A provenance store of the test module's own, as the default store; the previous
    setting is restored afterwards so that no later module (e.g. the hub's) inherits it."""
    url = str(tmp_path_factory.mktemp("prov") / "provenance.db")
    old = os.environ.get("CTANB_PROV_URL")
    os.environ["CTANB_PROV_URL"] = url
    yield url
    if old is None:
        os.environ.pop("CTANB_PROV_URL", None)
    else:
        os.environ["CTANB_PROV_URL"] = old


def wait_for(predicate, timeout: float = 30.0, what: str = "the condition", every: float = 0.1):
    """Poll *predicate* until it returns something true and return that value; fail
    naming *what* after *timeout* seconds (the one wait helper of the suite)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)


@pytest.fixture(scope="session")
def executed_notebooks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where tests/test_notebooks.py saves each tutorial it ran, with its outputs, for
    tests/test_docs.py to render (the docs build executes nothing itself)."""
    return tmp_path_factory.mktemp("executed-notebooks")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # The docs build renders the notebooks test_notebooks.py executed: run it last so the
    # suite executes each tutorial once (alone, test_docs.py executes them itself).
    items.sort(key=lambda item: item.path.name == "test_docs.py")
