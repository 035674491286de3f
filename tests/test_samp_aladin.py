"""ctanb.samp against a real Aladin Desktop (under Xvfb) on ctanb's embedded pyvo hub.

Aladin ignores SAMP_HUB and reads ``~/.samp``: it runs with ``-Duser.home`` set to
a folder whose ``.samp`` links to the test hub's lockfile. Its ``status`` script
command lists the loaded planes, which proves the loads.

Aladin runs without ``-local`` (``aladin_argv(home, http=True)``), with an offline GLU
dictionary and no route to the internet: with ``-local`` it cannot load ``http:``
URLs at all, which is how a hosted kernel's data reaches it.
"""

from __future__ import annotations

import pytest
from samp_apps import (
    aladin_argv,
    aladin_home,
    crab_count_map,
    crab_runs_table,
    jupyter_server,
    running,
    wait_for,
)

from ctanb import CtanbError
from ctanb.samp import SampLink

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def hub_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("samp-aladin")


@pytest.fixture(scope="module")
def link(hub_dir):
    with SampLink.connect(hub_dir / "lockfile", timeout=60) as link:
        yield link


def aladin_script(link: SampLink, script: str, timeout: float = 60) -> str:
    delivery = link.send("script.aladin.send", {"script": script}, "Aladin", timeout=timeout)
    delivery.raise_for_errors()
    return delivery.responses[0].result.get("script.result", "")


@pytest.fixture(scope="module")
def aladin(link, hub_dir):
    home = aladin_home(hub_dir / "home", hub_dir / "lockfile")
    with running(aladin_argv(home, http=True), hub_dir / "aladin.log") as app:
        wait_for(lambda: "Aladin" in link.client_names(), 90, "Aladin to join the hub")

        def ready():  # Aladin registers before its windows (and subscriptions) exist
            try:
                return aladin_script(link, "status", timeout=5) is not None
            except CtanbError:
                return False

        wait_for(ready, 60, "Aladin to answer scripts", every=1)
        yield app


def test_aladin_loads_a_count_map_and_a_table(link, aladin, data_dir, tmp_path):
    count_map = crab_count_map(data_dir, tmp_path / "crab_counts.fits")

    image = link.send_image(count_map, to="Aladin", name="crab_counts")
    table = link.send_table(crab_runs_table(data_dir), to="Aladin", name="crab_runs")

    assert image.ok, image.summary()
    assert table.ok, table.summary()

    def status_with_both_planes():
        status = aladin_script(link, "status")
        return status if "crab_runs" in status and "crab_counts" in status else None

    status = wait_for(status_with_both_planes, 30, "Aladin to list both planes")
    assert "PlaneID crab_counts" in status and "Type    Image" in status
    assert "Width   100" in status
    assert "PlaneID crab_runs" in status and "NbObj   4" in status


def aladin_plane(link: SampLink, name: str) -> str:
    """Aladin's ``status`` text of plane *name*, once it is listed."""

    def listed():
        status = aladin_script(link, "status")
        return status if f"PlaneID {name}" in status else None

    status = wait_for(listed, 30, f"Aladin to list the plane {name!r}")
    return status[status.index(f"PlaneID {name}") :]


def test_aladin_loads_a_count_map_served_over_http(link, aladin, hub_dir, data_dir, tmp_path):
    count_map = crab_count_map(data_dir, tmp_path / "crab_counts.fits")

    with SampLink.connect(hub_dir / "lockfile", start_samp_hub=False, serve="http") as http_link:
        image = http_link.send_image(count_map, to="Aladin", name="crab_counts_http")
        assert image.url.startswith("http://127.0.0.1:"), image.url
        assert image.ok, image.summary()

        plane = aladin_plane(link, "crab_counts_http")
    assert "Type    Image" in plane and "Width   100" in plane
    assert f"Url     {image.url}" in plane


def test_aladin_loads_a_count_map_from_the_jupyter_spool_without_login(
    link, aladin, data_dir, tmp_path
):
    """The hosted-kernel path: the Jupyter server extension serves the spool item."""
    import httpx

    from ctanb.samp import SpoolPublisher

    count_map = crab_count_map(data_dir, tmp_path / "crab_counts.fits")
    home = tmp_path / "ctanb-home"
    with jupyter_server(tmp_path, home) as (url, _token):
        spool = SpoolPublisher(home / "samp-spool", base_url=url)
        item_url = spool.publish(count_map.read_bytes(), "crab_counts.fits", "application/fits")
        assert item_url.startswith(url + "ctanb/samp/")
        # Aladin first asks whether the URL is a HiPS: a plain "no", not a login page.
        probe = httpx.get(item_url + "/properties")
        assert (probe.status_code, probe.headers["content-type"]) == (404, "text/plain")

        params = {"url": item_url, "name": "crab_counts_spool", "image-id": "ctanb-spool-1"}
        delivery = link.send("image.load.fits", params, "Aladin", timeout=60)
        assert delivery.ok, delivery.summary()
        plane = aladin_plane(link, "crab_counts_spool")
    assert "Type    Image" in plane and "Width   100" in plane
    assert "Target  05:34:3" in plane  # the Crab: the WCS came through


def test_point_at_and_bad_image_are_reported_per_recipient(link, aladin, tmp_path):
    pointed = link.point_at((83.633, 22.0145), to="Aladin")
    assert pointed.ok, pointed.summary()

    not_fits = tmp_path / "not_fits.fits"
    not_fits.write_text("this is not FITS")
    # Aladin shows an error dialog and never answers: the user is told so, per recipient.
    refused = link.send_image(not_fits, to="Aladin", name="broken", timeout=5)
    [answer] = refused.responses
    assert not refused.ok
    assert (answer.client_name, answer.status) == ("Aladin", "timeout")
    assert "Aladin: timeout (no answer within 5 s)" in refused.summary()
    with pytest.raises(CtanbError, match="image file not found"):
        link.send_image(tmp_path / "missing.fits", to="Aladin")
