"""DaCHS serves the same coverage MOCs as the embedded archive (issue 18), with rights,
and answers per-row ``ivo_tmoc_overlap`` queries like the embedded archive's anonymous
view (proprietary runs' ``t_intervals`` are NULL there).

Both archives publish the same embedded database (``archive_db``); DaCHS is brought up
by tests/test_dachs.py's ``dachs_url`` fixture (deploy/dachs/up, run it under
``flock /tmp/dachs.lock``). MOCs are compared as mocpy objects (equal cells at equal
orders) and on positions, times and energies known from the data.
"""

from __future__ import annotations

import io
import itertools
import os
import tempfile
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
import requests
from astropy.io.votable import parse_single_table
from astropy.time import Time
from mocpy import MOC, SFMOC, STMOC, TimeMOC
from test_coverage import CRAB, PKS2155, TOKENS, _proprietary_point, _rows
from test_dachs import _assert_same, _table
from test_dachs import dachs_url as _dachs_up  # noqa: F401  (deploy/dachs/up, as a fixture)
from test_hea_rights import PROPRIETARY

import ctanb
from ctanb.archive import gti

KINDS = ("space", "time", "space-time", "space-energy")
COLLECTIONS = (None, "HESS-DL3-DR1", "CTAO-SIM", "CTA-1DC", "MAGIC-RAD-MAX")


#: A DaCHS already publishing CTANB_TEST_ARCHIVE_DB (e.g. a private instance on its own
#: PostgreSQL and port); unset (the default): deploy/dachs/up publishes ``archive_db``.
EXTERNAL_DACHS = os.environ.get("CTANB_TEST_DACHS_URL")

if EXTERNAL_DACHS:

    @pytest.fixture(scope="session")
    def archive_db() -> Path:
        """The archive the external DaCHS publishes (the embedded server serves it too)."""
        return Path(os.environ["CTANB_TEST_ARCHIVE_DB"])


@pytest.fixture(scope="session")
def dachs(request) -> str:
    """TAP URL of DaCHS publishing ``archive_db`` (tests/test_dachs.py's fixture)."""
    return EXTERNAL_DACHS or request.getfixturevalue("_dachs_up")


def _connect(url: str, token: str = ""):
    return ctanb.connect(url, token=token, progress=False, record_history=False)


def _service(dachs: str) -> str:
    return dachs.rsplit("/tap", 1)[0] + "/ctanb/cov/coverage/api"


def _fits(cls, content: bytes):
    with tempfile.NamedTemporaryFile(suffix=".fits", delete=False) as f:
        f.write(content)
    try:
        return cls.from_fits(f.name)
    finally:
        os.remove(f.name)


# --- the same MOCs --------------------------------------------------------------------------


def test_archive_coverage_on_dachs_equals_the_embedded_one(archive_url, dachs):
    """``Archive.coverage`` unchanged against DaCHS (it finds the service by DataLink):
    every kind, the whole archive and each collection, cell for cell."""
    embedded, dachs = _connect(archive_url), _connect(dachs)
    for collection in COLLECTIONS:
        for kind in KINDS:
            ours = embedded.coverage(collection=collection, kind=kind)
            theirs = dachs.coverage(collection=collection, kind=kind)
            assert type(theirs) is type(ours)
            assert theirs == ours, f"{kind} coverage of {collection or 'the archive'} differs"
            assert not ours.empty() or collection == "CTAO-SIM"
    assert dachs.coverage(kind="space", level="dl3") == embedded.coverage(kind="space", level="DL3")


def test_dachs_mocs_hold_the_known_positions_times_and_energies(dachs, archive_db, data_dir):
    """The facts tests/test_coverage.py checks on the embedded archive, on DaCHS's MOCs."""
    from gammapy.data import GTI

    dachs = _connect(dachs)
    space = dachs.coverage(collection="HESS-DL3-DR1", kind="space")
    assert isinstance(space, MOC)
    assert space.contains_lonlat([CRAB[0], 150.0, 10.0] * u.deg, [CRAB[1], 60.0, -80.0] * u.deg
                                 ).tolist() == [True, False, False]  # fmt: skip
    time = dachs.coverage(collection="HESS-DL3-DR1", kind="time")
    assert isinstance(time, TimeMOC)
    run = GTI.read(data_dir / "hess-dl3-dr1" / "data" / "hess_dl3_dr1_obs_id_023523.fits.gz")
    assert time.contains(run.time_start + (run.time_stop - run.time_start) / 2).all()
    rows = sorted(_rows(archive_db, "obs_collection = 'HESS-DL3-DR1'"), key=lambda r: r["t_min"])
    gap = max(itertools.pairwise(rows), key=lambda p: p[1]["t_min"] - p[0]["t_max"])
    assert not time.contains(Time([(gap[0]["t_max"] + gap[1]["t_min"]) / 2], format="mjd",
                                  scale="tt"))[0]  # fmt: skip
    crab = next(r for r in rows if "Crab" in r["target_name"])
    st = dachs.coverage(collection="HESS-DL3-DR1", kind="space-time")
    assert isinstance(st, STMOC)
    when = Time([crab["t_min"] + 0.005] * 2, format="mjd", scale="tt")
    assert st.contains(when, [CRAB[0], PKS2155[0]] * u.deg,
                       [CRAB[1], PKS2155[1]] * u.deg).tolist() == [True, False]  # fmt: skip
    sf = dachs.coverage(collection="HESS-DL3-DR1", kind="space-energy")
    assert isinstance(sf, SFMOC)
    top = max(r["energy_max"] for r in rows)
    nu = ([1.0, 1e-3, 10 * top] * u.TeV).to(u.Hz, equivalencies=u.spectral())
    assert sf.contains(nu, [CRAB[0]] * 3 * u.deg, [CRAB[1]] * 3 * u.deg).tolist() == [
        True, False, False]  # fmt: skip


@pytest.mark.parametrize(
    "params",
    [
        {"kind": "space", "collection": "hess-dl3-dr1"},
        {"kind": "time"},
        {"kind": "space-time", "collection": "CTA-1DC"},
        {"kind": "space-energy"},
        {"kind": "space", "order": "4"},
        {"kind": "time", "order": "20", "collection": "HESS-DL3-DR1"},
        {"kind": "space", "order": "0", "level": "DL3"},
    ],
    ids=lambda p: "-".join(p.values()),
)
def test_same_fits_and_ascii_as_the_embedded_archive(archive_url, dachs, params):
    """Same parameters, same MOC in both serialisations (MOC 2.0 FITS, the default, and
    ASCII), also at a coarser order."""
    cls = {"space": MOC, "time": TimeMOC, "space-time": STMOC, "space-energy": SFMOC}[
        params["kind"]
    ]
    ours = requests.get(f"{archive_url}/coverage", params=params, timeout=60)
    theirs = requests.get(_service(dachs), params=params, timeout=60)
    assert ours.status_code == theirs.status_code == 200
    assert theirs.headers["content-type"] == "application/fits"
    assert theirs.content.startswith(b"SIMPLE  =")
    expected = _fits(cls, ours.content)
    got = _fits(cls, theirs.content)
    assert got == expected and not got.empty()
    if "order" in params:
        assert got.max_order == int(params["order"])
    text = {**params, "format": "ascii"}
    ours = requests.get(f"{archive_url}/coverage", params=text, timeout=60)
    theirs = requests.get(_service(dachs), params=text, timeout=60)
    assert theirs.headers["content-type"].startswith("text/plain")
    assert theirs.text == ours.text  # the same MOC 2.0 ASCII, character for character
    if params["kind"] in ("space", "time"):  # (mocpy's SF-MOC from FITS != from ASCII)
        assert cls.from_string(theirs.text, format="ascii") == expected


# --- rights -------------------------------------------------------------------------------


def test_proprietary_coverage_on_dachs_only_to_its_group(archive_url, dachs, archive_db):
    """A point only a proprietary dataset covers: in the group's MOCs (HTTP basic
    ``group:token``), and the consortium's, not in anonymous or another group's; each
    caller gets exactly what its token gets from the embedded archive."""
    group, ra, dec = _proprietary_point(archive_db)
    point = ([ra] * u.deg, [dec] * u.deg)
    anonymous = _connect(dachs)
    assert not anonymous.coverage(kind="space").contains_lonlat(*point)[0]
    mine = _connect(dachs, f"{group}:{TOKENS[group]}")
    assert mine.coverage(collection="CTAO-SIM", kind="space").contains_lonlat(*point)[0]
    nu = (1.0 * u.TeV).to(u.Hz, equivalencies=u.spectral())
    assert mine.coverage(kind="space-energy").contains([nu.value] * u.Hz, *point)[0]
    other = next(g for g in TOKENS if g != group)
    theirs = _connect(dachs, f"{other}:{TOKENS[other]}")
    assert not theirs.coverage(collection="CTAO-SIM", kind="space").contains_lonlat(*point)[0]
    consortium = _connect(dachs, "ctao-consortium:demo-token-consortium")
    assert consortium.coverage(kind="space").contains_lonlat(*point)[0]
    # A wrong password is no group: the public coverage.
    wrong = requests.get(_service(dachs), params={"kind": "space", "format": "ascii"},
                         auth=(group, "not-the-token"), timeout=60)  # fmt: skip
    assert not MOC.from_string(wrong.text, format="ascii").contains_lonlat(*point)[0]
    # Time too, and every kind for every caller equals the embedded archive's answer.
    for token in ["", *TOKENS.values(), "demo-token-consortium"]:
        user = next((g for g, t in TOKENS.items() if t == token), "ctao-consortium")
        on_dachs = _connect(dachs, f"{user}:{token}" if token else "")
        embedded = _connect(archive_url, token)
        for kind in KINDS:
            assert on_dachs.coverage(collection="CTAO-SIM", kind=kind) == embedded.coverage(
                collection="CTAO-SIM", kind=kind
            ), f"{kind} coverage of CTAO-SIM for {user if token else 'anonymous'}"


# --- DataLink -------------------------------------------------------------------------------


def _dlmeta(dachs: str, did: str):
    base = dachs.rsplit("/tap", 1)[0]
    resp = requests.get(f"{base}/ctanb/q/dl/dlmeta", params={"ID": did}, timeout=60)
    assert resp.status_code == 200, resp.text[:300]
    return parse_single_table(io.BytesIO(resp.content)).to_table()


def test_collection_datalink_on_dachs_links_its_coverage(archive_url, dachs):
    """``#coverage`` links of a collection identifier (as on the embedded archive) lead to
    the same MOCs; each dataset links its collection's coverage too."""
    did = "ivo://ctanb.archive/hess-dl3-dr1"
    ours = requests.get(f"{archive_url}/datalink", params={"ID": did}, timeout=60)
    ours = parse_single_table(io.BytesIO(ours.content)).to_table()
    theirs = _dlmeta(dachs, did)
    for links in (ours, theirs):
        cov = [r for r in links if r["semantics"] == "#coverage"]
        assert sorted(str(r["local_semantics"]) for r in cov) == sorted(KINDS)
    by_kind = {str(r["local_semantics"]): r for r in theirs if r["semantics"] == "#coverage"}
    assert {str(r["content_type"]) for r in by_kind.values()} == {"application/fits"}
    fits = requests.get(str(by_kind["time"]["access_url"]), timeout=60)
    assert fits.status_code == 200
    expected = _connect(archive_url).coverage(collection="HESS-DL3-DR1", kind="time")
    assert _fits(TimeMOC, fits.content) == expected
    run = _dlmeta(dachs, "ivo://ctanb.archive/hess-dl3-dr1?23523")
    assert {str(r["local_semantics"]) for r in run if r["semantics"] == "#coverage"} == set(KINDS)
    assert "#this" in {str(r["semantics"]) for r in run}
    unknown = _dlmeta(dachs, "ivo://ctanb.archive/no-such-collection")
    assert not [r for r in unknown if r["semantics"] == "#coverage"]


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"kind": "galaxy"}, ["unknown coverage kind 'galaxy'", "space, time"]),
        ({"kind": "space", "order": "30"}, ["order 30 is out of range", "0 to 8"]),
        ({"kind": "time", "order": "-1"}, ["order -1 is out of range", "0 to 41"]),
        ({"kind": "space", "order": "fine"}, ["order 'fine' is not a whole number"]),
        ({"kind": "space-time", "order": "3"}, ["space or time coverage only"]),
        ({"collection": "NO-SUCH"}, ["no collection 'NO-SUCH'", "HESS-DL3-DR1"]),
        ({"level": "DL9"}, ["no data level 'DL9'", "DL3"]),
        ({"format": "png"}, ["format 'png' is not supported", "fits or ascii"]),
        # A misspelt parameter used to answer the whole archive; a repeated one its last value.
        (
            {"kind": "time", "colection": "X"},
            ["unknown parameter 'colection' for /coverage", "kind, collection, level, order"],
        ),
        ({"kind": ["time", "space"]}, ["parameter kind is given 2 times", "give kind once"]),
        ({"collection": "X" * 5000}, ["no collection 'XXX", "...' (5000 characters)"]),
    ],
)
def test_bad_coverage_requests_on_dachs_name_the_problem(archive_url, dachs, params, words):
    """DaCHS's error document says what the embedded archive's 400 says (DaCHS's ``api``
    renderer answers errors with HTTP 200 and a DALI error document)."""
    import html

    resp = requests.get(_service(dachs), params=params, timeout=60)
    text = html.unescape(resp.text)
    assert "QUERY_STATUS" in text and "Traceback" not in text
    for word in words:
        assert word in text, text[:500]
    assert len(text) < 5000, text[:500]  # a long value is not echoed in full
    ours = requests.get(f"{archive_url}/coverage", params=params, timeout=60)
    assert ours.status_code == 400
    for word in words:
        assert word in html.unescape(ours.text), ours.text[:500]


def test_dachs_coverage_accepts_what_dachs_and_dali_clients_add(dachs):
    """DaCHS's own form fields and DALI's RUNID and MAXREC are no unknown parameters."""
    params = {"kind": "time", "format": "ascii", "RUNID": "t7", "_charset_": "UTF-8",
              "__nevow_form__": "genForm", "MAXREC": "10"}  # fmt: skip
    resp = requests.get(_service(dachs), params=params, timeout=60)
    assert resp.status_code == 200 and "QUERY_STATUS" not in resp.text, resp.text[:300]
    assert TimeMOC.from_string(resp.text, format="ascii") == _connect(dachs).coverage(kind="time")


def test_the_client_names_bad_collections_on_dachs_as_on_the_embedded_archive(archive_url, dachs):
    messages = []
    for url in (archive_url, dachs):
        with pytest.raises(ctanb.CoverageError) as caught:
            _connect(url).coverage(collection="nope")
        messages.append(str(caught.value))
        with pytest.raises(ctanb.CoverageError, match="no data level 'DL7'"):
            _connect(url).coverage(level="DL7")
    assert messages[0] == messages[1] and messages[0].startswith("no collection 'nope'")


# --- ivo_tmoc_overlap per row and t_intervals rights (issue 18, item 3) --------------------------

JOIN = (
    "FROM ivoa.obscore AS o JOIN ivoa.obscore_hea AS h ON h.obs_publisher_did = o.obs_publisher_did"
)


def _proprietary_runs(archive_db) -> list[dict]:
    rows = _rows(archive_db, "data_rights = 'proprietary' AND dataproduct_type = 'event'")
    assert rows, "the test archive has no proprietary runs"
    return rows


def _overlap_queries(archive_db) -> list[tuple[str, str]]:
    runs = _proprietary_runs(archive_db)
    lo, hi = min(r["t_min"] for r in runs) - 1.0, max(r["t_max"] for r in runs) + 1.0
    # A time MOC of the proprietary runs' bounds plus the PKS 2155-304 flare night.
    tmoc = gti.tmoc_to_string(gti.intervals_to_tmoc(
        [(r["t_min"], r["t_max"]) for r in runs[:3]] + [(53945.9, 53946.1)]))  # fmt: skip
    return [
        ("each run's own span", "SELECT h.obs_publisher_did, ivo_tmoc_overlap(h.t_intervals, "
         f"o.t_min, o.t_max) AS s {JOIN}"),
        ("first half of each run", "SELECT h.obs_publisher_did, ivo_tmoc_overlap(h.t_intervals, "
         f"o.t_min, (o.t_min + o.t_max) / 2) AS s {JOIN}"),
        ("window over the proprietary runs", "SELECT h.obs_publisher_did, "
         f"ivo_tmoc_overlap(h.t_intervals, {lo!r}, {hi!r}) AS s {JOIN}"),
        ("a time MOC, every row", "SELECT obs_publisher_did, ivo_tmoc_overlap(t_intervals, "
         f"'{tmoc}') AS s FROM ivoa.obscore_hea"),
        # (DaCHS's ADQL takes IS NULL after a column only: COUNT(expression) counts the rest)
        ("rows with readable intervals", "SELECT o.obs_collection, COUNT(*) AS n, "
         f"COUNT(ivo_tmoc_overlap(h.t_intervals, {lo!r}, {hi!r})) AS known {JOIN} "
         "GROUP BY o.obs_collection"),
        ("overlap sum per collection", "SELECT o.obs_collection, SUM(ivo_tmoc_overlap("
         f"h.t_intervals, o.t_min, o.t_max)) AS total {JOIN} GROUP BY o.obs_collection"),
    ]  # fmt: skip


def test_per_row_overlaps_on_dachs_equal_the_embedded_anonymous_view(
    archive_url, dachs, archive_db
):
    """The same rows and overlap values (seconds, to 6 digits), NULL where the anonymous
    caller may not read the GTIs, for overlaps computed from each row's own columns."""
    for name, adql in _overlap_queries(archive_db):
        assert _assert_same(archive_url, dachs, adql, ordered=False) > 0, name
    # the proprietary runs' overlaps are NULL on both, the others are numbers
    _, got = _rows_of(dachs, _overlap_queries(archive_db)[0][1])
    private = {r["obs_publisher_did"] for r in _proprietary_runs(archive_db)}
    nulls = {did for did, s in got if s is None}
    assert private and private <= nulls
    assert len(nulls) < len(got) and all(s > 0 for did, s in got if did not in nulls)


def _rows_of(url: str, adql: str):
    table = _table(url, adql)
    rows = [(str(r[0]), None if np.ma.is_masked(r[1]) else float(r[1])) for r in table]
    return table.colnames, rows


def test_proprietary_t_intervals_are_null_for_anonymous_callers_on_dachs(archive_url, dachs):
    """DaCHS's TAP has no per-caller rows: it holds what an anonymous caller of the
    embedded archive reads (the runs stay searchable, their GTIs do not leak)."""
    for url in (archive_url, dachs):
        table = _table(url, PROPRIETARY)
        assert len(table) > 0
        assert all(np.ma.is_masked(v) or not str(v).strip() for v in table["t_intervals"]), url
    assert list(_table(dachs, PROPRIETARY)["obs_id"]) == list(
        _table(archive_url, PROPRIETARY)["obs_id"]
    )
    public = _table(dachs, "SELECT TOP 5 h.t_intervals FROM ivoa.obscore_hea AS h JOIN "
                    "ivoa.obscore AS o ON h.obs_publisher_did = o.obs_publisher_did "
                    "WHERE o.data_rights = 'public'")  # fmt: skip
    assert len(public) == 5 and not any(np.ma.is_masked(v) for v in public["t_intervals"])
    adql = (f"SELECT h.obs_publisher_did {JOIN} WHERE h.t_intervals IS NULL "
            "AND o.dataproduct_type = 'event'")  # fmt: skip
    _assert_same(archive_url, dachs, adql, ordered=False)


@pytest.mark.parametrize(
    ("select", "says"),
    [
        ("ivo_tmoc_overlap(h.t_intervals, o.t_max, o.t_min)", "wrong order"),
        ("ivo_tmoc_overlap(h.t_intervals, o.t_min + 2400000.5, o.t_max + 2400000.5)",
         "is not an MJD"),
    ],
)  # fmt: skip
def test_bad_row_values_are_named_on_dachs_too(archive_url, dachs, select, says):
    """A bad interval made from a row's columns is refused with the same words on both
    archives, never a silent 0."""
    from test_dachs import _dachs_error

    adql = f"SELECT TOP 3 o.obs_id, {select} AS s {JOIN} WHERE o.data_rights = 'public'"
    ours = requests.post(f"{archive_url}/sync", data={"REQUEST": "doQuery", "LANG": "ADQL",
                                                      "QUERY": adql}, timeout=60)  # fmt: skip
    assert ours.status_code == 400 and says in ours.text
    message = _dachs_error(dachs, adql)
    assert says in message and "ivo_tmoc_overlap" in message, message


# --- the DaCHS side's coarser orders, without DaCHS ------------------------------------------


@pytest.mark.parametrize("kind", ["space", "time"])
def test_coarser_orders_on_dachs_are_mocpys(kind):
    """DaCHS has no mocpy: its coarser orders (ctanb/archive/dachs_coverage_core.py, run by
    DaCHS's Python) equal mocpy's ``degrade_to_order`` in both serialisations, for MOCs
    hypothesis makes (any cells at any orders)."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from ctanb.archive import dachs_coverage_core as core

    top = 8 if kind == "space" else 41
    cls = MOC if kind == "space" else TimeMOC
    cells = st.lists(st.tuples(st.integers(0, top), st.integers(0, 2**40)), min_size=1,
                     max_size=30)  # fmt: skip

    @settings(max_examples=60, deadline=None, derandomize=True)
    @given(cells, st.integers(0, top))
    def check(pairs, order):
        words = [f"{o}/{c % (12 * 4**o if kind == 'space' else 2 ** (o + 1))}" for o, c in pairs]
        one = [cls.from_string(f"{w} {top}/", format="ascii") for w in words]
        moc = one[0].union(*one[1:]) if len(one) > 1 else one[0]
        text = moc.to_string(format="ascii")
        ranges = core.degrade(core.parse_ranges(text, kind), kind, order)
        expected = moc.degrade_to_order(order) if order < moc.max_order else moc
        ascii = core.to_ascii(ranges, kind, order)
        assert ascii.strip() == expected.to_string(format="ascii").strip()
        got = _fits(cls, core.to_fits(ranges, kind, order))
        assert got == expected and got.max_order == order

    check()
