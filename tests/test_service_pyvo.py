"""pyvo, unmodified, against the embedded service: sync, async, DataLink, metadata."""

from __future__ import annotations

import pytest
import pyvo

CRAB = (
    "SELECT obs_id, obs_publisher_did, access_url, access_format, s_ra, s_dec "
    "FROM ivoa.obscore WHERE CONTAINS(POINT('ICRS', s_ra, s_dec), "
    "CIRCLE('ICRS', 83.63, 22.01, 3)) = 1 AND data_rights = 'public'"
)


@pytest.fixture(scope="module")
def service(archive_url: str) -> pyvo.dal.TAPService:
    return pyvo.dal.TAPService(archive_url)


def test_sync_search(service: pyvo.dal.TAPService) -> None:
    result = service.search(CRAB)
    assert len(result) > 0
    assert set(result.fieldnames) >= {"obs_id", "access_url", "s_ra"}


def test_run_async(service: pyvo.dal.TAPService) -> None:
    result = service.run_async("SELECT TOP 7 obs_id FROM ivoa.obscore")
    assert len(result) == 7


def test_iter_datalinks(service: pyvo.dal.TAPService) -> None:
    result = service.search(CRAB + " ORDER BY obs_id", maxrec=3)
    semantics = []
    for dl in result.iter_datalinks():
        # (dl.bysemantics() would download the IVOA vocabulary: no internet here)
        this = [r for r in dl if r.semantics == "#this"]
        assert len(this) == 1
        semantics += [str(r.semantics) for r in dl]
        assert dl.original_row["access_url"] == this[0].access_url
    assert "#calibration" in semantics


def test_tables_and_capabilities(service: pyvo.dal.TAPService) -> None:
    tables = service.tables
    assert "ivoa.obscore" in tables.keys()
    columns = {c.name: c for c in tables["ivoa.obscore"].columns}
    assert columns["s_ra"].unit == "deg" and columns["s_ra"].ucd == "pos.eq.ra"
    assert service.maxrec == 10_000 and service.hardlimit == 1_000_000
    langs = [lang.name for lang in service.get_tap_capability().languages]
    assert "ADQL" in langs
