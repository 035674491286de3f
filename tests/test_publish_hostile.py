"""Publishing as an attacker and a hasty user (issue 14, a tester's findings), over real HTTP
on an archive of this module's own (test_publish's fixtures): lineage kept secret by
DataLink and ProvSAP, forged and unsigned records refused, the publisher taken from the
token, async jobs with their owner's rights, no local paths in published provenance,
inputs that are calibration or reference files, clear words for unknown DIDs."""

# ruff: noqa: F811  (test_publish's fixtures are imported, then used as arguments)
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import requests
from astropy.io import fits

import ctanb
from ctanb.provenance import recorded

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))
import provenance_steps  # noqa: E402
from test_publish import (  # noqa: E402, F401  (fixtures shared with test_publish)
    CRAB_TOKEN,
    RUN,
    VELA_TOKEN,
    _cli,
    _links,
    _query,
    _state_counts,
    crab_counts,
    crab_event,
    maker_home,
    own,
)


@recorded(name="test-two-runs", version="1.0", inputs=["first", "second"],
          outputs={"out": "counts"}, data_level="DL4")  # fmt: skip
def two_runs(first: str, second: str, out: str) -> None:
    """A counts map around the first run's pointing, filled with the events of both."""
    import astropy.units as u
    from gammapy.data import EventList
    from gammapy.maps import Map, MapAxis, WcsGeom

    events = [EventList.read(first), EventList.read(second)]
    axis = MapAxis.from_energy_edges([0.1, 100] * u.TeV, name="energy")
    geom = WcsGeom.create(skydir=events[0].pointing_radec, width=1 * u.deg, binsz=0.1,
                          axes=[axis])  # fmt: skip
    counts = Map.from_geom(geom)
    for ev in events:
        counts.fill_events(ev)
    counts.write(out, overwrite=True)


@recorded(name="test-with-references", version="1.0", inputs=["event_file", "others"],
          outputs={"out": "counts"}, data_level="DL4")  # fmt: skip
def with_references(event_file: str, others: list[str], out: str) -> None:
    """A counts map of one run that also reads catalogs, IRFs or models (their sizes)."""
    provenance_steps.CountsMapStep().run([event_file], out)
    with fits.open(out, mode="update") as hdus:
        hdus[0].header["NOTHERS"] = sum(Path(p).stat().st_size for p in others) % 1000


def _run_did(url: str, obs_id: str, collection: str) -> str:
    return str(_query(url, f"SELECT obs_publisher_did FROM ivoa.obscore WHERE obs_id = "
                           f"'{obs_id}' AND obs_collection = '{collection}'")[0][0])  # fmt: skip


@pytest.fixture(scope="module")
def lineage(own, crab_event, crab_counts, tmp_path_factory) -> dict[str, str]:
    """A public Crab product, and a proprietary product of a Vela run and public run 23523."""
    vela = ctanb.connect(own.url, token=VELA_TOKEN)
    rows = vela.query(
        "SELECT TOP 1 * FROM ivoa.obscore WHERE proposal_id = 'CTAO-2026A-001' "
        "AND obs_collection <> 'CTANB-PRODUCTS' ORDER BY obs_id"
    )
    (vela_event,) = vela.download(rows)
    out = tmp_path_factory.mktemp("mixed") / "mixed.fits"
    two_runs(str(vela_event), str(crab_event), str(out))
    return {
        "public": ctanb.connect(own.url, token=CRAB_TOKEN).publish(crab_counts).did,
        "secret": vela.publish(out).did,
        "vela_run": str(rows[0]["obs_publisher_did"]),
        "crab_run": _run_did(own.url, str(RUN), "HESS-DL3-DR1"),
    }


# -- 1. DataLink keeps the lineage of what one may not read secret -------------------------------
def test_datalink_shows_no_lineage_of_a_product_one_may_not_read(own, lineage):
    secret, public = lineage["secret"], lineage["public"]
    for token in (None, CRAB_TOKEN):
        links = _links(own.url, secret, token)
        semantics = [str(s) for s in links["semantics"]]
        assert "#this" in semantics and not any(links["link_authorized"])  # refused, as DL3
        assert "#progenitor" not in semantics and "#coderived" not in semantics, semantics
        # from either run, nobody without the group learns that the product used it
        for run in (lineage["crab_run"], lineage["vela_run"]):
            derived = " ".join(str(u) for u in _links(own.url, run, token)["access_url"])
            assert requests.utils.quote(secret, safe="") not in derived
    derived = " ".join(str(u) for u in _links(own.url, lineage["crab_run"])["access_url"])
    assert requests.utils.quote(public, safe="") in derived  # public products stay linked
    # the group sees everything, readable
    links = _links(own.url, secret, VELA_TOKEN)
    progenitors = [r for r in links if r["semantics"] == "#progenitor"]
    assert len(progenitors) == 2 and all(r["link_authorized"] for r in progenitors)
    derived = [r for r in _links(own.url, lineage["crab_run"], VELA_TOKEN)
               if r["semantics"] == "#derivation"]  # fmt: skip
    assert any(str(r["access_url"]).endswith(requests.utils.quote(secret, safe=""))
               for r in derived)  # fmt: skip


# -- 2. forged and unsigned records ---------------------------------------------------------------
def test_a_forged_record_around_random_numbers_is_refused_naming_the_activity(own, tmp_path,
                                                                             crab_event):  # fmt: skip
    from ctanb.client.publish import PublishRefusedError
    from ctanb.provenance import Activity

    out = tmp_path / "significance.fits"
    with Activity("evil-step", version="1") as act:
        act.used(str(crab_event), publisher_did=_run_did(own.url, str(RUN), "HESS-DL3-DR1"),
                 obs_id=str(RUN), data_level="DL3")  # fmt: skip
        fits.PrimaryHDU(np.random.default_rng(1).normal(size=(20, 20))).writeto(out)
        act.generated(str(out), data_level="DL4", product_type="significance")
    before = _state_counts(own.db)
    with pytest.raises(PublishRefusedError) as info:
        ctanb.connect(own.url, token=CRAB_TOKEN).publish(out)
    assert info.value.condition == "steps", str(info.value)
    assert "'evil-step'" in str(info.value) and "not one of ctanb's registered" in str(info.value)
    assert _state_counts(own.db) == before


def test_an_unsigned_record_is_refused(own, crab_counts, tmp_path):
    from ctanb.client.publish import PublishRefusedError

    unsigned = tmp_path / "unsigned.fits"
    unsigned.write_bytes(crab_counts.read_bytes())
    with fits.open(unsigned, mode="update") as hdus:
        header = hdus["PROVENANCE"].header
        for key in [k for k in header if k.startswith("SIG")]:
            del header[key]
    before = _state_counts(own.db)
    with pytest.raises(PublishRefusedError) as info:
        ctanb.connect(own.url, token=CRAB_TOKEN).publish(unsigned)
    assert info.value.condition == "content" and "not signed" in str(info.value)
    assert _state_counts(own.db) == before


# -- 3. the publisher is who the token says; curation bounded, stored as given ------------------
def test_the_publisher_comes_from_the_token_and_curation_is_bounded(own, crab_counts, tmp_path):
    from ctanb.client.publish import PublishRefusedError

    product = tmp_path / "smoothed-03.fits"
    provenance_steps.smooth_counts_map(str(crab_counts), str(product), radius_deg=0.3)
    crab = ctanb.connect(own.url, token=CRAB_TOKEN)
    before = _state_counts(own.db)
    with pytest.raises(PublishRefusedError) as info:
        crab.publish(product, curation={"publisher": "H.E.S.S. Collaboration"})
    assert info.value.condition == "curation"
    assert "identity of the token sent (crab-team)" in str(info.value)
    with pytest.raises(PublishRefusedError) as info:
        crab.publish(product, curation={"title": "A" * 60000})
    assert info.value.condition == "curation" and "title" in str(info.value)
    assert "at most 300 characters" in str(info.value)
    assert _state_counts(own.db) == before
    script = "<script>alert(1)</script>"
    did = crab.publish(product, curation={"creator": script, "title": "T"}).did
    row = _query(own.url, "SELECT publisher, creator FROM products.curation "
                          f"WHERE obs_publisher_did = '{did}'")[0]  # fmt: skip
    assert str(row["publisher"]) == "crab-team" and str(row["creator"]) == script
    # 9. the curation of a published product cannot change: said, not dropped silently
    with pytest.raises(PublishRefusedError) as info:
        crab.publish(product, curation={"title": "Another title"})
    assert "already published, with other curation (title)" in str(info.value)
    again = crab.publish(product)
    assert again.did == did and not again.created


# -- 4. ProvSAP: a public file's provenance names no proprietary product -------------------------
def test_provsap_of_a_public_file_used_by_a_proprietary_product(own, lineage, crab_event):
    sha = hashlib.sha256(crab_event.read_bytes()).hexdigest()
    answers = {
        "file": requests.get(f"{own.url}/provsap", timeout=60, params={
            "ID": f"ctanb:file-{sha}", "DIRECTION": "FORTH", "DEPTH": "ALL"}),
        "run": requests.get(f"{own.url}/provsap", timeout=60, params={
            "ID": lineage["crab_run"], "DIRECTION": "FORTH", "DEPTH": "ALL"}),
        "file-back": requests.get(f"{own.url}/provsap", timeout=60, params={
            "ID": f"ctanb:file-{sha}"}),
    }  # fmt: skip
    for name, resp in answers.items():
        assert resp.status_code == 200, (name, resp.text)
        for secret in (lineage["secret"], "vela-team", "test-two-runs", lineage["vela_run"]):
            assert secret not in resp.text, (name, secret)
    # both forward answers agree: the public product made from the run
    acts = [sorted(a.get("prov:label", "") for a in r.json().get("activity", {}).values())
            for r in (answers["file"], answers["run"])]  # fmt: skip
    assert acts[0] == acts[1] and "counts-map" in acts[0]
    grouped = requests.get(f"{own.url}/provsap", timeout=60, headers={
        "Authorization": f"Bearer {VELA_TOKEN}"}, params={
        "ID": f"ctanb:file-{sha}", "DIRECTION": "FORTH", "DEPTH": "ALL"})  # fmt: skip
    assert "test-two-runs" in grouped.text


# -- 7. async jobs run with their owner's rights ------------------------------------------------
def test_async_queries_answer_what_sync_answers_for_the_same_token(own, lineage):
    import pyvo

    for adql in ("SELECT id, name FROM provenance.entity",
                 "SELECT obs_publisher_did FROM ivoa.obscore WHERE data_rights = 'proprietary'"):  # fmt: skip
        anonymous = _query(own.url, adql)
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {VELA_TOKEN}"
        service = pyvo.dal.TAPService(own.url, session=session)
        sync = _query(own.url, adql, VELA_TOKEN)
        run = service.run_async(adql).to_table()
        assert sorted(map(str, run[run.colnames[0]])) == sorted(map(str, sync[sync.colnames[0]]))
        if "provenance" in adql:
            assert len(sync) > len(anonymous)
            assert len(pyvo.dal.TAPService(own.url).run_async(adql)) == len(anonymous)


# -- 8. no local paths, no login names in what the archive serves ------------------------------
def test_published_provenance_names_no_local_path_or_login(own, lineage, crab_event):
    import getpass

    doc = requests.get(f"{own.url}/provsap", params={"ID": lineage["public"], "DEPTH": "ALL"},
                       timeout=60).json()  # fmt: skip
    text = json.dumps(doc)
    assert str(crab_event.parent) not in text and str(Path.home()) not in text
    people = [a for a in doc["agent"].values() if "person" in json.dumps(a).lower()]
    assert people and all(a.get("prov:label") == "crab-team" for a in people), people
    assert getpass.getuser() not in json.dumps(people)
    creator = _query(own.url, "SELECT obs_creator_name FROM ivoa.obscore WHERE "
                              f"obs_publisher_did = '{lineage['public']}'")[0][0]  # fmt: skip
    assert str(creator) == "crab-team"  # ObsCore's creator, without curation: the identity
    locations = _query(own.url, "SELECT location FROM provenance.entity WHERE location "
                                "IS NOT NULL")["location"]  # fmt: skip
    assert len(locations) and not any(str(v).startswith("/") for v in locations)
    assert any(str(v).startswith(own.url + "/files/") for v in locations)  # the DL3 input


# -- 5. calibration and reference inputs ---------------------------------------------------------
def test_catalog_and_calibration_inputs_are_accepted_unknown_ones_all_named(own, crab_event,
                                                                           tmp_path):  # fmt: skip
    from ctanb._settings import data_dir
    from ctanb.client.publish import PublishRefusedError

    crab = ctanb.connect(own.url, token=CRAB_TOKEN)
    catalog = data_dir() / "catalogs" / "hgps_catalog_v1.fits.gz"
    cta = crab.query("SELECT TOP 1 obs_publisher_did FROM ivoa.obscore "
                     "WHERE obs_collection = 'CTA-1DC' ORDER BY obs_id")  # fmt: skip
    irf = next(r for r in crab.datalink(str(cta[0]["obs_publisher_did"]))
           if r.semantics == "#calibration")  # fmt: skip
    irf_file = tmp_path / irf.access_url.rsplit("/", 1)[-1].split("?")[0]
    irf_file.write_bytes(requests.get(irf.access_url, timeout=120).content)
    # a models file the analyst wrote is sent with the product and kept (issue 14); files of
    # no recognised kind are refused, every one named
    models = tmp_path / "models_start.yaml"
    models.write_text("components: []\n")
    bad = [tmp_path / "notes.txt", tmp_path / "my_catalog.dat"]
    bad[0].write_text("analysis notes\n")
    bad[1].write_bytes(b"not a known file")
    refused = tmp_path / "refused.fits"
    with_references(str(crab_event), [str(catalog), str(irf_file), str(models), *map(str, bad)],
                    str(refused))  # fmt: skip
    with pytest.raises(PublishRefusedError) as info:
        crab.publish(refused)
    assert info.value.condition == "inputs"
    assert "notes.txt" in str(info.value) and "my_catalog.dat" in str(info.value)
    assert "hgps" not in str(info.value) and "models_start" not in str(info.value)
    assert str(info.value).count("input ") == 2, str(info.value)  # catalog, IRF, models: fine
    accepted = tmp_path / "accepted.fits"
    with_references(str(crab_event), [str(catalog), str(irf_file), str(models)], str(accepted))
    did = crab.publish(accepted).did
    links = _links(own.url, did)
    progenitors = [str(d) for s, d in zip(links["semantics"], links["description"], strict=True)
                   if str(s) == "#progenitor"]  # fmt: skip
    # the run, and the models file kept with the product (not the catalog nor the IRF)
    assert len(progenitors) == 2 and sum("models_start.yaml" in d for d in progenitors) == 1


# -- 9. redo of an unknown DID says so in words -------------------------------------------------
def test_redo_of_an_unknown_did_says_so(own, tmp_path):
    did = "ivo://ctanb.archive/products?nothing"
    result = _cli("prov", "redo", did, "--out", str(tmp_path / "r"), "--archive", own.url,
                  home=tmp_path / "home")  # fmt: skip
    assert result.returncode != 0
    assert f"no product {did} in this archive" in result.stderr, result.stderr
    assert "<" not in result.stderr and "Traceback" not in result.stderr


@recorded(name="test-flux-points-hostile", version="1.0", inputs=["event_file"],
          outputs={"out": "flux_points"}, data_level="DL5")  # fmt: skip
def flux_points(event_file: str, out: str, *, fit_range: list[float] | None = None) -> None:
    """Flux points 1-10 TeV of a power law (the run only gives the lineage), with the fit
    range in the header like the spectrum step's when *fit_range* is given."""
    import astropy.units as u
    from astropy.table import Table
    from gammapy.estimators import FluxPoints
    from gammapy.modeling.models import PowerLawSpectralModel

    from ctanb.analysis.sed import write_flux_points

    model = PowerLawSpectralModel()
    edges = np.geomspace(1, 10, 4) * u.TeV
    e_ref = np.sqrt(edges[:-1] * edges[1:])
    table = Table({"e_ref": e_ref, "e_min": edges[:-1], "e_max": edges[1:],
                   "dnde": model(e_ref), "dnde_err": 0.1 * model(e_ref)})  # fmt: skip
    table.meta["SED_TYPE"] = "dnde"
    points = FluxPoints.from_table(table, sed_type="dnde", reference_model=model)
    header = {"FIT_EMIN": (fit_range[0], "[TeV]"), "FIT_EMAX": (fit_range[1], "[TeV]")} if (
        fit_range) else None  # fmt: skip
    write_flux_points(points, out, sed_type="dnde", header=header)


# -- 6. the ObsCore energy range of flux points is theirs, not their inputs' ---------------------
def test_flux_points_energy_range_is_their_own(own, crab_event, tmp_path):
    crab = ctanb.connect(own.url, token=CRAB_TOKEN)
    run = _query(own.url, f"SELECT energy_min, energy_max FROM ivoa.obscore WHERE obs_id = "
                          f"'{RUN}' AND obs_collection = 'HESS-DL3-DR1'")[0]  # fmt: skip
    for fit_range, expected in ((None, (1.0, 10.0)), ([0.7, 20.0], (0.7, 20.0))):
        out = tmp_path / f"points-{bool(fit_range)}.fits"
        flux_points(str(crab_event), str(out), fit_range=fit_range)
        did = crab.publish(out).did
        row = _query(own.url, "SELECT energy_min, energy_max FROM ivoa.obscore WHERE "
                              f"obs_publisher_did = '{did}'")[0]  # fmt: skip
        assert (row["energy_min"], row["energy_max"]) == pytest.approx(expected), fit_range
        assert row["energy_min"] != pytest.approx(run["energy_min"])


def test_flux_points_of_the_spectrum_step_carry_their_analysis_in_obscore(own, crab_event,
                                                                         tmp_path):  # fmt: skip
    """Real SpectrumStep flux points (log-parabola) of run 23523 as the archive gave it."""
    from ctanb.analysis.spectrum import SpectrumConfig, SpectrumStep

    config = SpectrumConfig(ra_deg=83.633, dec_deg=22.0145, source="crab", model="log-parabola",
                            energy_min_tev=1, energy_max_tev=31.6, energy_bins_per_decade=4,
                            energy_true_min_tev=0.3, energy_true_max_tev=60,
                            energy_true_bins_per_decade=4, fit_energy_min_tev=1,
                            fit_energy_max_tev=10, flux_points_edges_tev=[1, 3.16, 10],
                            flux_points_optional=[])  # fmt: skip
    SpectrumStep(config).run([str(crab_event)], out=tmp_path)
    points = tmp_path / "crab_flux_points.fits"
    header = {k: v for h in fits.open(points) for k, v in h.header.items()}
    did = ctanb.connect(own.url, token=CRAB_TOKEN).publish(points).did
    row = _query(own.url, f"SELECT * FROM ivoa.obscore WHERE obs_publisher_did = '{did}'")[0]
    assert (row["energy_min"], row["energy_max"]) == pytest.approx(
        (header["FIT_EMIN"], header["FIT_EMAX"]))  # fmt: skip
    assert row["energy_max"] < 11  # not the run's 100 TeV
    assert str(row["spectral_model"]) == "log-parabola"
    assert str(row["s_region"]) and abs(row["s_ra"] - 83.633) < 1e-6 and row["s_fov"] == 0.22
    cur = _query(own.url, "SELECT fit_hypothesis, background_method FROM products.curation "
                          f"WHERE obs_publisher_did = '{did}'")[0]  # fmt: skip
    assert "log-parabola" in str(cur["fit_hypothesis"]) and "regions" in str(
        cur["background_method"]
    )
