"""Target names offline: bundled TeV sources, gamma-cat, the persistent cache, suggestions."""

from __future__ import annotations

import json
import time

import pytest

from ctanb import ResolveError
from ctanb.client.resolve import NameResolver, mean_positions, normalize_name


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("CTANB_OFFLINE", "1")


def test_crab_resolves_offline_in_every_spelling(tmp_path):
    resolver = NameResolver(tmp_path / "names.json")
    for name in ("Crab", "crab nebula", "M 1", "CRAB_NEBULA"):
        found = resolver.resolve(name)
        assert (found.ra, found.dec) == pytest.approx((83.633, 22.0145), abs=1e-3)
        assert found.source == "bundled"


def test_gammacat_names_resolve_offline(tmp_path, data_dir):
    found = NameResolver(tmp_path / "names.json").resolve("RGB J0152+017")
    assert found.source == "gammacat"
    assert found.dec == pytest.approx(1.788, abs=0.01)


def test_archive_target_names_are_the_last_fallback(tmp_path):
    calls = []

    def names():
        calls.append(1)
        return {"My Private Field": (10.0, -5.0)}

    resolver = NameResolver(tmp_path / "names.json", archive_names=names)
    found = resolver.resolve("my private field")
    assert (found.ra, found.dec, found.source) == (10.0, -5.0, "archive")
    resolver.resolve("My Private Field")
    assert calls == [1]  # asked once


def test_unknown_name_lists_close_matches(tmp_path):
    with pytest.raises(ResolveError) as info:
        NameResolver(tmp_path / "names.json").resolve("Crabb Nebulla")
    assert "Crab Nebula" in info.value.suggestions
    assert "Crab Nebula" in str(info.value) and "offline" in str(info.value)


def test_cache_answers_first_and_survives_a_new_resolver(tmp_path):
    cache = tmp_path / "names.json"
    cache.write_text(json.dumps({normalize_name("Sesame Only Source"): {
        "name": "Sesame Only Source", "ra": 1.5, "dec": 2.5, "source": "sesame"}}))  # fmt: skip
    found = NameResolver(cache).resolve("sesame only source")
    assert (found.ra, found.dec, found.source) == (1.5, 2.5, "cache")


def test_unreachable_sesame_fails_fast_and_falls_back(tmp_path):
    # A closed loopback port stands for Sesame: the network test must not need the internet.
    import socket

    from astropy.coordinates import name_resolve

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    resolver = NameResolver(tmp_path / "names.json", offline=False, timeout=3)
    start = time.monotonic()
    with (
        name_resolve.sesame_url.set([f"http://127.0.0.1:{port}/"]),
        pytest.raises(ResolveError, match="Sesame unreachable") as info,
    ):
        resolver.resolve("Kepler SNRR")
    assert time.monotonic() - start < 10
    assert "Kepler SNR" in info.value.suggestions


def test_mean_positions_average_across_ra_zero():
    pos = mean_positions([("A", 359.5, 0.0), ("A", 0.5, 0.0)])
    ra, dec = pos["A"]
    assert min(ra, 360.0 - ra) < 1e-9 and dec == pytest.approx(0.0)
