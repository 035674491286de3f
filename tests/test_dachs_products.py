"""Published products on DaCHS (issue 14): the same ADQL gives the same rows on both archives.

An archive of this module's own (a copy of the session archive) gets three products
through the real publish path: a counts map of H.E.S.S. DR1 run 23523 (Crab) and its
smoothed copy (``radius_deg = 0.1``), one analysis of crab-team; and a counts map of a
proprietary simulated run of vela-team (until 2028-03-31). Then ``deploy/dachs/up``
publishes that archive, and:

- ObsCore product searches (``dataproduct_type``, ``dataproduct_subtype``,
  ``calib_level``, every column) and the ProvTAP use cases (derived from run 23523, made
  with gammapy X, a parameter value, version 1.0 of a step) answer the same rows;
- the proprietary product's row is searchable, its file and provenance documents are
  refused without the group's credentials, and no provenance row of it is in the
  ``provenance`` tables (DaCHS has no per-user rows: it publishes what an anonymous
  user sees on the embedded archive; see ctanb/archive/dachs_prov.py);
- DataLink: ``#progenitor``, ``#provenance`` (PROV-JSON, PROV-XML, SVG), ``#coderived``
  from a product, ``#derivation`` from a run.

Run under the DaCHS lock: ``flock /tmp/dachs.lock .venv/bin/python -m pytest
tests/test_dachs_products.py``. Fails, never skips, when DaCHS cannot be started.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from astropy.io.votable import parse_single_table

import ctanb
from ctanb.archive.db import ACCESS_URL_BASE

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))
import provenance_steps  # noqa: E402
from test_dachs import DACHS_PORT, DOWN, UP, _assert_same, _dachs_error, _table  # noqa: E402

RUN = 23523
CRAB = ("crab-team", "demo-token-crab")
VELA = ("vela-team", "demo-token-vela")


@pytest.fixture(scope="module")
def embedded(tmp_path_factory, archive_db):
    """A copy of the session archive on its own port, with three published products."""
    from test_publish import sim_counts

    from ctanb.archive.policy import AccessPolicy
    from ctanb.archive.service import ArchiveServer

    folder = tmp_path_factory.mktemp("dachs-products")
    copy = folder / "archive.db"
    src, dst = sqlite3.connect(archive_db), sqlite3.connect(copy)
    src.backup(dst)
    src.close()
    dst.close()
    with ArchiveServer(copy, policy=AccessPolicy.demo()) as server:
        crab = ctanb.connect(server.url, token=CRAB[1], progress=False, record_history=False)
        crab.downloads.cache_dir = folder / "cache"
        run = crab.query(f"SELECT * FROM ivoa.obscore WHERE obs_id = '{RUN}' "
                         "AND obs_collection = 'HESS-DL3-DR1'")  # fmt: skip
        (event_file,) = crab.download(run)
        counts, smoothed = folder / "crab_counts.fits", folder / "crab_smoothed.fits"
        provenance_steps.CountsMapStep().run([str(event_file)], str(counts))
        provenance_steps.smooth_counts_map(str(counts), str(smoothed), radius_deg=0.1)
        vela = ctanb.connect(server.url, token=VELA[1], progress=False, record_history=False)
        vela.downloads.cache_dir = folder / "cache"
        vela_run = vela.query("SELECT TOP 1 * FROM ivoa.obscore "
                              "WHERE proposal_id = 'CTAO-2026A-001' ORDER BY obs_id")  # fmt: skip
        (vela_file,) = vela.download(vela_run)
        vela_counts = folder / "vela_counts.fits"
        sim_counts(str(vela_file), str(vela_counts))
        server.published = {
            "counts": crab.publish(counts, curation={"analysis": "crab-1"}).did,
            "smoothed": crab.publish(smoothed, curation={"analysis": "crab-1"}).did,
            "vela": vela.publish(vela_counts).did,
            "crab_run": str(run.to_table()[0]["obs_publisher_did"]),
            "vela_run": str(vela_run.to_table()[0]["obs_publisher_did"]),
        }
        yield server


@pytest.fixture(scope="module")
def dachs(embedded) -> str:
    """TAP URL of DaCHS publishing the archive with the products (deploy/dachs/up)."""
    if os.geteuid() != 0:
        pytest.fail("deploy/dachs/up needs root (it installs packages and runs DaCHS)")
    env = {**os.environ, "DACHS_PORT": str(DACHS_PORT)}
    proc = subprocess.run(["bash", str(UP), "--db", str(embedded.db)], capture_output=True,
                          text=True, env=env, timeout=1800, check=False)  # fmt: skip
    if proc.returncode != 0:
        pytest.fail(f"deploy/dachs/up failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    yield proc.stdout.strip().splitlines()[-1]
    subprocess.run(["bash", str(DOWN)], capture_output=True, check=False)


def _links(dachs_url: str, did: str, auth: tuple[str, str] | None = None) -> list[dict]:
    base = dachs_url.rsplit("/tap", 1)[0]
    resp = requests.get(f"{base}/ctanb/q/dl/dlmeta", params={"ID": did}, auth=auth, timeout=60)
    assert resp.status_code == 200, resp.text[:300]
    table = parse_single_table(io.BytesIO(resp.content)).to_table()
    return [{k: (str(r[k]) if k != "content_length" else r[k]) for k in table.colnames}
            for r in table]  # fmt: skip


# --- ObsCore: product rows ------------------------------------------------------------------
PRODUCT_QUERIES = [
    ("every column of every product",
     "SELECT * FROM ivoa.obscore WHERE obs_collection = 'CTANB-PRODUCTS'", 3),
    ("images at calib_level 3", "SELECT obs_publisher_did, dataproduct_type, calib_level, "
     "target_name, s_ra, s_dec, energy_min, energy_max, em_min, em_max FROM ivoa.obscore "
     "WHERE dataproduct_type = 'image' AND calib_level = 3", 3),
    ("DL4 by subtype", "SELECT obs_publisher_did, dataproduct_subtype, data_rights, "
     "obs_release_date, facility_name, instrument_name, reco_version, calib_version "
     "FROM ivoa.obscore WHERE dataproduct_subtype LIKE 'DL4-%' ORDER BY dataproduct_subtype, "
     "obs_publisher_did", 3),
    ("smoothed maps in a cone", "SELECT obs_publisher_did, obs_title FROM ivoa.obscore WHERE "
     "dataproduct_subtype = 'DL4-smoothed' AND "
     "1=CONTAINS(POINT('ICRS', s_ra, s_dec), CIRCLE('ICRS', 83.633, 22.014, 1))", 1),
    ("products and curation", "SELECT o.obs_publisher_did, c.publisher, c.analysis, c.version "
     "FROM ivoa.obscore AS o JOIN products.curation AS c "
     "ON c.obs_publisher_did = o.obs_publisher_did", 3),
]  # fmt: skip


@pytest.mark.parametrize(("name", "adql", "n"), PRODUCT_QUERIES,
                         ids=[q[0] for q in PRODUCT_QUERIES])  # fmt: skip
def test_product_rows_answer_alike(embedded, dachs, name, adql, n) -> None:
    assert _assert_same(embedded.url, dachs, adql, "ORDER BY" in adql) == n


# --- ProvTAP ----------------------------------------------------------------------------------
def _use_cases(published: dict[str, str]) -> list[tuple[str, str, set[str] | int]]:
    """(name, ADQL, expected DIDs or row count): the issue's use cases as plain ADQL."""
    import gammapy

    return [
        ("derived from run 23523 (direct)", f"""
         SELECT DISTINCT p.obs_publisher_did FROM provenance.entity AS p
         JOIN provenance.wasderivedfrom AS d ON d.generated_entity_id = p.id
         JOIN provenance.entity AS r ON r.id = d.used_entity_id
         WHERE r.obs_id = '{RUN}' AND p.obs_publisher_did LIKE 'ivo://ctanb.archive/products%'""",
         {published["counts"]}),
        ("derived from run 23523 (whole lineage)", f"""
         SELECT o.obs_publisher_did, o.dataproduct_subtype FROM ivoa.obscore AS o
         JOIN provenance.product_progenitor AS g ON g.product_did = o.obs_publisher_did
         WHERE g.obs_id = '{RUN}'""", {published["counts"], published["smoothed"]}),
        (f"made with gammapy {gammapy.__version__}", f"""
         SELECT DISTINCT e.obs_publisher_did FROM provenance.entity AS e
         JOIN provenance.wasgeneratedby AS g ON g.entity_id = e.id
         JOIN provenance.wasassociatedwith AS w ON w.activity_id = g.activity_id
         JOIN provenance.agent AS a ON a.id = w.agent_id
         WHERE a.name = 'gammapy' AND a.version = '{gammapy.__version__}'
         AND e.obs_publisher_did IS NOT NULL""", {published["counts"], published["smoothed"]}),
        ("activities with radius_deg = 0.1", """
         SELECT a.id, a.name, p."value" FROM provenance.activity AS a
         JOIN provenance.parameter AS p ON p.activity_id = a.id
         WHERE p.name = 'radius_deg' AND p."value" = '0.1'""", 1),
        ("made by version 1.0 of counts-map", """
         SELECT DISTINCT e.id, e.obs_publisher_did FROM provenance.activity AS a
         JOIN provenance.activity_description AS d ON d.id = a.activity_description_id
         JOIN provenance.wasgeneratedby AS g ON g.activity_id = a.id
         JOIN provenance.entity AS e ON e.id = g.entity_id
         WHERE d.name = 'counts-map' AND d.version = '1.0'""", {published["counts"]}),
        # The search form's criteria over the whole lineage (ctanb.client._product_criteria):
        # the smoothed map is found by the step and the parameter of its input's activity.
        ("criteria: counts-map 1.0 anywhere in the lineage",
         _criteria_adql(step="counts-map", step_version="1.0"),
         {published["counts"], published["smoothed"]}),
        ("criteria: binsz_deg = 0.05 anywhere in the lineage",
         _criteria_adql(parameter="binsz_deg = 0.05"),
         {published["counts"], published["smoothed"]}),
        ("criteria: radius_deg = 0.1 anywhere in the lineage",
         _criteria_adql(parameter="radius_deg = 0.1"), {published["smoothed"]}),
        (f"criteria: gammapy {gammapy.__version__} anywhere in the lineage",
         _criteria_adql(software="gammapy", software_version=gammapy.__version__),
         {published["counts"], published["smoothed"]}),
        ("every parameter of every activity", """
         SELECT p.id, p.activity_id, p.name, p."value" FROM provenance.parameter AS p""", 0),
        ("every entity", "SELECT * FROM provenance.entity", 0),
        ("every relation", """SELECT u.activity_id, u.entity_id, u.role, g.entity_id AS gen
         FROM provenance.used AS u JOIN provenance.wasgeneratedby AS g
         ON g.activity_id = u.activity_id""", 0),
        ("no row of the proprietary product", f"""
         SELECT id FROM provenance.entity
         WHERE obs_publisher_did = '{published['vela']}'""", 0),
        ("no activity of the proprietary product", """
         SELECT id FROM provenance.activity WHERE name = 'test-sim-counts'""", 0),
    ]  # fmt: skip


def _criteria_adql(**criteria) -> str:
    from ctanb.client.criteria import build_adql

    return build_adql(ctanb.Criteria(**criteria))


def test_provtap_use_cases_answer_alike(embedded, dachs) -> None:
    for name, adql, expected in _use_cases(embedded.published):
        n = _assert_same(embedded.url, dachs, adql, ordered=False)
        if isinstance(expected, set):
            got = {str(d) for d in _table(dachs, adql)["obs_publisher_did"]}
            assert got == expected, f"{name}: {got}"
        elif expected:
            assert n == expected, f"{name}: {n} rows"
        elif "proprietary" in name:
            assert n == 0, f"{name}: the proprietary product's provenance leaks"
        else:
            assert n > 0, f"{name}: selects nothing, so it proves nothing"


def _gavo_sessions() -> int:
    """PostgreSQL sessions opened so far to DaCHS's database ``gavo``."""
    time.sleep(1.5)  # ended backends have reported their statistics
    out = subprocess.run(["runuser", "-u", "postgres", "--", "psql", "-qtA", "-d", "postgres", "-c",
                          "SELECT sessions FROM pg_stat_database WHERE datname = 'gavo'"],
                         capture_output=True, text=True, check=True)  # fmt: skip
    return int(out.stdout)


@pytest.mark.parametrize("criteria", [
    {"derived_from_run": str(RUN)},
    {"software": "gammapy"},
    {"step": "smooth-counts"},
    {"parameter": "radius_deg = 0.1"},
])  # fmt: skip
def test_a_product_search_costs_dachs_no_more_connections_than_a_plain_one(embedded, dachs,
                                                                           criteria) -> None:  # fmt: skip
    """DaCHS 2.7 opens a PostgreSQL connection per TAP query, plus one per correlation
    name (``AS p``) in it (~10 ms of CPU each): ctanb's provenance criteria name tables in
    full, so a product search costs what a plain ObsCore search does."""
    from ctanb.client.criteria import Criteria, build_adql

    adql = build_adql(Criteria(**criteria), columns=["obs_publisher_did"])
    plain = "SELECT obs_publisher_did FROM ivoa.obscore WHERE calib_level = 3"
    _table(dachs, adql)  # DaCHS has the tables' resource descriptors loaded
    before = _gavo_sessions()
    _table(dachs, plain)
    middle = _gavo_sessions()
    found = {str(d) for d in _table(dachs, adql)["obs_publisher_did"]}
    after = _gavo_sessions()
    assert after - middle == middle - before, f"{after - middle} connections for {adql}"
    assert found and found == {str(d) for d in _table(embedded.url, adql)["obs_publisher_did"]}


def test_provenance_tables_are_listed_on_dachs(dachs) -> None:
    from ctanb.archive.provtap import _EXTENSION, PROVTAP_TABLES

    rows = _table(dachs, "SELECT table_name, column_name FROM TAP_SCHEMA.columns "
                         "WHERE table_name LIKE 'provenance.%'")  # fmt: skip
    got = {(str(t), str(c).strip('"')) for t, c in zip(rows["table_name"], rows["column_name"],
                                                         strict=True)}  # fmt: skip
    want = {(f"provenance.{t}", c[0]) for t, (_, cols) in {**PROVTAP_TABLES, **_EXTENSION}.items()
            for c in cols}  # fmt: skip
    assert want <= got, f"missing on DaCHS: {sorted(want - got)}"


# --- rights -----------------------------------------------------------------------------------
def test_a_proprietary_product_is_searchable_and_refused(embedded, dachs) -> None:
    did = embedded.published["vela"]
    rows = _table(dachs, f"SELECT data_rights, obs_release_date FROM ivoa.obscore "
                         f"WHERE obs_publisher_did = '{did}'")  # fmt: skip
    assert len(rows) == 1 and str(rows[0]["data_rights"]) == "proprietary"
    links = _links(dachs, did)
    this = [r for r in links if r["semantics"] == "#this"]
    docs = [r for r in links if r["semantics"] == "#provenance"]
    assert len(this) == 1 and len(docs) == 3
    for link in this + docs:
        assert "proprietary until 2028-03-31" in link["description"], link
        url = link["access_url"]
        assert requests.get(url, timeout=60).status_code in (401, 403), url
        assert requests.get(url, auth=CRAB, timeout=60).status_code in (401, 403), url
        ok = requests.get(url, auth=VELA, timeout=60)
        assert ok.status_code == 200, f"{url}: HTTP {ok.status_code}"
    # the group's credentials read its provenance document, but not rows in ADQL
    doc = requests.get(next(r["access_url"] for r in docs if "json" in r["content_type"]),
                       auth=VELA, timeout=60).json()  # fmt: skip
    assert "test-sim-counts" in json.dumps(doc["activity"])
    adql = f"SELECT id FROM provenance.entity WHERE obs_publisher_did = '{did}'"
    resp = requests.post(f"{dachs}/sync", auth=VELA, timeout=60,
                         data={"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": adql})  # fmt: skip
    assert len(parse_single_table(io.BytesIO(resp.content)).to_table()) == 0


# --- DataLink ---------------------------------------------------------------------------------
def _sha(url: str, auth=None) -> str:
    resp = requests.get(url, auth=auth, timeout=120)
    assert resp.status_code == 200, f"{url}: HTTP {resp.status_code}"
    return hashlib.sha256(resp.content).hexdigest()


def test_datalink_goes_both_ways_on_dachs(embedded, dachs) -> None:
    published = embedded.published
    counts, smoothed, run = published["counts"], published["smoothed"], published["crab_run"]
    sha = {did: sqlite3.connect(embedded.db).execute(
        "SELECT sha256 FROM \"ctanb.files\" WHERE did = ? AND semantics = '#this'", (did,)
    ).fetchone()[0] for did in (counts, smoothed, run)}  # fmt: skip
    links = _links(dachs, counts)
    by: dict[str, list[dict]] = {}
    for link in links:
        by.setdefault(link["semantics"], []).append(link)
    assert [_sha(r["access_url"]) for r in by["#progenitor"]] == [sha[run]]
    assert [_sha(r["access_url"]) for r in by["#coderived"]] == [sha[smoothed]]
    assert [_sha(r["access_url"]) for r in by["#this"]] == [sha[counts]]
    assert sorted(r["content_type"] for r in by["#provenance"]) == [
        "application/json", "application/xml", "image/svg+xml"]  # fmt: skip
    # the documents are the embedded archive's ProvSAP DEPTH=ALL answers
    for link in by["#provenance"]:
        fmt = {"application/json": "PROV-JSON", "application/xml": "PROV-XML",
               "image/svg+xml": "SVG"}[link["content_type"]]  # fmt: skip
        resp = requests.get(link["access_url"], timeout=60)
        assert resp.status_code == 200 and resp.headers["content-type"].startswith(
            link["content_type"])  # fmt: skip
        ours = requests.get(f"{embedded.url}/provsap", timeout=60,
                            params={"ID": counts, "DEPTH": "ALL", "RESPONSEFORMAT": fmt})  # fmt: skip
        # The embedded archive fills its file URLs in when it serves; the documents on
        # DaCHS keep the archive-neutral $BASE/files/<DID> (DaCHS's own file URLs are
        # not known when the documents are written).
        served = ours.text.replace(embedded.url.rstrip("/") + "/", ACCESS_URL_BASE)
        if fmt == "PROV-JSON":
            assert resp.json() == json.loads(served)
        else:
            assert resp.text == served, fmt
    # from the run to the products made from it
    back = [r for r in _links(dachs, run) if r["semantics"] == "#derivation"]
    assert sorted(_sha(r["access_url"]) for r in back) == sorted([sha[counts], sha[smoothed]])
    vela = [r for r in _links(dachs, published["vela_run"]) if r["semantics"] == "#derivation"]
    assert len(vela) == 1 and "proprietary until 2028-03-31" in vela[0]["description"]


# --- bad input --------------------------------------------------------------------------------
@pytest.mark.parametrize("adql", [
    "SELECT colour FROM provenance.activity",
    "SELECT a.id FROM provenance.activity AS a JOIN provenance.parameter AS p "
    "ON p.activity_id = a.id WHERE p.colour = 'red'",
    "SELECT id FROM provenance.activities",
])  # fmt: skip
def test_bad_columns_of_provenance_tables_are_named_on_dachs(dachs, adql) -> None:
    archive = ctanb.connect(dachs, token="", progress=False, record_history=False)
    with pytest.raises(ctanb.QueryError) as caught:
        archive.query(adql)
    word = "activities" if "activities" in adql else "colour"
    assert word in str(caught.value) and "Traceback" not in str(caught.value)
    assert word in _dachs_error(dachs, adql)


def test_generated_rds_have_every_provtap_table_and_column() -> None:
    """The provenance RD follows ctanb.archive.provtap (no DaCHS needed for this one)."""
    from ctanb.archive.dachs_prov import render_curation_rd, render_prov_rd
    from ctanb.archive.provtap import _EXTENSION, PROVTAP_TABLES
    from ctanb.archive.publish import CURATION_COLUMNS

    rd = render_prov_rd()
    assert '<resource schema="provenance"' in rd
    for table, (_, cols) in {**PROVTAP_TABLES, **_EXTENSION}.items():
        assert f'<table id="{table}" onDisk="True" adql="True">' in rd
        for name, *_ in cols:
            dachs_name = "quoted/value" if name == "value" else name
            assert f'<column name="{dachs_name}" type="text"' in rd, (table, name)
    curation = render_curation_rd()
    assert '<resource schema="products"' in curation
    assert all(f'<column name="{n}"' in curation for n, _, _ in CURATION_COLUMNS)
