"""Files, DataLink and access rights of the embedded service (real archive, real HTTP)."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
from urllib.parse import quote

import httpx
import pytest
from astropy.io.votable import parse_single_table

VELA = {"Authorization": "Bearer demo-token-vela"}  # demo policy: group vela-team
OTHER = {"Authorization": "Bearer demo-token-pks2155"}  # a valid token of another group


def is_fits(content: bytes) -> bool:
    """FITS, possibly gzip-compressed (H.E.S.S. files are .fits.gz)."""
    if content[:2] == b"\x1f\x8b":
        content = gzip.decompress(content)
    return content[:6] == b"SIMPLE"


def query(url: str, adql: str):
    resp = httpx.post(f"{url}/sync", data={"LANG": "ADQL", "QUERY": adql}, timeout=60)
    assert resp.status_code == 200, resp.text
    return parse_single_table(io.BytesIO(resp.content)).to_table()


@pytest.fixture(scope="module")
def public_row(archive_url: str):
    rows = query(
        archive_url,
        "SELECT TOP 1 obs_id, obs_publisher_did, access_url FROM ivoa.obscore "
        "WHERE data_rights = 'public' AND obs_collection LIKE 'HESS%' ORDER BY obs_id",
    )
    assert len(rows) == 1
    return rows[0]


@pytest.fixture(scope="module")
def vela_row(archive_url: str):
    rows = query(
        archive_url,
        "SELECT TOP 1 obs_id, obs_publisher_did, access_url, data_rights, obs_release_date "
        "FROM ivoa.obscore WHERE proposal_id = 'CTAO-2026A-001' ORDER BY obs_id",
    )
    assert len(rows) == 1, "the simulated collection has no Vela X proprietary run"
    return rows[0]


def links(url: str, did: str, headers: dict | None = None):
    resp = httpx.get(f"{url}/datalink", params={"ID": did}, headers=headers or {})
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("application/x-votable+xml")
    return parse_single_table(io.BytesIO(resp.content)).to_table()


def test_public_file_download_with_integrity_headers(public_row) -> None:
    resp = httpx.get(str(public_row["access_url"]), timeout=60)
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/fits"
    assert is_fits(resp.content)
    assert int(resp.headers["content-length"]) == len(resp.content)
    assert resp.headers["accept-ranges"] == "bytes"
    digest = hashlib.sha256(resp.content).digest()
    assert resp.headers["etag"] == f'"{digest.hex()}"'
    assert resp.headers["digest"] == "sha-256=" + base64.b64encode(digest).decode()
    # conditional GET with the ETag
    again = httpx.get(
        str(public_row["access_url"]), headers={"If-None-Match": resp.headers["etag"]}
    )
    assert again.status_code == 304 and again.content == b""


def test_range_and_head(public_row) -> None:
    url = str(public_row["access_url"])
    full = httpx.get(url).content
    part = httpx.get(url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.content == full[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(full)}"
    tail = httpx.get(url, headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == full[-10:]
    bad = httpx.get(url, headers={"Range": f"bytes={len(full) + 10}-"})
    assert bad.status_code == 416
    head = httpx.head(url)
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) == len(full)


def test_proprietary_metadata_is_searchable_but_data_refused(archive_url: str, vela_row) -> None:
    assert vela_row["data_rights"] == "proprietary"
    assert str(vela_row["obs_release_date"]).startswith("2028-03-31")
    url = str(vela_row["access_url"])
    for method, headers in [
        ("GET", {}),
        ("HEAD", {}),
        ("GET", {"Range": "bytes=0-99"}),
        ("GET", OTHER),
        ("GET", {"Authorization": "Bearer not-a-token"}),
        ("GET", {"Authorization": "Basic dmVsYS10ZWFtOng="}),
    ]:
        resp = httpx.request(method, url, headers=headers)
        assert resp.status_code == 403, (method, headers)
        assert not is_fits(resp.content) and len(resp.content) < 2000
        if method == "GET":
            assert "vela-team" in resp.text and "2028-03-31" in resp.text
            assert str(vela_row["obs_id"]) in resp.text
    # every other file of the dataset is refused as well, by semantics and by index
    did = quote(str(vela_row["obs_publisher_did"]), safe="")
    for name in ("calibration", "0", "1", "2"):
        resp = httpx.get(f"{archive_url}/files/{did}/{name}")
        assert resp.status_code in (403, 404), name
        assert resp.status_code == 403 or "has no file" in resp.text
        assert not is_fits(resp.content) and len(resp.content) < 2000
    # the right group's token opens it
    ok = httpx.get(url, headers=VELA)
    assert ok.status_code == 200 and is_fits(ok.content)
    consortium = httpx.head(url, headers={"Authorization": "Bearer demo-token-consortium"})
    assert consortium.status_code == 200


def test_path_tricks_do_not_reach_files(archive_url: str, public_row) -> None:
    did = quote(str(public_row["obs_publisher_did"]), safe="")
    for path in (
        "/files/..%2F..%2F..%2Fetc%2Fpasswd",
        "/files/%2Fetc%2Fpasswd",
        f"/files/{did}/..%2F..%2F..%2Fetc%2Fpasswd",
        f"/files/{did}/-1",
        f"/files/{did}/999",
        f"/files/{did}/{quote(chr(0x00B2))}",  # a superscript two: a digit to str.isdigit()
        f"/files/{did}/{quote(chr(0x0663))}",  # an Arabic-Indic three
        f"/files/{did}/99999999999999999999999",
        f"/files/{did}/this/extra",
        "/files/",
    ):
        resp = httpx.get(archive_url + path)
        assert resp.status_code == 404, path
        assert "root:" not in resp.text and "Traceback" not in resp.text


def test_datalink_lists_this_and_calibration(archive_url: str, public_row) -> None:
    did = str(public_row["obs_publisher_did"])
    table = links(archive_url, did)
    semantics = list(table["semantics"])
    assert "#this" in semantics and "#calibration" in semantics
    this = table[semantics.index("#this")]
    assert this["access_url"] == public_row["access_url"]
    assert this["ID"] == did and this["link_authorized"]
    # public data needs no authentication, even when its release date is unknown
    assert [str(a) for a in table["link_auth"]] == ["false"] * len(table)
    calib = table[semantics.index("#calibration")]
    resp = httpx.get(str(calib["access_url"]))
    assert resp.status_code == 200 and is_fits(resp.content)
    assert int(resp.headers["content-length"]) == int(calib["content_length"])


def test_bundled_irfs_share_the_event_file_url_separate_ones_do_not(archive_url: str) -> None:
    """H.E.S.S. bundles IRFs in the event file (one URL, fetched once); CTA 1DC has a CALDB file."""
    for collection, same in (("HESS-DL3-DR1", True), ("CTA-1DC", False)):
        (row,) = query(
            archive_url,
            "SELECT TOP 1 obs_publisher_did, access_url FROM ivoa.obscore "
            f"WHERE obs_collection = '{collection}' ORDER BY obs_id",
        )
        table = links(archive_url, str(row["obs_publisher_did"]))
        by_semantics = {str(r["semantics"]): str(r["access_url"]) for r in table}
        assert (by_semantics["#calibration"] == by_semantics["#this"]) is same, collection


def test_datalink_for_refused_data_lists_links_marked_unauthorized(
    archive_url: str, vela_row
) -> None:
    did = str(vela_row["obs_publisher_did"])
    table = links(archive_url, did)
    assert len(table) >= 1
    assert all(str(a) == "true" for a in table["link_auth"])
    assert not any(table["link_authorized"])
    assert all("vela-team" in str(d) for d in table["description"])
    for row in table:  # following any link is refused
        assert httpx.get(str(row["access_url"])).status_code == 403
    with_token = links(archive_url, did, VELA)
    assert all(with_token["link_authorized"])


def test_datalink_errors(archive_url: str) -> None:
    table = links(archive_url, "ivo://ctanb.archive/nowhere?1")
    assert str(table["error_message"][0]).startswith("NotFoundFault")
    resp = httpx.get(f"{archive_url}/datalink")
    assert resp.status_code == 400 and "ID" in resp.text
