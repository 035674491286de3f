"""ADQL translation, run on a real SQLite archive and checked against brute force."""

from __future__ import annotations

import math
import random
import sqlite3
from pathlib import Path

import pytest

from ctanb import AdqlError
from ctanb.archive import db
from ctanb.archive.adql import load_schema, register_functions, translate
from ctanb.archive.geometry import (
    Circle,
    Point,
    Polygon,
    angular_distance,
    circle_polygon,
    contains,
    intersects,
)

FOOTPRINT_RADIUS = 2.5


def ring(ra: float, dec: float, radius: float, n: int = 32) -> tuple[tuple[float, float], ...]:
    """n vertices on a circle of *radius* degrees around (ra, dec)."""
    return circle_polygon(ra, dec, radius, n)


def _pointings() -> list[tuple[float, float]]:
    rng = random.Random(42)
    special = [(83.633, 22.014), (359.9, 0.5), (0.2, -0.4), (180.0, 89.6), (10.0, 88.9),
               (300.0, -89.7), (1.5, 0.0), (358.2, 1.0), (266.4, -28.9)]  # fmt: skip
    # clustered around the special spots, so every cone has neighbours, plus uniform
    near = []
    for ra, dec in special:
        for _ in range(12):
            near.append(ring(ra, dec, rng.uniform(0.01, 5), 64)[rng.randrange(64)])
    uniform = [(rng.uniform(0, 360), math.degrees(math.asin(rng.uniform(-1, 1))))
               for _ in range(250)]  # fmt: skip
    return special + near + uniform


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> tuple[sqlite3.Connection, list[dict]]:
    path: Path = tmp_path_factory.mktemp("adql") / "archive.db"
    conn = db.connect(path)
    db.create_schema(conn)
    rows = []
    for i, (ra, dec) in enumerate(_pointings()):
        poly = ring(ra, dec, FOOTPRINT_RADIUS)
        row = {
            "obs_publisher_did": db.publisher_did("synthetic", i), "obs_id": f"{i:05d}",
            "obs_collection": "synthetic", "dataproduct_type": "event", "calib_level": 2,
            "target_name": ["Crab", "crab nebula", "Sgr A*", "Field", "PKS 2155-304"][i % 5],
            "s_ra": ra, "s_dec": dec, "s_fov": 2 * FOOTPRINT_RADIUS,
            "s_region": " ".join(f"{x!r}" for v in poly for x in v),
            "t_min": 53000.0 + i, "t_max": 53000.02 + i, "t_exptime": 1600.0 + i % 7,
            "energy_min": 0.1 * (1 + i % 3), "energy_max": 100.0,
            "proposal_id": None if i % 4 else f"P{i}",
        }  # fmt: skip
        db.upsert_dataset(conn, row)
        rows.append(row)
    conn.commit()
    register_functions(conn)
    return conn, rows


@pytest.fixture(scope="module")
def schema(archive):
    return load_schema(archive[0])


def run(archive, schema, adql, **kw):
    q = translate(adql, schema, **kw)
    return q, archive[0].execute(q.sql, q.params).fetchall()


def ids(result) -> set[str]:
    return {r[0] for r in result}


CONES = [(83.633, 22.014, 1.0), (83.633, 22.014, 3.0), (0.0, 0.0, 3.0), (359.5, 0.3, 1.5),
         (0.0, 90.0, 2.0), (123.0, 89.0, 4.0), (300.0, -89.9, 3.0), (266.4, -28.9, 10.0),
         (45.0, 10.0, 40.0)]  # fmt: skip


@pytest.mark.parametrize("ra,dec,r", CONES)
def test_cone_search_uses_the_index_and_equals_brute_force(archive, schema, ra, dec, r):
    rows = archive[1]
    expected = {x["obs_id"] for x in rows if angular_distance(x["s_ra"], x["s_dec"], ra, dec) <= r}
    forms = [
        f"CONTAINS(POINT('ICRS', s_ra, s_dec), CIRCLE('ICRS', {ra}, {dec}, {r})) = 1",
        f"1 = CONTAINS(POINT(s_ra, s_dec), CIRCLE(POINT({ra}, {dec}), {r}))",
        f"DISTANCE(POINT('ICRS', s_ra, s_dec), POINT('ICRS', {ra}, {dec})) <= {r}",
        f"{r} >= DISTANCE(s_ra, s_dec, {ra}, {dec})",
    ]
    for where in forms:
        q, result = run(
            archive, schema, f"SELECT obs_id, s_ra, s_dec FROM ivoa.obscore WHERE {where}"
        )
        assert ids(result) == expected, where
        assert '"ivoa.obscore#point"' in q.sql
        plan = " ".join(str(p) for p in archive[0].execute("EXPLAIN QUERY PLAN " + q.sql))
        assert "SCAN t0" not in plan, plan  # rowid lookups, no full scan
    assert expected or r < 2  # the fixture put neighbours near every test position


@pytest.mark.parametrize("ra,dec,r", CONES[:7])
def test_region_searches_equal_brute_force(archive, schema, ra, dec, r):
    rows = archive[1]
    circle = Circle(ra, dec, r)
    expected = {x["obs_id"] for x in rows if intersects(_region(x), circle)}
    q, result = run(archive, schema, "SELECT obs_id FROM ivoa.obscore WHERE "
                    f"INTERSECTS(s_region, CIRCLE('ICRS', {ra}, {dec}, {r})) = 1")  # fmt: skip
    assert ids(result) == expected and '"ivoa.obscore#region"' in q.sql
    point_inside = {x["obs_id"] for x in rows if contains(Point(ra, dec), _region(x))}
    _, result = run(archive, schema, "SELECT obs_id FROM ivoa.obscore WHERE "
                    f"CONTAINS(POINT('ICRS', {ra}, {dec}), s_region) = 1")  # fmt: skip
    assert ids(result) == point_inside


def _region(row) -> Polygon:
    return Polygon.from_flat([float(x) for x in row["s_region"].split()])


def test_polygon_and_box_queries_equal_brute_force(archive, schema):
    rows = archive[1]
    shape = [(355.0, -3.0), (5.0, -3.0), (5.0, 3.0), (355.0, 3.0)]
    flat = ", ".join(f"{x}" for v in shape for x in v)
    poly = Polygon(tuple(shape))
    _, result = run(archive, schema, "SELECT obs_id FROM ivoa.obscore WHERE "
                    f"CONTAINS(POINT(s_ra, s_dec), POLYGON('ICRS', {flat})) = 1")  # fmt: skip
    assert ids(result) == {
        x["obs_id"] for x in rows if contains(Point(x["s_ra"], x["s_dec"]), poly)
    }
    assert result
    _, result = run(archive, schema, "SELECT obs_id FROM ivoa.obscore WHERE "
                    f"INTERSECTS(POLYGON({flat}), s_region) = 1")  # fmt: skip
    assert ids(result) == {x["obs_id"] for x in rows if intersects(poly, _region(x))}
    _, box_rows = run(archive, schema, "SELECT obs_id, s_ra, s_dec FROM ivoa.obscore "
                      "WHERE CONTAINS(POINT(s_ra, s_dec), BOX('ICRS', 0, 0, 4, 4)) = 1")  # fmt: skip
    assert box_rows and all(abs(d) < 2.01 and min(r, 360 - r) < 2.01 for _, r, d in box_rows)


def test_fallback_paths_are_correct(archive, schema):
    rows = archive[1]
    cone = "CONTAINS(POINT(s_ra, s_dec), CIRCLE(83.633, 22.014, 3)) = 1"
    inside = {
        x["obs_id"] for x in rows if angular_distance(x["s_ra"], x["s_dec"], 83.633, 22.014) <= 3
    }
    # negated: no index, per-row exact test
    _, result = run(archive, schema, f"SELECT obs_id FROM ivoa.obscore WHERE NOT ({cone})")
    assert ids(result) == {x["obs_id"] for x in rows} - inside
    # OR of two cones
    _, result = run(archive, schema, f"SELECT obs_id FROM ivoa.obscore WHERE {cone} OR "
                    "CONTAINS(POINT(s_ra, s_dec), CIRCLE(0, 0, 2)) = 1")  # fmt: skip
    other = {x["obs_id"] for x in rows if angular_distance(x["s_ra"], x["s_dec"], 0, 0) <= 2}
    assert ids(result) == inside | other
    # non-constant shape: each pointing's own 1-degree circle contains it
    _, result = run(archive, schema, "SELECT COUNT(*) FROM ivoa.obscore WHERE "
                    "CONTAINS(POINT(s_ra, s_dec), CIRCLE(s_ra, s_dec + 0.5, 1)) = 1")  # fmt: skip
    assert result[0][0] == len(rows)
    # self-join on positions: pairs closer than 1 degree
    _, result = run(archive, schema, "SELECT a.obs_id, b.obs_id FROM ivoa.obscore AS a "
                    "JOIN ivoa.obscore AS b ON DISTANCE(POINT(a.s_ra, a.s_dec), "
                    "POINT(b.s_ra, b.s_dec)) < 1 WHERE a.obs_id < b.obs_id")  # fmt: skip
    pairs = {(x["obs_id"], y["obs_id"]) for x in rows for y in rows if x["obs_id"] < y["obs_id"]
             and angular_distance(x["s_ra"], x["s_dec"], y["s_ra"], y["s_dec"]) < 1}  # fmt: skip
    assert set(result) == pairs and pairs


def test_geometry_output_is_dali_text_and_s_region_is_stcs(archive, schema):
    q, result = run(archive, schema, "SELECT TOP 1 s_region, POINT('ICRS', -10, 5) AS p, "
                    "CIRCLE(1, 2, 3), BOX(0, 0, 2, 2), POLYGON(POINT(1, 1), POINT(2, 1), "
                    "POINT(2, 2)), POINT(s_ra, s_dec), AREA(CIRCLE(0, 0, 1)), "
                    "COORD1(POINT(s_ra, s_dec)), COORDSYS(s_region) FROM ivoa.obscore "
                    "ORDER BY obs_id")  # fmt: skip
    meta = [(c.name, c.datatype, c.arraysize, c.xtype) for c in q.columns]
    assert meta[:6] == [("s_region", "char", "*", "adql:REGION"), ("p", "double", "2", "point"),
                        ("circle", "double", "3", "circle"), ("box", "double", "*", "polygon"),
                        ("polygon", "double", "*", "polygon"),
                        ("point", "double", "2", "point")]  # fmt: skip
    row = result[0]
    assert [float(x) for x in row[1].split()] == [350.0, 5.0]
    assert [float(x) for x in row[2].split()] == [1.0, 2.0, 3.0]
    assert len(row[3].split()) == 8 and len(row[4].split()) == 6
    first = archive[1][0]
    # ObsCore 1.1: an STC-S string, as DaCHS returns it; the vertices are the stored ones.
    assert row[0] == "POLYGON ICRS " + first["s_region"]
    assert [float(x) for x in row[5].split()] == pytest.approx([first["s_ra"], first["s_dec"]])
    assert row[6] == pytest.approx(math.pi, rel=1e-4) and q.columns[6].unit == "deg**2"
    assert row[7] == pytest.approx(first["s_ra"]) and row[8] == "ICRS"


def test_top_offset_order_and_row_limit(archive, schema):
    all_ids = sorted(x["obs_id"] for x in archive[1])
    q, result = run(archive, schema, "SELECT TOP 10 obs_id FROM ivoa.obscore ORDER BY obs_id DESC")
    assert [r[0] for r in result] == all_ids[::-1][:10] and q.top == 10
    q, result = run(archive, schema, "SELECT TOP 10 obs_id FROM ivoa.obscore ORDER BY obs_id "
                    "OFFSET 5", row_limit=4)  # fmt: skip
    assert [r[0] for r in result] == all_ids[5:9] and q.top == 10
    q, result = run(archive, schema, "SELECT obs_id FROM ivoa.obscore ORDER BY 1 OFFSET 3",
                    row_limit=1000)  # fmt: skip
    assert [r[0] for r in result] == all_ids[3:] and q.top is None
    _, result = run(archive, schema, "SELECT obs_id FROM ivoa.obscore", row_limit=7)
    assert len(result) == 7
    # TOP in a subquery is the subquery's own
    _, result = run(archive, schema, "SELECT COUNT(*) FROM (SELECT TOP 3 obs_id FROM "
                    "ivoa.obscore) AS s", row_limit=2)  # fmt: skip
    assert result == [(3,)]


def test_sql_features(archive, schema):
    rows = archive[1]
    _, result = run(archive, schema, "SELECT target_name, COUNT(*) AS n, MIN(t_min), MAX(t_max), "
                    "AVG(t_exptime), SUM(calib_level) FROM ivoa.obscore GROUP BY target_name "
                    "HAVING COUNT(*) > 1 ORDER BY n DESC, target_name")  # fmt: skip
    counts = {}
    for x in rows:
        counts[x["target_name"]] = counts.get(x["target_name"], 0) + 1
    assert {r[0]: r[1] for r in result} == counts
    # case-sensitive LIKE, case-insensitive ILIKE, delimited and regular identifiers
    _, like = run(archive, schema, "SELECT DISTINCT target_name FROM ivoa.obscore "
                  "WHERE target_name LIKE 'Crab%'")  # fmt: skip
    _, ilike = run(archive, schema, "SELECT DISTINCT \"target_name\" FROM IVOA.ObsCore "
                   "WHERE TARGET_NAME ILIKE 'crab%'")  # fmt: skip
    assert ids(like) == {"Crab"} and ids(ilike) == {"Crab", "crab nebula"}
    _, special = run(archive, schema, "SELECT DISTINCT target_name FROM ivoa.obscore "
                     "WHERE target_name LIKE 'Sgr A_' OR target_name LIKE '%*' ")  # fmt: skip
    assert ids(special) == {"Sgr A*"}
    _, result = run(
        archive,
        schema,
        "SELECT COUNT(*) FROM ivoa.obscore WHERE proposal_id IS NULL "
        "AND t_min BETWEEN 53000 AND 53099.5 AND obs_id IN ('00000', '00001', '00004')",
    )
    assert result == [(1,)]  # '00001' (proposal_id is set on every 4th row: 0, 4, ...)
    _, result = run(archive, schema, "SELECT obs_id || '/' || target_name, CASE WHEN s_dec > 0 "
                    "THEN 'north' ELSE 'south' END, CAST(t_exptime AS INTEGER), "
                    "COALESCE(proposal_id, 'none'), LOWER(target_name), UPPER(target_name) "
                    "FROM ivoa.obscore WHERE obs_id = '00001'")  # fmt: skip
    x = rows[1]
    assert result == [(f"00001/{x['target_name']}", "north" if x["s_dec"] > 0 else "south",
                       int(x["t_exptime"]), "none", x["target_name"].lower(),
                       x["target_name"].upper())]  # fmt: skip
    _, result = run(archive, schema, "SELECT ABS(-2), CEILING(1.2), FLOOR(1.8), DEGREES(PI()), "
                    "RADIANS(180), EXP(0), LOG(EXP(2)), LOG10(1000), MOD(7, 3), POWER(2, 10), "
                    "SQRT(16), ROUND(2.567, 1), TRUNCATE(2.567, 2), SIN(0), COS(0), TAN(0), "
                    "ASIN(1), ACOS(1), ATAN(1), ATAN2(1, 1), COT(PI() / 4), RAND(), 1e-18 * 2 "
                    "FROM ivoa.obscore WHERE obs_id = '00000'")  # fmt: skip
    values = result[0]
    expect = [2, 2, 1, 180, math.pi, 1, 2, 3, 1, 1024, 4, 2.6, 2.56, 0, 1, 0, math.pi / 2, 0,
              math.pi / 4, math.pi / 4, 1]  # fmt: skip
    assert list(values[:21]) == pytest.approx(expect)
    assert 0 <= values[21] < 1 and values[22] == pytest.approx(2e-18)


def test_joins_subqueries_and_tap_schema(archive, schema):
    _, result = run(archive, schema, "SELECT c.column_name, c.unit FROM TAP_SCHEMA.tables AS t "
                    "JOIN TAP_SCHEMA.columns AS c ON c.table_name = t.table_name "
                    "WHERE t.table_name = 'ivoa.obscore' AND c.column_name = 's_ra'")  # fmt: skip
    assert result == [("s_ra", "deg")]
    _, result = run(archive, schema, "SELECT sub.n FROM (SELECT obs_id AS n, s_dec FROM "
                    "ivoa.obscore WHERE s_dec > 80) AS sub WHERE sub.n IN (SELECT obs_id FROM "
                    "ivoa.obscore WHERE s_ra < 100) ORDER BY sub.n")  # fmt: skip
    expect = sorted(x["obs_id"] for x in archive[1] if x["s_dec"] > 80 and x["s_ra"] < 100)
    assert [r[0] for r in result] == expect and expect
    _, result = run(
        archive,
        schema,
        "SELECT obs_id FROM ivoa.obscore WHERE s_dec > 89 "
        "UNION SELECT obs_id FROM ivoa.obscore WHERE s_dec < -89 ORDER BY obs_id",
    )
    expect = sorted(x["obs_id"] for x in archive[1] if abs(x["s_dec"]) > 89)
    assert [r[0] for r in result] == expect
    q, _ = run(archive, schema, "SELECT * FROM ivoa.obscore AS o JOIN tap_schema.schemas s "
               "ON s.schema_name = 'ivoa' WHERE o.obs_id = '00000'")  # fmt: skip
    names = [c.name for c in q.columns]
    assert (
        "_access_group" not in names and "schema_name" in names and names[0] == "dataproduct_type"
    )


def _error(schema, adql) -> AdqlError:
    with pytest.raises(AdqlError) as info:
        translate(adql, schema)
    return info.value


def test_errors_name_the_problem_and_its_position(schema):
    err = _error(schema, "SELECT obs_id\nFROM ivoa.obscore\nWHERE s_dec >< 3")
    assert "syntax" in err.message and err.position is not None and err.position[0] == 3
    err = _error(schema, "SELECT obs_id, foo FROM ivoa.obscore")
    assert "unknown column 'foo' in ivoa.obscore" in err.message and err.position == (1, 16)
    err = _error(schema, "SELECT * FROM ivoa.nothing")
    assert "unknown table 'ivoa.nothing'" in err.message and err.position == (1, 15)
    err = _error(schema, "SELECT load_extension('x') FROM ivoa.obscore")
    assert "unknown function 'load_extension'" in err.message and err.position == (1, 8)
    err = _error(schema, 'SELECT "S_RA" FROM ivoa.obscore')  # delimited: case-sensitive
    assert "unknown column 'S_RA'" in err.message
    err = _error(schema, "SELECT obs_id FROM ivoa.obscore a, ivoa.obscore b")
    assert "ambiguous column 'obs_id'" in err.message
    err = _error(schema, "SELECT * FROM ivoa.obscore WHERE "
                 "CONTAINS(POINT('GALACTIC', 1, 2), CIRCLE(1, 2, 3)) = 1")  # fmt: skip
    assert "GALACTIC" in err.message and err.position is not None
    for bad in ["PRAGMA table_info(x)", "DELETE FROM ivoa.obscore", "SELECT 1; SELECT 2",
                "ATTACH 'x.db' AS y", "SELECT * FROM sqlite_master",
                'SELECT * FROM "ivoa.obscore#point"', "SELECT _access_group FROM ivoa.obscore",
                "SELECT rowid FROM ivoa.obscore", "SELECT sqlite_version()",
                "WITH x AS (SELECT 1 AS a) SELECT a FROM x", "SELECT 'unterminated FROM x",
                "", "SELECT DISTANCE(POINT(1, 2), CIRCLE(1, 2, 3))",
                "SELECT POLYGON(1, 2, 3, 4) FROM ivoa.obscore"]:  # fmt: skip
        assert _error(schema, bad).message


def test_schema_lists_tables_and_indexes(schema):
    obscore = schema.find("IVOA.OBSCORE")
    assert obscore is not None and obscore.point_index == "ivoa.obscore#point"
    assert obscore.region_index == "ivoa.obscore#region"
    assert schema.find("tap_schema.columns") is not None
    assert [c.name for c in obscore.columns][:3] == ["dataproduct_type", "calib_level",
                                                      "obs_collection"]  # fmt: skip


def test_s_region_through_subqueries_and_unions_stays_a_geometry(archive, schema):
    rows = archive[1]
    crab = Circle(83.633, 22.014, 1.0)
    expected = {x["obs_id"]: x["s_region"] for x in rows if intersects(_region(x), crab)}
    # the subquery's s_region is still the polygon INTERSECTS reads; only the
    # outermost SELECT writes STC-S, also for SELECT * and both sides of a UNION
    q, result = run(archive, schema, "SELECT t.obs_id, t.s_region FROM (SELECT * FROM "
                    "ivoa.obscore) AS t WHERE INTERSECTS(t.s_region, CIRCLE(83.633, 22.014, 1)) = 1 "
                    "UNION SELECT obs_id, s_region FROM ivoa.obscore WHERE obs_id = '00000'")  # fmt: skip
    assert q.columns[1].xtype == "adql:REGION" and q.columns[1].datatype == "char"
    expected["00000"] = rows[0]["s_region"]
    assert dict(result) == {k: "POLYGON ICRS " + v for k, v in expected.items()}
    _, star = run(archive, schema, "SELECT TOP 1 * FROM ivoa.obscore ORDER BY obs_id")
    names = [c.name for c in translate("SELECT * FROM ivoa.obscore", schema).columns]
    assert star[0][names.index("s_region")].startswith("POLYGON ICRS ")
