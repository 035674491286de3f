"""Fresh-eyes trial 5, archive-service side (finding 17): what the service says to a
hasty or hostile client is plain, with no empty placeholders or parser words."""

from __future__ import annotations

import sqlite3
from urllib.parse import quote

import httpx
import pytest


def _did(db, rights: str) -> str:
    conn = sqlite3.connect(db)
    try:
        row = conn.execute(
            'SELECT obs_publisher_did FROM "ivoa.obscore" WHERE data_rights = ? '
            "AND dataproduct_type = 'event' LIMIT 1",
            (rights,),
        ).fetchone()
    finally:
        conn.close()
    assert row, f"the test archive has no {rights} event list"
    return row[0]


def test_refusal_names_the_token_placeholder(archive_url, archive_db):
    did = _did(archive_db, "proprietary")
    answer = httpx.get(f"{archive_url}/files/{quote(did, safe='')}", timeout=30)
    assert answer.status_code == 403
    assert "Bearer ' " not in answer.text and "<token>" not in answer.text, answer.text
    assert "Bearer TOKEN" in answer.text and "proprietary to group" in answer.text


@pytest.mark.parametrize("header", ["Basic !!!", "Bearer", "Token abc", "Negotiate x"])
def test_whoami_with_an_unreadable_authorization_header_is_refused(archive_url, header):
    answer = httpx.get(f"{archive_url}/whoami", headers={"Authorization": header}, timeout=30)
    assert answer.status_code in (400, 401), answer.text
    error = answer.json()["error"]
    assert "Authorization header is not understood" in error and "Bearer" in error


def test_whoami_without_a_header_is_still_anonymous(archive_url):
    answer = httpx.get(f"{archive_url}/whoami", timeout=30)
    assert answer.status_code == 200 and answer.json() == {"identity": None, "groups": []}


@pytest.mark.parametrize("asked", ["bytes=abc", "bytes=", "lines=1-2", "bytes=5"])
def test_a_range_header_that_is_not_understood_is_named(archive_url, archive_db, asked):
    did = _did(archive_db, "public")
    url = f"{archive_url}/files/{quote(did, safe='')}"
    answer = httpx.get(url, headers={"Range": asked}, timeout=30)
    assert answer.status_code == 400, answer.status_code
    assert f"Range header {asked!r} is not understood" in answer.text
    assert "bytes=START-END" in answer.text and "must be requested" not in answer.text
    good = httpx.get(url, headers={"Range": "bytes=0-15"}, timeout=30)
    assert good.status_code == 206 and len(good.content) == 16
