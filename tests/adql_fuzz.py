"""Hostile ADQL for TAP services: hypothesis strategies, a response checker, a corpus runner.

Used by ``tests/test_adql_hostile.py`` against the embedded service, and runnable on
its own against any TAP service (DaCHS included) to count what goes wrong::

    python tests/adql_fuzz.py http://127.0.0.1:8080/tap [--cases 3000] [--timeout 70]

The corpus is the same on every run (hypothesis, derandomized): grammar-generated
queries (valid and invalid, with hostile numbers, names and nesting) and mutations
of valid queries.
"""

from __future__ import annotations

import argparse
import builtins
import json
import re
import sys
import time
import xml.parsers.expat
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

COLUMNS = ["obs_id", "obs_publisher_did", "target_name", "s_ra", "s_dec", "s_fov", "s_region",
           "t_min", "t_max", "t_exptime", "em_min", "em_max", "energy_min", "calib_level",
           "access_url", "obs_collection", "proposal_id", "obs_release_date", "data_rights",
           "dataproduct_type", "target_class", "n_tels"]  # fmt: skip
TABLES = ["ivoa.obscore", "TAP_SCHEMA.tables", "TAP_SCHEMA.columns", "tap_schema.schemas"]

#: Valid queries, the seeds of the mutations.
VALID = [
    "SELECT TOP 5 obs_id, s_ra, s_dec FROM ivoa.obscore ORDER BY obs_id",
    "SELECT obs_id FROM ivoa.obscore WHERE CONTAINS(POINT('ICRS', s_ra, s_dec), "
    "CIRCLE('ICRS', 83.63, 22.01, 3)) = 1",
    "SELECT obs_id, DISTANCE(POINT(s_ra, s_dec), POINT(83.63, 22.01)) AS d FROM ivoa.obscore "
    "WHERE DISTANCE(POINT(s_ra, s_dec), POINT(83.63, 22.01)) < 2 ORDER BY d",
    "SELECT obs_id FROM ivoa.obscore WHERE INTERSECTS(s_region, "
    "POLYGON('ICRS', 80, 20, 86, 20, 86, 25, 80, 25)) = 1",
    "SELECT target_name, COUNT(*) AS n, MIN(t_min), MAX(t_max) FROM ivoa.obscore "
    "GROUP BY target_name HAVING COUNT(*) > 1 ORDER BY n DESC",
    "SELECT DISTINCT obs_collection FROM ivoa.obscore WHERE target_name LIKE 'Crab%'",
    "SELECT obs_id, CAST(t_min AS TIMESTAMP) AS start FROM ivoa.obscore WHERE t_exptime "
    "BETWEEN 1000 AND 2000 AND proposal_id IS NULL",
    "SELECT t.table_name, c.column_name FROM TAP_SCHEMA.tables AS t JOIN TAP_SCHEMA.columns "
    "AS c ON c.table_name = t.table_name WHERE t.table_name = 'ivoa.obscore'",
    "SELECT sub.n FROM (SELECT obs_id AS n, s_dec FROM ivoa.obscore WHERE s_dec > 0) AS sub "
    "WHERE sub.n IN (SELECT obs_id FROM ivoa.obscore WHERE s_ra < 100)",
    "SELECT obs_id FROM ivoa.obscore WHERE s_dec > 60 UNION SELECT obs_id FROM ivoa.obscore "
    "WHERE s_dec < -60 ORDER BY obs_id",
    "SELECT obs_id || '/' || target_name, CASE WHEN s_dec > 0 THEN 'north' ELSE 'south' END, "
    "ROUND(s_ra, 2), COALESCE(proposal_id, 'none'), LOWER(target_name) FROM ivoa.obscore",
    "SELECT AREA(BOX(83.6, 22.0, 2, 1)), COORD1(POINT(10, 20)), SQRT(POWER(3, 2)), "
    "LOG10(1000), MOD(7, 3), TRUNCATE(2.567, 2) FROM ivoa.obscore WHERE obs_id = 'x'",
    "SELECT TOP 3 * FROM ivoa.obscore WHERE target_name ILIKE '%pks%' OFFSET 1",
    "SELECT obs_id FROM ivoa.obscore WHERE EXISTS (SELECT 1 FROM ivoa.obscore AS o2 "
    "WHERE o2.obs_id = ivoa.obscore.obs_id) AND NOT s_ra > 300",
]

# Pieces an attacker or a hasty user puts into a query.
HOSTILE_NUMBERS = ["1e999", "-1e999", "1e308", "1e-400", "99999999999999999999999999999",
                   "9223372036854775808", "-9223372036854775808", "0", "-0", "0.0", ".5", "5.",
                   "1e", "0x1F", "١٠", "²", "1_000", "NaN", "Infinity", "400", "-91", "180.1",
                   "2" * 400]  # fmt: skip
HOSTILE_TEXT = ["\x00", "\x01", "\x1f", "\x7f", "\ufffe", "\uffff", "\u202e", "é", "名前",
                "\U0001f600", "'", '"', "''", "\\", "%", "_", "--", "/*", "*/", ";", "\n",
                "\t", "\r", "]]>", "<", "&", "&amp;"]  # fmt: skip
HOSTILE_TOKENS = ["==", "!=", "<>", "%", "::", "$1", "?", ";", "||", "&&", "|", "^", "~",
                  "[", "]", "{", "}", "->", "@", "#", ":", "LIMIT 10", "IN ()", ",,", "()",
                  "(", ")", ",", "SELECT", "FROM", "WHERE", "UNION", "WITH", "PRAGMA",
                  "ATTACH 'x' AS y", "DROP TABLE ivoa.obscore", "sqlite_master", "rowid",
                  "_access_group", "load_extension('x')", '"ivoa.obscore#point"', "NULL",
                  "CASE", "END", "TOP", "DISTINCT", "GROUP BY", "ORDER BY", "HAVING",
                  "OFFSET", "JOIN", "ON", "AS", "*", "AND", "OR", "NOT"]  # fmt: skip

#: Python exception names a body must never show (builtins plus the libraries' own).
EXCEPTION_NAMES = sorted(
    {n for n, v in vars(builtins).items() if isinstance(v, type) and issubclass(v, BaseException)
     and n not in ("Warning", "Exception")}
    | {"ParseError", "TokenError", "OperationalError", "DatabaseError", "ProgrammingError",
       "IntegrityError", "ValidationError", "QueryInterrupted"}
)  # fmt: skip
FORBIDDEN = re.compile(
    "|".join(
        [
            re.escape(w)
            for w in (
                "Traceback",
                'File "',
                "sqlglot",
                "<class",
                "sqlite3",
                "no such column:",
                "no such function:",
                'near "',
                "misuse of aggregate",
                "parser stack overflow",
                "Expression tree is too large",
                "incomplete input",
                "unrecognized token",
                "user-defined function",
                "datatype mismatch",
                "adql_",
                "#point",
                "#region",
            )
        ]
        + [rf"\b{n}\b" for n in EXCEPTION_NAMES]
    )
)
_POSITION = re.compile(r"line \d+, column \d+")
_STATUS = re.compile(rb'<INFO name="QUERY_STATUS" value="(\w+)"')
#: Any way a service names where an error is (ctanb's "line 1, column 5", DaCHS's
#: "(line:1, col:38)" or "at char 37").
_ANY_POSITION = re.compile(
    r"line\s*:?\s*\d+\s*,?\s*col(?:umn)?\s*:?\s*\d+|char(?:acter)?\s+\d+", re.I
)


# --- strategies ------------------------------------------------------------------------
def _number() -> st.SearchStrategy[str]:
    return st.one_of(
        st.integers(-400, 400).map(str),
        st.floats(allow_nan=False, allow_infinity=False, width=32).map(repr),
        st.sampled_from(HOSTILE_NUMBERS),
        st.integers(1, 400).map(lambda k: "9" * k),
    )


def _string() -> st.SearchStrategy[str]:
    chars = st.one_of(st.characters(codec="utf-8"), st.sampled_from(HOSTILE_TEXT))
    return st.lists(chars, max_size=12).map(lambda cs: "'" + "".join(cs).replace("'", "''") + "'")


def _name() -> st.SearchStrategy[str]:
    quoted = st.lists(st.one_of(st.sampled_from(HOSTILE_TEXT), st.characters(codec="utf-8")),
                      min_size=1, max_size=6).map(lambda cs: '"' + "".join(cs).replace('"', '""')
                                                  + '"')  # fmt: skip
    return st.one_of(st.sampled_from(COLUMNS), st.sampled_from(COLUMNS).map(str.upper),
                     st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True), quoted)  # fmt: skip


def _geometry(expr: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    num = st.one_of(_number(), st.sampled_from(["s_ra", "s_dec", "s_fov"]), expr)
    frame = st.sampled_from(["", "'ICRS', ", "'GALACTIC', ", "'', ", "'ICRS BARYCENTER', "])

    def call(name, n):
        return st.tuples(frame, st.lists(num, min_size=n, max_size=n)).map(
            lambda t: f"{name}({t[0]}{', '.join(t[1])})"
        )

    point = call("POINT", 2)
    shapes = st.one_of(point, call("CIRCLE", 3), call("BOX", 4),
                       st.integers(0, 9).flatmap(lambda k: call("POLYGON", 2 * k)),
                       st.just("s_region"))  # fmt: skip
    two = st.tuples(shapes, shapes)
    return st.one_of(
        shapes,
        two.map(lambda t: f"CONTAINS({t[0]}, {t[1]})"),
        two.map(lambda t: f"INTERSECTS({t[0]}, {t[1]})"),
        st.tuples(point, point).map(lambda t: f"DISTANCE({t[0]}, {t[1]})"),
        call("DISTANCE", 4),
        shapes.map(lambda s: f"AREA({s})"),
        point.map(lambda s: f"COORD1({s})"),
        shapes.map(lambda s: f"COORDSYS({s})"),
    )


_FUNCS = ["ABS", "CEILING", "FLOOR", "SQRT", "EXP", "LOG", "LOG10", "SIN", "ACOS", "DEGREES",
          "LOWER", "UPPER", "COUNT", "SUM", "AVG", "MIN", "MAX", "ROUND", "TRUNCATE", "MOD",
          "POWER", "ATAN2", "RAND", "PI", "COALESCE", "NO_SUCH_FUNC", "sqlite_version",
          "printf", "randomblob"]  # fmt: skip
_BINOPS = ["+", "-", "*", "/", "||", "=", "<>", "!=", "<", ">=", " AND ", " OR "]


def _expressions() -> st.SearchStrategy[str]:
    # Mostly plain columns and small numbers, so that many queries run and return rows.
    column = st.sampled_from(["s_ra", "s_dec", "t_min", "obs_id", "target_name", "s_region"])
    small = st.integers(-100, 100).map(str)
    leaf = st.one_of(
        column, column, small, column, _name(), _number(), _string(), st.just("NULL"), st.just("*")
    )

    def extend(inner):
        args = st.lists(inner, max_size=3).map(", ".join)
        return st.one_of(
            st.tuples(inner, st.sampled_from(_BINOPS), inner).map(lambda t: "".join(t)),
            inner.map(lambda e: f"({e})"),
            inner.map(lambda e: f"-{e}"),
            inner.map(lambda e: f"NOT {e}"),
            st.tuples(st.sampled_from(_FUNCS), args).map(lambda t: f"{t[0]}({t[1]})"),
            st.tuples(inner, inner, inner).map(
                lambda t: f"CASE WHEN {t[0]} THEN {t[1]} ELSE {t[2]} END"
            ),
            st.tuples(
                inner,
                st.sampled_from(
                    [
                        "TIMESTAMP",
                        "INTEGER",
                        "DOUBLE PRECISION",
                        "VARCHAR(5)",
                        "BLOB",
                        "REAL",
                        "CHAR",
                    ]
                ),
            ).map(lambda t: f"CAST({t[0]} AS {t[1]})"),
            st.tuples(inner, st.lists(inner, max_size=3)).map(
                lambda t: f"{t[0]} IN ({', '.join(t[1])})"
            ),
            st.tuples(inner, inner, inner).map(lambda t: f"{t[0]} BETWEEN {t[1]} AND {t[2]}"),
            st.tuples(inner, _string()).map(lambda t: f"{t[0]} LIKE {t[1]}"),
            st.tuples(inner, st.integers(0, 12)).map(lambda t: f"{t[0]} LIKE '{'%a' * t[1]}%b'"),
            inner.map(lambda e: f"{e} IS NOT NULL"),
            _geometry(inner),
        )

    return st.recursive(leaf, extend, max_leaves=12)


def _deep() -> st.SearchStrategy[str]:
    """Queries built to exhaust a parser: deep nesting, long chains, many SELECTs."""
    n = st.integers(1, 600)
    body = "FROM ivoa.obscore"
    return st.one_of(
        n.map(lambda k: "SELECT " + "(" * k + "1" + ")" * k + f" {body}"),
        n.map(lambda k: "SELECT " + "ABS(" * k + "s_ra" + ")" * k + f" {body}"),
        n.map(lambda k: "SELECT " + "CASE WHEN 1=1 THEN " * k + "1" + " END" * k + f" {body}"),
        n.map(
            lambda k: (
                f"SELECT obs_id {body} WHERE s_ra IN "
                + "(SELECT s_ra FROM ivoa.obscore WHERE s_ra IN " * k
                + "(1)"
                + ")" * k
            )
        ),
        n.map(lambda k: "SELECT * FROM " + "(SELECT * FROM " * k + "ivoa.obscore" + ") AS x" * k),
        n.map(lambda k: " UNION ".join([f"SELECT obs_id {body}"] * k)),
        n.map(lambda k: f"SELECT obs_id {body} WHERE " + " AND ".join(["s_ra > 1"] * k)),
        n.map(lambda k: f"SELECT obs_id {body} WHERE " + " OR ".join(["(s_ra > 1)"] * k)),
        n.map(lambda k: "SELECT " + " + ".join(["s_ra"] * k) + f" {body}"),
        n.map(lambda k: f"SELECT obs_id {body} WHERE " + "NOT " * k + "s_ra > 1"),
        n.map(lambda k: "SELECT " + "-" * k + f"1 {body}"),
        n.map(lambda k: "SELECT COUNT(*) FROM " + ", ".join(["ivoa.obscore"] * min(k, 80))),
        n.map(
            lambda k: (
                "SELECT AREA(POLYGON("
                + ", ".join(f"{i % 360}, {i % 80}" for i in range(k * 4))
                + ")) "
                + body
            )
        ),
    )


# Built once: hypothesis validates a strategy on first use, which is slow for recursive ones.
_EXPR = _expressions()
_DEEP = _deep()
_NAME = _name()
_NUM = _number()
_STRING = _string()


@st.composite
def grammar_queries(draw) -> str:
    """An ADQL-like SELECT from a small grammar, with hostile pieces in its leaves."""
    if draw(st.integers(0, 9)) == 0:
        return draw(_DEEP)
    expr = _EXPR
    items = draw(st.lists(st.tuples(expr, st.one_of(st.none(), _NAME)), min_size=0,
                          max_size=4))  # fmt: skip
    sel = ", ".join(e + (f" AS {a}" if a else "") for e, a in items)
    parts = ["SELECT"]
    if draw(st.booleans()):
        parts.append(
            draw(
                st.sampled_from(
                    [
                        "DISTINCT",
                        "TOP 3",
                        "TOP 0",
                        "ALL",
                        "TOP -1",
                        "TOP 99999999999999999999",
                        "DISTINCT TOP 2",
                    ]
                )
            )
        )
    parts.append(sel)
    tables = ["ivoa.obscore"] * 6 + [*TABLES, "ivoa.nothing", "sqlite_master"]
    parts.append("FROM " + draw(st.sampled_from(tables)))
    if draw(st.booleans()):
        parts.append("AS " + draw(_NAME))
    if draw(st.integers(0, 3)) == 0:
        parts.append("JOIN tap_schema.schemas AS s ON " + draw(expr))
    if draw(st.booleans()):
        parts.append("WHERE " + draw(expr))
    if draw(st.integers(0, 3)) == 0:
        parts.append("GROUP BY " + draw(_NAME))
        if draw(st.booleans()):
            parts.append("HAVING " + draw(expr))
    if draw(st.integers(0, 2)) == 0:
        parts.append("ORDER BY " + draw(st.one_of(_NAME, _NUM, expr))
                     + draw(st.sampled_from(["", " DESC", " ASC"])))  # fmt: skip
    if draw(st.integers(0, 5)) == 0:
        parts.append("OFFSET " + draw(_NUM))
    query = " ".join(parts)
    if draw(st.integers(0, 5)) == 0:
        query += " " + draw(st.sampled_from(["UNION", "UNION ALL", "EXCEPT", "INTERSECT"]))
        query += " " + draw(st.sampled_from(VALID))
    return query


_TOKEN = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\w+|\S")


@st.composite
def mutated_queries(draw) -> str:
    """A valid query with one to four hostile edits."""
    query = draw(st.sampled_from(VALID))
    for _ in range(draw(st.integers(1, 4))):
        tokens = _TOKEN.findall(query) or [""]
        i = draw(st.integers(0, len(tokens) - 1))
        op = draw(st.integers(0, 9))
        if op == 0:
            del tokens[i]
        elif op == 1:
            tokens.insert(i, draw(st.sampled_from(HOSTILE_TOKENS)))
        elif op == 2:
            tokens.insert(i, draw(st.sampled_from(HOSTILE_TEXT)))
        elif op == 3:
            tokens[i] = draw(_NUM)
        elif op == 4:
            tokens.insert(i, tokens[i])
        elif op == 5:
            j = draw(st.integers(0, len(tokens) - 1))
            tokens[i], tokens[j] = tokens[j], tokens[i]
        elif op == 6:
            k = draw(st.integers(1, 200))
            tokens[i] = "(" * k + tokens[i] + ")" * k
        elif op == 7:
            tokens = tokens[: i + 1]
        elif op == 8:
            tokens[i] = draw(_STRING) if draw(st.booleans()) else draw(_NAME)
        else:
            tokens.append(
                draw(
                    st.sampled_from(
                        [
                            ";",
                            " LIMIT 10",
                            " AND s_ra == 1",
                            ",",
                            " ORDER BY 99",
                            " OFFSET -1",
                            "--x",
                        ]
                    )
                )
            )
        query = " ".join(tokens)
    return query


def collect(strategy: st.SearchStrategy[str], n: int) -> list[str]:
    """*n* examples of *strategy*, the same ones on every run (derandomized hypothesis)."""
    out: list[str] = []

    @settings(max_examples=n, derandomize=True, database=None, deadline=None,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(strategy)
    def draw(query: str) -> None:
        out.append(query)

    draw()
    return out


def corpus(n: int = 3000) -> list[str]:
    """The hostile corpus: half grammar-generated, half mutations, plus the seeds."""
    return VALID + collect(grammar_queries(), n // 2) + collect(mutated_queries(), n - n // 2)


# --- checking answers ------------------------------------------------------------------
@dataclass
class Verdict:
    """What is wrong with one answer (empty ``problems``: nothing)."""

    status: int | None
    problems: list[str] = field(default_factory=list)
    message: str = ""


def well_formed(body: bytes) -> str | None:
    """None if *body* is well-formed XML 1.0, else the parser's complaint."""
    parser = xml.parsers.expat.ParserCreate()
    try:
        parser.Parse(body, True)
    except xml.parsers.expat.ExpatError as exc:
        return str(exc)
    return None


def error_text(body: bytes) -> str:
    """The text of the QUERY_STATUS=ERROR INFO of a DALI error document ('' if none)."""
    m = re.search(rb'<INFO name="QUERY_STATUS" value="ERROR"[^>]*>(.*?)</INFO>', body, re.S)
    return m.group(1).decode("utf-8", "replace") if m else ""


def check(
    status: int | None, body: bytes, ctype: str = "", *, positions: bool = True, query: str = ""
) -> Verdict:
    """Judge one /sync answer: no 500, no internals, well-formed XML, positioned errors."""
    v = Verdict(status)
    if status is None:
        v.problems.append("hang")
        return v
    if status >= 500:
        v.problems.append(f"http {status}")
    elif status not in (200, 400):
        v.problems.append(f"unexpected http {status}")
    text = body.decode("utf-8", "replace")
    # Words the query itself holds may be quoted back (in the error's "near '...'").
    own = query.lower()
    bad = next((m for m in FORBIDDEN.finditer(text) if m.group().lower() not in own), None)
    if bad:
        v.problems.append(f"internal detail {bad.group()!r}")
    if "xml" in ctype or body.lstrip().startswith(b"<"):
        complaint = well_formed(body)
        if complaint:
            v.problems.append(f"malformed XML ({complaint})")
    if status == 400:
        v.message = error_text(body)
        if not v.message:
            v.problems.append("error without QUERY_STATUS=ERROR message")
        elif (
            positions
            and not _POSITION.search(v.message)
            and not any(w in v.message for w in ("longer than", "QUERY is missing"))
        ):
            v.problems.append("error without line and column")
        # The embedded service's last-resort messages: a case its checks did not foresee.
        if "cannot be translated (a value out of range" in v.message:
            v.problems.append("translator fallback")
        if "cannot be evaluated by this service" in v.message:
            v.problems.append("unmapped database error")
    return v


def run(client: httpx.Client, url: str, queries: list[str], timeout: float,
        *, positions: bool = True) -> tuple[Counter, list[tuple[str, Verdict]]]:  # fmt: skip
    """Send every query to ``url/sync``; count problems by kind."""
    counts: Counter = Counter()
    bad: list[tuple[str, Verdict]] = []
    for q in queries:
        try:
            r = client.post(f"{url}/sync", data={"LANG": "ADQL", "REQUEST": "doQuery",
                                                  "QUERY": q, "MAXREC": "20"}, timeout=timeout)  # fmt: skip
            v = check(r.status_code, r.content, r.headers.get("content-type", ""),
                      positions=positions, query=q)  # fmt: skip
        except httpx.TimeoutException:
            v = check(None, b"")
        counts["cases"] += 1
        counts[f"status {v.status}"] += 1
        if v.status is not None:
            # DaCHS sends its error documents with HTTP 200: count what the documents say.
            found = _STATUS.search(r.content)
            counts[f"QUERY_STATUS {found.group(1).decode() if found else 'missing'}"] += 1
            if (
                found
                and found.group(1) == b"ERROR"
                and not _ANY_POSITION.search(error_text(r.content))
            ):
                counts["error names no position"] += 1
        for p in v.problems:
            counts[p.split(" (")[0] if p.startswith("malformed") else p] += 1
        if v.problems:
            bad.append((q, v))
    return counts, bad


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("url", help="TAP base URL (…/sync below it)")
    ap.add_argument("--cases", type=int, default=3000)
    ap.add_argument("--timeout", type=float, default=70.0, help="seconds before a hang")
    ap.add_argument("--show", type=int, default=10, help="failing queries to print")
    ap.add_argument("--corpus", help="JSON file of queries: read if it exists, else written")
    ap.add_argument(
        "--no-positions",
        action="store_true",
        help="do not require 'line N, column M' in errors (other services)",
    )
    args = ap.parse_args(argv)
    if args.corpus and Path(args.corpus).exists():
        queries = json.loads(Path(args.corpus).read_text())
    else:
        queries = corpus(args.cases)
        if args.corpus:
            Path(args.corpus).write_text(json.dumps(queries))
    t0 = time.monotonic()
    with httpx.Client() as client:
        counts, bad = run(
            client, args.url.rstrip("/"), queries, args.timeout, positions=not args.no_positions
        )
    print(f"{len(bad)} of {counts['cases']} answers with a problem")
    print(f"{counts['cases']} cases in {time.monotonic() - t0:.0f} s against {args.url}")
    for key, n in sorted(counts.items()):
        print(f"  {key}: {n}")
    for q, v in bad[: args.show]:
        print(f"--- {v.status} {v.problems}: {q[:200]!r}\n    {v.message[:200]!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
