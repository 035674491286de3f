"""The embedded TAP service over real HTTP: sync queries, formats, limits and errors."""

from __future__ import annotations

import io
import threading
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx
import numpy as np
import pytest
from astropy.io.votable import parse as parse_votable
from astropy.io.votable import parse_single_table

from ctanb.archive.service import ArchiveServer
from ctanb.datamodel import OBSCORE_COLUMNS

VOSI_AVAILABILITY = "{http://www.ivoa.net/xml/VOSIAvailability/v1.0}"

CONE = (
    "SELECT obs_id, s_ra, s_dec, t_min, access_url, obs_publisher_did, s_region "
    "FROM ivoa.obscore WHERE CONTAINS(POINT('ICRS', s_ra, s_dec), "
    "CIRCLE('ICRS', 83.63, 22.01, 5)) = 1"
)


def sync(url: str, query: str, method: str = "POST", **params: str) -> httpx.Response:
    data = {"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": query, **params}
    if method == "GET":
        return httpx.get(f"{url}/sync", params=data, timeout=60)
    return httpx.post(f"{url}/sync", data=data, timeout=60)


def status_of(body: bytes) -> list[tuple[str, str]]:
    """The QUERY_STATUS INFOs (value, text) of a VOTable document."""
    vot = parse_votable(io.BytesIO(body))
    infos = [i for r in vot.resources for i in r.infos if i.name == "QUERY_STATUS"]
    return [(i.value, i.content or "") for i in infos]


def assert_clean_error(resp: httpx.Response, status: int, *words: str) -> str:
    assert resp.status_code == status, resp.text
    assert "Traceback" not in resp.text and 'File "' not in resp.text
    ((value, text),) = status_of(resp.content)
    assert value == "ERROR"
    for word in words:
        assert word.lower() in text.lower(), text
    return text


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_cone_search_returns_crab_runs_as_votable(archive_url: str, method: str) -> None:
    resp = sync(archive_url, CONE, method)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("application/x-votable+xml")
    table = parse_single_table(io.BytesIO(resp.content)).to_table()
    assert len(table) > 0
    assert table.colnames == [
        "obs_id", "s_ra", "s_dec", "t_min", "access_url", "obs_publisher_did", "s_region",
    ]  # fmt: skip
    # every position really lies in the 5 degree cone around the Crab
    ra, dec = np.radians(table["s_ra"]), np.radians(table["s_dec"])
    c_ra, c_dec = np.radians(83.63), np.radians(22.01)
    cos_d = np.sin(dec) * np.sin(c_dec) + np.cos(dec) * np.cos(c_dec) * np.cos(ra - c_ra)
    assert np.all(np.degrees(np.arccos(np.clip(cos_d, -1, 1))) <= 5 + 1e-9)
    # access URLs point back at this service, not at the "$BASE/" placeholder
    assert all(str(u).startswith(archive_url + "/files/") for u in table["access_url"])
    # ObsCore 1.1: s_region is an STC-S string declared char/adql:REGION (as DaCHS does)
    field = next(f for f in parse_single_table(io.BytesIO(resp.content)).fields
                 if f.name == "s_region")  # fmt: skip
    assert (field.datatype, field.arraysize, field.xtype) == ("char", "*", "adql:REGION")
    region = str(table["s_region"][0]).split()
    assert region[:2] == ["POLYGON", "ICRS"] and len(region[2:]) >= 6
    assert len(region) % 2 == 0 and np.all(np.isfinite([float(x) for x in region[2:]]))


def test_parameter_names_are_case_insensitive(archive_url: str) -> None:
    resp = httpx.post(
        f"{archive_url}/sync",
        data={"request": "doQuery", "Lang": "adql", "query": CONE, "maxRec": "1"},
    )
    assert resp.status_code == 200, resp.text
    assert len(parse_single_table(io.BytesIO(resp.content)).array) == 1


def test_csv_output(archive_url: str) -> None:
    resp = sync(archive_url, CONE, RESPONSEFORMAT="csv")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/csv")
    lines = resp.text.strip().splitlines()
    assert lines[0].split(",")[:4] == ["obs_id", "s_ra", "s_dec", "t_min"]
    assert len(lines) > 1 and archive_url + "/files/" in lines[1]
    assert lines[1].split(",")[-1].startswith("POLYGON ICRS ")  # s_region, as in VOTable


def test_maxrec_truncates_and_flags_overflow_after_the_table(archive_url: str) -> None:
    resp = sync(archive_url, "SELECT obs_id FROM ivoa.obscore", MAXREC="3")
    assert resp.status_code == 200
    vot = parse_votable(io.BytesIO(resp.content))
    assert len(vot.get_first_table().array) == 3
    assert [v for v, _ in status_of(resp.content)] == ["OK", "OVERFLOW"]
    text = resp.text
    assert text.index('value="OVERFLOW"') > text.index("</TABLE>")
    # no overflow when everything fits
    resp = sync(archive_url, "SELECT TOP 2 obs_id FROM ivoa.obscore", MAXREC="10")
    assert [v for v, _ in status_of(resp.content)] == ["OK"]


def test_tap_schema_is_queryable(archive_url: str) -> None:
    resp = sync(archive_url, "SELECT table_name FROM TAP_SCHEMA.tables")
    assert resp.status_code == 200, resp.text
    names = {str(n) for n in parse_single_table(io.BytesIO(resp.content)).array["table_name"]}
    assert "ivoa.obscore" in names
    resp = sync(
        archive_url,
        "SELECT column_name FROM TAP_SCHEMA.columns WHERE table_name = 'ivoa.obscore'",
    )
    cols = {str(n) for n in parse_single_table(io.BytesIO(resp.content)).array["column_name"]}
    assert {c.name for c in OBSCORE_COLUMNS} <= cols


def test_syntax_error_names_the_position(archive_url: str) -> None:
    resp = sync(archive_url, "SELECT obs_id\nFROM ivoa.obscore WHERE WHERE")
    text = assert_clean_error(resp, 400)
    assert "line 2" in text.lower() or "2:" in text, text


@pytest.mark.parametrize(
    ("query", "word"),
    [
        ("SELECT obs_id FROM ivoa.no_such_table", "no_such_table"),
        ("SELECT no_such_column FROM ivoa.obscore", "no_such_column"),
        ("SELECT NO_SUCH_FUNC(s_ra) FROM ivoa.obscore", "no_such_func"),
    ],
)
def test_unknown_names_are_reported(archive_url: str, query: str, word: str) -> None:
    assert_clean_error(sync(archive_url, query), 400, word)


@pytest.mark.parametrize(
    ("params", "word"),
    [
        ({"QUERY": ""}, "QUERY"),
        ({"QUERY": "   "}, "QUERY"),
        ({"LANG": "SQL"}, "LANG"),
        ({"RESPONSEFORMAT": "fits"}, "RESPONSEFORMAT"),
        ({"REQUEST": "getCapabilities"}, "REQUEST"),
        ({"MAXREC": "many"}, "MAXREC"),
        ({"MAXREC": "-1"}, "MAXREC"),
    ],
)
def test_bad_parameters_are_400_with_a_message(archive_url: str, params, word: str) -> None:
    assert_clean_error(sync(archive_url, CONE, **params), 400, word)


def test_a_query_given_twice_is_refused_not_picked(archive_url: str) -> None:
    """Two QUERY values (query string and body, or twice in the body) are an error."""
    hidden = "SELECT obs_id FROM ivoa.obscore"
    twice = {"LANG": "ADQL", "QUERY": [CONE, hidden]}
    assert_clean_error(httpx.post(f"{archive_url}/sync", data=twice), 400, "QUERY", "once")
    split = httpx.post(f"{archive_url}/sync", params={"QUERY": hidden},
                       data={"LANG": "ADQL", "QUERY": CONE})  # fmt: skip
    assert_clean_error(split, 400, "QUERY", "once")


def test_oversized_requests_are_refused(archive_url: str) -> None:
    long_query = "SELECT obs_id FROM ivoa.obscore WHERE " + " OR ".join(["s_ra > 1"] * 20_000)
    assert_clean_error(sync(archive_url, long_query), 400, "QUERY", "limit")
    body = b"QUERY=SELECT+1&PAD=" + b"x" * 1_100_000
    resp = httpx.post(
        f"{archive_url}/sync",
        content=body,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert_clean_error(resp, 413, "limit")  # HTTP's "content too large"

    def chunks():  # no Content-Length: the limit holds while the body streams in
        yield b"QUERY=SELECT+1&PAD="
        for _ in range(12):
            yield b"x" * 100_000

    resp = httpx.post(
        f"{archive_url}/sync",
        content=chunks(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert_clean_error(resp, 413, "limit")


def test_unknown_endpoint_and_method_are_clean(archive_url: str) -> None:
    assert_clean_error(httpx.get(f"{archive_url}/no/such/thing"), 404, "no such endpoint")
    assert_clean_error(httpx.delete(f"{archive_url}/sync"), 405, "DELETE")


def test_twenty_concurrent_clients(archive_url: str) -> None:
    expected = sync(archive_url, CONE).content.count(b"<TR>")
    failures: list[str] = []
    counts: list[int] = []

    def client() -> None:
        with httpx.Client(base_url=archive_url, timeout=60) as c:
            for _ in range(5):
                r = c.post("/sync", data={"LANG": "ADQL", "QUERY": CONE})
                if r.status_code != 200:
                    failures.append(r.text)
                counts.append(r.content.count(b"<TR>"))

    threads = [threading.Thread(target=client) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures
    assert counts == [expected] * 100


def test_vosi_capabilities_tables_availability(archive_url: str) -> None:
    caps = httpx.get(f"{archive_url}/capabilities")
    assert caps.status_code == 200
    for needle in (
        'standardID="ivo://ivoa.net/std/TAP"',
        "ivo://ivoa.net/std/ADQL#v2.1",
        "features-adqlgeo",
        "<form>CONTAINS</form>",
        "text/csv",
        '<hard unit="row">1000000</hard>',
        "ivo://ivoa.net/std/DataLink#links-1.1",
        "ivo://ivoa.net/std/VOSI#tables-1.1",
    ):
        assert needle in caps.text, needle
    tables = httpx.get(f"{archive_url}/tables").text
    for c in OBSCORE_COLUMNS:
        assert f"<name>{c.name}</name>" in tables, c.name
    assert "<unit>deg</unit>" in tables and "<ucd>pos.eq.ra</ucd>" in tables
    one = httpx.get(f"{archive_url}/tables/ivoa.obscore")
    assert one.status_code == 200 and "<name>s_region</name>" in one.text
    avail = ET.fromstring(httpx.get(f"{archive_url}/availability").content)
    assert avail.findtext(f"{VOSI_AVAILABILITY}available") == "true"


def test_broken_database_gives_a_clean_503(tmp_path: Path) -> None:
    broken = tmp_path / "broken.db"
    broken.write_bytes(b"this is not an SQLite file at all\n" * 200)
    with ArchiveServer(broken) as server:
        resp = sync(server.url, "SELECT obs_id FROM ivoa.obscore")
        assert_clean_error(resp, 503, "database")
        avail = httpx.get(f"{server.url}/availability")
        assert avail.status_code == 200
        assert ET.fromstring(avail.content).findtext(f"{VOSI_AVAILABILITY}available") == "false"
