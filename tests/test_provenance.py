"""Provenance use cases on real H.E.S.S. DR1 data: record DL3 -> DL4, query, serialize, verify, redo."""

from __future__ import annotations

import hashlib
import html
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from ctanb import ProvenanceError
from ctanb.provenance import (
    Activity,
    ProvenanceStore,
    content_hash,
    parse,
    read_provenance,
    redo,
    registered_steps,
    verify,
)

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))
import provenance_steps  # noqa: E402

RUNS = (23523, 23526)


@pytest.fixture(scope="module")
def store_url(prov_store_url: str) -> str:
    """A provenance store of its own for this module, used as the default store."""
    return prov_store_url


@pytest.fixture(scope="module")
def hess_files(data_dir: Path) -> list[str]:
    return [
        str(data_dir / "hess-dl3-dr1" / "data" / f"hess_dl3_dr1_obs_id_{run:06d}.fits.gz")
        for run in RUNS
    ]


@pytest.fixture(scope="module")
def products(
    tmp_path_factory: pytest.TempPathFactory, store_url: str, hess_files: list[str]
) -> dict[str, Path]:
    """A real counts map of two Crab runs (DL3 -> DL4) and its smoothed copy, both recorded."""
    out = tmp_path_factory.mktemp("products")
    counts, smoothed = out / "crab_counts.fits", out / "crab_smoothed.fits"
    provenance_steps.CountsMapStep(provenance_steps.CountsMapConfig(binsz_deg=0.05)).run(
        hess_files, str(counts)
    )
    provenance_steps.smooth_counts_map(str(counts), str(smoothed), radius_deg=0.1)
    return {"counts": counts, "smoothed": smoothed}


def _prov_id(path: Path) -> str:
    return fits.getheader(path)["PROV_ID"]


def test_counts_map_dl3_to_dl4_is_recorded_inside_the_product(products, hess_files):
    import gammapy

    header = fits.getheader(products["counts"])
    assert header["PROV_ID"].startswith("ctanb:entity-")
    assert header["PROV_ACT"].startswith("ctanb:activity-")
    assert header["PROV_DL"] == "DL4" and header["PROV_TYP"] == "counts"
    graph = read_provenance(products["counts"])
    (act,) = graph.activities.values()
    assert (act.name, act.version, act.status) == ("counts-map", "1.0", "completed")
    assert act.id == header["PROV_ACT"]
    assert act.callable is None  # the record names the step kind, never code
    assert registered_steps()[("counts-map", "1.0")].code == "provenance_steps:CountsMapStep.run"
    assert act.start_time < act.end_time
    assert act.config["__model__"][1]["binsz_deg"] == 0.05
    assert act.software["gammapy"] == gammapy.__version__
    assert {a.kind for a in act.agents} == {"person", "software", "host"}
    inputs = [graph.entities[r.entity_id] for r in act.used]
    assert sorted(e.obs_id for e in inputs) == ["23523", "23526"]
    for entity, path in zip(sorted(inputs, key=lambda e: e.obs_id), hess_files, strict=True):
        assert entity.sha256 == hashlib.sha256(Path(path).read_bytes()).hexdigest()
        assert entity.size == Path(path).stat().st_size
        assert entity.data_level == "DL3"
        assert entity.publisher_did == f"ivo://ctanb.archive/hess-dl3-dr1?{entity.obs_id}"
    product = graph.entities[header["PROV_ID"]]
    assert product.location == str(products["counts"]) and product.data_level == "DL4"
    with fits.open(products["counts"]) as hdus:
        assert hdus[0].data.sum() > 100  # real Crab events were binned


def test_metadata_of_inputs_propagates_to_the_product(products):
    header = fits.getheader(products["smoothed"])
    assert header["CALIBVER"] == "hess-dl3-dr1"
    assert header["APPCUTS"] == "standard"
    assert header["RECO_VER"] == "EVTVER 1.4"
    entity = read_provenance(products["smoothed"]).entities[header["PROV_ID"]]
    assert entity.attributes["applied_cuts"] == "standard"


def test_disagreeing_inputs_keep_all_values_and_say_so(tmp_path, hess_files, store_url):
    out = tmp_path / "mixed.fits"
    with Activity("stack", version="1", store=store_url) as act:
        act.used(
            hess_files[0],
            obscore={"obs_id": "23523", "reco_version": "r1", "applied_cuts": "standard"},
        )
        act.used(
            hess_files[1],
            obscore={"obs_id": "23526", "reco_version": "r2", "applied_cuts": "standard"},
        )
        fits.PrimaryHDU(np.arange(4.0)).writeto(out)
        act.generated(out, data_level="DL4", product_type="excess")
    header = fits.getheader(out)
    assert header["RECO_VER"] == "r1,r2"
    assert header["APPCUTS"] == "standard"
    assert header["PROVMIX"] == "reco_version"
    entity = read_provenance(out).entities[header["PROV_ID"]]
    assert entity.attributes["obscore_mixed"] == "reco_version"


def test_all_datasets_derived_from_a_run(products, store_url):
    store = ProvenanceStore(store_url)
    derived = {e.location for e in store.derived_from(obs_id=23523)}
    assert {str(products["counts"]), str(products["smoothed"])} <= derived
    by_did = {
        e.location
        for e in store.derived_from(publisher_did="ivo://ctanb.archive/hess-dl3-dr1?23526")
    }
    assert str(products["smoothed"]) in by_did
    assert store.derived_from(obs_id=23592) == []  # a run nobody used


def test_products_of_a_pipeline_version(products, store_url):
    with Activity("counts-map", version="2.0", store=store_url) as act:
        act.generated(np.zeros(3), label="a v2 map")
    store = ProvenanceStore(store_url)
    v1 = store.products(name="counts-map", version="1.0")
    assert str(products["counts"]) in {e.location for e in v1}
    assert all(e.label != "a v2 map" for e in v1)
    assert [e.label for e in store.products(name="counts-map", version="2.0")] == ["a v2 map"]
    by_param = store.activities(parameters={"binsz_deg": 0.05})
    assert any(a.name == "counts-map" for a in by_param)
    assert store.activities(parameters={"binsz_deg": 0.5}, name="counts-map") == []


def test_from_dl4_back_to_dl3_and_redo(products, tmp_path, store_url):
    store = ProvenanceStore(store_url)
    lineage = store.lineage(_prov_id(products["smoothed"]), depth=None, direction="BACK")
    assert {a.name for a in lineage.activities.values()} == {"counts-map", "smooth-counts"}
    assert sorted(e.obs_id for e in lineage.entities.values() if e.data_level == "DL3") == [
        "23523",
        "23526",
    ]
    report = redo(products["smoothed"], tmp_path / "redo")
    assert report.rerun == ["counts-map 1.0", "smooth-counts 0.2"]
    assert report.identical and report.ok, str(report)
    assert Path(report.new_product).is_file()
    assert read_provenance(report.new_product).entities  # the redone product carries provenance too


def test_serializations_and_svg(products, tmp_path):
    import rdflib
    from prov.model import ProvDocument

    graph = read_provenance(products["smoothed"])
    text = graph.serialize("json")
    assert parse(text).activities.keys() == graph.activities.keys()
    xml = graph.serialize("xml")
    assert len(ProvDocument.deserialize(content=xml, format="xml").get_records()) > 10
    provn = graph.serialize("provn")
    assert (
        "wasDerivedFrom(" in provn
        and "wasInformedBy(" in provn
        and "voprov:ActivityDescription" in provn
    )
    rdf = rdflib.Graph().parse(data=graph.serialize("turtle"), format="turtle")
    assert len(rdf) > 50
    assert "voprov:" not in graph.serialize("provn", model="W3C")
    svg = html.unescape(graph.to_svg(tmp_path / "graph.svg"))
    assert svg.startswith("<?xml") and (tmp_path / "graph.svg").is_file()
    for text in (
        "counts-map",
        "smooth-counts",
        "config binsz_deg: 0.05",
        "param radius_deg: 0.1",
        "#fffc87",
        "#9fb1fc",
        "#fed37f",
    ):
        assert text in svg.lower()


def test_in_memory_inputs_are_hashed_by_content(store_url):
    a, b = np.arange(10.0), np.arange(10.0)
    assert content_hash(a) == content_hash(b)
    assert content_hash(a)[0] != content_hash(a + 1)[0]
    assert content_hash(a)[0] != content_hash(a.astype("f4"))[0]
    with Activity("make", version="1", store=store_url) as first:
        result = np.linspace(0, 1, 5)
        first.generated(result)
    with Activity("use", version="1", store=store_url) as second:
        entity = second.used(result.copy())
    assert entity.kind == "memory"
    assert first.id in second.record.informed_by


def test_failed_activity_is_recorded_as_failed(store_url):
    with pytest.raises(ZeroDivisionError), Activity("divide", version="1", store=store_url) as act:
        act.parameter("x", 1)
        _ = 1 / 0
    record = ProvenanceStore(store_url).get_activity(act.id)
    assert record.status == "failed" and "ZeroDivisionError" in record.message


def test_altered_product_and_missing_input_are_detected(
    products, tmp_path, hess_files, monkeypatch
):
    altered = tmp_path / "altered.fits"
    shutil.copy(products["counts"], altered)
    assert verify(altered).ok
    with fits.open(altered, mode="update") as hdus:
        hdus[0].data[0, 10, 10] += 1
    report = verify(altered)
    assert not report.ok and "HDU PRIMARY data changed" in report.problems[0]
    with pytest.raises(ProvenanceError, match=r"refused to redo altered\.fits: product altered"):
        redo(altered, tmp_path / "redo")
    # an input that disappeared after the product was made
    run = tmp_path / Path(hess_files[0]).name
    shutil.copy(hess_files[0], run)
    product = tmp_path / "one_run.fits"
    provenance_steps.CountsMapStep().run([str(run)], str(product))
    run.unlink()
    report = verify(product)
    assert report.ok and f"input {run.name} not on this machine (not checked)" in str(report)
    # found again by content (the release in CTANB_DATA has the same bytes)
    again = redo(product, tmp_path / "redo2")
    assert again.identical, str(again)
    assert set(again.input_sources.values()) <= {"local copy", "archive"}, again.input_sources
    # ... but not when no copy with its sha256 exists anywhere
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("CTANB_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("CTANB_HOME", str(tmp_path / "empty-home"))  # no download cache
    monkeypatch.delenv("CTANB_TAP_URL", raising=False)
    run.write_bytes(b"not the run")
    with pytest.raises(ProvenanceError, match=f"missing input {run.name}.*recorded sha256"):
        redo(product, tmp_path / "redo3")


def test_clear_errors(tmp_path, hess_files):
    with pytest.raises(ProvenanceError, match="carries no provenance"):
        read_provenance(hess_files[0])
    with pytest.raises(ProvenanceError, match=r"input file /nowhere/run\.fits does not exist"):
        with Activity("x", store=None) as act:
            act.used("/nowhere/run.fits")
    with pytest.raises(ProvenanceError, match="parameter 'obj'"):
        Activity("x", store=None).parameter("obj", object())
    with pytest.raises(ProvenanceError, match="unknown provenance format"):
        read_provenance(hess_files[0]) if False else Activity("x", store=None).graph.serialize(
            "yaml"
        )


def _ctanb(*args: str, store_url: str) -> subprocess.CompletedProcess:
    """``ctanb prov ARGS`` in a new process that has the test steps registered (as a
    user's script that defines its own steps would; records never name code)."""
    env = {**os.environ, "CTANB_PROV_URL": store_url, "PYTHONPATH": str(TESTS)}
    script = "import sys, provenance_steps; from ctanb.cli import main; main(sys.argv[1:])"
    return subprocess.run(
        [sys.executable, "-c", script, "prov", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_cli(products, tmp_path, store_url):
    ProvenanceStore(store_url).flush()  # this process wrote behind; the CLI is another one
    shown = _ctanb("show", str(products["smoothed"]), store_url=store_url)
    assert shown.returncode == 0, shown.stderr
    assert (
        "activity counts-map 1.0" in shown.stdout and "parameter radius_deg = 0.1" in shown.stdout
    )
    assert "obs_id=23523" in shown.stdout
    turtle = _ctanb("show", str(products["counts"]), "--format", "turtle", store_url=store_url)
    assert "@prefix voprov:" in turtle.stdout
    svg = tmp_path / "g.svg"
    assert (
        _ctanb("graph", str(products["smoothed"]), "-o", str(svg), store_url=store_url).returncode
        == 0
    )
    assert "<svg" in svg.read_text()
    listed = _ctanb(
        "query", "--name", "counts-map", "--version", "1.0", "--products", store_url=store_url
    )
    assert str(products["counts"]) in listed.stdout
    derived = _ctanb("query", "--obs-id", "23526", store_url=store_url)
    assert str(products["smoothed"]) in derived.stdout
    by_param = _ctanb("query", "--param", "radius_deg=0.1", store_url=store_url)
    assert "smooth-counts" in by_param.stdout
    provsap = _ctanb(
        "query",
        "--id",
        _prov_id(products["smoothed"]),
        "--depth",
        "ALL",
        "--format",
        "provn",
        store_url=store_url,
    )
    assert "hess_dl3_dr1_obs_id_023523" in provsap.stdout
    assert _ctanb("verify", str(products["smoothed"]), store_url=store_url).returncode == 0
    redone = _ctanb(
        "redo", str(products["smoothed"]), "--out", str(tmp_path / "cli-redo"), store_url=store_url
    )
    assert redone.returncode == 0 and "identical" in redone.stdout, redone.stdout + redone.stderr
    bare = _ctanb("show", str(tmp_path / "missing.fits"), store_url=store_url)
    assert (
        bare.returncode == 1 and "does not exist" in bare.stderr and "Traceback" not in bare.stderr
    )


def test_fast_fits_hash_equals_the_astropy_reading(
    data_dir: Path, products: dict[str, Path], monkeypatch: pytest.MonkeyPatch
):
    """The byte-level FITS reader behind ``fits_data_sha256`` must agree with astropy
    on every real file it may meet: DL3 releases (gzip, bundled IRFs), the CTA CALDB,
    MAGIC point-like files and ctanb's own products; and it must be what answers (a
    reader that always fell back to astropy would agree with astropy too)."""
    from ctanb.provenance import _hashing

    files = sorted((data_dir / "hess-dl3-dr1" / "data").glob("*.fits.gz"))[:6]
    files += sorted((data_dir / "magic").rglob("*.fits"))
    files += sorted((data_dir / "cta-1dc").rglob("*.fits"))
    files += sorted((data_dir / "cta-caldb").glob("*.fits.gz"))
    files += [p for p in products.values() if str(p).endswith(".fits")]
    assert len(files) >= 15
    expected = {path: _hashing._fits_data_sha256_astropy(path) for path in files}

    def no_fallback(path):
        raise AssertionError(f"fits_data_sha256 fell back to astropy for {path}")

    monkeypatch.setattr(_hashing, "_fits_data_sha256_astropy", no_fallback)
    for path in files:
        assert _hashing.fits_data_sha256(path) == expected[path], path


def test_a_file_used_twice_keeps_what_its_first_use_knew(
    store_url: str, hess_files: list[str], tmp_path: Path
):
    """H.E.S.S. bundles events and IRFs in one file: used as events (with its ObsCore
    row) and again as IRFs (no row), the entity keeps its publisher DID and keywords."""
    row = {
        "obs_id": "23523",
        "obs_publisher_did": "ivo://ctanb.archive/hess-dl3-dr1?23523",
        "dataproduct_subtype": "DL3-events",
        "reco_version": "test-reco",
    }
    with Activity("double-use", version="1") as act:
        first = act.used(hess_files[0], role="events", obscore=row)
        again = act.used(hess_files[0], role="irf")
    assert again is first or again.id == first.id
    entity = act.graph.entities[first.id]
    assert entity.publisher_did == row["obs_publisher_did"]
    assert entity.attributes["reco_version"] == "test-reco"
    assert [r.role for r in act.record.used if r.entity_id == first.id] == ["events", "irf"]
