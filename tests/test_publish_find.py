"""Finding published products from the panels (issue 14, items 1, 8 and 9).

On an archive of this module's own (the fixtures of ``test_publish``: a copy of the session
archive with the Crab counts map, its smoothed map and a proprietary Vela map published,
plus flux points of run 23523 made here):

- product criteria (data level, product kind, derived from a run, software, step,
  parameter) become ADQL over ObsCore and the ``provenance`` tables and find exactly
  the expected products, rights applied;
- the search form shows them in its ADQL box; a product row opens in the provenance panel
  from the archive (ProvSAP) and is redone from its DID;
- the provenance panel's Publish button publishes with curation, or says why not;
- flux points go over SAMP as a spectrum (``spectrum.load.ssa-generic``) and as a table,
  with units and UCDs, to a real SAMP client (TOPCAT does not subscribe to spectra).
"""

from __future__ import annotations

import io
import sys
import threading
import urllib.request
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from astropy.io.votable import parse_single_table
from hypothesis import given, settings
from hypothesis import strategies as st

import ctanb
from ctanb import CriteriaError, CtanbError
from ctanb.provenance import recorded

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))
import provenance_steps  # noqa: E402
import test_publish as _published  # noqa: E402  (its module fixtures: an archive of our own)
from test_publish import CRAB_TOKEN, RUN, VELA_TOKEN, _altered, _query  # noqa: E402

own, maker_home, crab_event = _published.own, _published.maker_home, _published.crab_event
crab_counts, crab_smoothed = _published.crab_counts, _published.crab_smoothed
vela_counts, published = _published.vela_counts, _published.published

#: Energy bins of the flux points (TeV).
EDGES = np.array([0.5, 1.0, 2.0, 5.0, 10.0, 30.0])


@recorded(name="test-flux-points", version="1.0", inputs=["event_file"],
          outputs={"out": "flux_points"}, data_level="DL5")  # fmt: skip
def event_flux_points(event_file: str, out: str) -> None:
    """Flux points in gammapy's gadf-sed format from the event counts per energy bin over
    the run's livetime and a nominal 1e9 cm2 area (these tests check search and transport,
    not the science: the values only have to be the file's own)."""
    import astropy.units as u
    from astropy.table import Table
    from gammapy.data import EventList
    from gammapy.estimators import FluxPoints

    events = EventList.read(event_file)
    counts, _ = np.histogram(events.energy.to_value("TeV"), bins=EDGES)
    width = np.diff(EDGES) * u.TeV
    exposure = 1e9 * u.cm**2 * events.table.meta["LIVETIME"] * u.s
    dnde = (counts / (exposure * width)).to("cm-2 s-1 TeV-1")
    table = Table(meta={"SED_TYPE": "dnde"})
    table["e_ref"] = np.sqrt(EDGES[:-1] * EDGES[1:]) * u.TeV
    table["e_min"], table["e_max"] = EDGES[:-1] * u.TeV, EDGES[1:] * u.TeV
    table["dnde"] = dnde
    table["dnde_err"] = dnde / np.sqrt(np.maximum(counts, 1))
    points = FluxPoints.from_table(table, sed_type="dnde", format="gadf-sed")
    points.write(out, sed_type="dnde", format="gadf-sed", overwrite=True)


@pytest.fixture(scope="module")
def flux(own, crab_event, published, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("flux") / "crab_flux_points.fits"
    event_flux_points(str(crab_event), str(out))
    done = ctanb.connect(own.url, token=CRAB_TOKEN).publish(
        out, curation={"title": "Crab flux points, run 23523", "analysis": "crab-1"}
    )
    return {"did": done.did, "path": out}


def _dids(results) -> set[str]:
    return {str(d) for d in results.to_table()["obs_publisher_did"]}


# -- item 8: criteria -> ADQL -> exactly the expected rows ------------------------------------
CASES = [
    ({"data_level": "DL4", "product_kind": "counts"}, {"counts", "vela"}),
    ({"product_kind": "smoothed"}, {"smoothed"}),
    ({"product_kind": ["counts", "flux_points"], "data_level": "DL5"}, {"flux"}),
    ({"dataproduct_type": "sed"}, {"flux"}),
    ({"derived_from_run": RUN}, {"counts", "smoothed", "flux"}),
    ({"derived_from_run": [RUN, "23526"], "product_kind": "counts"}, {"counts"}),
    ({"derived_from_run": "23526"}, set()),
    ({"software": "gammapy", "software_version": "2.1"}, {"counts", "smoothed", "flux"}),
    ({"software": "gammapy", "software_version": "1.3"}, set()),
    # the smoothed map's input was made by counts-map 1.0 with binsz 0.05: its lineage has them
    ({"step": "counts-map", "step_version": "1.0"}, {"counts", "smoothed"}),
    ({"step": "counts-map", "step_version": "9.9"}, set()),
    ({"step": "smooth-counts", "parameter": "radius_deg = 0.1"}, {"smoothed"}),
    ({"parameter": {"radius_deg": 0.2}}, set()),
    ({"parameter": "binsz_deg = 0.05"}, {"counts", "smoothed"}),
    ({"step": "test-sim-counts"}, set()),  # the Vela map's provenance is not ours to see
]


@pytest.mark.parametrize(("criteria", "expected"), CASES)
def test_product_criteria_find_exactly_the_expected_products(own, published, flux, criteria,
                                                             expected):  # fmt: skip
    dids = {**published, "flux": flux["did"]}
    archive = ctanb.connect(own.url, token="", progress=False)
    found = archive.search(**criteria)
    assert _dids(found) == {dids[k] for k in expected}, archive.adql(**criteria)


# -- item 8: software, step and parameter over the whole lineage -------------------------------
@recorded(name="test-map-profile", version="1.0", inputs=["map_file"],
          outputs={"out": "profile"}, data_level="DL5")  # fmt: skip
def map_profile(map_file: str, out: str) -> None:
    """The map summed over energy and latitude, as a table along longitude (a third step)."""
    from astropy.table import Table
    from gammapy.maps import Map

    image = Map.read(map_file).sum_over_axes(keepdims=False).data
    Table({"pixel": np.arange(image.shape[1]), "value": image.sum(axis=0)}).write(out)


#: The gammapy version the upstream step of the lineage archive's chain "ran with".
OLD_GAMMAPY = "2.0.1"


@pytest.fixture(scope="module")
def lineage(archive_db, crab_event, tmp_path_factory) -> dict:
    """An archive of its own (a copy of the session archive) with three published products:

    - ``counts``: counts-map 1.0 (binsz_deg 0.05) of run 23523;
    - ``smoothed``: smooth-counts 0.2 (radius_deg 0.1) of that counts map;
    - ``profile``: counts-map 1.0 (binsz_deg 0.1, run with gammapy 2.0.1) -> smooth-counts
      0.2 (radius_deg 0.25, current gammapy) -> test-map-profile 1.0; only the last product
      is published, so the binning, the first step and the old gammapy are upstream only.
    """
    import sqlite3

    from ctanb.archive.policy import AccessPolicy
    from ctanb.archive.service import ArchiveServer
    from ctanb.provenance import _agents

    folder = tmp_path_factory.mktemp("lineage")
    copy = folder / "archive.db"
    src, dst = sqlite3.connect(archive_db), sqlite3.connect(copy)
    src.backup(dst)
    src.close()
    dst.close()
    counts, smoothed = folder / "counts.fits", folder / "smoothed.fits"
    provenance_steps.CountsMapStep().run([str(crab_event)], str(counts))
    provenance_steps.smooth_counts_map(str(counts), str(smoothed), radius_deg=0.1)
    coarse, coarse_smoothed = folder / "coarse.fits", folder / "coarse_smoothed.fits"
    real = _agents.software_versions()
    with pytest.MonkeyPatch.context() as patch:
        # The first step of the chain as it ran a year ago, with an older gammapy.
        patch.setattr(_agents, "software_versions", lambda: {**real, "gammapy": OLD_GAMMAPY})
        config = provenance_steps.CountsMapConfig(binsz_deg=0.1)
        provenance_steps.CountsMapStep(config).run([str(crab_event)], str(coarse))
    provenance_steps.smooth_counts_map(str(coarse), str(coarse_smoothed), radius_deg=0.25)
    profile = folder / "profile.fits"
    map_profile(str(coarse_smoothed), str(profile))
    with ArchiveServer(copy, policy=AccessPolicy.demo()) as server:
        crab = ctanb.connect(server.url, token=CRAB_TOKEN, progress=False)
        server.published = {name: crab.publish(path).did for name, path in
                            (("counts", counts), ("smoothed", smoothed), ("profile", profile))}  # fmt: skip
        yield server


LINEAGE_CASES = [
    # a step, its version, a parameter or software used upstream only
    ({"parameter": "binsz_deg = 0.1"}, {"profile"}),
    ({"parameter": "binsz_deg = 0.05"}, {"counts", "smoothed"}),
    ({"parameter": "radius_deg = 0.25"}, {"profile"}),
    ({"step": "counts-map", "step_version": "1.0"}, {"counts", "smoothed", "profile"}),
    ({"step": "smooth-counts"}, {"smoothed", "profile"}),
    ({"step": "smooth-counts", "parameter": "radius_deg = 0.1"}, {"smoothed"}),
    ({"step": "test-map-profile"}, {"profile"}),
    ({"software": "gammapy", "software_version": OLD_GAMMAPY}, {"profile"}),
    ({"software": "gammapy", "software_version": "2.1"}, {"counts", "smoothed", "profile"}),
    (
        {
            "step": "counts-map",
            "parameter": "binsz_deg = 0.1; radius_deg = 0.25",
            "software": "gammapy",
            "software_version": OLD_GAMMAPY,
        },
        {"profile"},
    ),
    ({"step": "counts-map", "step_version": "0.9"}, set()),
    ({"parameter": "binsz_deg = 0.2"}, set()),
    ({"derived_from_run": RUN, "product_kind": "profile"}, {"profile"}),
]


@pytest.mark.parametrize(("criteria", "expected"), LINEAGE_CASES)
def test_provenance_criteria_cover_the_whole_lineage(lineage, criteria, expected):
    archive = ctanb.connect(lineage.url, token="", progress=False)
    adql = archive.adql(**criteria)
    assert "WITH" not in adql.upper().split("FROM")[0] and "RECURSIVE" not in adql.upper()
    found = archive.search(**criteria)
    assert _dids(found) == {lineage.published[k] for k in expected}, adql


def test_the_search_form_finds_a_product_by_an_upstream_parameter(lineage):
    from ctanb.widgets import SearchPanel

    panel = SearchPanel(ctanb.connect(lineage.url, progress=False))
    panel.set(parameter="binsz_deg = 0.1", software="gammapy", software_version=OLD_GAMMAPY)
    shown = panel.adql_text.value
    assert "provenance.product_activity" in shown and "provenance.parameter" in shown
    assert _dids(panel.search()) == {lineage.published["profile"]}
    # the ADQL box stays editable: the same query typed by hand gives the same row
    archive = ctanb.connect(lineage.url, progress=False)
    assert _dids(archive.query(shown)) == {lineage.published["profile"]}


def test_an_archive_from_before_the_lineage_table_gets_it_filled(lineage, tmp_path):
    """Products published before ``ctanb.product_activities`` existed are walked once."""
    import sqlite3

    from ctanb.archive.publish import create_publish_schema

    copy = tmp_path / "old.db"
    with sqlite3.connect(lineage.db) as src, sqlite3.connect(copy) as dst:
        src.backup(dst)
    with sqlite3.connect(copy) as conn:
        want = conn.execute('SELECT product_did, activity_id FROM "ctanb.product_activities" '
                            "ORDER BY 1, 2").fetchall()  # fmt: skip
        conn.execute('DROP TABLE "ctanb.product_activities"')
    # three products: 1 + 2 + 3 activities
    assert len(want) == 6
    with sqlite3.connect(copy) as conn:
        create_publish_schema(conn)
        got = conn.execute('SELECT product_did, activity_id FROM "ctanb.product_activities" '
                           "ORDER BY 1, 2").fetchall()  # fmt: skip
    assert got == want


def test_dachs_gets_the_lineage_closure_an_anonymous_user_sees(own, published, tmp_path):
    """The rows ``deploy/dachs/up`` imports into provenance.product_activity on DaCHS: those
    of the public products, none of the proprietary Vela map (no DaCHS needed here)."""
    import hashlib
    import sqlite3

    from ctanb.archive.dachs_prov import export_products
    from ctanb.archive.policy import AccessPolicy

    with sqlite3.connect(own.db) as conn:
        export_products(conn, tmp_path, policy=AccessPolicy.demo(), docs_dir=tmp_path / "docs",
                        accref=str, digest=hashlib.sha256(), documents=False)  # fmt: skip
        every = set(conn.execute('SELECT product_did, activity_id FROM "ctanb.product_activities"'))
    lines = (tmp_path / "prov_product_activity.copy").read_text().splitlines()
    exported = {tuple(line.split("\t")) for line in lines}
    assert exported == {(d, a) for d, a in every if d != published["vela"]}
    by_product = {d: {a for p, a in exported if p == d} for d in (published["counts"],
                                                                  published["smoothed"])}  # fmt: skip
    assert len(by_product[published["counts"]]) == 1 and len(by_product[published["smoothed"]]) == 2
    assert by_product[published["counts"]] < by_product[published["smoothed"]]
    assert any(d == published["vela"] for d, _ in every)  # it is there, and not exported


def test_provenance_criteria_are_adql_over_the_provenance_tables(own):
    archive = ctanb.connect(own.url, progress=False)
    adql = archive.adql(derived_from_run=RUN, software="gammapy", software_version="2.1",
                        step="smooth-counts", parameter="radius_deg = 0.1")  # fmt: skip
    assert "FROM ivoa.obscore" in adql
    for table in ("provenance.product_progenitor", "provenance.product_activity",
                  "provenance.agent", "provenance.activity_description",
                  "provenance.parameter"):  # fmt: skip
        assert table in adql, table
    assert "provenance.agent.version = '2.1'" in adql
    assert "provenance.parameter.\"value\" = '0.1'" in adql
    # tables named in full: a correlation name costs DaCHS a database connection
    assert " AS " not in adql.upper()


def test_the_group_finds_its_proprietary_product_by_its_provenance(own, published, flux):
    vela = ctanb.connect(own.url, token=VELA_TOKEN, progress=False)
    assert _dids(vela.search(step="test-sim-counts")) == {published["vela"]}
    vela_run = _query(own.url, "SELECT obs_id FROM ivoa.obscore WHERE obs_publisher_did = "
                      f"'{published['vela_run']}'", VELA_TOKEN)[0][0]  # fmt: skip
    assert _dids(vela.search(derived_from_run=str(vela_run))) == {published["vela"]}
    crab = ctanb.connect(own.url, token=CRAB_TOKEN, progress=False)
    assert _dids(crab.search(derived_from_run=str(vela_run))) == set()


@pytest.mark.parametrize(("criteria", "words"), [
    ({"software_version": "2.1"}, "software_version: give the software as well"),
    ({"step_version": "1.0"}, "step_version: give the step as well"),
    ({"product_kind": "counts'; DROP"}, "is not a product kind"),
    ({"parameter": "radius_deg"}, "is not 'name = value'"),
    ({"parameter": "x = 1; = 2"}, "is not 'name = value'"),
    ({"data_level": "DL3", "product_kind": "counts"}, "published products are DL4 or DL5"),
    ({"software": "  "}, "software: the value is empty"),
    ({"parameter": "; ".join(f"p{i} = {i}" for i in range(6))}, "give at most 5"),
])  # fmt: skip
def test_bad_product_criteria_are_named(criteria, words):
    with pytest.raises(CriteriaError) as info:
        ctanb.Criteria(**criteria)
    assert words in str(info.value)


def test_a_quote_in_a_provenance_value_stays_a_value(own, published):
    archive = ctanb.connect(own.url, progress=False)
    assert len(archive.search(software="gammapy' OR '1'='1")) == 0
    assert len(archive.search(parameter="radius_deg = 0.1' OR 'a'='a")) == 0
    # every product criterion at once, with the most parameters allowed: within the
    # archive's query limits (tables per query), an answer rather than a refusal
    most = "; ".join(["radius_deg = 0.1", *(f"p{i} = {i}" for i in range(4))])
    assert (
        len(
            archive.search(
                derived_from_run=RUN,
                software="gammapy",
                software_version="2.1",
                step="smooth-counts",
                step_version="0.2",
                parameter=most,
            )
        )
        == 0
    )
    smoothed = archive.search(
        derived_from_run=RUN,
        software="gammapy",
        software_version="2.1",
        step="smooth-counts",
        parameter="radius_deg = 0.1",
    )
    assert _dids(smoothed) == {published["smoothed"]}


# -- item 8: the search form and the provenance panel ---------------------------------------
def test_the_search_form_searches_products_and_shows_the_adql(own, published, flux):
    from ctanb.widgets import SearchPanel

    panel = SearchPanel(ctanb.connect(own.url, progress=False))
    panel.set(data_level="DL5", product_kind="flux_points")
    # flux_points also finds what SpectrumStep publishes (DL5-flux)
    assert "dataproduct_subtype IN ('DL5-flux_points', 'DL5-flux')" in panel.adql_text.value
    assert _dids(panel.search()) == {flux["did"]}
    panel.reset()
    panel.set(derived_from_run=str(RUN), step="smooth-counts", parameter="radius_deg = 0.1")
    assert "provenance.product_progenitor" in panel.adql_text.value
    assert "provenance.parameter" in panel.adql_text.value
    assert _dids(panel.search()) == {published["smoothed"]}
    # the kinds the archive holds are offered
    panel.load_choices()
    assert {"counts", "smoothed", "flux_points"} <= set(panel.products.kind.options)
    # a bad value is named in the panel and empties the query (none sent in its place)
    panel.products.texts["parameter"].value = "radius_deg"
    assert "is not 'name = value'" in panel.error and panel.adql_text.value == ""
    panel.reset()
    assert panel.adql_text.value.strip().startswith("SELECT * FROM ivoa.obscore")
    assert "provenance" not in panel.adql_text.value


def test_a_product_row_opens_in_the_provenance_panel_and_is_redone(own, published, tmp_path):
    from ctanb.widgets import App

    app = App(ctanb.connect(own.url, progress=False), use_aladin=False)
    app.search.set(derived_from_run=str(RUN), step="smooth-counts")
    results = app.search.search()
    assert _dids(results) == {published["smoothed"]}
    # nothing checked: said in words
    app.open_product_button.click()
    assert "check the row of a published product" in app.table.error
    app.table.select([0])
    app.open_product_button.click()
    assert app.table.error == ""
    panel = app.provenance
    assert panel.product == published["smoothed"]
    assert app.tabs.titles[app.tabs.selected_index] == "Provenance"
    names = {a["name"] for a in panel.activities}
    assert {"counts-map", "smooth-counts"} <= names  # the whole lineage, from the archive
    assert "<svg" in panel.svg and "23523" in panel.lineage_view.value
    report = panel.redo(tmp_path / "redo")
    assert panel.redo_ok is True, panel.verdict
    assert "identical" in panel.verdict.lower() or "equal" in panel.verdict.lower()
    assert report.ok and (tmp_path / "redo" / "original").is_dir()


def test_a_proprietary_product_does_not_open_for_others(own, published):
    from ctanb.widgets import ProvenancePanel

    panel = ProvenancePanel(archive=ctanb.connect(own.url, token="", progress=False))
    panel.product_list.value = published["vela"]
    from ctanb.widgets._errors import guarded

    guarded(panel, panel.open_published, published["vela"])
    assert "proprietary to group vela-team until 2028-03-31" in panel.error
    assert panel.activities == [] and panel.svg == ""
    guarded(panel, panel.open_published, "ivo://ctanb.archive/products?nothing")
    assert "the archive has no provenance for" in panel.error


# -- item 1: the Publish button ------------------------------------------------------------------
def test_the_publish_button_publishes_with_curation_or_says_why_not(own, crab_counts, tmp_path):
    from ctanb.widgets import ProvenancePanel

    product = tmp_path / "crab_smoothed_03.fits"
    provenance_steps.smooth_counts_map(str(crab_counts), str(product), radius_deg=0.3)
    panel = ProvenancePanel(archive=ctanb.connect(own.url, token=CRAB_TOKEN, progress=False))
    panel.add_product(product)
    panel.curation_boxes["title"].value = "Crab, smoothed 0.3 deg"
    panel.curation_boxes["creator"].value = "panel test"
    # a hasty user clicks twice: one publication, one DID
    panel.publish_button.click()
    first = panel.published_did
    panel.publish_button.click()
    assert panel.error == "" and panel.publish_ok is True
    assert panel.published_did == first and first.startswith("ivo://ctanb.archive/products?")
    assert "already published as" in panel.publish_message
    assert "#2e7d32" in panel.publish_view.value  # green: it worked
    row = _query(own.url, f"SELECT obs_title, obs_creator_name FROM ivoa.obscore "
                          f"WHERE obs_publisher_did = '{first}'")  # fmt: skip
    assert list(row["obs_title"]) == ["Crab, smoothed 0.3 deg"]
    assert list(row["obs_creator_name"]) == ["panel test"]
    # an altered product: refused, the check named, red, no traceback, nothing published
    altered = _altered(crab_counts, tmp_path)
    before = len(_query(own.url, "SELECT obs_publisher_did FROM ivoa.obscore "
                                 "WHERE obs_collection = 'CTANB-PRODUCTS'"))  # fmt: skip
    panel.add_product(altered)
    panel.publish_button.click()
    assert panel.publish_ok is False
    assert panel.publish_message.startswith("refused: ")
    assert "product altered" in panel.publish_message
    assert "#c62828" in panel.publish_view.value and "#2e7d32" not in panel.publish_view.value
    assert "product altered" in panel.error and "Traceback" not in panel.error_display.value
    after = len(_query(own.url, "SELECT obs_publisher_did FROM ivoa.obscore "
                                "WHERE obs_collection = 'CTANB-PRODUCTS'"))  # fmt: skip
    assert after == before
    # without a token: refused in words
    anonymous = ProvenancePanel(archive=ctanb.connect(own.url, token="", progress=False))
    anonymous.add_product(product)
    anonymous.publish_button.click()
    assert anonymous.publish_ok is False
    assert "publishing needs a token of this archive" in anonymous.publish_message
    # no product chosen
    empty = ProvenancePanel(archive=ctanb.connect(own.url, token=CRAB_TOKEN, progress=False))
    empty.publish_button.click()
    assert "choose a product to publish" in empty.error


# -- items 1, 7 and 10: a models file the analyst wrote goes with the product --------------------
@recorded(name="test-model-map", version="1.0", inputs=["counts_file", "models_file"],
          outputs={"out": "npred"}, data_level="DL4")  # fmt: skip
def model_map(counts_file: str, models_file: str, out: str) -> None:
    """The sky models of a gammapy models file (as the 3D fit starts from) integrated over
    the counts map's pixels, scaled to its total counts: a model image of the map."""
    from gammapy.maps import Map
    from gammapy.modeling.models import Models

    counts = Map.read(counts_file).sum_over_axes(keepdims=False)
    image = Map.from_geom(counts.geom)
    for model in Models.read(models_file):
        image.data += model.spatial_model.integrate_geom(counts.geom).data
    (image * float(counts.data.sum())).write(out)


@recorded(name="test-configured-counts", version="1.0", inputs=["counts_file", "config_file"],
          outputs={"out": "counts"}, data_level="DL4")  # fmt: skip
def configured_counts(counts_file: str, config_file: str, out: str) -> None:
    """A copy of a counts map that names its configuration file's size (the file is only
    read as bytes here: what the archive does with it is what these tests check)."""
    from gammapy.maps import Map

    counts = Map.read(counts_file)
    counts.meta["CFGSIZE"] = len(Path(config_file).read_bytes())
    counts.write(out)


def _gammapy_models(path: Path, padding: int = 0) -> Path:
    from gammapy.modeling.models import (
        GaussianSpatialModel,
        Models,
        PowerLawSpectralModel,
        SkyModel,
    )

    spatial = GaussianSpatialModel(lon_0="83.63 deg", lat_0="22.01 deg", sigma="0.1 deg",
                                   frame="icrs")  # fmt: skip
    # as Map3DStep writes models_start.yaml: no covariance file beside it
    models = Models([SkyModel(PowerLawSpectralModel(), spatial, name="crab")])
    models.write(path, write_covariance=False)
    if padding:  # a comment block: still a valid models file, only too big
        with path.open("a") as fh:
            fh.write(("# " + "x" * 77 + "\n") * (padding // 80 + 1))
    return path


@pytest.fixture
def models_archive(archive_db, tmp_path):
    """A copy of the session archive of its own, and a maker's home with run 23523."""
    import sqlite3

    from ctanb.archive.policy import AccessPolicy
    from ctanb.archive.service import ArchiveServer

    copy = tmp_path / "archive" / "archive.db"
    copy.parent.mkdir()
    with sqlite3.connect(archive_db) as src, sqlite3.connect(copy) as dst:
        src.backup(dst)
    with ArchiveServer(copy, policy=AccessPolicy.demo()) as server:
        maker = ctanb.connect(server.url, token=CRAB_TOKEN, progress=False)
        maker.downloads.cache_dir = tmp_path / "maker-home" / "cache"
        run = maker.query(f"SELECT * FROM ivoa.obscore WHERE obs_id = '{RUN}' "
                          "AND obs_collection = 'HESS-DL3-DR1'")  # fmt: skip
        (server.event_file,) = maker.download(run)
        server.maker = maker
        yield server


def _archive_state(db: Path) -> tuple:
    import sqlite3

    with sqlite3.connect(db) as conn:
        counts = tuple(conn.execute(sql).fetchone()[0] for sql in (
            "SELECT COUNT(*) FROM \"ivoa.obscore\" WHERE obs_collection = 'CTANB-PRODUCTS'",
            'SELECT COUNT(*) FROM "ctanb.files"', 'SELECT COUNT(*) FROM "ctanb.curation"',
            'SELECT COUNT(*) FROM "ctanb.prov_entity"'))  # fmt: skip
    products = db.parent / "products"
    files = sorted(p.name for p in products.rglob("*") if p.is_file()) if products.exists() else []
    return counts, files


def test_a_product_made_with_a_models_file_is_redone_by_anyone(models_archive, tmp_path):
    """3D-fit style: counts map + the analyst's models_start.yaml -> product; published
    with the models file; another user with an empty home redoes it from the DID alone."""
    import hashlib
    import os
    import shutil
    import subprocess

    work = tmp_path / "maker-work"
    work.mkdir()
    counts = work / "counts.fits"
    provenance_steps.CountsMapStep().run([str(models_archive.event_file)], str(counts))
    models = _gammapy_models(work / "models_start.yaml")
    product = work / "crab_model.fits"
    model_map(str(counts), str(models), str(product))
    sha = hashlib.sha256(models.read_bytes()).hexdigest()
    done = models_archive.maker.publish(product, curation={"title": "Crab model map"})
    assert done.created
    # DataLink: the models file is the product's #progenitor, with its size; its bytes are
    # the analyst's file, byte for byte
    links = [link for link in models_archive.maker.datalink(done.did)
             if link.semantics == "#progenitor" and "models_start.yaml" in link.description]  # fmt: skip
    assert len(links) == 1 and sha[:16] in links[0].description
    assert links[0].content_length == models.stat().st_size
    body = models_archive.maker.session.get(links[0].access_url, timeout=30)
    assert hashlib.sha256(body.content).hexdigest() == sha
    # publishing again: the same DID, nothing new (the file kept once)
    before = _archive_state(models_archive.db)
    assert not models_archive.maker.publish(product).created
    assert _archive_state(models_archive.db) == before
    # another user, another machine: none of the maker's files, an empty home, no data
    shutil.rmtree(work)
    shutil.rmtree(tmp_path / "maker-home")
    empty = tmp_path / "no-data"
    empty.mkdir()
    out = tmp_path / "redo"
    script = ("import sys, provenance_steps, test_publish_find; from ctanb.cli import main; "
              "main(sys.argv[1:])")  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(TESTS), "CTANB_HOME": str(tmp_path / "other-user"),
           "CTANB_DATA": str(empty), "CTANB_TOKEN": ""}  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-c", script, "prov", "redo", done.did, "--out", str(out),
         "--archive", models_archive.url],
        capture_output=True, text=True, env=env, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert ": identical" in result.stdout, result.stdout
    assert "counts-map 1.0" in result.stdout and "test-model-map 1.0" in result.stdout
    # the run and the models file, both from the archive, checked by sha256
    assert "inputs (checked by sha256): 2 from the archive" in result.stdout, result.stdout
    # and the redone image is the original, pixel for pixel (read independently)
    (original,) = (out / "original").glob("*.fits")
    with fits.open(out / "crab_model.fits") as new, fits.open(original) as old:
        assert np.array_equal(new[0].data, old[0].data) and new[0].data.sum() > 0


@pytest.mark.parametrize("case", ["huge", "python-tag", "not-a-mapping", "not-sent"])
def test_a_bad_models_file_is_refused_by_name_and_nothing_is_written(models_archive, tmp_path,
                                                                      case):  # fmt: skip
    from ctanb.client.publish import PublishRefusedError

    counts = tmp_path / "counts.fits"
    provenance_steps.CountsMapStep().run([str(models_archive.event_file)], str(counts))
    product = tmp_path / "product.fits"
    marker = tmp_path / "executed"
    if case == "huge":
        config = _gammapy_models(tmp_path / "models_huge.yaml", padding=2 * 1024 * 1024)
        model_map(str(counts), str(config), str(product))
        words = "input models_huge.yaml is too big for a models or configuration file (2.0 MB"
    else:
        config = tmp_path / {"python-tag": "crafted.yaml", "not-a-mapping": "list.yaml",
                             "not-sent": "models_start.yaml"}[case]  # fmt: skip
        config.write_text({
            "python-tag": f"!!python/object/apply:os.system ['touch {marker}']\n",
            "not-a-mapping": "- 1\n- 2\n",
            "not-sent": "components: []\n",
        }[case])  # fmt: skip
        configured_counts(str(counts), str(config), str(product))
        words = {
            "python-tag": "input crafted.yaml is not plain YAML data (line 1): it names a type "
                          "(!!python/object/apply:os.system)",
            "not-a-mapping": "input list.yaml is not a models or configuration file",
            "not-sent": "input models_start.yaml is a models or configuration file that was "
                        "not sent with the product",
        }[case]  # fmt: skip
        if case == "not-sent":
            config.unlink()  # the maker publishes from a machine where it is not
    before = _archive_state(models_archive.db)
    with pytest.raises(PublishRefusedError) as info:
        models_archive.maker.publish(product)
    assert info.value.condition == "inputs"
    assert words in str(info.value), str(info.value)
    assert "Traceback" not in str(info.value)
    assert _archive_state(models_archive.db) == before  # no row, no file, no record
    assert not marker.exists()  # never executed


def test_a_failure_while_publishing_leaves_no_models_file(models_archive, tmp_path):
    counts = tmp_path / "counts.fits"
    provenance_steps.CountsMapStep().run([str(models_archive.event_file)], str(counts))
    models = _gammapy_models(tmp_path / "models_start.yaml")
    product = tmp_path / "crab_model.fits"
    model_map(str(counts), str(models), str(product))
    before = _archive_state(models_archive.db)

    def disk_full() -> None:
        raise OSError(28, "No space left on device")

    models_archive.app.state.publish_before_commit = disk_full
    try:
        with pytest.raises(CtanbError) as info:
            models_archive.maker.publish(product)
    finally:
        models_archive.app.state.publish_before_commit = None
    assert "500" in str(info.value) and "Traceback" not in str(info.value)
    assert _archive_state(models_archive.db) == before  # the models file written is gone
    # ... and the same publication then goes through, with its models file
    assert models_archive.maker.publish(product).created
    counts_after, files_after = _archive_state(models_archive.db)
    assert "models_start.yaml" in files_after and counts_after[0] == before[0][0] + 1


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_any_text_as_a_models_file_is_data_or_a_refusal_naming_it(text):
    """Whatever YAML text is sent, the check answers plain data or a message naming the
    file, never an exception, and never builds anything but plain data."""
    import tempfile

    from ctanb.archive.publish_inputs import check_user_input

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sent.yaml"
        path.write_text(text, encoding="utf-8")
        data, problem = check_user_input("models_start.yaml", path)
    assert (data is None) != (problem is None)
    if problem is not None:
        assert problem.startswith("input models_start.yaml ") and "Traceback" not in problem
    else:
        import yaml

        def plain(value) -> bool:
            if isinstance(value, dict):
                return all(plain(k) and plain(v) for k, v in value.items())
            if isinstance(value, list):
                return all(plain(v) for v in value)
            import datetime

            return value is None or isinstance(value, str | int | float | bool | bytes |
                                               datetime.date)  # fmt: skip

        assert plain(yaml.safe_load(data))


# -- item 9: spectra to spectral tools -------------------------------------------------------------
class SpectralTool:
    """A real SAMP client (pyvo) that loads spectra and tables as a spectral tool would."""

    def __init__(self, lockfile: Path) -> None:
        import pyvo.samp

        self.received: list[tuple[str, dict, bytes]] = []
        self.arrived = threading.Event()
        self.client = pyvo.samp.SAMPIntegratedClient(
            metadata={"samp.name": "spectral-tool"}, addr="127.0.0.1"
        )
        from pyvo.samp.lockfile_helpers import read_lockfile

        self.client.connect(hub_params=read_lockfile(str(lockfile)))
        for mtype in ("spectrum.load.ssa-generic", "table.load.votable"):
            self.client.bind_receive_call(mtype, self._load)

    def _load(self, private_key, sender_id, msg_id, mtype, params, extra):
        with urllib.request.urlopen(params["url"], timeout=30) as resp:
            body = resp.read()
        self.received.append((mtype, params, body))
        self.client.reply(msg_id, {"samp.status": "samp.ok", "samp.result": {}})
        self.arrived.set()

    def close(self) -> None:
        self.client.disconnect()


@pytest.fixture
def samp_pair(tmp_path):
    from samp_apps import wait_for

    from ctanb.samp import SampLink

    with SampLink.connect(tmp_path / "lockfile", serve="http", timeout=20) as link:
        tool = SpectralTool(tmp_path / "lockfile")
        try:
            wait_for(lambda: link.transport.subscribed("spectrum.load.ssa-generic"), 20,
                     "the spectral tool to subscribe")  # fmt: skip
            yield link, tool
        finally:
            tool.close()


def _fields(body: bytes) -> dict[str, tuple[str, str]]:
    table = parse_single_table(io.BytesIO(body))
    return {f.name: (f.unit, f.ucd) for f in table.fields}


DNDE = u.Unit("cm-2 s-1 TeV-1")


def test_a_published_sed_goes_to_a_spectral_tool_as_a_spectrum_and_a_table(own, flux,
                                                                          samp_pair):  # fmt: skip
    from samp_apps import wait_for

    from ctanb.widgets import App

    link, tool = samp_pair
    app = App(ctanb.connect(own.url, progress=False), samp=link, use_aladin=False)
    controls = app.samp_controls
    app.search.set(derived_from_run=str(RUN))
    app.search.search()
    table = app.table.table
    kinds = [str(k) for k in table["dataproduct_subtype"]]
    # the button shows only while a spectrum/SED row is checked
    app.table.select([kinds.index("DL4-counts")])
    assert controls.send_spectrum_button.layout.display == "none"
    app.table.select([kinds.index("DL5-flux_points")])
    assert controls.send_spectrum_button.layout.display == ""
    controls.send_spectrum_button.click()
    wait_for(lambda: tool.received, 30, "the spectrum to arrive")
    mtype, params, body = tool.received[0]
    assert mtype == "spectrum.load.ssa-generic"
    fields = _fields(body)
    assert fields["e_ref"] == (u.TeV, "em.energy;meta.main")
    assert fields["e_min"][1] == "em.energy;stat.min" and fields["e_max"][0] == u.TeV
    assert fields["dnde"] == (DNDE, "phot.flux.density;em.energy")
    assert fields["dnde_err"][1] == "stat.error;phot.flux.density"
    # the values are those of the published file, read independently with astropy
    with fits.open(flux["path"]) as hdus:
        sent = parse_single_table(io.BytesIO(body)).to_table()
        original = hdus[1].data
        assert np.allclose(np.ravel(sent["dnde"]), np.ravel(original["dnde"]))
        assert np.allclose(sent["e_min"], original["e_min"])
    meta = params["meta"]
    row = table[kinds.index("DL5-flux_points")]
    assert meta["Access.Format"] == "application/x-votable+xml"
    assert meta["Target.Name"] == str(row["target_name"])
    assert meta["Curation.PublisherDID"] == flux["did"]
    assert u.Unit(meta["Char.FluxAxis.Unit"], format="vounit") == DNDE
    assert meta["Char.SpectralAxis.Unit"] == "TeV"
    assert "#2e7d32" in controls.status.value  # delivered: green
    # the flux-point file the provenance panel shows (the maker's own copy) goes as well
    app.table.select([])
    assert controls.send_spectrum_button.layout.display == "none"
    app.provenance.show(flux["path"])
    assert controls.send_spectrum_button.layout.display == ""
    tool.received.clear()
    controls.send_spectrum_button.click()
    wait_for(lambda: tool.received, 30, "the panel's spectrum to arrive")
    assert tool.received[0][0] == "spectrum.load.ssa-generic"
    assert _fields(tool.received[0][2])["dnde"] == (DNDE, "phot.flux.density;em.energy")
    # ... and as a table, with the same units and UCDs
    from ctanb.samp.spectrum import spectrum_table

    tool.received.clear()
    link.send_table(spectrum_table(flux["path"]), to="spectral-tool")
    wait_for(lambda: tool.received, 30, "the table to arrive")
    assert tool.received[0][0] == "table.load.votable"
    assert _fields(tool.received[0][2])["dnde"] == (DNDE, "phot.flux.density;em.energy")


def test_send_spectrum_of_something_else_is_refused_in_words(crab_counts):
    from ctanb.samp.spectrum import spectrum_table

    with pytest.raises(CtanbError) as info:
        spectrum_table(Path("/nonexistent/flux.fits"))
    assert "spectrum file not found" in str(info.value)
    with pytest.raises(CtanbError) as info:
        spectrum_table(crab_counts)  # a counts map, not flux points
    assert "no flux points in this file" in str(info.value)
    with pytest.raises(CtanbError) as info:
        spectrum_table(b"SIMPLE  = this is not FITS")
    assert "not a FITS flux-point product" in str(info.value)
