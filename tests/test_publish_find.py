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
    ({"step": "counts-map", "step_version": "1.0"}, {"counts"}),
    ({"step": "counts-map", "step_version": "9.9"}, set()),
    ({"step": "smooth-counts", "parameter": "radius_deg = 0.1"}, {"smoothed"}),
    ({"parameter": {"radius_deg": 0.2}}, set()),
    ({"parameter": "binsz_deg = 0.05"}, {"counts"}),
    ({"step": "test-sim-counts"}, set()),  # the Vela map's provenance is not ours to see
]


@pytest.mark.parametrize(("criteria", "expected"), CASES)
def test_product_criteria_find_exactly_the_expected_products(own, published, flux, criteria,
                                                             expected):  # fmt: skip
    dids = {**published, "flux": flux["did"]}
    archive = ctanb.connect(own.url, token="", progress=False)
    found = archive.search(**criteria)
    assert _dids(found) == {dids[k] for k in expected}, archive.adql(**criteria)


def test_provenance_criteria_are_adql_over_the_provenance_tables(own):
    archive = ctanb.connect(own.url, progress=False)
    adql = archive.adql(derived_from_run=RUN, software="gammapy", software_version="2.1",
                        step="smooth-counts", parameter="radius_deg = 0.1")  # fmt: skip
    assert "FROM ivoa.obscore" in adql
    for table in ("provenance.product_progenitor", "provenance.agent",
                  "provenance.activity_description", "provenance.parameter"):  # fmt: skip
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
