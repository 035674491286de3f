"""ctanb.samp pieces that need no application: the built bridge module, the VOTable
written for SAMP, deliveries, the selection model and the loopback data server."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import httpx
import pytest
from astropy.io.votable import parse_single_table
from astropy.table import Table

from ctanb import CtanbError
from ctanb.samp import (
    Delivery,
    LoopbackDataServer,
    SampResponse,
    SelectionModel,
    table_to_votable_bytes,
)
from ctanb.samp.bridge import bridge_module_path

ROOT = Path(__file__).resolve().parent.parent


def test_built_bridge_module_is_up_to_date():
    spec = importlib.util.spec_from_file_location("build", ROOT / "widgets/samp_bridge/build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    assert bridge_module_path().read_text() == build.build(), (
        "ctanb/static/samp_bridge.js is stale: run .venv/bin/python widgets/samp_bridge/build.py"
    )
    assert 'from "./' not in bridge_module_path().read_text()


def test_votable_keeps_units_ucds_and_descriptions(tmp_path):
    table = Table({"s_ra": [83.6, 84.0], "obs_id": [1, 2]})
    table["s_ra"].unit = "deg"
    table["s_ra"].description = "Pointing RA"
    table["s_ra"].meta["ucd"] = "pos.eq.ra"
    path = tmp_path / "t.vot"
    path.write_bytes(table_to_votable_bytes(table, name="runs"))
    votable = parse_single_table(path)
    field = votable.get_field_by_id_or_name("s_ra")
    assert (str(field.unit), field.ucd, field.description) == ("deg", "pos.eq.ra", "Pointing RA")
    assert votable.name == "runs"
    with pytest.raises(CtanbError, match="cannot send a dict as a table"):
        table_to_votable_bytes({"a": 1})


def test_delivery_collects_one_answer_per_recipient_and_times_out():
    delivery = Delivery("table.load.votable", {"c1": "topcat", "c2": "Aladin"})
    finished = []
    delivery.on_done(finished.append)
    delivery.add_response(SampResponse.from_samp("c1", "topcat", {"samp.status": "samp.ok"}))
    assert not delivery.done and "Aladin: waiting" in delivery.summary()
    delivery.expire("no answer within 1 s")
    assert finished == [delivery] and not delivery.ok
    assert delivery.summary() == "topcat: samp.ok\nAladin: timeout (no answer within 1 s)"
    with pytest.raises(CtanbError, match=r"Aladin: timeout"):
        delivery.raise_for_errors()
    error = SampResponse.from_samp(
        "c3", "x", {"samp.status": "samp.error", "samp.error": {"samp.errortxt": "bad URL"}}
    )
    assert (error.ok, str(error)) == (False, "x: samp.error (bad URL)")


def test_selection_model_aliases_urls_and_unsubscribes():
    model = SelectionModel()
    model.register_table("ctanb-1", "http://h/t.vot")
    seen = []
    unsubscribe = model.on_change(seen.append)
    model.set_rows([3, 1, 3], url="http://h/t.vot", source="topcat")
    assert model.selection == {"ctanb-1": (1, 3)}
    assert (seen[-1].table_id, seen[-1].rows, seen[-1].source) == ("ctanb-1", (1, 3), "topcat")
    unsubscribe()
    model.set_highlight(2, table_id="ctanb-1")
    assert len(seen) == 1 and model.highlighted("ctanb-1") == 2


def test_loopback_server_serves_unguessable_expiring_links():
    server = LoopbackDataServer(ttl=60)
    try:
        url = server.publish(b"<VOTABLE/>", "t b.vot", "application/x-votable+xml")
        assert url.startswith("http://127.0.0.1:") and url.endswith("/t_b.vot")
        assert len(url.split("/")[-2]) >= 32
        answer = httpx.get(url)
        assert answer.content == b"<VOTABLE/>"
        assert answer.headers["content-type"] == "application/x-votable+xml"
        assert httpx.get(server.url + "guess/t_b.vot").status_code == 404
        # An item past its lifetime is gone (no sleep: a loaded machine cannot race it).
        server.ttl = -1
        expired = server.publish(b"<VOTABLE/>", "old.vot", "application/x-votable+xml")
        assert httpx.get(expired).status_code == 404
        assert httpx.get(url).status_code == 200  # the other item keeps its own lifetime
    finally:
        server.close()
