"""Coverage MOCs of the embedded archive (issue 18, item 2): built at ingestion from the
real H.E.S.S. DR1 / CTA 1DC / MAGIC / simulated CTAO data, served at /coverage over
HTTP, read back with ``Archive.coverage``; rights, DataLink and bad input.

Expected values come from the data themselves, read independently: footprints from the
ObsCore rows with ctanb's exact spherical geometry, GTIs with gammapy.
"""

from __future__ import annotations

import itertools
import sqlite3
from pathlib import Path

import astropy.units as u
import httpx
import numpy as np
import pytest
from astropy.time import Time
from mocpy import MOC, SFMOC, STMOC, TimeMOC

import ctanb
from ctanb.archive import geometry
from ctanb.archive.coverage import ORDERS

CRAB = (83.6331, 22.0145)
PKS2155 = (329.7169, -30.2256)


@pytest.fixture(scope="module")
def anonymous(archive_url):
    with ctanb.connect(archive_url, record_history=False, progress=False) as archive:
        yield archive


def _rows(db: Path, where: str, args: tuple = ()) -> list[dict]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(f'SELECT * FROM "ivoa.obscore" WHERE {where}', args)]
    finally:
        conn.close()


def _polygon(row: dict) -> list[tuple[float, float]]:
    v = [float(x) for x in row["s_region"].split()]
    return list(zip(v[0::2], v[1::2], strict=True))


def _covered_by_any(rows: list[dict], ra: float, dec: float) -> bool:
    return any(geometry.point_in_polygon(ra, dec, _polygon(r)) for r in rows if r["s_region"])


def test_space_coverage_holds_every_hess_footprint_and_no_empty_field(anonymous, archive_db):
    moc = anonymous.coverage(collection="HESS-DL3-DR1", kind="space")
    assert isinstance(moc, MOC)
    rows = _rows(archive_db, "obs_collection = 'HESS-DL3-DR1'")
    assert len(rows) == 105
    assert moc.contains_lonlat(CRAB[0] * u.deg, CRAB[1] * u.deg)[0]
    # Every pointing and every footprint vertex lies in the MOC.
    ra = np.array([r["s_ra"] for r in rows] + [v[0] for r in rows for v in _polygon(r)])
    dec = np.array([r["s_dec"] for r in rows] + [v[1] for r in rows for v in _polygon(r)])
    assert moc.contains_lonlat(ra * u.deg, dec * u.deg).all()
    # Fields no H.E.S.S. footprint touches (checked with the exact polygons) are outside.
    empty = [(150.0, 60.0), (10.0, -80.0), (200.0, 5.0)]
    for field in empty:
        assert not _covered_by_any(rows, *field)
    assert not moc.contains_lonlat(
        [f[0] for f in empty] * u.deg, [f[1] for f in empty] * u.deg
    ).any()
    # A handful of 5-deg fields are a small part of the sky; the whole archive is more.
    everything = anonymous.coverage(kind="space")
    assert 0 < moc.sky_fraction < everything.sky_fraction < 0.5
    assert moc.difference(everything).empty()


def test_time_coverage_holds_the_gtis_read_by_gammapy_and_not_the_gaps(
    anonymous, archive_db, data_dir
):
    from gammapy.data import GTI

    moc = anonymous.coverage(collection="HESS-DL3-DR1", kind="time")
    assert isinstance(moc, TimeMOC)
    run = data_dir / "hess-dl3-dr1" / "data" / "hess_dl3_dr1_obs_id_023523.fits.gz"
    gti = GTI.read(run)
    starts, stops = gti.time_start, gti.time_stop
    mid = starts + (stops - starts) / 2
    assert moc.contains(starts).all() and moc.contains(mid).all()
    # Gaps between consecutive runs (from the rows' bounds) are not covered.
    rows = sorted(_rows(archive_db, "obs_collection = 'HESS-DL3-DR1'"), key=lambda r: r["t_min"])
    gaps = [(a["t_max"], b["t_min"]) for a, b in itertools.pairwise(rows)
            if b["t_min"] - a["t_max"] > 600 / 86400]  # fmt: skip
    assert len(gaps) > 20
    middles = Time([(a + b) / 2 for a, b in gaps], format="mjd", scale="tt")
    assert not moc.contains(middles).any()
    # The observing time adds up: the runs' durations, each rounded out to ~1 s cells.
    spans = sum((r["t_max"] - r["t_min"]) * 86400 for r in rows)
    assert spans <= moc.total_duration.to_value("s") <= spans + 2.2 * len(rows)


def test_space_time_and_space_energy_coverage(anonymous, archive_db):
    crab_run = _rows(archive_db, "obs_collection = 'HESS-DL3-DR1' AND target_name LIKE '%Crab%'")[0]
    when = Time([crab_run["t_min"] + 0.005] * 2, format="mjd", scale="tt")
    st = anonymous.coverage(collection="HESS-DL3-DR1", kind="space-time")
    assert isinstance(st, STMOC)
    inside = st.contains(when, [CRAB[0], PKS2155[0]] * u.deg, [CRAB[1], PKS2155[1]] * u.deg)
    assert inside.tolist() == [True, False]  # that night H.E.S.S. looked at the Crab only
    sf = anonymous.coverage(collection="HESS-DL3-DR1", kind="space-energy")
    assert isinstance(sf, SFMOC)
    rows = _rows(archive_db, "obs_collection = 'HESS-DL3-DR1'")
    top = max(r["energy_max"] for r in rows)
    # E = h nu, computed by astropy: 1 TeV photons at the Crab are covered, 1 GeV and
    # 10x the highest event energy are not.
    nu = ([1.0, 1e-3, 10 * top] * u.TeV).to(u.Hz, equivalencies=u.spectral())
    got = sf.contains(nu, [CRAB[0]] * 3 * u.deg, [CRAB[1]] * 3 * u.deg)
    assert got.tolist() == [True, False, False]


TOKENS = {"vela-team": "demo-token-vela", "pks2155-team": "demo-token-pks2155",
          "mrk421-team": "demo-token-mrk421"}  # fmt: skip


def _proprietary_point(archive_db: Path) -> tuple[str, float, float]:
    """A group and a point of its footprints more than 0.5 deg (two MOC cells) from any
    other dataset's footprint, so that no other MOC cell can hold it."""
    ring = [
        (0.5 * np.cos(a), 0.5 * np.sin(a)) for a in np.linspace(0, 2 * np.pi, 16, endpoint=False)
    ]
    for group in TOKENS:
        mine = _rows(archive_db, '"_access_group" = ?', (group,))
        others = _rows(archive_db, '"_access_group" IS NULL OR "_access_group" != ?', (group,))
        for r in mine:
            for (ra, dec), f in itertools.product(_polygon(r), (0.5, 0.75, 0.9)):
                ra, dec = r["s_ra"] + f * (ra - r["s_ra"]), r["s_dec"] + f * (dec - r["s_dec"])
                near = [(ra + dx / np.cos(np.radians(dec)), dec + dy) for dx, dy in [(0, 0), *ring]]
                if not any(_covered_by_any(others, a, b) for a, b in near):
                    return group, ra, dec
    pytest.fail("every proprietary footprint is covered by other data too")


def test_proprietary_coverage_is_shown_to_its_group_only(archive_url, archive_db, anonymous):
    group, ra, dec = _proprietary_point(archive_db)
    point = ([ra] * u.deg, [dec] * u.deg)
    assert not anonymous.coverage(kind="space").contains_lonlat(*point)[0]
    assert not anonymous.coverage(collection="CTAO-SIM", kind="space").contains_lonlat(*point)[0]
    with ctanb.connect(archive_url, token=TOKENS[group], record_history=False) as team:
        assert team.coverage(collection="CTAO-SIM", kind="space").contains_lonlat(*point)[0]
        nu = (1.0 * u.TeV).to(u.Hz, equivalencies=u.spectral())
        assert team.coverage(kind="space-energy").contains([nu.value] * u.Hz, *point)[0]
    other_group = next(g for g in TOKENS if g != group)
    with ctanb.connect(archive_url, token=TOKENS[other_group], record_history=False) as other:
        assert not other.coverage(collection="CTAO-SIM", kind="space").contains_lonlat(*point)[0]
    # The consortium includes every team.
    with ctanb.connect(archive_url, token="demo-token-consortium", record_history=False) as cons:
        assert cons.coverage(kind="space").contains_lonlat(*point)[0]
    # Time coverage too: the proprietary runs' times are hidden from anonymous users.
    mine = _rows(archive_db, '"_access_group" = ?', (group,))
    others = _rows(archive_db, '"_access_group" IS NULL OR "_access_group" != ?', (group,))
    lonely = [r for r in mine
              if not any(o["t_min"] <= (r["t_min"] + r["t_max"]) / 2 <= o["t_max"] for o in others)]  # fmt: skip
    assert lonely
    t = Time([(lonely[0]["t_min"] + lonely[0]["t_max"]) / 2], format="mjd", scale="tt")
    assert not anonymous.coverage(kind="time").contains(t)[0]
    with ctanb.connect(archive_url, token=TOKENS[group], record_history=False) as team:
        assert team.coverage(kind="time").contains(t)[0]


def test_served_as_fits_and_ascii_and_linked_by_datalink(archive_url, anonymous, tmp_path):
    from astropy.io.votable import parse_single_table

    resp = httpx.get(f"{archive_url}/datalink", params={"ID": "ivo://ctanb.archive/hess-dl3-dr1"})
    assert resp.status_code == 200
    links = parse_single_table(__import__("io").BytesIO(resp.content)).to_table()
    cov = [r for r in links if r["semantics"] == "#coverage"]
    assert sorted(str(r["local_semantics"]) for r in cov) == sorted(
        ["space", "time", "space-time", "space-energy"]
    )
    space = next(r for r in cov if r["local_semantics"] == "space")
    fits = httpx.get(str(space["access_url"]))
    assert fits.status_code == 200 and fits.headers["content-type"] == "application/fits"
    assert fits.content.startswith(b"SIMPLE  =")
    path = tmp_path / "hess.fits"
    path.write_bytes(fits.content)
    assert MOC.from_fits(path) == anonymous.coverage(collection="HESS-DL3-DR1", kind="space")
    # Names in any case, and DALI's RUNID, are accepted (only unknown names are refused).
    text = httpx.get(f"{archive_url}/coverage", params={"KIND": "time", "Format": "ascii",
                                                         "collection": "hess-dl3-dr1",
                                                         "RUNID": "t1"})  # fmt: skip
    assert text.headers["content-type"].startswith("text/plain")
    assert TimeMOC.from_string(text.text, format="ascii") == anonymous.coverage(
        collection="HESS-DL3-DR1", kind="time"
    )
    # Per data level: the releases are DL3 event lists.
    assert anonymous.coverage(kind="space", level="dl3") == anonymous.coverage(kind="space")
    coarse = anonymous.coverage(collection="HESS-DL3-DR1", kind="space", order=4)
    assert coarse.max_order == 4 and coarse.contains_lonlat([CRAB[0]] * u.deg, [CRAB[1]] * u.deg)[0]


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
        # A misspelt or foreign parameter would otherwise answer the whole archive.
        (
            {"kind": "space", "rights": "x"},
            ["unknown parameter 'rights'", "kind, collection, level, order, format"],
        ),
        ({"colection": "HESS-DL3-DR1"}, ["unknown parameter 'colection'"]),
        # Which of two values would count is a guess: refused (it used to be the last).
        ({"kind": ["time", "space"]}, ["parameter kind is given 2 times", "give kind once"]),
        ({"KIND": "time", "kind": "space"}, ["give kind once"]),
    ],
)
def test_bad_coverage_requests_are_clear_400s(archive_url, params, words):
    resp = httpx.get(f"{archive_url}/coverage", params=params)
    assert resp.status_code == 400
    assert "Traceback" not in resp.text
    for word in words:
        assert word in resp.text.replace("&#x27;", "'").replace("&apos;", "'")


def test_a_huge_value_is_not_echoed_in_full(archive_url):
    """A 100,000-character collection (or parameter name) is named, cut, in a short answer."""
    huge = "X" * 100_000
    for params, words in [
        ({"kind": "time", "collection": huge}, "no collection 'XXXX"),
        ({"kind": huge}, "unknown coverage kind 'XXXX"),
        ({huge: "1"}, "unknown parameter 'xxxx"),
    ]:
        # POST: a 100,000-character URL is more than HTTP libraries send.
        resp = httpx.post(f"{archive_url}/coverage", data=params, timeout=60)
        assert resp.status_code == 400
        text = resp.text.replace("&#x27;", "'").replace("&apos;", "'")
        assert words in text and "...' (100000 characters)" in text
        assert len(resp.text) < 3000, len(resp.text)


def test_client_checks_bad_input_before_asking(anonymous):
    with pytest.raises(ctanb.CoverageError, match="unknown coverage kind 'spaec'"):
        anonymous.coverage(kind="spaec")
    with pytest.raises(ctanb.CoverageError, match="order 12 is out of range"):
        anonymous.coverage(kind="space", order=12)
    with pytest.raises(ctanb.CoverageError, match="no collection 'nope'"):
        anonymous.coverage(collection="nope")


def test_publication_adds_to_its_partition_and_reingestion_replaces(archive_db, tmp_path):
    """A published product (DL4) joins the coverage of its level and rights; a
    re-ingestion rebuilds, so a dataset whose rights changed leaves the old partition."""
    import shutil

    from ctanb.archive import coverage, coverage_read, db
    from ctanb.archive.policy import AccessPolicy

    path = tmp_path / "copy.db"
    shutil.copy(archive_db, path)
    conn = db.connect(path)
    policy = AccessPolicy.demo()
    square = "150 59 152 59 152 61 150 61"  # a field no dataset covers

    def product(did: str, group: str | None) -> None:
        db.upsert_dataset(conn, {"obs_publisher_did": did, "obs_id": did[-4:],
                                 "obs_collection": "CTANB-PRODUCTS", "calib_level": 3,
                                 "dataproduct_subtype": "DL4-map", "s_ra": 151.0, "s_dec": 60.0,
                                 "s_region": square, "t_min": 60000.0, "t_max": 60000.1,
                                 "energy_min": 0.5, "energy_max": 50.0,
                                 "obs_release_date": "2099-01-01" if group else None},
                          access_group=group)  # fmt: skip
        coverage.add_to_coverage(conn, did)
        conn.commit()

    def sees(token: str | None, **kw) -> bool:
        moc = coverage_read.visible_coverage(conn, policy, token, kind="space", **kw)
        return bool(moc.contains_lonlat([151.0] * u.deg, [60.0] * u.deg)[0])

    assert not sees(None)
    product("ivo://ctanb.archive/products?p001", "vela-team")
    assert not sees(None) and sees("demo-token-vela", level="DL4")
    product("ivo://ctanb.archive/products?p002", None)
    assert sees(None, level="DL4") and sees(None, collection="ctanb-products")
    assert not sees(None, level="DL3")
    # What publication added step by step is what a rebuild of the partitions gives.
    stored = dict(conn.execute('SELECT kind || access_group, moc FROM "ctanb.coverage" '
                               "WHERE collection = 'CTANB-PRODUCTS'").fetchall())  # fmt: skip
    coverage.refresh_coverage(conn, ["CTANB-PRODUCTS"])
    rebuilt = dict(conn.execute('SELECT kind || access_group, moc FROM "ctanb.coverage" '
                                "WHERE collection = 'CTANB-PRODUCTS'").fetchall())  # fmt: skip
    assert len(stored) == 8 and rebuilt == stored
    # Rebuilding the collection after the public product is gone: only the group sees it.
    db.delete_dataset(conn, "ivo://ctanb.archive/products?p002")
    coverage.refresh_coverage(conn, ["CTANB-PRODUCTS"])
    conn.commit()
    assert not sees(None) and sees("demo-token-vela")
    conn.close()


def test_stored_coverage_is_not_reachable_by_adql(archive_url):
    """The coverage table holds proprietary MOCs: only /coverage (with rights) serves it."""
    resp = httpx.post(f"{archive_url}/sync", data={"REQUEST": "doQuery", "LANG": "ADQL",
                                                    "QUERY": "SELECT moc FROM ctanb.coverage"})  # fmt: skip
    assert "unknown table 'ctanb.coverage'" in resp.text.replace("&#x27;", "'")
    st = ORDERS
    assert f"s{st.st_space}/" not in resp.text and f"t{st.st_time}/" not in resp.text


def test_an_unreadable_t_intervals_falls_back_to_the_run_bounds(archive_db, tmp_path):
    import shutil

    from ctanb.archive import coverage, coverage_read, db
    from ctanb.archive.policy import AccessPolicy

    path = tmp_path / "copy.db"
    shutil.copy(archive_db, path)
    conn = db.connect(path)
    did, t0, t1 = conn.execute(
        'SELECT obs_publisher_did, t_min, t_max FROM "ivoa.obscore" '
        "WHERE obs_collection = 'HESS-DL3-DR1' ORDER BY t_min LIMIT 1"
    ).fetchone()
    # Both forms of the GTIs unreadable (the TMOC text and the private MJD pairs).
    conn.execute('UPDATE "ivoa.obscore_hea" SET t_intervals = ?, "_t_mjd" = ? '
                 "WHERE obs_publisher_did = ?", ("t99/not-a-moc", "60000.1 x", did))  # fmt: skip
    coverage.refresh_coverage(conn, ["HESS-DL3-DR1"])
    conn.commit()
    moc = coverage_read.visible_coverage(conn, AccessPolicy.demo(), None, kind="time")
    assert moc.contains(Time([(t0 + t1) / 2], format="mjd", scale="tt"))[0]
    conn.close()


# --- a wrong token is refused, not read as anonymous (trial 7) -----------------------------------
def test_a_wrong_token_is_refused_once_checked_not_treated_as_anonymous(archive_url, monkeypatch):
    """The archive answers public data to a token it does not know (as to no token); the
    client asks /whoami before the first request with a token and says the token is wrong."""
    words = f"the archive at {archive_url} does not know this token (typo? expired?)"
    asked: list[str] = []
    with ctanb.connect(archive_url, token="demo-token-vla", record_history=False,
                       progress=False) as typo:  # fmt: skip
        typo.session.hooks["response"].append(lambda r, *a, **k: asked.append(r.url))
        with pytest.raises(ctanb.AuthError) as info:
            typo.coverage(kind="space")
        assert str(info.value) == words
        with pytest.raises(ctanb.AuthError, match=r"does not know this token \(typo"):
            typo.search(collection="CTAO-SIM")
        # One check for this archive and token, kept: no data request went out.
        assert [u.rsplit("/", 1)[-1] for u in asked] == ["whoami"]
        # The right token on the same archive works; back to the wrong one: refused again.
        typo.set_token("demo-token-vela")
        assert len(typo.search(collection="CTAO-SIM", proposal_id="CTAO-2026A-001")) > 0
        assert not typo.coverage(collection="CTAO-SIM", kind="time").empty()
        typo.set_token("demo-token-vla")
        with pytest.raises(ctanb.AuthError, match="does not know this token"):
            typo.coverage(kind="time")
    # group:token (HTTP Basic) and CTANB_TOKEN go through the same check.
    monkeypatch.setenv("CTANB_TOKEN", "vela-team:not-a-token")
    with ctanb.connect(archive_url, record_history=False, progress=False) as env:
        with pytest.raises(ctanb.AuthError, match="does not know this token"):
            env.search(collection="CTAO-SIM")
