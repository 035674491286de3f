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


def test_using_join_gives_one_merged_column(archive_url):
    import ctanb

    archive = ctanb.connect(archive_url, progress=False)
    table = archive.query(
        "SELECT TOP 2 * FROM ivoa.obscore JOIN ivoa.obscore_hea USING (obs_publisher_did)"
    ).table
    names = table.colnames
    assert names.count("obs_publisher_did") == 1 and "obs_publisher_did_2" not in names
    assert "t_intervals" in names and "s_ra" in names
    # the energies of the two tables: TeV in ivoa.obscore, eV in ivoa.obscore_hea (the note)
    units = archive.query(
        "SELECT table_name, unit, description FROM tap_schema.columns "
        "WHERE column_name = 'energy_min' ORDER BY table_name"
    ).table
    described = {str(r["table_name"]): (str(r["unit"]), str(r["description"])) for r in units}
    assert described["ivoa.obscore"][0] == "TeV" and described["ivoa.obscore_hea"][0] == "eV"
    assert "eV" in described["ivoa.obscore"][1].replace("TeV", "")
    assert "TeV" in described["ivoa.obscore_hea"][1]
