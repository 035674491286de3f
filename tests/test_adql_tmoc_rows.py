"""``ivo_tmoc_overlap`` with values from columns and expressions: a bad value in a row
is a 400 naming the problem (as for the same mistake in a constant), never a silent
0, NULL or a 500. NULL (no GTIs, or GTIs the caller may not read) stays NULL."""

from __future__ import annotations

import sqlite3

import httpx
import pytest
from test_simultaneity import _offline  # noqa: F401  (autouse fixture)

from ctanb.archive.sqlfunctions import (
    RowValueError,
    adql_tmoc_overlap,
    register_functions,
    row_error,
)

JOIN = (
    "FROM ivoa.obscore AS o JOIN ivoa.obscore_hea AS h "
    "ON h.obs_publisher_did = o.obs_publisher_did WHERE o.data_rights = 'public'"
)


def _sync(url: str, adql: str) -> httpx.Response:
    return httpx.post(f"{url}/sync", data={"REQUEST": "doQuery", "LANG": "ADQL",
                                           "QUERY": adql}, timeout=60)  # fmt: skip


@pytest.mark.parametrize(
    ("select", "says"),
    [
        # JD values through an expression
        ("ivo_tmoc_overlap(h.t_intervals, o.t_min + 2400000.5, o.t_max + 2400000.5)",
         "is not an MJD"),
        # an interval from columns, in the wrong order
        ("ivo_tmoc_overlap(h.t_intervals, o.t_max, o.t_min)", "wrong order"),
        # a column that holds no time MOC
        ("ivo_tmoc_overlap(o.target_name, o.t_min, o.t_max)", "is not a time MOC"),
        # a reversed range in a constant MOC
        ("ivo_tmoc_overlap(h.t_intervals, '61/5-2')", "reversed"),
    ],
)  # fmt: skip
def test_bad_row_values_are_a_400_naming_them(archive_url, select, says):
    answer = _sync(archive_url, f"SELECT TOP 3 o.obs_id, {select} AS s {JOIN}")
    assert answer.status_code == 400, answer.text[:300]
    assert says in answer.text, answer.text[:300]
    assert "Traceback" not in answer.text and "user-defined function" not in answer.text


def test_good_rows_and_nulls_still_answer(archive_url):
    answer = _sync(archive_url, f"SELECT TOP 3 ivo_tmoc_overlap(h.t_intervals, o.t_min, "
                                f"o.t_max) AS s {JOIN}")  # fmt: skip
    assert answer.status_code == 200 and answer.text.count("<TR>") == 3


def test_nan_is_named_not_zero():
    # SQLite turns a NaN parameter into NULL; a NaN reaching the function is named
    with pytest.raises(RowValueError, match="not a number"):
        adql_tmoc_overlap("t35/1", float("nan"), 55000.0)
    assert "not a number" in row_error()
    conn = sqlite3.connect(":memory:")
    register_functions(conn)
    assert conn.execute("SELECT adql_tmoc_overlap(NULL, 55000.0, 55001.0)").fetchone() == (None,)
    assert not issubclass(RowValueError, ValueError)  # not swallowed as a bad geometry is
