"""Products go back to the archive (issue 14), over real HTTP on an archive of this module's
own (a copy of the session archive, so other tests never see these publications):
publish with its checks and refusals, ObsCore rows, inherited rights, DataLink both ways,
ProvTAP tables, ProvSAP and redo by another user from a DID."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from astropy.io import fits
from astropy.io.votable import parse_single_table

import ctanb
from ctanb.provenance import recorded

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))
import provenance_steps  # noqa: E402

RUN = 23523
VELA_TOKEN = "demo-token-vela"
CRAB_TOKEN = "demo-token-crab"


@recorded(name="test-sim-counts", version="1.0", inputs=["event_file"],
          outputs={"out": "counts"}, data_level="DL4")  # fmt: skip
def sim_counts(event_file: str, out: str) -> None:
    """A counts map around the pointing of a simulated CTAO run (for the rights tests)."""
    import astropy.units as u
    from gammapy.data import EventList
    from gammapy.maps import Map, MapAxis, WcsGeom

    events = EventList.read(event_file)
    axis = MapAxis.from_energy_edges([0.1, 100] * u.TeV, name="energy")
    geom = WcsGeom.create(skydir=events.pointing_radec, width=2 * u.deg, binsz=0.1, axes=[axis])
    counts = Map.from_geom(geom)
    counts.fill_events(events)
    counts.write(out, overwrite=True)


@pytest.fixture(scope="module")
def own(tmp_path_factory, archive_db):
    """A copy of the session archive, served on its own ephemeral port (demo policy)."""
    from ctanb.archive.policy import AccessPolicy
    from ctanb.archive.service import ArchiveServer

    folder = tmp_path_factory.mktemp("own-archive")
    copy = folder / "archive.db"
    src = sqlite3.connect(archive_db)
    dst = sqlite3.connect(copy)
    src.backup(dst)
    src.close()
    dst.close()
    with ArchiveServer(copy, policy=AccessPolicy.demo()) as server:
        yield server


def _query(url: str, adql: str, token: str | None = None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    resp = requests.post(f"{url}/sync", data={"REQUEST": "doQuery", "LANG": "ADQL",
                                              "QUERY": adql}, headers=headers, timeout=60)  # fmt: skip
    assert resp.status_code == 200, resp.text
    return parse_single_table(io.BytesIO(resp.content)).to_table()


def _count(db: Path, sql: str, *args) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, args).fetchone()[0]


def _state_counts(db: Path) -> tuple:
    """Rows a publication writes, and files in the products folder."""
    files = list((db.parent / "products").glob("*")) if (db.parent / "products").exists() else []
    return (
        _count(db, "SELECT COUNT(*) FROM \"ivoa.obscore\" WHERE obs_collection='CTANB-PRODUCTS'"),
        _count(db, 'SELECT COUNT(*) FROM "ctanb.curation"'),
        _count(db, 'SELECT COUNT(*) FROM "ctanb.prov_entity"'),
        _count(db, 'SELECT COUNT(*) FROM "ctanb.product_inputs"'),
        len(files),
    )


@pytest.fixture(scope="module")
def maker_home(tmp_path_factory) -> Path:
    """The maker's CTANB_HOME for downloads (removed later to play another machine)."""
    return tmp_path_factory.mktemp("maker-home")


@pytest.fixture(scope="module")
def crab_event(own, maker_home) -> Path:
    old = os.environ["CTANB_HOME"]
    os.environ["CTANB_HOME"] = str(maker_home)
    try:
        archive = ctanb.connect(own.url)
        rows = archive.query(
            f"SELECT * FROM ivoa.obscore WHERE obs_id = '{RUN}' AND obs_collection = 'HESS-DL3-DR1'"
        )
        (event_file,) = archive.download(rows)
    finally:
        os.environ["CTANB_HOME"] = old
    assert str(event_file).startswith(str(maker_home))
    return Path(event_file)


@pytest.fixture(scope="module")
def crab_counts(crab_event, tmp_path_factory) -> Path:
    """A real, signed counts map of run 23523 made from the archive's download."""
    out = tmp_path_factory.mktemp("made") / "crab_counts.fits"
    provenance_steps.CountsMapStep().run([str(crab_event)], str(out))
    return out


@pytest.fixture(scope="module")
def crab_smoothed(crab_counts) -> Path:
    out = crab_counts.with_name("crab_smoothed.fits")
    provenance_steps.smooth_counts_map(str(crab_counts), str(out), radius_deg=0.1)
    return out


@pytest.fixture(scope="module")
def vela_counts(own, tmp_path_factory) -> Path:
    """A counts map of a proprietary Vela run (vela-team until 2028-03-31)."""
    archive = ctanb.connect(own.url, token=VELA_TOKEN)
    rows = archive.query(
        "SELECT TOP 1 * FROM ivoa.obscore WHERE proposal_id = 'CTAO-2026A-001' ORDER BY obs_id"
    )
    (event_file,) = archive.download(rows)
    out = tmp_path_factory.mktemp("vela") / "vela_counts.fits"
    sim_counts(str(event_file), str(out))
    return out


def _cli(*args: str, home: Path | None = None, **env: str) -> subprocess.CompletedProcess:
    script = (
        "import sys, provenance_steps, test_publish; from ctanb.cli import main; main(sys.argv[1:])"
    )
    extra = {"CTANB_HOME": str(home)} if home else {}
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(TESTS), **extra, **env},
        timeout=600,
        check=False,
    )


# -- 1. publish --------------------------------------------------------------------------------
def test_publish_from_the_command_line_then_find_and_fetch_it(own, crab_counts, tmp_path):
    result = _cli("archive", "publish", str(crab_counts), "--archive", own.url,
                  "--token", CRAB_TOKEN, "--curation", '{"title": "Crab counts, run 23523"}')  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "published as ivo://ctanb.archive/products?" in result.stdout, result.stdout
    did = result.stdout.split(" as ")[1].split()[0]
    rows = _query(own.url, f"SELECT * FROM ivoa.obscore WHERE obs_publisher_did = '{did}'")
    assert len(rows) == 1
    row = rows[0]
    assert row["dataproduct_type"] == "image" and row["dataproduct_subtype"] == "DL4-counts"
    assert row["calib_level"] == 3 and row["data_rights"] == "public"
    assert row["obs_title"] == "Crab counts, run 23523"
    run = _query(own.url, f"SELECT * FROM ivoa.obscore WHERE obs_id = '{RUN}' "
                          "AND obs_collection = 'HESS-DL3-DR1'")[0]  # fmt: skip
    for key in ("target_name", "facility_name", "instrument_name", "t_min", "t_max",
                "reco_version", "calib_version"):  # fmt: skip
        assert row[key] == run[key], key
    # the product's own geometry: 2 deg x 2 deg around the Crab, 0.5-50 TeV
    assert abs(row["s_ra"] - 83.633) < 0.01 and abs(row["s_dec"] - 22.0145) < 0.01
    assert row["s_xel1"] == 40 and abs(row["energy_min"] - 0.5) < 1e-6
    assert abs(row["energy_max"] - 50) < 1e-6 and row["em_min"] < row["em_max"]
    # anyone fetches the bytes, which verify against their record
    fetched = tmp_path / "fetched.fits"
    resp = requests.get(str(row["access_url"]), timeout=60)
    assert resp.status_code == 200
    fetched.write_bytes(resp.content)
    assert fetched.read_bytes() == crab_counts.read_bytes()
    # the same product again: the same DID, nothing new
    before = _state_counts(own.db)
    again = ctanb.connect(own.url, token=CRAB_TOKEN).publish(crab_counts)
    assert again.did == did and not again.created
    assert _state_counts(own.db) == before


def _edited_record(product: Path, tmp_path: Path) -> Path:
    """The data untouched, one parameter of the signed record changed (as with astropy)."""
    edited = tmp_path / "edited.fits"
    edited.write_bytes(product.read_bytes())
    with fits.open(edited, mode="update") as hdus:
        old = hdus["PROVENANCE"].header
        text = hdus["PROVENANCE"].data["PROV_JSON"][0]
        text = (text.decode() if isinstance(text, bytes) else text).replace("0.05", "0.5")
        column = fits.Column(name="PROV_JSON", format=f"{len(text)}A", array=[text.encode()])
        new = fits.BinTableHDU.from_columns([column], name="PROVENANCE")
        for key in ("SIGALG", "SIGKEY", "SIGVAL1", "SIGVAL2", "SIGNER"):
            new.header[key] = old[key]
        hdus[hdus.index_of("PROVENANCE")] = new
    return edited


def _altered(product: Path, tmp_path: Path) -> Path:
    altered = tmp_path / "altered.fits"
    altered.write_bytes(product.read_bytes())
    with fits.open(altered, mode="update") as hdus:
        hdus[0].data[0, 5, 5] += 1
    return altered


@pytest.mark.parametrize("case", ["altered", "edited-record", "no-token", "unknown-token",
                                  "foreign-input", "not-fits", "no-rights"])  # fmt: skip
def test_a_refused_publication_says_why_and_leaves_nothing(
    own, crab_counts, crab_event, vela_counts, tmp_path, case
):
    from ctanb.client.publish import PublishRefusedError

    token, product = CRAB_TOKEN, crab_counts
    expected = {
        "altered": ("content", "product altered: HDU PRIMARY data changed"),
        "edited-record": ("content", "provenance record altered"),
        "no-token": ("token", "publishing needs a token of this archive"),
        "unknown-token": ("token", "the token sent is not known to this archive"),
        "foreign-input": ("inputs", "its sha256 differs"),
        "not-fits": ("provenance", "cannot read"),
        "no-rights": ("rights", "is proprietary to group vela-team until 2028-03-31"),
    }[case]
    if case == "altered":
        product = _altered(crab_counts, tmp_path)
    elif case == "edited-record":
        product = _edited_record(crab_counts, tmp_path)
    elif case == "no-token":
        token = ""
    elif case == "unknown-token":
        token = "made-up"
    elif case == "foreign-input":
        # the same run with one header card changed: the DID is the archive's, the bytes not
        copy = tmp_path / crab_event.name
        with fits.open(crab_event) as hdus:
            hdus["EVENTS"].header["OBSERVER"] = "someone else"
            hdus.writeto(copy)
        product = tmp_path / "foreign.fits"
        provenance_steps.CountsMapStep().run([str(copy)], str(product))
    elif case == "not-fits":
        product = tmp_path / "notes.fits"
        product.write_text("SIMPLE = this is not a product")
    elif case == "no-rights":
        product = vela_counts
    before = _state_counts(own.db)
    archive = ctanb.connect(own.url, token=token or "")
    archive.session.headers.pop("Authorization", None) if not token else None
    if case == "unknown-token":  # the client checks a token before it sends anything
        with pytest.raises(ctanb.AuthError, match="does not know this token"):
            archive.publish(product)
        assert _state_counts(own.db) == before
        # ... and the archive itself refuses it too, in its words
        resp = requests.post(f"{own.url}/publish", data=product.read_bytes(), timeout=60,
                             headers={"Authorization": "Bearer made-up",
                                      "Content-Type": "application/fits"})  # fmt: skip
        assert resp.status_code in (401, 403) and expected[1] in resp.text, resp.text
        assert _state_counts(own.db) == before
        return
    with pytest.raises(PublishRefusedError) as info:
        archive.publish(product)
    assert info.value.condition == expected[0]
    assert expected[1] in str(info.value), str(info.value)
    assert _state_counts(own.db) == before


def test_a_failure_inside_the_transaction_leaves_no_row_file_or_record(own, crab_smoothed):
    before = _state_counts(own.db)

    def disk_full() -> None:
        raise OSError(28, "No space left on device")

    own.app.state.publish_before_commit = disk_full
    try:
        resp = requests.post(f"{own.url}/publish", data=crab_smoothed.read_bytes(),
                             headers={"Authorization": f"Bearer {CRAB_TOKEN}"}, timeout=120)  # fmt: skip
    finally:
        own.app.state.publish_before_commit = None
    assert resp.status_code == 500 and "Traceback" not in resp.text
    assert _state_counts(own.db) == before
    assert not list((own.db.parent / "products").glob(".*part*"))


@pytest.fixture(scope="module")
def published(own, crab_counts, crab_smoothed, vela_counts) -> dict[str, str]:
    """Crab counts and its smoothed map (one analysis) and a proprietary Vela map."""
    crab = ctanb.connect(own.url, token=CRAB_TOKEN)
    vela = ctanb.connect(own.url, token=VELA_TOKEN)
    return {
        # already published (with its title) by the first test: its curation cannot change
        "counts": crab.publish(crab_counts).did,
        "smoothed": crab.publish(crab_smoothed, curation={"analysis": "crab-1"}).did,
        "vela": vela.publish(vela_counts).did,
        "vela_run": _query(own.url, "SELECT TOP 1 obs_publisher_did FROM ivoa.obscore "
                           # products inherit proposal_id: the run, not a product made from it
                           "WHERE proposal_id = 'CTAO-2026A-001' AND obs_collection <> "
                           "'CTANB-PRODUCTS' ORDER BY obs_id")[0][0],
        "crab_run": _query(own.url, f"SELECT obs_publisher_did FROM ivoa.obscore WHERE obs_id = "
                           f"'{RUN}' AND obs_collection = 'HESS-DL3-DR1'")[0][0],
    }  # fmt: skip


def test_a_product_has_its_runs_good_time_in_obscore_hea(own, published):
    """Issue 18: a product's t_intervals are its input runs' GTIs, so a simultaneity
    search finds products too."""
    run = _query(own.url, "SELECT t_intervals FROM ivoa.obscore_hea "
                 f"WHERE obs_publisher_did = '{published['crab_run']}'")[0][0]  # fmt: skip
    for key in ("counts", "smoothed"):
        rows = _query(own.url, "SELECT dataproduct_type, t_intervals FROM ivoa.obscore_hea "
                      f"WHERE obs_publisher_did = '{published[key]}'")  # fmt: skip
        assert len(rows) == 1 and rows[0]["t_intervals"] == run
        assert rows[0]["dataproduct_type"] != "hea-event-list"


# -- 3. rights are inherited ------------------------------------------------------------------
def test_a_product_of_proprietary_runs_is_proprietary_on_every_path(own, published):
    did, run = published["vela"], published["vela_run"]
    row = _query(own.url, f"SELECT * FROM ivoa.obscore WHERE obs_publisher_did = '{did}'")[0]
    assert row["data_rights"] == "proprietary"  # searchable, marked
    assert str(row["obs_release_date"]).startswith("2028-03-31")
    quoted = requests.utils.quote(did, safe="")
    dl3 = requests.get(f"{own.url}/files/{requests.utils.quote(run, safe='')}", timeout=30)
    files = requests.get(f"{own.url}/files/{quoted}", timeout=30)
    assert dl3.status_code == files.status_code == 403
    assert "is proprietary to group vela-team until 2028-03-31" in files.text
    assert dl3.text.split(")", 1)[1] == files.text.split(")", 1)[1]  # the same words as DL3
    prov = requests.get(f"{own.url}/provsap", params={"ID": did}, timeout=30)
    assert prov.status_code == 403 and "vela-team until 2028-03-31" in prov.text
    links = _links(own.url, did)
    assert links and not any(links["link_authorized"])
    # ProvTAP: no row of it for others, every row for the group
    adql = f"SELECT id FROM provenance.entity WHERE obs_publisher_did = '{did}'"
    assert len(_query(own.url, adql)) == 0
    assert len(_query(own.url, adql, token=CRAB_TOKEN)) == 0
    assert len(_query(own.url, adql, token=VELA_TOKEN)) == 1
    adql = "SELECT COUNT(*) AS n FROM provenance.activity WHERE name = 'test-sim-counts'"
    assert _query(own.url, adql)[0]["n"] == 0
    assert _query(own.url, adql, token=VELA_TOKEN)[0]["n"] == 1
    # the group reads the bytes
    ok = requests.get(f"{own.url}/files/{quoted}", timeout=30,
                      headers={"Authorization": f"Bearer {VELA_TOKEN}"})  # fmt: skip
    assert ok.status_code == 200 and ok.content[:6] == b"SIMPLE"


# -- 4. DataLink both ways ----------------------------------------------------------------------
def _links(url: str, did: str, token: str | None = None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    resp = requests.get(f"{url}/datalink", params={"ID": did}, headers=headers, timeout=30)
    assert resp.status_code == 200, resp.text
    return parse_single_table(io.BytesIO(resp.content)).to_table()


def test_datalink_goes_both_ways(own, published):
    counts, smoothed, run = published["counts"], published["smoothed"], published["crab_run"]
    links = _links(own.url, counts)
    by = {}
    for link in links:
        by.setdefault(str(link["semantics"]), []).append(link)
    assert [str(r["access_url"]).endswith(requests.utils.quote(run, safe=""))
            for r in by["#progenitor"]] == [True]  # fmt: skip
    assert sorted(str(r["content_type"]) for r in by["#provenance"]) == [
        "application/json", "application/xml", "image/svg+xml"]  # fmt: skip
    for link in by["#provenance"]:
        resp = requests.get(str(link["access_url"]), timeout=60)
        assert resp.status_code == 200 and resp.headers["content-type"].startswith(
            str(link["content_type"])
        )
    doc = requests.get(str(by["#provenance"][0]["access_url"]), timeout=60).text
    assert "counts-map" in doc and RUN.__str__() in doc
    assert [str(r["access_url"]).endswith(requests.utils.quote(smoothed, safe=""))
            for r in by["#coderived"]] == [True]  # fmt: skip
    # from the run to the products made from it
    back = [r for r in _links(own.url, run) if r["semantics"] == "#derivation"]
    targets = {requests.utils.unquote(str(r["access_url"]).rsplit("/", 1)[1]) for r in back}
    assert {counts, smoothed} <= targets
    # the proprietary Vela product is listed from its run to its group only (ProvTAP alike)
    vela = [r for r in _links(own.url, published["vela_run"]) if r["semantics"] == "#derivation"]
    assert vela == []
    vela = [r for r in _links(own.url, published["vela_run"], VELA_TOKEN)
            if r["semantics"] == "#derivation"]  # fmt: skip
    # (the message names the product's own links, to tell a wrong progenitor from a refusal)
    product = _links(own.url, published["vela"], VELA_TOKEN)
    assert len(vela) == 1 and vela[0]["link_authorized"], (
        published["vela_run"],
        [(str(r["semantics"]), str(r["access_url"]), str(r["description"])) for r in product],
    )


# -- 5. ProvTAP ---------------------------------------------------------------------------------
def test_provtap_tables_are_listed_in_tap_schema(own):
    names = {str(n) for n in _query(own.url, "SELECT table_name FROM TAP_SCHEMA.tables "
                                              "WHERE schema_name = 'provenance'")["table_name"]}  # fmt: skip
    assert {f"provenance.{t}" for t in ("activity", "activity_description", "entity", "used",
            "wasgeneratedby", "wasderivedfrom", "agent", "wasassociatedwith",
            "parameter")} <= names  # fmt: skip


def test_the_use_cases_are_plain_adql(own, published):
    counts, smoothed = published["counts"], published["smoothed"]
    # products derived (directly) from run 23523, in ProvTAP tables only
    direct = _query(
        own.url,
        f"""
        SELECT DISTINCT p.obs_publisher_did FROM provenance.entity AS p
        JOIN provenance.wasderivedfrom AS d ON d.generated_entity_id = p.id
        JOIN provenance.entity AS r ON r.id = d.used_entity_id
        WHERE r.obs_id = '{RUN}' AND p.obs_publisher_did LIKE 'ivo://ctanb.archive/products%'""",
    )
    assert set(direct["obs_publisher_did"]) == {counts}
    # ... and over the whole lineage, joined with ObsCore
    every = _query(
        own.url,
        f"""
        SELECT o.obs_publisher_did, o.dataproduct_subtype FROM ivoa.obscore AS o
        JOIN provenance.product_progenitor AS g ON g.product_did = o.obs_publisher_did
        WHERE g.obs_id = '{RUN}' ORDER BY o.dataproduct_subtype""",
    )
    assert set(every["obs_publisher_did"]) == {counts, smoothed}
    assert list(every["dataproduct_subtype"]) == ["DL4-counts", "DL4-smoothed"]
    # products made with gammapy 2.1 (the installed version made them all)
    gammapy = _query(
        own.url,
        """
        SELECT DISTINCT e.obs_publisher_did FROM provenance.entity AS e
        JOIN provenance.wasgeneratedby AS g ON g.entity_id = e.id
        JOIN provenance.wasassociatedwith AS w ON w.activity_id = g.activity_id
        JOIN provenance.agent AS a ON a.id = w.agent_id
        WHERE a.name = 'gammapy' AND a.version = '2.1' AND e.obs_publisher_did IS NOT NULL""",
    )
    assert set(gammapy["obs_publisher_did"]) == {counts, smoothed}  # not Vela: not ours
    none = _query(own.url, "SELECT COUNT(*) AS n FROM provenance.agent "
                           "WHERE name = 'gammapy' AND version = '1.3'")  # fmt: skip
    assert none[0]["n"] == 0
    # activities run with a given parameter value
    smooth = _query(
        own.url,
        """
        SELECT a.name, p.value FROM provenance.activity AS a
        JOIN provenance.parameter AS p ON p.activity_id = a.id
        WHERE p.name = 'radius_deg' AND p."value" = '0.1'""",
    )
    assert list(smooth["name"]) == ["smooth-counts"]
    binned = _query(own.url, "SELECT DISTINCT activity_id FROM provenance.parameter "
                             "WHERE name = 'binsz_deg' AND value = '0.05'")  # fmt: skip
    assert len(binned) == 1
    # everything made by version 1.0 of the counts-map step
    made = _query(
        own.url,
        """
        SELECT DISTINCT e.id, e.obs_publisher_did FROM provenance.activity AS a
        JOIN provenance.activity_description AS d ON d.id = a.activity_description_id
        JOIN provenance.wasgeneratedby AS g ON g.activity_id = a.id
        JOIN provenance.entity AS e ON e.id = g.entity_id
        WHERE d.name = 'counts-map' AND d.version = '1.0'""",
    )
    assert list(made["obs_publisher_did"]) == [counts]
    assert len(_query(own.url, "SELECT * FROM provenance.activity_description "
                               "WHERE name = 'counts-map' AND version = '9.9'")) == 0  # fmt: skip


def test_a_bad_column_of_a_provenance_table_is_named(own):
    resp = requests.post(f"{own.url}/sync", data={"REQUEST": "doQuery", "LANG": "ADQL",
                         "QUERY": "SELECT colour FROM provenance.activity"}, timeout=30)  # fmt: skip
    assert resp.status_code == 400 and "colour" in resp.text and "Traceback" not in resp.text


# -- 6. ProvSAP ---------------------------------------------------------------------------------
def _provsap(url: str, **params):
    return requests.get(f"{url}/provsap", params=params, timeout=60)


def test_provsap_back_and_forth(own, published):
    smoothed, run = published["smoothed"], published["crab_run"]
    back = _provsap(own.url, ID=smoothed, DEPTH="ALL", DIRECTION="BACK")
    assert back.status_code == 200, back.text
    doc = back.json()
    labels = " ".join(json.dumps(v) for v in doc["activity"].values())
    assert "smooth-counts" in labels and "counts-map" in labels
    assert any(run in json.dumps(e) for e in doc["entity"].values())  # reaches the DL3 run
    one = _provsap(own.url, ID=smoothed, DEPTH="1").json()
    assert len(one["activity"]) == 1  # only the smoothing
    assert "agent" in doc and "agent" not in _provsap(own.url, ID=smoothed, AGENTS="false").json()
    forth = _provsap(own.url, ID=run, DIRECTION="FORTH", DEPTH="ALL").json()
    forth_acts = " ".join(json.dumps(v) for v in forth["activity"].values())
    assert "counts-map" in forth_acts and "smooth-counts" in forth_acts
    assert "test-sim-counts" not in forth_acts
    for fmt, marker in (("PROV-XML", "<prov:document"), ("PROV-N", "document"), ("SVG", "<svg")):
        resp = _provsap(own.url, ID=smoothed, DEPTH="ALL", RESPONSEFORMAT=fmt)
        assert resp.status_code == 200 and marker in resp.text, (fmt, resp.text[:200])


def test_provsap_refuses_a_proprietary_run_as_its_files_do(own, published):
    """A proprietary DL3 run asked FORTH without the group's token (none, or another
    group's): 403 in the words of its /files, never an empty 200; the group reads it."""
    run = published["vela_run"]

    def ask(token=None):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        params = {"ID": run, "DEPTH": "ALL", "DIRECTION": "FORTH"}
        return requests.get(f"{own.url}/provsap", params=params, headers=headers, timeout=60)

    files = requests.get(f"{own.url}/files/{requests.utils.quote(run, safe='')}", timeout=30)
    assert files.status_code == 403 and "proprietary to group vela-team until" in files.text
    anonymous, other = ask(), ask(CRAB_TOKEN)
    assert anonymous.status_code == other.status_code == 403, anonymous.text[:300]
    assert anonymous.text == files.text  # the same words as the run's files
    assert "is proprietary to group vela-team until 2028-03-31" in other.text
    assert "token sent does not belong to group vela-team" in other.text
    assert ask(VELA_TOKEN).status_code == 200


@pytest.mark.parametrize(("params", "status", "words"), [
    ({"ID": "ivo://ctanb.archive/products?nothing"}, 404, "no published product"),
    ({}, 400, "ID is missing"),
    ({"ID": "x", "DIRECTION": "SIDEWAYS"}, 400, "DIRECTION must be BACK or FORTH"),
    ({"ID": "x", "DEPTH": "-1"}, 400, "DEPTH must be"),
    ({"ID": "x", "RESPONSEFORMAT": "PDF"}, 400, "RESPONSEFORMAT='PDF' is not supported"),
])  # fmt: skip
def test_provsap_bad_requests_are_named(own, published, params, status, words):
    resp = _provsap(own.url, **params)
    assert resp.status_code == status and words in resp.text, resp.text


# -- 7. redo by anyone ----------------------------------------------------------------------------
def test_redo_by_did_with_an_empty_home_and_no_data(own, published, tmp_path, maker_home):
    """Another user, another machine: no CTANB_HOME content, no data folder, only the DID."""
    import shutil

    shutil.rmtree(maker_home)  # the maker's downloads are not on the other machine
    empty = tmp_path / "no-data"
    empty.mkdir()
    out = tmp_path / "redo"
    result = _cli("prov", "redo", published["smoothed"], "--out", str(out), "--archive", own.url,
                  home=tmp_path / "other-user", CTANB_DATA=str(empty), CTANB_TOKEN="")  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "identical" in result.stdout.lower() or "equal" in result.stdout.lower(), result.stdout
    assert "counts-map 1.0" in result.stdout and "smooth-counts 0.2" in result.stdout
    assert "inputs (checked by sha256): 1 from the archive" in result.stdout, result.stdout
    assert (out / "original").is_dir() and list(out.glob("*.fits"))
    # and a proprietary product is refused to someone without its token, in one line
    refused = _cli("prov", "redo", published["vela"], "--out", str(tmp_path / "r2"), "--archive",
                   own.url, home=tmp_path / "other-user", CTANB_TOKEN="")  # fmt: skip
    assert refused.returncode == 1
    assert "proprietary to group vela-team until 2028-03-31" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr


# -- curation, and the hasty and hostile paths ---------------------------------------------------
def test_curation_is_queryable_beside_obscore(own, published):
    counts, smoothed = published["counts"], published["smoothed"]
    rows = _query(
        own.url,
        f"""
        SELECT o.obs_publisher_did, c.publisher, c.analysis, c.version, c.curation_date
        FROM ivoa.obscore AS o JOIN products.curation AS c
        ON c.obs_publisher_did = o.obs_publisher_did
        WHERE o.obs_publisher_did IN ('{counts}', '{smoothed}')""",
    )
    assert len(rows) == 2
    assert set(rows["publisher"]) == {"crab-team"}  # the group of the token that published
    assert {str(r["obs_publisher_did"]): str(r["analysis"]) for r in rows}[smoothed] == "crab-1"
    assert all(str(d).startswith("20") for d in rows["curation_date"])


def test_the_same_product_published_at_once_from_many_clients_gives_one_did(own, crab_counts,
                                                                           tmp_path):  # fmt: skip
    """Eight clients publish the same new product at the same moment: one row, one DID."""
    from concurrent.futures import ThreadPoolExecutor

    copy = tmp_path / "again.fits"
    provenance_steps.smooth_counts_map(str(crab_counts), str(copy), radius_deg=0.2)
    before = _state_counts(own.db)

    def send(_: int) -> tuple[int, str]:
        resp = requests.post(f"{own.url}/publish", data=copy.read_bytes(), timeout=120,
                             headers={"Authorization": f"Bearer {CRAB_TOKEN}"})  # fmt: skip
        return resp.status_code, resp.json()["did"]

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(send, range(8)))
    assert len({did for _, did in answers}) == 1
    assert sorted(code for code, _ in answers) == [200] * 7 + [201]
    after = _state_counts(own.db)
    assert after[0] == before[0] + 1 and after[4] == before[4] + 1  # one row, one file


def test_an_oversized_or_empty_upload_is_refused_cleanly(own, crab_counts, monkeypatch):
    from ctanb.archive.service import publish_api

    before = _state_counts(own.db)
    auth = {"Authorization": f"Bearer {CRAB_TOKEN}"}
    bad = requests.post(f"{own.url}/publish", params={"CURATION": "[1, 2]"}, headers=auth,
                        data=crab_counts.read_bytes(), timeout=60)  # fmt: skip
    assert bad.status_code == 400 and bad.json()["condition"] == "curation"
    unknown = requests.post(f"{own.url}/publish", params={"CURATION": '{"colour": "red"}'},
                            headers=auth, data=crab_counts.read_bytes(), timeout=60)  # fmt: skip
    assert unknown.status_code == 400 and "colour" in unknown.json()["error"]
    empty = requests.post(f"{own.url}/publish", data=b"", headers=auth, timeout=60)
    assert empty.status_code == 400 and "empty body" in empty.json()["error"]
    monkeypatch.setattr(publish_api, "MAX_PRODUCT_BYTES", 1000)
    big = requests.post(f"{own.url}/publish", data=crab_counts.read_bytes(), headers=auth,
                        timeout=60)  # fmt: skip
    assert big.status_code == 413 and "larger than 1000 bytes" in big.json()["error"]
    assert _state_counts(own.db) == before


def test_async_adql_on_provenance_tables_leaks_nothing(own, published):
    """Anonymous UWS jobs run outside any request: they see public provenance rows only."""
    import pyvo

    service = pyvo.dal.TAPService(own.url)
    adql = f"SELECT id FROM provenance.entity WHERE obs_publisher_did = '{published['vela']}'"
    assert len(service.run_async(adql)) == 0
    public = f"SELECT id FROM provenance.entity WHERE obs_publisher_did = '{published['smoothed']}'"
    assert len(service.run_async(public)) == 1


def _ids(doc: dict) -> dict[str, set]:
    """What a PROV-JSON document says, independent of its layout: the ids of its records
    and the (activity, entity) pairs of its relations."""
    out = {kind: set(doc.get(kind, {})) for kind in ("activity", "entity", "agent")}
    for kind, keys in (("used", ("prov:activity", "prov:entity")),
                       ("wasGeneratedBy", ("prov:activity", "prov:entity"))):  # fmt: skip
        out[kind] = {tuple(r.get(k) for k in keys) for r in doc.get(kind, {}).values()}
    return out


def test_provsap_back_all_is_the_whole_record_found_fast(own, published):
    """DEPTH=ALL answers the stored record (one recursive query decides it); it says the
    same as walking the graph step by step (DEPTH=50 takes the general path)."""
    smoothed = published["smoothed"]
    fast = _provsap(own.url, ID=smoothed, DEPTH="ALL").json()
    walked = _provsap(own.url, ID=smoothed, DEPTH="50").json()
    assert _ids(fast) == _ids(walked)
    assert len(fast["activity"]) == 2 and len(fast["used"]) >= 2


def test_provsap_back_all_leaves_out_what_is_not_the_products_lineage(own, tmp_path):
    """A record holding a sibling branch (another output of the analysis, made by an
    activity the product does not come from) is walked, not answered whole."""
    from ctanb.archive import db as archive_db
    from ctanb.archive.provtap import insert_product_provenance
    from ctanb.archive.publish import create_publish_schema
    from ctanb.archive.service.provsap import _walk, _whole_record, product_document
    from ctanb.provenance.records import ActivityRecord, EntityRecord, ProvenanceGraph, Relation

    copy = tmp_path / "archive.db"
    src, dst = sqlite3.connect(own.db), sqlite3.connect(copy)
    src.backup(dst)
    src.close()
    dst.close()
    graph = ProvenanceGraph()
    for ent in ("ctanb:run", "ctanb:map", "ctanb:product", "ctanb:sibling"):
        graph.entities[ent] = EntityRecord(ent, "file", data_level="DL4")
    steps = (
        ("ctanb:a1", "ctanb:run", "ctanb:map"),
        ("ctanb:a2", "ctanb:map", "ctanb:product"),
        ("ctanb:a3", "ctanb:map", "ctanb:sibling"),
    )
    for act, used, made in steps:
        graph.activities[act] = ActivityRecord(act, f"step-{act[-2:]}", "1.0", used=[Relation(used)],
                                               generated=[Relation(made)])  # fmt: skip
    conn = archive_db.connect(copy)
    create_publish_schema(conn)
    insert_product_provenance(conn, "ivo://x/products?p", graph, "ctanb:product", None, None)
    insert_product_provenance(conn, "ivo://x/products?q", graph, "ctanb:map", None, None)
    text = graph.serialize("json")
    assert not _whole_record(conn, "ivo://x/products?p", "ctanb:product")  # a3 is not its lineage
    doc = json.loads(
        product_document(conn, "ivo://x/products?p", "ctanb:product", text, "PROV-JSON")
    )
    assert len(doc["activity"]) == 2  # a1 and a2, not a3
    expected = _walk(graph, {"ctanb:product"}, None, "BACK")
    assert _ids(doc) == _ids(json.loads(expected.serialize("json")))
    # a graph that is all lineage is answered whole, word for word
    del graph.activities["ctanb:a3"], graph.entities["ctanb:sibling"]
    whole = graph.serialize("json")
    insert_product_provenance(conn, "ivo://x/products?r", graph, "ctanb:product", None, None)
    assert _whole_record(conn, "ivo://x/products?r", "ctanb:product")
    assert (
        product_document(conn, "ivo://x/products?r", "ctanb:product", whole, "PROV-JSON") == whole
    )
    conn.close()
