"""Contract suite: DaCHS (deploy/dachs/up) answers like the embedded archive.

Both archives publish the same embedded database (``archive_db``); DaCHS gets it
through ``ctanb.archive.dachs_rd`` and ``deploy/dachs/up``, which this suite runs for
real (as root, PostgreSQL + ``dachs serve`` on loopback). It fails, never skips,
when DaCHS cannot be started.

Where ADQL leaves room for different correct answers, the comparison says so:

- Row order is only compared for queries with ORDER BY; otherwise rows are sets.
- Floats are compared to 6 significant digits: DaCHS's ``ivoa.obscore`` declares
  ``s_fov``, ``s_resolution``, ``em_min``, ``em_max`` and ``em_res_power`` as
  ``real`` (float4), the embedded archive stores doubles.
- ``s_region`` is ObsCore 1.1 STC-S in both (``POLYGON ICRS ...`` embedded,
  ``Polygon ICRS ...`` DaCHS): the shape word's case is free, the vertices are
  compared one by one to 1e-5 deg (pgsphere keeps radians, DaCHS prints 6 decimals).
- Timestamps (``obs_release_date``, ``obs_creation_date``) are compared as
  ``YYYY-MM-DDTHH:MM:SS`` (DaCHS has a timestamp column, the embedded one text).
- ``access_url`` and ProvTAP's entity ``location`` differ by design (each archive's own
  file URL) and are left out.
- Unnamed expressions get server-specific names, so every expression has an alias
  (and no alias is an SQL reserved word: DaCHS rejects ``AS first``).
- DaCHS declares -1 as the NULL value of ``s_xel1``, ``s_xel2``, ``t_xel``, ``em_xel``
  and ``pol_xel`` (``<values nullLiteral="-1"/>``), so -1 comes back as NULL: the
  comparison treats -1 and NULL as the same there.
- Ties under ORDER BY may come in any order: the ordered columns must match row by
  row, the rows themselves as a set.
- TOP n with ties at the cut may keep any of the tied rows: queries with TOP add a
  tie-breaker (``ORDER BY dist, obs_publisher_did``; both sort text bytewise).
- DaCHS 2.7 rejects the ADQL not-equals operator ``<>`` ("Expected boolean expression,
  found '>'"); ``!=`` works in both, so the queries use ``!=``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import requests
from astropy.io.votable import parse_single_table

import ctanb
from ctanb.archive import db as archive_db
from ctanb.archive import gti

ROOT = Path(__file__).resolve().parent.parent
UP, DOWN = ROOT / "deploy" / "dachs" / "up", ROOT / "deploy" / "dachs" / "down"
DACHS_PORT = int(os.environ.get("DACHS_PORT", "8080"))

#: Made-up X-ray pointings (MJD, TT) on the PKS 2155-304 flare and steady nights, as a TMOC.
XRAY_INTERVALS = [(53945.9, 53945.95), (54705.8, 54705.85)]
XRAY_TMOC = gti.tmoc_to_string(gti.intervals_to_tmoc(XRAY_INTERVALS))
COLS = "obs_publisher_did, obs_id, obs_collection, s_ra, s_dec, t_min, energy_min"
#: Raw ADQL: (name, query, ordered?)
RAW_QUERIES = [
    ("all rows, every column", "SELECT * FROM ivoa.obscore", False),
    ("cone 3 deg Crab", f"SELECT {COLS} FROM ivoa.obscore WHERE "
     "1=CONTAINS(POINT('ICRS', s_ra, s_dec), CIRCLE('ICRS', 83.633, 22.014, 3))", False),
    ("cone 1 deg PKS 2155", f"SELECT {COLS} FROM ivoa.obscore WHERE "
     "1=CONTAINS(POINT('ICRS', s_ra, s_dec), CIRCLE('ICRS', 329.717, -30.226, 1))", False),
    ("cone 5 deg Galactic centre", f"SELECT {COLS} FROM ivoa.obscore WHERE "
     "CONTAINS(POINT('ICRS', s_ra, s_dec), CIRCLE('ICRS', 266.4, -28.94, 5)) = 1", False),
    ("footprint intersects circle", f"SELECT {COLS} FROM ivoa.obscore WHERE "
     "1=INTERSECTS(s_region, CIRCLE('ICRS', 128.83, -45.18, 1.5))", False),
    ("footprint contains point", f"SELECT {COLS} FROM ivoa.obscore WHERE "
     "1=CONTAINS(POINT('ICRS', 83.633, 22.014), s_region)", False),
    ("energy range", f"SELECT {COLS}, energy_max FROM ivoa.obscore "
     "WHERE energy_min <= 0.5 AND energy_max >= 50", False),
    ("wavelength range", "SELECT obs_publisher_did, em_min, em_max FROM ivoa.obscore "
     "WHERE em_max > 1e-17 AND em_min < 1e-19", False),
    ("time range", f"SELECT {COLS}, t_max FROM ivoa.obscore "
     "WHERE t_min BETWEEN 53000 AND 53800 AND t_exptime > 1000", False),
    ("group by collection", "SELECT obs_collection, COUNT(*) AS n, MIN(t_min) AS t_first, "
     "MAX(energy_max) AS emax FROM ivoa.obscore GROUP BY obs_collection", False),
    ("group by target with having", "SELECT target_name, COUNT(*) AS n FROM ivoa.obscore "
     "GROUP BY target_name HAVING COUNT(*) > 2", False),
    ("self join same target other collection", "SELECT a.obs_publisher_did AS did, "
     "b.obs_publisher_did AS other FROM ivoa.obscore AS a JOIN ivoa.obscore AS b "
     "ON a.target_name = b.target_name WHERE a.obs_collection != b.obs_collection", False),
    ("top order by time", "SELECT TOP 7 obs_publisher_did, t_min FROM ivoa.obscore "
     "ORDER BY t_min DESC", True),
    ("order by distance", "SELECT TOP 10 obs_publisher_did, DISTANCE(POINT('ICRS', s_ra, "
     "s_dec), POINT('ICRS', 83.633, 22.014)) AS dist FROM ivoa.obscore ORDER BY dist, obs_publisher_did", True),
    ("proprietary rows are searchable", "SELECT obs_publisher_did, data_rights, "
     "obs_release_date, proposal_id FROM ivoa.obscore WHERE data_rights = 'proprietary'", False),
    ("CTA extension columns", "SELECT obs_publisher_did, site, sub_array_name, obs_mode, "
     "zen_pnt, reco_method, applied_cuts, ev_xel FROM ivoa.obscore "
     "WHERE zen_pnt < 40 AND site IS NOT NULL", False),
    ("LIKE and IN", "SELECT obs_publisher_did FROM ivoa.obscore WHERE target_name LIKE 'Crab%' "
     "OR obs_collection IN ('MAGIC-RAD-MAX', 'CTA-1DC')", False),
    # ivoa.obscore_hea and ivo_tmoc_overlap (issue 18)
    ("obscore_hea every column", "SELECT * FROM ivoa.obscore_hea", False),
    ("obscore_hea joined", "SELECT o.obs_publisher_did, o.obs_id, h.energy_min, h.ev_xel, "
     "h.dataproduct_type, h.t_intervals FROM ivoa.obscore AS o JOIN ivoa.obscore_hea AS h "
     "ON h.obs_publisher_did = o.obs_publisher_did WHERE o.target_name = 'PKS 2155-304'", False),
    ("tmoc overlap with an MJD pair", "SELECT h.obs_publisher_did, ivo_tmoc_overlap("
     "h.t_intervals, 53945.9, 53946.1) AS overlap_s FROM ivoa.obscore_hea AS h "
     "WHERE ivo_tmoc_overlap(h.t_intervals, 53945.9, 53946.1) > 0", False),
    ("tmoc overlap with a time MOC", "SELECT obs_publisher_did, ivo_tmoc_overlap(t_intervals, "
     f"'{XRAY_TMOC}') AS overlap_s FROM ivoa.obscore_hea "
     f"WHERE ivo_tmoc_overlap(t_intervals, '{XRAY_TMOC}') > 0", False),
]  # fmt: skip

#: Searches as a user writes them (the seed's examples); the client builds the ADQL.
CLIENT_SEARCHES = [
    {"target": "Crab", "radius": 2.5, "collection": "HESS-DL3-DR1"},
    {"target": "Crab", "time": ("2004-12-04", "2004-12-05")},
    {"energy_min": 50, "data_rights": "public"},
    {"ra": 83.633, "dec": 22.014, "radius": 3, "spatial": "pointing"},
    {"ra": 128.83, "dec": -45.18, "radius": 2},
    {"data_level": "DL3", "max_zenith": 30, "limit": 20},
    {"site": "CTAO-South", "sub_array_includes": "MSTs"},
    {"data_rights": "proprietary"},
    {"collection": ["MAGIC-RAD-MAX", "CTA-1DC"]},
    {"target_name": "PKS 2155-304", "during": XRAY_INTERVALS},
]


# --- fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def dachs_url(archive_db: Path) -> str:
    """TAP URL of DaCHS serving ``archive_db``, started by deploy/dachs/up (fails loudly)."""
    if os.geteuid() != 0:
        pytest.fail("deploy/dachs/up needs root (it installs packages and runs DaCHS)")
    env = {**os.environ, "DACHS_PORT": str(DACHS_PORT)}
    proc = subprocess.run(
        ["bash", str(UP), "--db", str(archive_db)],
        capture_output=True, text=True, env=env, timeout=1800, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        pytest.fail(f"deploy/dachs/up failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    url = proc.stdout.strip().splitlines()[-1]
    assert url == f"http://127.0.0.1:{DACHS_PORT}/tap"
    yield url
    subprocess.run(["bash", str(DOWN)], capture_output=True, check=False)


def _table(url: str, adql: str):
    resp = requests.post(
        url.rstrip("/") + "/sync",
        data={"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": adql, "MAXREC": "100000"},
        timeout=60,
    )
    assert resp.status_code == 200, f"{url}: HTTP {resp.status_code} for {adql}\n{resp.text[:500]}"
    return parse_single_table(io.BytesIO(resp.content)).to_table()


def _field(url: str, adql: str, name: str):
    resp = requests.post(
        url.rstrip("/") + "/sync",
        data={"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": adql, "MAXREC": "1"},
        timeout=60,
    )
    assert resp.status_code == 200, f"{url}: HTTP {resp.status_code} for {adql}\n{resp.text[:500]}"
    return next(f for f in parse_single_table(io.BytesIO(resp.content)).fields if f.name == name)


def _rows(url: str, adql: str, names: list[str] | None = None) -> tuple[list[str], list[tuple]]:
    """Column names and normalised rows of *adql* (see the module docstring).

    With *names*, the columns are taken in that order (by name, case-insensitive), so
    ``SELECT *`` compares the data-model columns whatever order and extra columns
    (DaCHS adds ``obs_creator_did``, ``preview``, ``source_table`` ...) a server has.
    """
    table = _table(url, adql)
    by_lower = {n.lower(): n for n in table.colnames}
    if names is None:
        names = [n.lower() for n in table.colnames if n.lower() not in ("access_url", "location")]
    missing = [n for n in names if n not in by_lower]
    assert not missing, f"{url} answers {adql} without columns {missing}"
    rows = [tuple(_norm(row[by_lower[n]], n) for n in names) for row in table]
    return names, rows


#: Columns for which DaCHS's ivoa.obscore declares -1 as the NULL value.
MINUS_ONE_IS_NULL = {"s_xel1", "s_xel2", "t_xel", "em_xel", "pol_xel"}


def _norm(value, name: str):
    if value is None or np.ma.is_masked(value):
        return None
    if name in MINUS_ONE_IS_NULL and value == -1:
        return None
    if isinstance(value, bytes):
        value = value.decode()
    if hasattr(value, "tolist"):
        value = value.tolist()
    if name == "s_region":  # STC-S in both: the frame must agree, then the vertices
        words = str(value).split()
        assert [w.upper() for w in words[:2]] == ["POLYGON", "ICRS"], f"s_region {value!r}"
        return tuple(float(x) for x in words[2:])
    if isinstance(value, float) and math.isnan(value):
        return None
    if name in ("obs_release_date", "obs_creation_date") and value:
        text = str(value).replace("Z", "")
        return dt.datetime.fromisoformat(text).strftime("%Y-%m-%dT%H:%M:%S")
    return value


def _close(a, b) -> bool:
    """Equal, floats to 6 significant digits, polygon vertices to 1e-5 deg."""
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(abs(x - y) <= 1e-5 for x, y in zip(a, b, strict=True))
    if isinstance(a, float | int) and isinstance(b, float | int) and not isinstance(a, bool):
        return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-300)
    return a == b


def _assert_same(embedded_url: str, dachs_url: str, adql: str, ordered: bool) -> int:
    names, emb = _rows(embedded_url, adql)
    _, dac = _rows(dachs_url, adql, names)
    assert len(dac) == len(emb), f"{len(emb)} rows embedded, {len(dac)} DaCHS: {adql}"
    key = next((names.index(k) for k in ("obs_publisher_did", "did") if k in names), None)
    if ordered:
        # Ties may come in any order: the non-identifier columns must match in order.
        plain = [i for i, n in enumerate(names) if n not in ("obs_publisher_did", "did", "obs_id")]
        for e, d in zip(emb, dac, strict=True):
            assert all(_close(e[i], d[i]) for i in plain), f"order differs: {adql}\n{e}\n{d}"

    # Then the rows as a set: match rows by identifier (else by their values).
    def sort(row: tuple) -> tuple:
        text = tuple(str(v) for v in row if isinstance(v, str))
        return (str(row[key]), *text) if key is not None else (*text, repr(row))

    emb, dac = sorted(emb, key=sort), sorted(dac, key=sort)
    for e, d in zip(emb, dac, strict=True):
        bad = [n for n, x, y in zip(names, e, d, strict=True) if not _close(x, y)]
        assert not bad, f"{adql}\ncolumns {bad} differ:\nembedded {e}\nDaCHS    {d}"
    return len(emb)


# --- the contract -------------------------------------------------------------------------


def test_same_columns_in_obscore(archive_url: str, dachs_url: str) -> None:
    """Every data-model column is in DaCHS's ivoa.obscore (the CTA extension included)."""
    from ctanb.datamodel import OBSCORE_COLUMNS

    dachs_cols = {n.lower() for n in _table(dachs_url, "SELECT TOP 1 * FROM ivoa.obscore").colnames}
    missing = [c.name for c in OBSCORE_COLUMNS if c.name not in dachs_cols]
    assert not missing, f"DaCHS ivoa.obscore lacks {missing}"
    # ObsCore 1.1's REGION: both declare s_region the same way
    for url in (archive_url, dachs_url):
        field = _field(url, "SELECT TOP 1 s_region FROM ivoa.obscore", "s_region")
        assert (field.datatype, field.arraysize, field.xtype) == ("char", "*", "adql:REGION"), url


@pytest.mark.parametrize(("name", "adql", "ordered"), RAW_QUERIES, ids=[q[0] for q in RAW_QUERIES])
def test_raw_adql_same_answer(archive_url, dachs_url, name, adql, ordered) -> None:
    n = _assert_same(archive_url, dachs_url, adql, ordered)
    if name not in (
        "footprint contains point",
        "wavelength range",
        "proprietary rows are searchable",
    ):
        assert n > 0, f"{name}: the query selects nothing, so it proves nothing"


@pytest.mark.parametrize("search", CLIENT_SEARCHES, ids=[str(s) for s in CLIENT_SEARCHES])
def test_client_adql_same_answer(archive_url, dachs_url, search) -> None:
    adql = ctanb.connect(archive_url, offline=True).adql(**search)
    _assert_same(archive_url, dachs_url, adql, ordered="ORDER BY" in adql.upper())


def test_simultaneity_search_finds_runs_on_dachs(archive_url, dachs_url) -> None:
    """The during= search returns the same non-empty runs and overlaps on both archives,
    and DaCHS declares ivo_tmoc_overlap as a user-defined function."""
    adql = ctanb.connect(archive_url, offline=True).adql(
        target_name="PKS 2155-304", during=XRAY_INTERVALS
    )
    assert _assert_same(archive_url, dachs_url, adql, ordered=True) > 0
    caps = requests.get(dachs_url + "/capabilities", timeout=60).text
    assert "ivo_tmoc_overlap" in caps.lower()


def test_whole_archive_identical(archive_db, dachs_url) -> None:
    """The published row set equals the embedded database's, identifier for identifier."""
    conn = archive_db_connect(archive_db)
    try:
        dids = {r[0] for r in conn.execute('SELECT obs_publisher_did FROM "ivoa.obscore"')}
    finally:
        conn.close()
    _, rows = _rows(dachs_url, "SELECT obs_publisher_did FROM ivoa.obscore")
    got = {r[0] for r in rows}
    assert got == dids and len(dids) > 100


def archive_db_connect(path: Path):
    """The embedded archive's SQLite database, read-only."""
    return archive_db.connect(path, readonly=True)


# --- DataLink, products, embargo --------------------------------------------------------------


def _links(dachs_url: str, did: str) -> dict[str, dict]:
    base = dachs_url.rsplit("/tap", 1)[0]
    resp = requests.get(f"{base}/ctanb/q/dl/dlmeta", params={"ID": did}, timeout=60)
    assert resp.status_code == 200, resp.text[:300]
    table = parse_single_table(io.BytesIO(resp.content)).to_table()
    return {str(r["semantics"]): {k: r[k] for k in table.colnames} for r in table}


def _pick(conn, where: str) -> tuple[str, str, str]:
    row = conn.execute(
        f'SELECT o.obs_publisher_did, o."_access_group", f.sha256 FROM "ivoa.obscore" o '
        f"JOIN \"ctanb.files\" f ON f.did = o.obs_publisher_did AND f.semantics = '#this' "
        f"WHERE {where} LIMIT 1"
    ).fetchone()
    assert row is not None, f"the test archive has no dataset with {where}"
    return row


def test_datalink_this_and_calibration_for_public_run(archive_db, dachs_url) -> None:
    conn = archive_db_connect(archive_db)
    try:
        did, _, sha = _pick(conn, "o.obs_collection = 'HESS-DL3-DR1'")
    finally:
        conn.close()
    links = _links(dachs_url, did)
    assert {"#this", "#calibration"} <= set(links)
    this = links["#this"]
    resp = requests.get(str(this["access_url"]), timeout=120)
    assert resp.status_code == 200
    assert hashlib.sha256(resp.content).hexdigest() == sha
    assert int(this["content_length"]) == len(resp.content)


def test_proprietary_files_need_the_groups_credentials(archive_db, dachs_url) -> None:
    conn = archive_db_connect(archive_db)
    try:
        did, _, sha = _pick(conn, "o._access_group = 'vela-team'")
    finally:
        conn.close()
    url = str(_links(dachs_url, did)["#this"]["access_url"])
    assert requests.get(url, timeout=60).status_code in (401, 403)
    wrong = requests.get(url, auth=("pks2155-team", "demo-token-pks2155"), timeout=60)
    assert wrong.status_code in (401, 403)
    bad_token = requests.get(url, auth=("vela-team", "not-the-token"), timeout=60)
    assert bad_token.status_code in (401, 403)
    for user, token in [("vela-team", "demo-token-vela"),
                        ("ctao-consortium", "demo-token-consortium")]:  # fmt: skip
        ok = requests.get(url, auth=(user, token), timeout=120)
        assert ok.status_code == 200, f"{user}: HTTP {ok.status_code}"
        assert hashlib.sha256(ok.content).hexdigest() == sha


def test_released_proprietary_data_is_public(archive_db, dachs_url) -> None:
    """crab-team's release date (2026-03-01) has passed: files need no credentials."""
    conn = archive_db_connect(archive_db)
    try:
        did, group, _ = _pick(conn, "o.proposal_id = 'CTAO-2025A-003'")
    finally:
        conn.close()
    assert group is None
    url = str(_links(dachs_url, did)["#this"]["access_url"])
    assert requests.get(url, timeout=120).status_code == 200


def test_up_is_idempotent(archive_db, dachs_url) -> None:
    """A second run changes nothing and keeps the server answering."""
    env = {**os.environ, "DACHS_PORT": str(DACHS_PORT)}
    proc = subprocess.run(["bash", str(UP), "--db", str(archive_db)], capture_output=True,
                          text=True, env=env, timeout=600, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "nothing changed" in proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == dachs_url
    assert _rows(dachs_url, "SELECT COUNT(*) AS n FROM ivoa.obscore")[1][0][0] > 100


def test_generated_rd_follows_the_data_model() -> None:
    """Every data-model column is in the RD; the extension ones also in userconfig.rd."""
    from ctanb.archive.dachs_rd import extension_columns, render_rd, render_userconfig
    from ctanb.datamodel import OBSCORE_COLUMNS

    rd, userconfig = render_rd(), render_userconfig()
    for c in OBSCORE_COLUMNS:
        assert f'name="{c.name}" type="{c.pg_type}"' in rd
    for c in extension_columns():
        assert f'<mixinPar name="{c.name}">NULL</mixinPar>' in userconfig
        assert f"AS {c.name}" in userconfig
    assert "energy_min" in {c.name for c in extension_columns()}
    assert '<index columns="s_region" method="GIST">' in rd
    assert '<index columns="s_region"' not in render_rd(region_index=False)


def test_export_names_a_bad_archive(tmp_path: Path) -> None:
    from ctanb import ConfigError
    from ctanb.archive.dachs_rd import export_rows

    with pytest.raises(ConfigError, match="no embedded archive"):
        export_rows(tmp_path / "missing.db", tmp_path / "out")
    (tmp_path / "junk.db").write_text("not sqlite")
    with pytest.raises(ConfigError, match="not an embedded ctanb archive"):
        export_rows(tmp_path / "junk.db", tmp_path / "out")


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-v"]))


def test_the_client_gets_every_runs_irf_and_reuses_its_cache(dachs_url) -> None:
    """Through ``ctanb.connect``: DaCHS's ivoa.obscore DataLink redirects to the dataset's
    own service with the first ID only, and never ends a HEAD of a product; every run
    still gets its CALDB file, and files already downloaded are reused at once."""
    archive = ctanb.connect(dachs_url, token="", progress=False, record_history=False)
    runs = archive.search(collection="CTA-1DC")
    assert len(runs) == 4
    files = archive.download(runs, calibration=True)
    assert [p.name for p in files[1::2]] == ["irf_file.fits"] * 4
    assert len({p.name for p in files[::2]}) == 4
    written = {p: p.stat().st_mtime_ns for p in files}
    started = time.monotonic()
    assert archive.download(runs, calibration=True) == files
    assert {p: p.stat().st_mtime_ns for p in files} == written, "a cached file was fetched again"
    assert time.monotonic() - started < 60, "checking the cached files took too long"


# --- the client against DaCHS: the token stays home, errors are ctanb's --------------------


def test_the_clients_token_gets_proprietary_files_and_stays_home(archive_db, dachs_url, tmp_path):
    """Through ``ctanb.connect``: a group's ``group:token`` fetches that group's file from
    DaCHS (without it DaCHS refuses), and a DataLink document and the files it names on
    another loopback origin receive no Authorization header."""
    from test_client_credentials import Recorder

    conn = archive_db_connect(archive_db)
    try:
        did, _, sha = _pick(conn, "o._access_group = 'vela-team'")
    finally:
        conn.close()
    adql = f"SELECT * FROM ivoa.obscore WHERE obs_publisher_did = '{did}'"
    anonymous = ctanb.connect(dachs_url, token="", progress=False, record_history=False)
    anonymous.downloads.cache_dir = tmp_path / "anonymous"
    with pytest.raises(ctanb.AuthError, match="refused"):
        anonymous.download(anonymous.query(adql))
    archive = ctanb.connect(
        dachs_url, token="vela-team:demo-token-vela", progress=False, record_history=False
    )
    archive.downloads.cache_dir = tmp_path / "vela"
    (path,) = archive.download(archive.query(adql))
    assert hashlib.sha256(path.read_bytes()).hexdigest() == sha
    # DaCHS's own DataLink document for that dataset, served from another origin with its
    # URLs pointing there: neither the document nor the files get the token.
    base = dachs_url.rsplit("/tap", 1)[0]
    links = requests.get(f"{base}/ctanb/q/dl/dlmeta", params={"ID": did}, timeout=60).content
    other = Recorder()
    try:
        other.datalink = links.replace(base.encode() + b"/", other.url.encode() + b"/f/")
        found = archive._datalinks([did], url=f"{other.url}/datalink")[did]
        urls = [link.access_url for link in found if link.access_url]
        assert urls and all(u.startswith(other.url + "/f/") for u in urls)
        archive.downloads.fetch(urls[:1])
        assert other.auth_of("/datalink") == [None]
        assert other.auth_of("/f/") and set(other.auth_of("/f/")) == {None}
    finally:
        other.close()


def _dachs_error(dachs_url: str, adql: str) -> str:
    """DaCHS's own message for *adql* (the DALI error document's text; DaCHS 2.7 sends
    it with HTTP 200)."""
    import html

    from adql_fuzz import error_text

    resp = requests.post(
        dachs_url + "/sync",
        data={"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": adql},
        timeout=60,
    )
    message = html.unescape(error_text(resp.content)).strip()
    assert message, f"DaCHS answered HTTP {resp.status_code} without an error: {resp.text[:300]}"
    return message


@pytest.mark.parametrize(
    "adql",
    [
        "SELECT obs_id FROM ivoa.obscore WHERE",
        "SELECT nonexistent_column FROM ivoa.obscore",
        "SELECT obs_id FROM ivoa.obscore WHERE s_ra > 1e999 AND (((((s_dec",
    ],
    ids=["truncated", "unknown column", "unbalanced"],
)
def test_bad_adql_on_dachs_is_a_query_error_in_dachs_words(dachs_url, adql) -> None:
    from adql_fuzz import FORBIDDEN

    archive = ctanb.connect(dachs_url, token="", progress=False, record_history=False)
    with pytest.raises(ctanb.QueryError) as caught:
        archive.query(adql)
    text = str(caught.value)
    # DaCHS's words, less its "Field query: " prefix (the client drops database internals)
    server = " ".join(re.sub(r"^\s*Field query:\s*", "", _dachs_error(dachs_url, adql)).split())
    assert server and server in text, f"the client's message {text!r} is not DaCHS's {server!r}"
    internal = FORBIDDEN.search(text.replace(adql, ""))
    assert internal is None, f"internal detail {internal.group()!r} in {text!r}"
    assert caught.value.query == adql
    # the position DaCHS names ("(line:1, col:38)"), not its 0-based character offset
    named = re.search(r"line:(\d+), col:(\d+)", server)
    assert caught.value.position == (tuple(map(int, named.groups())) if named else None)


def test_hostile_adql_through_the_client_raises_only_ctanb_errors(dachs_url) -> None:
    """The valid seeds and 200 cases of the hostile corpus (tests/adql_fuzz.py, derandomized) through
    ``Archive.query``: whatever DaCHS answers (rows, errors, odd documents), the client
    returns results or raises a CtanbError subclass. What DaCHS itself does with the
    full corpus is recorded in deploy/dachs/README.md, not asserted here."""
    from collections import Counter

    from adql_fuzz import VALID, collect, grammar_queries, mutated_queries

    queries = VALID + collect(grammar_queries(), 100) + collect(mutated_queries(), 100)
    archive = ctanb.connect(dachs_url, token="", progress=False, record_history=False)
    archive.session.timeout = (5.0, 60.0)
    outcomes: Counter = Counter()
    foreign = []
    started = time.monotonic()
    for adql in queries:
        try:
            archive.query(adql, maxrec=20)
            outcomes["results"] += 1
        except ctanb.CtanbError as exc:
            outcomes[type(exc).__name__] += 1
        except Exception as exc:
            foreign.append(f"{type(exc).__name__}: {exc} <- {adql[:200]!r}")
    print(f"DaCHS via the client, {len(queries)} cases in {time.monotonic() - started:.0f} s:",
          dict(outcomes))  # fmt: skip
    assert not foreign, f"{len(foreign)} non-ctanb exceptions:\n" + "\n".join(foreign[:10])
