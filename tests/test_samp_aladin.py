"""ctanb.samp against a real Aladin Desktop (under Xvfb) on ctanb's embedded pyvo hub.

Aladin ignores SAMP_HUB and reads ``~/.samp``: it runs with ``-Duser.home`` set to
a folder whose ``.samp`` links to the test hub's lockfile. Its ``status`` script
command lists the loaded planes, which proves the loads.
"""

from __future__ import annotations

import pytest
from samp_apps import aladin_argv, aladin_home, crab_count_map, crab_runs_table, running, wait_for

from ctanb import CtanbError
from ctanb.samp import SampLink

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def hub_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("samp-aladin")


@pytest.fixture(scope="module")
def link(hub_dir):
    with SampLink.connect(hub_dir / "lockfile", timeout=20) as link:
        yield link


def aladin_script(link: SampLink, script: str, timeout: float = 10) -> str:
    delivery = link.send("script.aladin.send", {"script": script}, "Aladin", timeout=timeout)
    delivery.raise_for_errors()
    return delivery.responses[0].result.get("script.result", "")


@pytest.fixture(scope="module")
def aladin(link, hub_dir):
    home = aladin_home(hub_dir / "home", hub_dir / "lockfile")
    with running(aladin_argv(home), hub_dir / "aladin.log") as app:
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
