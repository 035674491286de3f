"""The provenance store: concurrent writers, a killed process, ProvSAP queries, PostgreSQL."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import wait_for

from ctanb import ProvenanceError
from ctanb.provenance import Activity, ProvenanceStore

WRITERS, PER_WRITER = 4, 1000


def _write_many(url: str, writer: int) -> None:
    store = ProvenanceStore(url)
    for index in range(PER_WRITER):
        with Activity("bulk", version=str(writer), store=store) as act:
            act.parameter("index", index)


def test_four_processes_writing_1000_activities_each_lose_nothing(tmp_path):
    url = str(tmp_path / "shared.db")
    ProvenanceStore(url)  # create the schema once, as a user's first session does
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_write_many, args=(url, w)) for w in range(WRITERS)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=900)
        assert not proc.is_alive(), "a writer was still writing after 15 minutes"
        assert proc.exitcode == 0, f"writer exited with {proc.exitcode}"
    store = ProvenanceStore(url)
    assert store.count_activities() == WRITERS * PER_WRITER
    for writer in range(WRITERS):
        done = store.activities(name="bulk", version=str(writer), status="completed", limit=None)
        assert sorted(int(a.parameters["index"]) for a in done) == list(range(PER_WRITER))


_KILLED_SCRIPT = """
import sys, time
from ctanb.provenance import Activity
with Activity("long-step", version="1", store=sys.argv[1]) as act:
    print(act.id, flush=True)
    time.sleep(600)
"""


def _wait_for_activity(store: ProvenanceStore, activity_id: str, timeout: float = 30.0):
    def recorded():
        try:
            return store.get_activity(activity_id)
        except ProvenanceError:
            return None

    return wait_for(recorded, timeout, f"activity {activity_id} in the store")


def test_sigkill_in_the_middle_of_an_activity_leaves_it_incomplete(tmp_path):
    url = str(tmp_path / "killed.db")
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED_SCRIPT, url], stdout=subprocess.PIPE, text=True
    )
    try:
        activity_id = proc.stdout.readline().strip()
        assert activity_id.startswith("ctanb:activity-")
        # The child commits its rows behind (ctanb.provenance._writebehind): another
        # process sees them a moment after the child printed the id, not at once.
        store = ProvenanceStore(url)
        assert _wait_for_activity(store, activity_id).status == "running"  # alive: running
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    store = ProvenanceStore(url)
    assert store.get_activity(activity_id).status == "incomplete"
    assert [a.id for a in store.activities(status="incomplete")] == [activity_id]
    with Activity("after", store=url):  # the store is still writable
        pass
    assert store.count_activities() == 2


@pytest.fixture(scope="module")
def chain_store(tmp_path_factory):
    """raw file -> step A -> a.fits -> step B -> b.fits, recorded with parameters."""
    from astropy.io import fits

    folder = tmp_path_factory.mktemp("chain")
    store = ProvenanceStore(folder / "chain.db")
    raw = folder / "raw.fits"
    fits.PrimaryHDU(np.arange(10.0)).writeto(raw)
    with Activity("step-a", version="3.1", store=store) as a:
        a.used(raw, obs_id="42", data_level="DL3")
        a.parameter("threshold", 2.5)
        fits.PrimaryHDU(np.arange(10.0) * 2).writeto(folder / "a.fits")
        a.generated(folder / "a.fits", data_level="DL4")
    with Activity("step-b", version="1.0", store=store) as b:
        b.used(folder / "a.fits")
        fits.PrimaryHDU(np.arange(10.0) * 3).writeto(folder / "b.fits")
        b.generated(folder / "b.fits", data_level="DL5")
    ids = {
        "raw": a.graph.entities[a.record.used[0].entity_id].id,
        "a": a.record.generated[0].entity_id,
        "b": b.record.generated[0].entity_id,
        "act_a": a.id,
        "act_b": b.id,
    }
    return store, ids


def test_provsap_depth_and_direction(chain_store):
    store, ids = chain_store
    one = store.lineage(ids["b"], depth=1, direction="BACK")
    assert set(one.activities) == {ids["act_b"]} and set(one.entities) == {ids["b"]}
    two = store.lineage(ids["b"], depth=2, direction="BACK")
    assert set(two.entities) == {ids["b"], ids["a"]}
    everything = store.lineage(ids["b"], depth=None, direction="BACK")
    assert (
        set(everything.activities) == {ids["act_a"], ids["act_b"]}
        and ids["raw"] in everything.entities
    )
    forth = store.lineage(ids["raw"], depth=None, direction="FORTH")
    assert {ids["a"], ids["b"]} <= set(forth.entities)
    assert store.lineage(ids["raw"], depth=1, direction="FORTH").activities.keys() == {ids["act_a"]}


def test_provsap_parameters(chain_store):
    store, ids = chain_store
    text = store.provsap(ids["b"], DEPTH="ALL", DIRECTION="BACK", RESPONSEFORMAT="PROV-N")
    assert "step-a" in text and "voprov:Parameter" in text and "prov:Person" in text
    assert "agent(" not in store.provsap(
        ids["b"], DEPTH="ALL", AGENTS=False, RESPONSEFORMAT="PROV-N"
    )
    assert "voprov:" not in store.provsap(
        ids["b"], DEPTH="ALL", MODEL="W3C", RESPONSEFORMAT="PROV-N"
    )
    assert "<prov:document" in store.provsap(ids["a"], RESPONSEFORMAT="PROV-XML")
    with pytest.raises(ProvenanceError, match="DEPTH"):
        store.provsap(ids["a"], DEPTH="deep")
    with pytest.raises(ProvenanceError, match="neither an activity nor an entity"):
        store.provsap("ctanb:nothing")


def test_queries_by_parameter_agent_and_run(chain_store):
    store, ids = chain_store
    assert [a.id for a in store.activities(parameters={"threshold": 2.5})] == [ids["act_a"]]
    assert store.activities(parameters={"threshold": 3}) == []
    assert {a.id for a in store.activities(agent=socket.gethostname())} == {
        ids["act_a"],
        ids["act_b"],
    }
    import gammapy

    assert len(store.activities(agent=f"gammapy-{gammapy.__version__}")) == 2
    assert store.activities(agent="gammapy-0.0") == []
    assert {e.id for e in store.derived_from(obs_id=42)} == {ids["a"], ids["b"]}


def _pg_cluster(folder: Path):
    """Start a throwaway PostgreSQL cluster in *folder* (as user postgres when run by root)."""
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    assert initdb and pg_ctl, "PostgreSQL server binaries missing: apt-get install -y postgresql"
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    folder.mkdir()
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    data = folder / "data"
    subprocess.run(
        [*prefix, initdb, "-D", str(data), "-A", "trust", "-U", "prov"],
        check=True,
        capture_output=True,
    )
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    options = f"-k {folder} -p {port} -c listen_addresses=''"
    subprocess.run(
        [*prefix, pg_ctl, "-D", str(data), "-o", options, "-w", "-l", str(folder / "log"), "start"],
        check=True,
        capture_output=True,
    )
    return prefix, pg_ctl, data, f"postgresql+psycopg://prov@/postgres?host={folder}&port={port}"


def test_postgresql_store(tmp_path_factory):
    folder = Path("/tmp") / f"ctanb-pg-{os.getpid()}-{int(time.time())}"
    prefix, pg_ctl, data, url = _pg_cluster(folder)
    try:
        store = ProvenanceStore(url)
        with Activity("pg-step", version="9", store=store) as act:
            act.parameter("n", 3)
            act.generated(np.ones(4), label="pg product")
        with Activity("pg-step", version="9", store=store) as again:
            again.used(np.ones(4))
        assert store.get_activity(act.id).status == "completed"
        assert [e.label for e in store.products(name="pg-step", version="9")] == ["pg product"]
        assert [a.id for a in store.activities(parameters={"n": 3})] == [act.id]
        forth = store.lineage(act.id, depth=None, direction="FORTH")
        assert again.id in forth.activities
        assert "pg-step" in store.provsap(act.id, RESPONSEFORMAT="PROV-JSON")
        store.engine.dispose()
    finally:
        subprocess.run(
            [*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True
        )
        shutil.rmtree(folder, ignore_errors=True)


# --- write-behind: steps do not wait for the database, nothing is lost ------------------------


def _one_activity(url: str, name: str) -> None:
    with Activity(name, version="1", store=ProvenanceStore(url)) as act:
        act.parameter("pid", os.getpid())


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_activities_of_a_child_process_reach_the_store_when_it_exits(tmp_path, method):
    # A multiprocessing child ends with os._exit (fork): its pending writes must not be lost.
    url = str(tmp_path / f"{method}.db")
    proc = multiprocessing.get_context(method).Process(target=_one_activity, args=(url, method))
    proc.start()
    proc.join(timeout=120)
    assert proc.exitcode == 0
    (record,) = ProvenanceStore(url).activities(name=method)
    assert record.status == "completed" and record.parameters["pid"] == proc.pid


def test_a_read_sees_the_activity_just_written_behind(tmp_path):
    store = ProvenanceStore(tmp_path / "behind.db")
    assert store.write_behind
    for index in range(50):
        with Activity("quick", version="1", store=store) as act:
            act.parameter("index", index)
        # the very next read, in the same process, already sees it
        assert store.get_activity(act.id).parameters["index"] == index


def test_a_failed_write_behind_is_reported_and_the_product_keeps_its_provenance(tmp_path):
    import sqlalchemy as sa
    from astropy.io import fits

    from ctanb.provenance import read_provenance

    url = tmp_path / "broken.db"
    store = ProvenanceStore(url)
    store.flush()
    with sa.create_engine(f"sqlite:///{url}").begin() as conn:
        conn.execute(sa.text("DROP TABLE prov_parameter"))  # the store breaks under us
    product = tmp_path / "map.fits"
    with Activity("broken-store-step", version="1", store=store) as act:
        act.parameter("n", 1)
        fits.PrimaryHDU(np.zeros((4, 4), "f4")).writeto(product)
        act.generated(product, data_level="DL4")
    with pytest.raises(ProvenanceError, match=r"broken-store-step .*prov_parameter"):
        store.flush()
    store.flush()  # reported once
    assert act.id in read_provenance(product).activities
