"""Rights on ``ivoa.obscore_hea.t_intervals``: the exact good-time intervals of a
proprietary run are data, like its files, so only its group reads them before the
release date; its ObsCore row stays searchable by everyone. Sync and async ADQL, the
``ivo_tmoc_overlap`` UDF and ``archive.search(during=...)`` follow the same rule.
Demo policy tokens (CTAO-SIM proprietary runs of the test archive)."""

from __future__ import annotations

import numpy as np
import pytest
from test_simultaneity import _offline  # noqa: F401  (autouse fixture)

import ctanb

PROPRIETARY = (
    "SELECT o.obs_id, o.obs_publisher_did, o.t_min, o.t_max, h.t_intervals "
    "FROM ivoa.obscore AS o JOIN ivoa.obscore_hea AS h "
    "ON h.obs_publisher_did = o.obs_publisher_did "
    "WHERE o.data_rights = 'proprietary' AND o.dataproduct_type = 'event' ORDER BY o.obs_id"
)


def _given(column) -> list[bool]:
    return [not np.ma.is_masked(v) and bool(str(v).strip()) for v in column]


@pytest.fixture(scope="module")
def anonymous(archive_url):
    return ctanb.connect(archive_url, progress=False)


@pytest.fixture(scope="module")
def consortium(archive_url):
    return ctanb.connect(archive_url, token="demo-token-consortium", progress=False)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_proprietary_gtis_only_to_their_group(anonymous, consortium, mode):
    mine = consortium.query(PROPRIETARY, mode=mode).table
    assert len(mine) > 0 and all(_given(mine["t_intervals"]))
    theirs = anonymous.query(PROPRIETARY, mode=mode).table
    # the rows stay searchable, their exact GTIs do not leak
    assert list(theirs["obs_id"]) == list(mine["obs_id"])
    assert not any(_given(theirs["t_intervals"]))
    star = anonymous.query(
        "SELECT h.* FROM ivoa.obscore_hea AS h JOIN ivoa.obscore AS o "
        "ON h.obs_publisher_did = o.obs_publisher_did WHERE o.data_rights = 'proprietary'",
        mode=mode,
    ).table
    assert len(star) and not any(_given(star["t_intervals"]))
    public = anonymous.query(
        "SELECT TOP 5 h.t_intervals FROM ivoa.obscore_hea AS h JOIN ivoa.obscore AS o "
        "ON h.obs_publisher_did = o.obs_publisher_did WHERE o.data_rights = 'public'",
        mode=mode,
    ).table
    assert len(public) and all(_given(public["t_intervals"]))


def test_udf_and_search_during_follow_the_rights(anonymous, consortium):
    rows = consortium.query(PROPRIETARY).table
    run = rows[0]
    a, b = float(run["t_min"]), float(run["t_max"])
    udf = (
        f"SELECT o.obs_id, ivo_tmoc_overlap(h.t_intervals, {a!r}, {b!r}) AS s "
        "FROM ivoa.obscore AS o JOIN ivoa.obscore_hea AS h "
        "ON h.obs_publisher_did = o.obs_publisher_did "
        f"WHERE ivo_tmoc_overlap(h.t_intervals, {a!r}, {b!r}) > 0"
    )
    assert str(run["obs_id"]) in [str(v) for v in consortium.query(udf)["obs_id"]]
    assert str(run["obs_id"]) not in [str(v) for v in anonymous.query(udf)["obs_id"]]
    during = [(a, b)]
    mine = consortium.search(during=during)
    assert str(run["obs_id"]) in [str(v) for v in mine["obs_id"]]
    assert float(mine.table[[str(v) == str(run["obs_id"]) for v in mine["obs_id"]]]
                 ["overlap_s"][0]) > 0  # fmt: skip
    theirs = anonymous.search(during=during)
    assert str(run["obs_id"]) not in [str(v) for v in theirs["obs_id"]]
