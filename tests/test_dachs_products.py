"""Published products on DaCHS (issue 14): the same ADQL gives the same rows on both archives.

An archive of this module's own (a copy of the session archive) gets five products
through the real publish path: a counts map of H.E.S.S. DR1 run 23523 (Crab) and its
smoothed copy (``radius_deg = 0.1``), one analysis of crab-team; the Crab flux points of
the spectrum tutorial (notebooks/03: its search, its ``SpectrumConfig`` cell,
``SpectrumStep`` on the four H.E.S.S. Crab runs downloaded from the archive); and a counts
map and flux points (same step and configuration, on Vela X) of a proprietary simulated
run of vela-team (until 2028-03-31). Then ``deploy/dachs/up`` publishes that archive, and:

- ObsCore product searches (``dataproduct_type``, ``dataproduct_subtype``,
  ``calib_level``, every column) and the ProvTAP use cases (derived from run 23523, made
  with gammapy X, a parameter value, version 1.0 of a step) answer the same rows;
- the proprietary product's row is searchable, its file and provenance documents are
  refused without the group's credentials, and no provenance row of it is in the
  ``provenance`` tables (DaCHS has no per-user rows: it publishes what an anonymous
  user sees on the embedded archive; see ctanb/archive/dachs_prov.py);
- DataLink: ``#progenitor``, ``#provenance`` (PROV-JSON, PROV-XML, SVG), ``#coderived``
  from a product, ``#derivation`` from a run;
- the issue's "Done when" for the tutorial's flux points on DaCHS: their ObsCore row
  (type, subtype, energies from the file, times of the runs, target), "derived from run
  N" for each of the four runs (same rows as the embedded archive), DataLink both ways,
  ``ctanb prov redo`` of the DID from DaCHS by another user (empty ``CTANB_HOME``, no data
  folder) giving "identical", and the proprietary flux points refused without the group's
  credentials (file, documents, redo) and absent from the provenance tables.

Run under the DaCHS lock: ``flock /tmp/dachs.lock .venv/bin/python -m pytest
tests/test_dachs_products.py``. Fails, never skips, when DaCHS cannot be started.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import unquote

import pytest
import requests
from astropy.io.votable import parse_single_table

import ctanb

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))
import provenance_steps  # noqa: E402
from test_dachs import DACHS_PORT, DOWN, UP, _assert_same, _dachs_error, _table  # noqa: E402

RUN = 23523
#: The runs of the Crab spectrum tutorial (notebooks/03: the four public H.E.S.S. Crab runs).
TUTORIAL_RUNS = ["23523", "23526", "23559", "23592"]
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
        flux, crab_runs = _tutorial_flux_points(crab, folder / "crab-spectrum")
        vela_flux = _vela_flux_points(vela, vela_run, folder / "vela-spectrum")
        server.published = {
            "counts": crab.publish(counts, curation={"analysis": "crab-1"}).did,
            "smoothed": crab.publish(smoothed, curation={"analysis": "crab-1"}).did,
            "vela": vela.publish(vela_counts).did,
            "flux": crab.publish(flux, curation=FLUX_CURATION).did,
            "vela_flux": vela.publish(vela_flux, curation={"analysis": "vela-1"}).did,
            "crab_run": str(run.to_table()[0]["obs_publisher_did"]),
            "vela_run": str(vela_run.to_table()[0]["obs_publisher_did"]),
        }
        server.flux_file, server.crab_runs, server.cache = flux, crab_runs, folder / "cache"
        yield server


#: Curation of the tutorial's flux points (as notebooks/08 publishes its products).
FLUX_CURATION = {"title": "Crab Nebula flux points, 4 H.E.S.S. runs", "analysis": "crab-03",
                 "creator": "ctanb tutorial", "background_method": "reflected regions"}  # fmt: skip


def _tutorial_spectrum_config(position):
    """The ``SpectrumConfig`` of the Crab spectrum tutorial (notebooks/03), run from its cell
    (the tutorial's own code, so a change of the tutorial's configuration is followed)."""
    from ctanb.analysis import SpectrumConfig

    cells = json.loads((TESTS.parent / "notebooks" / "03_crab_spectrum.ipynb").read_text())
    (cell,) = ["".join(c["source"]) for c in cells["cells"] if c["cell_type"] == "code"
               and "config = SpectrumConfig(" in "".join(c["source"])]  # fmt: skip
    namespace = {"SpectrumConfig": SpectrumConfig, "crab_position": position, "print": len}
    exec(cell, namespace)  # the project's own tutorial cell, as the notebook runs it
    return namespace["config"]


def _tutorial_flux_points(crab, out: Path) -> tuple[Path, dict[str, str]]:
    """The Crab flux points of the tutorial: its search, its configuration, ``SpectrumStep``
    on the runs downloaded from the archive. Returns the file and {obs_id: run DID}."""
    from ctanb.analysis import SpectrumStep, inputs_from_archive

    runs = crab.search(target="Crab", radius=1.0, collection="HESS-DL3-DR1")  # the tutorial's
    table = runs.to_table()
    assert sorted(table["obs_id"]) == TUTORIAL_RUNS
    config = _tutorial_spectrum_config(crab.resolve("Crab"))
    result = SpectrumStep(config).run(inputs_from_archive(runs), out=out)
    ids = {str(o): str(d) for o, d in zip(table["obs_id"], table["obs_publisher_did"], strict=True)}
    return Path(result.products["flux_points"]), ids


def _vela_flux_points(vela, vela_run, out: Path) -> Path:
    """Flux points of a proprietary run of vela-team, same step and configuration, on Vela X."""
    from ctanb.analysis import SpectrumStep, inputs_from_archive

    row = vela_run.to_table()[0]
    config = _tutorial_spectrum_config(vela.resolve("Crab")).model_copy(
        update={"ra_deg": 128.287, "dec_deg": -45.19, "source": "Vela X"})  # fmt: skip
    assert abs(float(row["s_dec"]) + 45.19) < 3, "the proprietary run is not on Vela X"
    return Path(SpectrumStep(config).run(inputs_from_archive(vela_run), out=out)
                .products["flux_points"])  # fmt: skip


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
     "SELECT * FROM ivoa.obscore WHERE obs_collection = 'CTANB-PRODUCTS'", 5),
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
     "ON c.obs_publisher_did = o.obs_publisher_did", 5),
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
         WHERE g.obs_id = '{RUN}'""", {published["counts"], published["smoothed"], published["flux"]}),
        (f"made with gammapy {gammapy.__version__}", f"""
         SELECT DISTINCT e.obs_publisher_did FROM provenance.entity AS e
         JOIN provenance.wasgeneratedby AS g ON g.entity_id = e.id
         JOIN provenance.wasassociatedwith AS w ON w.activity_id = g.activity_id
         JOIN provenance.agent AS a ON a.id = w.agent_id
         WHERE a.name = 'gammapy' AND a.version = '{gammapy.__version__}'
         AND e.obs_publisher_did IS NOT NULL""",
         {published["counts"], published["smoothed"], published["flux"]}),
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
         {published["counts"], published["smoothed"], published["flux"]}),
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
    # At most as many (not equal: another client of the shared DaCHS may open some too).
    assert after - middle <= middle - before, f"{after - middle} connections for {adql}"
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


def _this_url(dachs_url: str, did: str) -> str:
    (url,) = [r["access_url"] for r in _links(dachs_url, did) if r["semantics"] == "#this"]
    return url


def test_datalink_goes_both_ways_on_dachs(embedded, dachs) -> None:
    published = embedded.published
    counts, smoothed, run = published["counts"], published["smoothed"], published["crab_run"]
    flux = published["flux"]
    sha = {did: sqlite3.connect(embedded.db).execute(
        "SELECT sha256 FROM \"ctanb.files\" WHERE did = ? AND semantics = '#this'", (did,)
    ).fetchone()[0] for did in (counts, smoothed, run, flux)}  # fmt: skip
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
        # Each archive gives its own file URL of an input: the embedded one /files/<DID>,
        # DaCHS the #this URL of its DataLink (the documents are otherwise the same text).
        served = re.sub(re.escape(embedded.url.rstrip("/")) + r"/files/((?:[\w%.~-]|&#45;)+)",
                        lambda m: _this_url(dachs, unquote(m.group(1).replace("&#45;", "-"))),
                        ours.text)  # fmt: skip
        if fmt == "PROV-JSON":
            assert resp.json() == json.loads(served)
        else:
            assert resp.text == served, fmt
    # from the run to the products made from it
    back = [r for r in _links(dachs, run) if r["semantics"] == "#derivation"]
    assert sorted(_sha(r["access_url"]) for r in back) == sorted([sha[counts], sha[smoothed],
                                                                    sha[flux]])  # fmt: skip
    vela = [r for r in _links(dachs, published["vela_run"]) if r["semantics"] == "#derivation"]
    assert len(vela) == 2  # the Vela map and the Vela flux points
    assert all("proprietary until 2028-03-31" in r["description"] for r in vela)


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


# --- the tutorial's Crab flux points (issue 14, "Done when") ----------------------------------
def test_the_tutorials_flux_points_have_their_obscore_row_on_dachs(embedded, dachs) -> None:
    from astropy.table import Table

    flux = embedded.published["flux"]
    adql = ("SELECT obs_publisher_did, dataproduct_type, dataproduct_subtype, calib_level, "
            "target_name, facility_name, energy_min, energy_max, em_min, em_max, t_min, t_max, "
            f"obs_title, spectral_model FROM ivoa.obscore WHERE obs_publisher_did = '{flux}'")  # fmt: skip
    assert _assert_same(embedded.url, dachs, adql, ordered=False) == 1
    (row,) = _table(dachs, adql)
    assert (str(row["dataproduct_type"]), str(row["dataproduct_subtype"])) == ("sed", "DL5-flux")
    assert "Crab" in str(row["target_name"]) and str(row["facility_name"]) == "H.E.S.S."
    assert str(row["obs_title"]) == FLUX_CURATION["title"]
    # the energies are the flux points' own bins, read from the file here
    points = Table.read(embedded.flux_file, hdu=1)
    e_min, e_max = points["e_min"].quantity.min(), points["e_max"].quantity.max()
    assert float(row["energy_min"]) == pytest.approx(e_min.to_value("TeV"), rel=1e-5)
    assert float(row["energy_max"]) == pytest.approx(e_max.to_value("TeV"), rel=1e-5)
    hc = 1.2398419843320026e-06  # eV m
    assert float(row["em_max"]) == pytest.approx(hc / e_min.to_value("eV"), rel=1e-5)
    assert float(row["em_min"]) == pytest.approx(hc / e_max.to_value("eV"), rel=1e-5)
    # and the times of the tutorial's runs
    runs = _table(dachs, "SELECT MIN(t_min) AS t0, MAX(t_max) AS t1 FROM ivoa.obscore WHERE "
                  "obs_publisher_did IN ('" + "', '".join(embedded.crab_runs.values()) + "')")  # fmt: skip
    assert float(row["t_min"]) == pytest.approx(float(runs["t0"][0]), abs=1e-6)
    assert float(row["t_max"]) == pytest.approx(float(runs["t1"][0]), abs=1e-6)


def _derived_from(obs_id: str) -> list[tuple[str, str]]:
    """ "Derived from run N" as the tutorial asks it, and through the derivation relations."""
    return [
        ("whole lineage", f"""SELECT o.obs_publisher_did, o.dataproduct_subtype
         FROM ivoa.obscore AS o JOIN provenance.product_progenitor AS p
         ON p.product_did = o.obs_publisher_did WHERE p.obs_id = '{obs_id}'"""),
        ("activities using the run", f"""SELECT DISTINCT e.obs_publisher_did, a.name
         FROM provenance.entity AS r JOIN provenance.used AS u ON u.entity_id = r.id
         JOIN provenance.activity AS a ON a.id = u.activity_id
         JOIN provenance.wasgeneratedby AS g2 ON g2.activity_id = a.id
         JOIN provenance.entity AS d ON d.id = g2.entity_id
         JOIN provenance.used AS u2 ON u2.entity_id = d.id
         JOIN provenance.wasgeneratedby AS g ON g.activity_id = u2.activity_id
         JOIN provenance.entity AS e ON e.id = g.entity_id
         WHERE r.obs_id = '{obs_id}' AND e.obs_publisher_did IS NOT NULL"""),
    ]  # fmt: skip


@pytest.mark.parametrize("obs_id", TUTORIAL_RUNS)
def test_the_tutorials_flux_points_are_derived_from_each_run_on_both(embedded, dachs, obs_id):
    flux = embedded.published["flux"]
    for name, adql in _derived_from(obs_id):
        assert _assert_same(embedded.url, dachs, adql, ordered=False) > 0, name
        got = {str(d) for d in _table(dachs, adql)["obs_publisher_did"]}
        assert flux in got, f"{name}: run {obs_id} gives {got}"
        assert embedded.published["vela_flux"] not in got
    # the tutorial's parameters are plain ADQL as well
    adql = """SELECT a.id, a.name, p.name AS pname, p."value" FROM provenance.activity AS a
        JOIN provenance.parameter AS p ON p.activity_id = a.id
        WHERE p.name = 'on_radius_deg' AND p."value" = '0.11'"""
    assert _assert_same(embedded.url, dachs, adql, ordered=False) >= 1


def test_the_tutorials_flux_points_link_both_ways_on_dachs(embedded, dachs) -> None:
    flux = embedded.published["flux"]
    with sqlite3.connect(embedded.db) as conn:
        sha = dict(conn.execute(
            "SELECT did, sha256 FROM \"ctanb.files\" WHERE semantics = '#this' AND did IN "
            f"({', '.join('?' * 5)})", [flux, *embedded.crab_runs.values()]).fetchall())  # fmt: skip
    links = _links(dachs, flux)
    progenitors = [_sha(r["access_url"]) for r in links if r["semantics"] == "#progenitor"]
    assert sorted(progenitors) == sorted(sha[d] for d in embedded.crab_runs.values())
    assert [_sha(r["access_url"]) for r in links if r["semantics"] == "#this"] == [sha[flux]]
    assert len([r for r in links if r["semantics"] == "#provenance"]) == 3
    for obs_id, run in embedded.crab_runs.items():
        back = [
            _sha(r["access_url"]) for r in _links(dachs, run) if r["semantics"] == "#derivation"
        ]
        assert sha[flux] in back, f"run {obs_id} does not link to the flux points"


def _ctanb(*args: str, home: Path, **env: str) -> subprocess.CompletedProcess:
    """The ``ctanb`` command of another user: an empty home, no data folder."""
    return subprocess.run([str(Path(sys.executable).with_name("ctanb")), *args],
                          capture_output=True, text=True, timeout=600, check=False,
                          env={**os.environ, "CTANB_HOME": str(home), **env})  # fmt: skip


def test_another_user_redoes_the_tutorials_flux_points_from_dachs(embedded, dachs, tmp_path):
    """From the DID and DaCHS's URL only: the product and its four runs come from DaCHS."""
    empty = tmp_path / "no-data"
    empty.mkdir()
    # The maker's downloads (the inputs' recorded locations) are not on the other machine.
    away = embedded.cache.with_name("cache-away")
    embedded.cache.rename(away)
    try:
        out = tmp_path / "redo"
        done = _ctanb("prov", "redo", embedded.published["flux"], "--out", str(out),
                      "--archive", dachs, home=tmp_path / "other-user", CTANB_DATA=str(empty),
                      CTANB_TOKEN="", CTANB_TAP_URL="")  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        assert "identical" in done.stdout.lower(), done.stdout
        assert "inputs (checked by sha256): 4 from the archive" in done.stdout, done.stdout
        assert "spectrum-datasets" in done.stdout and "spectrum-fit" in done.stdout
        assert (out / "original").is_dir()
        # a product of proprietary runs: refused without the group's credentials, in one line
        refused = _ctanb("prov", "redo", embedded.published["vela_flux"], "--out",
                         str(tmp_path / "r2"), "--archive", dachs, home=tmp_path / "other-user",
                         CTANB_DATA=str(empty), CTANB_TOKEN="")  # fmt: skip
        assert refused.returncode == 1
        assert "proprietary until 2028-03-31" in refused.stderr, refused.stderr
        assert "vela-team" in refused.stderr and "Traceback" not in refused.stderr
        assert not list((tmp_path / "r2").rglob("*.fits"))
        # and redone by a member of the group, with its DaCHS credentials
        member = _ctanb("prov", "redo", embedded.published["vela_flux"], "--out",
                        str(tmp_path / "r3"), "--archive", dachs, home=tmp_path / "member",
                        CTANB_DATA=str(empty), CTANB_TOKEN=":".join(VELA))  # fmt: skip
        assert member.returncode == 0, member.stdout + member.stderr
        assert "identical" in member.stdout.lower(), member.stdout
        assert re.search(r"checked by sha256\): \d+ from the archive", member.stdout), member.stdout
    finally:
        away.rename(embedded.cache)


def test_the_proprietary_flux_points_are_searchable_and_refused_on_dachs(embedded, dachs):
    did = embedded.published["vela_flux"]
    (row,) = _table(dachs, "SELECT data_rights, dataproduct_subtype FROM ivoa.obscore "
                           f"WHERE obs_publisher_did = '{did}'")  # fmt: skip
    assert (str(row["data_rights"]), str(row["dataproduct_subtype"])) == ("proprietary", "DL5-flux")
    links = [r for r in _links(dachs, did) if r["semantics"] in ("#this", "#provenance")]
    assert len(links) == 4
    for link in links:
        url = link["access_url"]
        assert requests.get(url, timeout=60).status_code in (401, 403), url
        assert requests.get(url, auth=CRAB, timeout=60).status_code in (401, 403), url
        assert requests.get(url, auth=VELA, timeout=60).status_code == 200, url
    for table, column in (("entity", "obs_publisher_did"), ("product_progenitor", "product_did")):
        rows = _table(dachs, f"SELECT * FROM provenance.{table} WHERE {column} = '{did}'")
        assert len(rows) == 0, f"the proprietary flux points' provenance leaks from {table}"


def test_the_locations_in_dachs_provenance_documents_are_its_own_files(embedded, dachs):
    """A reader of DaCHS's PROV-JSON / PROV-XML / SVG gets URLs of that DaCHS, which give the
    recorded bytes (the embedded archive serves its own URLs the same way)."""
    base = dachs.rsplit("/tap", 1)[0] + "/"
    flux = embedded.published["flux"]
    docs = {r["content_type"]: r["access_url"] for r in _links(dachs, flux)
            if r["semantics"] == "#provenance"}  # fmt: skip
    for ctype, url in docs.items():
        text = requests.get(url, timeout=60).text
        assert "$BASE" not in text, f"{ctype}: archive-neutral placeholders left"
    record = requests.get(docs["application/json"], timeout=60).json()
    # PROV-JSON gives an entity as one set of attributes, or a list of them
    entities = [a for e in record["entity"].values() for a in (e if isinstance(e, list) else [e])]
    located = {e["prov:location"]: e.get("ctanb:sha256") for e in entities
               if str(e.get("prov:location", "")).startswith("http")}  # fmt: skip
    assert len(located) == len(TUTORIAL_RUNS), located
    for url, sha in located.items():
        assert url.startswith(base + "getproduct/"), url
        assert _sha(url) == sha, f"{url} does not give the recorded file"
        assert url in requests.get(docs["application/xml"], timeout=60).text
    # ProvTAP's entity locations are the same URLs
    rows = _table(dachs, "SELECT location, content_sha256 FROM provenance.entity "
                         f"WHERE location LIKE '{base}%'")  # fmt: skip
    assert {str(u): str(h) for u, h in zip(rows["location"], rows["content_sha256"], strict=True)
            if str(u) in located} == located  # fmt: skip
    assert all(_sha(str(u)) == str(h) for u, h in zip(rows["location"], rows["content_sha256"],
                                                         strict=True))  # fmt: skip


def test_exported_documents_and_entities_name_dachs_files(embedded, tmp_path) -> None:
    """The export itself (no DaCHS needed): with DaCHS's server URL, no ``$BASE`` is left in
    the documents or the entity rows; each input is DaCHS's getproduct URL of its file."""
    from ctanb.archive.dachs_rd import _accref, export_rows

    server = "http://dachs.invalid:9"
    export_rows(embedded.db, tmp_path / "data", mirror_dir=tmp_path / "mirror",
                server_url=server)  # fmt: skip
    with sqlite3.connect(embedded.db) as conn:
        path = dict(conn.execute("SELECT did, path FROM \"ctanb.files\" WHERE semantics = '#this'"))
    want = {f"{server}/getproduct/{_accref(path[d])}" for d in embedded.crab_runs.values()}
    documents = sorted((tmp_path / "mirror" / "provenance").rglob("provenance.*"))
    assert len(documents) == 3 * 5  # PROV-JSON, PROV-XML and SVG of the five products
    every = {f"{server}/getproduct/{_accref(p)}" for p in path.values()}
    for doc in documents:
        text = doc.read_text(encoding="utf-8")
        assert "$BASE" not in text, doc
        # every location is a file of DaCHS (all inputs here have one)
        urls = set(re.findall(re.escape(server) + r"/[^\s\\\"'<>&,\]]*", text))
        assert urls <= every, f"{doc.name}: {sorted(urls - every)}"
    flux = [d.suffix for d in documents if all(u in d.read_text() for u in want)]
    assert sorted(flux) == [".json", ".svg", ".xml"], "the flux points' documents lack their runs"
    entities = (tmp_path / "data" / "prov_entity.copy").read_text(encoding="utf-8")
    assert "$BASE" not in entities and all(u in entities for u in want)
