"""Hostile and hasty ADQL against the embedded TAP service, over real HTTP.

Property-based: hypothesis generates ADQL from a small grammar (with hostile numbers,
names, strings and nesting) and mutates valid queries; every answer must be a 200 or
a 400 whose message has a line and column, never a 500 or a hang past the sync
timeout, never a Python exception name, a traceback or parser internals, always
well-formed XML; the archive file is the same afterwards. Then each case found by
hand (issue 16) as a regression test. The corpus is derandomized: the same on every
run. Helpers: ``tests/adql_fuzz.py`` (also runnable against DaCHS).
"""

from __future__ import annotations

import hashlib
import io
import re
import time
from pathlib import Path

import httpx
import pytest
from adql_fuzz import FORBIDDEN, check, error_text, grammar_queries, mutated_queries, well_formed
from astropy.io.votable import parse_single_table
from astropy.time import Time
from hypothesis import HealthCheck, Phase, given, settings

from ctanb.archive.adql_check import LIMITS
from ctanb.archive.policy import AccessPolicy
from ctanb.archive.service import ArchiveServer

#: The service's sync timeout here: a "hang" is an answer later than this plus a margin.
SYNC_TIMEOUT = 5.0
HANG = SYNC_TIMEOUT + 25.0
FUZZ = settings(
    max_examples=1500,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    print_blob=False,
    # No shrinking or explaining: with the service in this process they can take many
    # gigabytes; the first failing query is reported as it was generated.
    phases=[Phase.explicit, Phase.generate],
)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def served(archive_db: Path, tmp_path_factory: pytest.TempPathFactory):
    """The service on the session's archive with a short sync timeout, and the file's hash
    (a job store of its own: the session's service keeps the default one)."""
    before = _sha256(archive_db)
    jobs_db = str(tmp_path_factory.mktemp("hostile-jobs") / "jobs.db")
    with ArchiveServer(
        archive_db, policy=AccessPolicy.demo(), sync_timeout_s=SYNC_TIMEOUT, jobs_db=jobs_db
    ) as s:
        yield s.url, archive_db, before


@pytest.fixture(scope="module")
def client():
    with httpx.Client(timeout=HANG) as c:
        yield c


def sync(client: httpx.Client, url: str, query: str, **params: str) -> httpx.Response:
    data = {"LANG": "ADQL", "REQUEST": "doQuery", "QUERY": query, "MAXREC": "20", **params}
    return client.post(f"{url}/sync", data=data)


def assert_sound(resp: httpx.Response, query: str) -> None:
    verdict = check(
        resp.status_code, resp.content, resp.headers.get("content-type", ""), query=query
    )
    assert not verdict.problems, (verdict.problems, query[:300], resp.text[:500])


def assert_refused(resp: httpx.Response, *words: str) -> str:
    """A clean 400 whose message has a position and every word (case-insensitive)."""
    assert resp.status_code == 400, resp.text[:500]
    assert_sound(resp, "")
    message = error_text(resp.content)
    assert re.search(r"line \d+, column \d+", message), message
    for word in words:
        assert word.lower() in message.lower(), message
    return message


# --- property-based fuzzing ------------------------------------------------------------
@FUZZ
@given(query=grammar_queries())
def test_grammar_generated_queries_never_break_the_service(served, client, query: str) -> None:
    url = served[0]
    try:
        resp = sync(client, url, query)
    except httpx.TimeoutException:
        pytest.fail(f"no answer within {HANG} s (sync timeout {SYNC_TIMEOUT} s): {query[:300]!r}")
    assert_sound(resp, query)


@FUZZ
@given(query=mutated_queries())
def test_mutated_valid_queries_never_break_the_service(served, client, query: str) -> None:
    url = served[0]
    try:
        resp = sync(client, url, query)
    except httpx.TimeoutException:
        pytest.fail(f"no answer within {HANG} s (sync timeout {SYNC_TIMEOUT} s): {query[:300]!r}")
    assert_sound(resp, query)


# --- regression tests: the cases of issue 16 -------------------------------------------
def _nest(k: int, open_: str, inner: str, close: str) -> str:
    return open_ * k + inner + close * k


OBSCORE = "FROM ivoa.obscore"
LIMIT_CASES = [
    ("49 nested parentheses", "SELECT " + _nest(49, "(", "1", ")") + f" {OBSCORE}",
     "nests parentheses"),
    ("31 nested functions", "SELECT " + _nest(31, "ABS(", "s_ra", ")") + f" {OBSCORE}",
     "nests parentheses"),
    ("300 nested subqueries", f"SELECT obs_id {OBSCORE} WHERE s_ra IN "
     + _nest(300, "(SELECT s_ra FROM ivoa.obscore WHERE s_ra IN ", "(1)", ")"), "subqueries"),
    ("500-SELECT UNION", " UNION ".join([f"SELECT obs_id {OBSCORE}"] * 500), "SELECTs"),
    ("19 nested CASE", "SELECT " + _nest(19, "CASE WHEN 1=1 THEN ", "1", " END") + f" {OBSCORE}",
     "nested too deeply"),
    ("600 AND terms", f"SELECT obs_id {OBSCORE} WHERE " + " AND ".join(["s_ra > 1"] * 600),
     "AND/OR"),
    ("100 + operators", "SELECT " + " + ".join(["s_ra"] * 100) + f" {OBSCORE}",
     "nested too deeply"),
    ("300 NOTs", f"SELECT obs_id {OBSCORE} WHERE " + "NOT " * 300 + "s_ra > 1", "NOT"),
    ("2000-vertex polygon", "SELECT AREA(POLYGON(" + ", ".join(
        f"{i * 0.1}, {(i % 7) * 0.1}" for i in range(2000)) + f")) {OBSCORE}", "vertices"),
]  # fmt: skip


@pytest.mark.parametrize(("query", "word"), [c[1:] for c in LIMIT_CASES],
                         ids=[c[0] for c in LIMIT_CASES])  # fmt: skip
def test_depth_and_size_limits_are_400_naming_the_limit(served, client, query, word) -> None:
    message = assert_refused(sync(client, served[0], query), word)
    assert "limit" in message


def test_long_flat_and_chains_within_the_limit_run(served, client) -> None:
    # 90 AND terms used to overflow SQLite's parser ("parser stack overflow")
    terms = " AND ".join(f"s_ra > {i % 3 - 5}" for i in range(LIMITS.boolean_terms))
    resp = sync(client, served[0], f"SELECT COUNT(*) AS n {OBSCORE} WHERE {terms}")
    assert resp.status_code == 200, resp.text[:300]
    table = parse_single_table(io.BytesIO(resp.content)).to_table()
    all_rows = sync(client, served[0], f"SELECT COUNT(*) AS n {OBSCORE} WHERE s_ra > -3")
    assert table["n"][0] == parse_single_table(io.BytesIO(all_rows.content)).to_table()["n"][0]


BIG = "9" * 400
NUMBER_CASES = [
    ("huge integer in CIRCLE", f"SELECT obs_id {OBSCORE} WHERE "
     f"CONTAINS(POINT(s_ra, s_dec), CIRCLE(83.6, 22.0, {BIG} * {BIG})) = 1", "out of range"),
    ("huge integers in POINT", f"SELECT POINT({BIG[:300]}, {BIG[:300]}) {OBSCORE}",
     "outside -90..90"),
    ("400-digit integer", f"SELECT POINT(1, {BIG}) {OBSCORE}", "out of range"),
    ("1e999 in DISTANCE", f"SELECT DISTANCE(POINT(1e999, 0), POINT(0, 0)) {OBSCORE}",
     "1e999"),
    ("1e999 in AREA", f"SELECT AREA(CIRCLE(0, 0, 1e999)) {OBSCORE}", "1e999"),
    ("1e999 as a value", f"SELECT 1e999 AS x {OBSCORE}", "out of range"),
    ("overflowing product", f"SELECT DISTANCE(1e308 * 10, 0, 0, 0) {OBSCORE}", "out of range"),
    ("Arabic-Indic digits in TOP", f"SELECT TOP \u0661\u0660 obs_id {OBSCORE}", "digits 0-9"),
    ("superscript digit in ORDER BY", f"SELECT obs_id {OBSCORE} ORDER BY \u00b2", "digits 0-9"),
    ("hexadecimal", f"SELECT 0x1F {OBSCORE}", "not a valid number"),
    ("TOP beyond 64 bits", f"SELECT TOP 99999999999999999999 obs_id {OBSCORE}", "too large"),
]  # fmt: skip


@pytest.mark.parametrize(("query", "word"), [c[1:] for c in NUMBER_CASES],
                         ids=[c[0] for c in NUMBER_CASES])  # fmt: skip
def test_bad_numbers_are_400_with_their_position(served, client, query, word) -> None:
    message = assert_refused(sync(client, served[0], query), word)
    assert "no such column" not in message and "inf" not in message.split("(at")[0].split()


INVALID_TEXTS = [
    ("SELECT s_ra,, s_dec FROM ivoa.obscore", "','", (1, 12)),
    ("SELECT s_ra FROM ivoa.obscore LIMIT 10", "TOP", (1, 31)),
    ("SELECT s_ra FROM ivoa.obscore WHERE s_ra == 1", "'='", (1, 42)),
    ("SELECT s_ra FROM ivoa.obscore WHERE s_ra IN ()", "IN", (1, 37)),
    ("SELECT s_ra FROM ivoa.obscore;", "';'", (1, 30)),
    ("SELECT 7 % 3 FROM ivoa.obscore", "MOD", (1, 10)),
    ("SELECT s_ra::int FROM ivoa.obscore", "CAST", (1, 12)),
    ("SELECT s_ra FROM ivoa.obscore WHERE s_ra = ?", "placeholder", (1, 44)),
    ("SELECT FROM ivoa.obscore", "SELECT needs", None),
    ("SELECT\n  s_ra\nFROM ivoa.obscore\nWHERE COUNT(*) > 1", "HAVING", (4, 7)),
    ("SELECT s_ra FROM ivoa.obscore GROUP BY 1", "GROUP BY", (1, 40)),
    ("SELECT 'unterminated FROM ivoa.obscore", "unterminated", (1, 8)),
    ("SELECT obs_id\nFROM ivoa.obscore\nWHERE s_dec >< 3", "syntax", (3, 14)),
    ("DELETE FROM ivoa.obscore", "only SELECT", None),
]


@pytest.mark.parametrize(("query", "word", "position"), INVALID_TEXTS)
def test_invalid_texts_are_refused_with_position(served, client, query, word, position) -> None:
    message = assert_refused(sync(client, served[0], query), word)
    if position:
        assert f"line {position[0]}, column {position[1]}" in message, message


@pytest.mark.parametrize("query", [
    "SELECT obs_id FROM ivoa.obscore WHERE s_ra == 1",
    "SELECT NO_SUCH(s_ra) FROM ivoa.obscore",
    "SELECT s_ra FROM ivoa.obscore GROUP BY COUNT(*)",
    "SELECT SIN(1, 2) FROM ivoa.obscore",
    "SELECT s_ra FROM ivoa.obscore WHERE s_ra = 1 HAVING 1=1",
    "SELECT COUNT(MAX(s_ra)) FROM ivoa.obscore",
    "SELECT obs_id FROM ivoa.obscore WHERE obs_id IN (SELECT obs_id, s_ra FROM ivoa.obscore)",
    "SELECT * FROM ivoa.obscore AS a WHERE",
])  # fmt: skip
def test_errors_speak_adql_not_parser_or_sqlite(served, client, query) -> None:
    message = assert_refused(sync(client, served[0], query))
    for internal in ("Required keyword", "<class", "Expecting", "misuse", "HAVING clause on",
                     "aggregate functions are not allowed in the GROUP BY", "t0."):  # fmt: skip
        assert internal not in message, message


# --- XML 1.0 in every answer -----------------------------------------------------------
@pytest.mark.parametrize("alias", ['"a\x01b"', '"x\uffff"', '"\x1f"', '"\ufffe"'])
def test_unrepresentable_column_names_are_refused(served, client, alias) -> None:
    assert_refused(sync(client, served[0], f"SELECT s_ra AS {alias} {OBSCORE}"), "VOTable")


@pytest.mark.parametrize("text", ["a\x01b", "\uffff", "\x00x", "\x1b[31m", "\ufffe\x7f"])
def test_control_characters_in_query_and_data_stay_well_formed(served, client, text) -> None:
    literal = "'" + text.replace("'", "''") + "'"
    query = f"SELECT TOP 2 obs_id, {literal} AS t {OBSCORE} WHERE obs_id <> {literal}"
    resp = sync(client, served[0], query)
    assert resp.status_code == 200, resp.text[:300]
    assert well_formed(resp.content) is None
    table = parse_single_table(io.BytesIO(resp.content)).to_table()
    assert len(table) == 2
    # an error that quotes the text is well-formed too
    bad = sync(client, served[0], f'SELECT "{text}" {OBSCORE}')
    assert_refused(bad, "unknown column")


# --- correct answers -------------------------------------------------------------------
def test_cast_of_mjd_to_timestamp_gives_the_calendar_date(served, client) -> None:
    resp = sync(client, served[0], "SELECT TOP 5 t_min, CAST(t_min AS TIMESTAMP) AS ts "
                f"{OBSCORE} WHERE t_min IS NOT NULL ORDER BY t_min")  # fmt: skip
    assert resp.status_code == 200, resp.text[:300]
    table = parse_single_table(io.BytesIO(resp.content)).to_table()
    assert len(table) == 5
    for mjd, ts in zip(table["t_min"], table["ts"], strict=True):
        expected = Time(float(mjd), format="mjd", scale="utc").isot  # independent: astropy
        assert str(ts)[:19] == expected[:19]
    resp = sync(client, served[0], f"SELECT TOP 1 CAST(53000 AS TIMESTAMP) AS ts {OBSCORE}")
    assert parse_single_table(io.BytesIO(resp.content)).array["ts"][0].startswith("2003-12-27")


def test_with_is_neither_advertised_nor_accepted(served, client) -> None:
    caps = client.get(f"{served[0]}/capabilities")
    assert caps.status_code == 200 and "common-table" not in caps.text and ">WITH<" not in caps.text
    assert_refused(sync(client, served[0], "WITH x AS (SELECT obs_id FROM ivoa.obscore) "
                        "SELECT obs_id FROM x"), "WITH", "subquery")  # fmt: skip


REGIONS = [
    ("BOX(0, 0, 400, 400)", "BOX width 400"),
    ("BOX(10, 20, 1, -1)", "BOX height -1"),
    ("CIRCLE(0, 0, -1)", "radius -1"),
    ("CIRCLE(0, 0, 181)", "radius 181"),
    ("CIRCLE(0, 91, 1)", "declination 91"),
    ("POLYGON(0, 0, 1, 95, 2, 0)", "declination 95"),
]


@pytest.mark.parametrize(("shape", "word"), REGIONS)
def test_regions_outside_their_domain_are_400(served, client, shape, word) -> None:
    query = f"SELECT obs_id {OBSCORE} WHERE CONTAINS(POINT(s_ra, s_dec), {shape}) = 1"
    message = assert_refused(sync(client, served[0], query), word)
    assert f"column {query.index(shape.split('(')[0]) + 1}" in message, message


def test_catastrophic_like_patterns_finish_quickly(served, client) -> None:
    # A backtracking matcher takes hours on this (s_region holds hundreds of digits).
    pattern = "%1" * 25 + "%\u00e9"
    t0 = time.monotonic()
    resp = sync(client, served[0], f"SELECT COUNT(*) AS n {OBSCORE} WHERE s_region ILIKE "
                f"'{pattern}' OR obs_id LIKE '{pattern}' || ''")  # fmt: skip
    assert resp.status_code == 200, resp.text[:300]
    assert time.monotonic() - t0 < SYNC_TIMEOUT


def _async_error(client: httpx.Client, url: str, query: str) -> tuple[str, str]:
    resp = client.post(f"{url}/async", data={"LANG": "ADQL", "QUERY": query, "PHASE": "RUN"})
    assert resp.status_code == 303, resp.text[:300]
    job = resp.headers["location"]
    deadline = time.monotonic() + HANG
    while (phase := client.get(f"{job}/phase").text.strip()) in ("PENDING", "QUEUED",
                                                                   "EXECUTING"):  # fmt: skip
        assert time.monotonic() < deadline, f"job still {phase}"
        time.sleep(0.1)
    doc = client.get(job)
    assert doc.status_code == 200 and well_formed(doc.content) is None
    err = client.get(f"{job}/error")
    assert err.status_code == 200 and "Traceback" not in err.text
    return phase, err.text


@pytest.mark.parametrize("query", [
    "SELECT " + _nest(49, "(", "1", ")") + f" {OBSCORE}",
    f"SELECT DISTANCE(POINT(1e999, 0), POINT(0, 0)) {OBSCORE}",
    " UNION ".join([f"SELECT obs_id {OBSCORE}"] * 500),
    f"SELECT COUNT(*) {OBSCORE} WHERE COUNT(*) > 1",
])  # fmt: skip
def test_async_jobs_report_the_same_clean_errors(served, client, query) -> None:
    phase, message = _async_error(client, served[0], query)
    assert phase == "ERROR"
    assert re.search(r"line \d+, column \d+", message), message
    assert not FORBIDDEN.search(message), message


@pytest.mark.parametrize(
    "query",
    [
        "SELECT -BOX(0, 0, 0, 0) FROM ivoa.obscore",
        "SELECT TOP 1 POINT(1, 2) + 1 FROM ivoa.obscore",
        "SELECT TOP 1 -obs_id FROM ivoa.obscore",
        "SELECT TOP 1 s_region * 2 FROM ivoa.obscore",
    ],
)
def test_arithmetic_on_regions_or_text_is_a_400(served, client, query) -> None:
    """Found by the fuzz suite in CI: a negated BOX reached the VOTable writer as a
    number typed as a region (HTTP 500)."""
    resp = sync(client, served[0], query)
    assert resp.status_code == 400, resp.text[:400]
    assert "only numbers can be" in error_text(resp.content)
    assert_sound(resp, query)


def test_the_archive_file_is_unchanged(served) -> None:
    """Runs last in this module: nothing above wrote to the database."""
    _, path, before = served
    assert _sha256(path) == before


@pytest.mark.parametrize(
    "query",
    [
        "SELECT TOP 1 9223372036854775807 * 2 AS c FROM ivoa.obscore",
        "SELECT TOP 1 9223372036854775807 + 1 AS c FROM ivoa.obscore",
    ],
)
def test_integer_results_beyond_64_bits_are_a_400(served, client, query) -> None:
    """Found by a fresh-eyes trial: the value came back in a 'long' column that clients
    silently clipped to 9223372036854775807."""
    resp = sync(client, served[0], query)
    assert resp.status_code == 400 and "out of range" in error_text(resp.content), resp.text


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_union_of_numbers_and_text_is_a_400_not_an_internal_error(served, client, mode) -> None:
    """Found by the fuzz suite: the first SELECT makes the column a number, a later one
    gives text; the writer of the VOTable cannot, and that was a 500."""
    query = (f"SELECT DISTINCT AREA(POINT(99999, s_ra)) {OBSCORE} "
             f"UNION ALL SELECT DISTINCT obs_collection {OBSCORE}")  # fmt: skip
    if mode == "sync":
        resp = sync(client, served[0], query)
        assert resp.status_code == 400, resp.text[:500]
        message = error_text(resp.content)
    else:
        phase, message = _async_error(client, served[0], query)
        assert phase == "ERROR"
    assert "different types" in message and "UNION" in message, message
    assert "internal error" not in message and not FORBIDDEN.search(message), message
