"""Simultaneity search stays exact when the user's time MOC is too long to send as it is
(the client then sends a coarser one and refines). Expected runs and overlaps come
from the GTI tables read with astropy.io.fits and numpy, not with ctanb.archive.gti."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from astropy.time import Time, TimeDelta
from test_simultaneity import _offline  # noqa: F401  (autouse fixture)

import ctanb
from ctanb.client import during as during_module
from ctanb.widgets.search import SearchPanel


@pytest.fixture(scope="module")
def archive(archive_url):
    return ctanb.connect(archive_url, progress=False)


@pytest.fixture(scope="module")
def pks_gtis(data_dir) -> dict[int, np.ndarray]:
    """GTIs (MJD TT, (n, 2)) of each PKS 2155-304 run."""
    store = data_dir / "hess-dl3-dr1"
    obs = Table.read(store / "obs-index.fits.gz")
    hdus = Table.read(store / "hdu-index.fits.gz")
    runs = {int(r["OBS_ID"]) for r in obs if "PKS 2155" in str(r["TARGET_NAME"])}
    out = {}
    for row in hdus:
        if int(row["OBS_ID"]) not in runs or str(row["HDU_TYPE"]).strip() != "events":
            continue
        path = store / str(row["FILE_DIR"]).strip() / str(row["FILE_NAME"]).strip()
        with fits.open(path) as hdul:
            g = hdul["GTI"]
            ref = Time(g.header["MJDREFI"] + g.header["MJDREFF"], format="mjd",
                       scale=g.header["TIMESYS"].strip().lower())  # fmt: skip
            a = (ref + TimeDelta(g.data["START"], format="sec")).tt.mjd
            b = (ref + TimeDelta(g.data["STOP"], format="sec")).tt.mjd
        out[int(row["OBS_ID"])] = np.column_stack([a, b])
    return out


def _expected(gtis: dict[int, np.ndarray], x: np.ndarray) -> dict[int, float]:
    out = {}
    for run, g in gtis.items():
        lo = np.maximum(g[:, None, 0], x[None, :, 0])
        hi = np.minimum(g[:, None, 1], x[None, :, 1])
        total = float(np.clip(hi - lo, 0, None).sum()) * 86400.0
        if total > 0:
            out[run] = total
    return out


def _found(results) -> dict[int, float]:
    return {int(r["obs_id"]): float(r["overlap_s"]) for r in results}


def _gap_and_2010(gtis) -> np.ndarray:
    """An interval in the gap between runs 33787 and 33788, and 3000 short ones in 2010."""
    gap = np.array([[gtis[33787][:, 1].max() + 10 / 86400, gtis[33788][:, 0].min() - 10 / 86400]])
    rng = np.random.default_rng(18)
    t0 = rng.uniform(Time("2010-01-01").tt.mjd, Time("2010-12-31").tt.mjd, 3000)
    return np.vstack([gap, np.column_stack([t0, t0 + 1.3 / 86400])])


def _ticks(gtis, n: int) -> np.ndarray:
    """1 s every 10 s from the start of run 33787."""
    t0 = gtis[33787][:, 0].min() + np.arange(n) * 10 / 86400
    return np.column_stack([t0, t0 + 1 / 86400])


def test_long_time_mocs_give_exact_runs_and_overlaps(archive, pks_gtis):
    gap = _gap_and_2010(pks_gtis)
    assert gap[0, 1] > gap[0, 0]
    # long enough that the query's MOC is coarser than the user's intervals
    assert len(during_module.during_tmoc(gap)[0]) <= during_module.MAX_TMOC_CHARS
    assert during_module.during_tmoc(gap)[1] < 61
    assert _found(archive.search(target_name="PKS 2155-304", during=gap)) == {}
    for n in (1000, 5000):
        ticks = _ticks(pks_gtis, n)
        expected = _expected(pks_gtis, ticks)
        assert 33787 in expected
        found = _found(archive.search(target_name="PKS 2155-304", during=ticks))
        assert set(found) == set(expected), n
        for run, seconds in expected.items():
            assert found[run] == pytest.approx(seconds, abs=2e-3), (n, run)


def test_panel_is_exact_for_long_interval_lists(archive, pks_gtis):
    ticks = _ticks(pks_gtis, 1000)
    expected = _expected(pks_gtis, ticks)
    panel = SearchPanel(archive)
    panel.during_input.set_text("; ".join(f"{float(a)!r} {float(b)!r}" for a, b in ticks))
    found = {k: v for k, v in _found(panel.search()).items() if k in pks_gtis}
    assert set(found) == set(expected)
    for run, seconds in expected.items():
        assert found[run] == pytest.approx(seconds, abs=2e-3)
    assert f"{len(panel.results)} row(s)" in panel.status.value


def test_absurd_interval_lists_are_refused_with_a_message(archive):
    t0 = 55000.0 + np.arange(during_module.MAX_INTERVALS + 1) * 2 / 86400
    with pytest.raises(ctanb.TimeCoverageError, match="more than the"):
        archive.search(during=np.column_stack([t0, t0 + 1 / 86400]))
