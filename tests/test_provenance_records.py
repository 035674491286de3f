"""Complete, standard provenance records: every serialization reads back, the IVOA
ProvenanceDM classes are there, one agent per identity, the versions that matter."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import rdflib

from ctanb.provenance import parse, read_provenance
from ctanb.provenance.document import VOPROV_NS, document_to_graph

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))
import provenance_steps  # noqa: E402

PROVDM_CLASSES = (
    "ActivityDescription",
    "EntityDescription",
    "UsageDescription",
    "GenerationDescription",
    "ParameterDescription",
    "Parameter",
    "ConfigFile",
)


@pytest.fixture(scope="module")
def product(tmp_path_factory, prov_store_url, data_dir) -> Path:
    run = data_dir / "hess-dl3-dr1" / "data" / "hess_dl3_dr1_obs_id_023523.fits.gz"
    out = tmp_path_factory.mktemp("records")
    counts, smoothed = out / "counts.fits", out / "smoothed.fits"
    provenance_steps.CountsMapStep().run([str(run)], str(counts))
    provenance_steps.smooth_counts_map(str(counts), str(smoothed), radius_deg=0.1)
    return smoothed


@pytest.fixture(scope="module")
def graph(product):
    return read_provenance(product)


def _essentials(graph):
    acts = {
        a.name: (a.version, a.parameters, a.config, sorted(r.entity_id for r in a.used))
        for a in graph.activities.values()
    }
    derivations = {
        a.name: {k: sorted(v) for k, v in a.derivations.items()} for a in graph.activities.values()
    }
    return acts, derivations


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_prov_json_and_xml_read_back_to_the_same_records(graph, fmt):
    from prov.model import ProvDocument

    text = graph.serialize(fmt)
    again = (
        parse(text, "json")
        if fmt == "json"
        else document_to_graph(ProvDocument.deserialize(content=text, format="xml"))
    )
    assert _essentials(again) == _essentials(graph)
    assert any(a.config for a in again.activities.values())  # the configuration survives


def test_turtle_reads_with_rdflib_and_has_the_provenancedm_classes(graph):
    turtle = graph.serialize("turtle")
    rdf = rdflib.Graph().parse(data=turtle, format="turtle")
    voprov = rdflib.Namespace(VOPROV_NS)
    types = {str(o) for o in rdf.objects(None, rdflib.RDF.type)}
    for name in PROVDM_CLASSES:
        assert str(voprov[name]) in types, name
    assert str(voprov["wasConfiguredBy"]) in types  # the qualified usage of parameters


def test_prov_type_values_are_qualified_names(graph):
    text = graph.serialize("json")
    assert '"$": "voprov:ActivityDescription", "type": "xsd:QName"' in text
    assert '"prov:type": "voprov:' not in text  # no plain-string types


def test_one_agent_record_per_identity(graph):
    xml = graph.serialize("xml")
    ids = re.findall(r'<prov:agent prov:id="([^"]+)"', xml)
    assert ids and len(ids) == len(set(ids)), ids
    assert len(graph.activities) == 2  # two activities share the agents


def test_the_versions_that_change_results_are_recorded(graph):
    act = next(iter(graph.activities.values()))
    software = act.software
    for name in ("numpy", "scipy", "astropy", "gammapy", "iminuit", "regions", "ctanb"):
        assert software.get(name) not in (None, "", "not installed"), name
    assert re.search(r"\+g[0-9a-f]{12}", software["ctanb"]), software["ctanb"]


def test_the_w3c_model_keeps_the_configuration(graph):
    text = graph.serialize("json", model="W3C")
    assert "voprov:" not in text.replace(VOPROV_NS, "")
    again = parse(text, "json")
    assert _essentials(again)[0] == _essentials(graph)[0]


def test_the_graph_shows_what_matters_first_and_the_rest_on_hover(graph):
    svg = graph.to_svg()
    assert "config ra_deg" in svg and "config energy_min_tev" in svg
    assert "more (hover to see all)" in svg
    titles = " ".join(re.findall(r'xlink:title="([^"]*)"', svg))
    assert "param out" in titles and "param event_files" in titles  # on demand only
    label = svg.split("counts&#45;map", 1)[1].split("</g>", 1)[0]
    assert "param out" not in label


def test_the_panels_graph_zooms_and_pans(product):
    from ctanb.widgets import ProvenancePanel

    panel = ProvenancePanel()
    panel.product_list.value = str(product)
    panel.show_button.click()
    assert "width:100%" in panel.graph_view.value and "<svg" in panel.graph_view.value
    panel.zoom_in_button.click()
    panel.zoom_in_button.click()
    assert panel.zoom == pytest.approx(2.25) and "width:225%" in panel.graph_view.value
    panel.zoom_out_button.click()
    assert "width:150%" in panel.graph_view.value
    panel.zoom_fit_button.click()
    assert panel.zoom == 1.0 and "width:100%" in panel.graph_view.value


def test_every_shipped_step_is_registered_for_redo():
    """A module of ctanb that records steps but is missing from STEP_MODULES would make
    its products impossible to redo in a new process."""
    from ctanb.provenance.steps import STEP_MODULES, registered_steps

    package = Path(__file__).resolve().parent.parent / "ctanb"
    recording = {
        ".".join(path.relative_to(package.parent).with_suffix("").parts)
        for path in package.rglob("*.py")
        if path.parent.name != "provenance"  # its docstrings show the decorator
        and re.search(r"^\s*@recorded\(", path.read_text(), re.MULTILINE)
    }
    assert recording and recording <= set(STEP_MODULES), recording - set(STEP_MODULES)
    kinds = {kind for kind, _ in registered_steps()}
    assert {"spectrum-datasets", "spectrum-fit", "map3d-fit", "ts-map", "exclusion-mask"} <= kinds
