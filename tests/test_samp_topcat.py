"""ctanb.samp against a real TOPCAT (headless under Xvfb) on ctanb's embedded pyvo hub.

One TOPCAT per module (JVM start-up is slow). Proof of load is TOPCAT's own
``table.get.stil`` answer: the URL of the table as TOPCAT holds it, which we read
back and compare with what was sent.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from astropy.coordinates import SkyCoord
from astropy.io.votable import parse_single_table
from samp_apps import (
    crab_runs_table,
    require_program,
    running,
    samp_env,
    topcat_argv,
    wait_for,
)

from ctanb import CtanbError
from ctanb.samp import SampLink

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def hub_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("samp-pyvo-hub")


@pytest.fixture(scope="module")
def link(hub_dir):
    """ctanb registered on the embedded hub it started itself (no hub was running)."""
    with SampLink.connect(hub_dir / "lockfile", serve="http", timeout=20) as link:
        assert link.samp_hub is not None, "ctanb should have started an embedded hub"
        yield link


@pytest.fixture(scope="module")
def topcat(link, hub_dir):
    with running(topcat_argv(), hub_dir / "topcat.log", samp_env(hub_dir / "lockfile")) as app:
        wait_for(lambda: "topcat" in link.client_names(), 60, "TOPCAT to join the hub")
        # TOPCAT declares its subscriptions after it registers: a table sent in between
        # would find no taker.
        wait_for(lambda: any(link.transport.client_name(c) == "topcat"
                             for c in link.transport.subscribed("table.load.votable")),
                 60, "TOPCAT to subscribe to tables")  # fmt: skip
        yield app


@pytest.fixture(scope="module")
def crab(data_dir):
    return crab_runs_table(data_dir)


def loaded_in_topcat(link: SampLink, table_id: str, timeout: float = 30) -> str:
    """The URL TOPCAT gives for the table it loaded (it answers samp.ok before loading)."""

    def ask():
        answer = link.send("table.get.stil", {"table-id": table_id, "format": "votable"}, "topcat")
        return answer.ok and answer.responses[0].result.get("url")

    return wait_for(ask, timeout, f"TOPCAT to hold table {table_id}", every=0.5)


def test_table_is_loaded_with_its_metadata(link, topcat, crab):
    delivery = link.send_table(crab, to="topcat", name="crab_runs")

    assert delivery.ok, delivery.summary()
    [response] = delivery.responses
    assert (response.client_name, response.status) == ("topcat", "samp.ok")
    held = parse_single_table(loaded_in_topcat(link, delivery.table_id)).to_table()
    assert list(held["obs_id"]) == list(crab["obs_id"])
    assert str(held["s_ra"].unit) == "deg"
    fields = {f.name: f for f in parse_single_table(delivery.url).fields}
    assert fields["s_ra"].ucd == "pos.eq.ra"
    assert fields["t_min"].description == "Run start (MJD, UTC)"


def test_broadcast_reaches_topcat_and_a_new_table_id_each_time(link, topcat, crab):
    first = link.send_table(crab)
    second = link.send_table(crab)
    assert "topcat" in [r.client_name for r in first.responses]
    assert first.ok and second.ok, (first.summary(), second.summary())
    assert first.table_id != second.table_id
    loaded_in_topcat(link, second.table_id)


def test_unreachable_table_url_comes_back_as_samp_error(link, topcat):
    gone = link.publisher.publish(b"<VOTABLE/>", "gone.vot", "application/x-votable+xml")
    link.publisher.withdraw(gone)
    delivery = link.send("table.load.votable", {"url": gone, "table-id": "ctanb-gone"}, to="topcat")
    [response] = delivery.responses
    assert response.status == "samp.error"
    assert response.error, "TOPCAT's error text should reach the user"
    with pytest.raises(CtanbError, match=r"topcat: samp\.error"):
        delivery.raise_for_errors()


def test_selection_and_highlight_go_to_topcat(link, topcat, crab):
    sent = link.send_table(crab, to="topcat")
    loaded_in_topcat(link, sent.table_id)
    selected = link.send_selection(crab, [0, 2], to="topcat")
    highlighted = link.send_highlight(crab, 3, to="topcat")
    assert selected.ok and highlighted.ok, (selected.summary(), highlighted.summary())
    assert link.selection[sent.table_id] == (0, 2)


def test_clear_errors_for_unknown_or_unwilling_recipients(link, topcat, tmp_path):
    with pytest.raises(CtanbError, match=r"no application named 'ds9'.*topcat"):
        link.send_table(crab_like(), to="ds9")
    with pytest.raises(CtanbError, match=r"topcat does not accept image\.load\.fits"):
        link.send_image(b"SIMPLE", to="topcat")
    with pytest.raises(CtanbError, match="not sent over SAMP yet"):
        link.send_selection(crab_like(), [1])


def crab_like():
    from astropy.table import Table

    return Table({"a": [1, 2]})


def messagesender(hub_dir: Path, mtype: str, **params: str) -> str:
    """TOPCAT's JSAMP message sender, as another application on the hub, to ctanb."""
    argv = [require_program("topcat"), "-jsamp", "messagesender", "-mtype", mtype]
    argv += ["-targetname", "ctanb", "-sendername", "topcat-sender", "-mode", "sync"]
    for name, value in params.items():
        argv += ["-param", name.replace("_", "-"), value]
    done = subprocess.run(
        argv, env=samp_env(hub_dir / "lockfile"), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_selection_from_topcat_updates_the_model(link, topcat, hub_dir, crab):
    sent = link.send_table(crab, to="topcat")
    seen = []
    unsubscribe = link.on_selection(seen.append)
    try:
        answer = messagesender(
            hub_dir,
            "table.select.rowList",
            table_id=sent.table_id,
            url=sent.url,
            row_list='["1", "3"]',
        )
        assert "samp.ok" in answer
        assert link.selection[sent.table_id] == (1, 3)
        assert seen[-1].rows == (1, 3) and seen[-1].source == "topcat-sender"
        # Some applications name the table by URL only: it lands on the same key.
        messagesender(hub_dir, "table.highlight.row", url=sent.url, row="2")
        assert seen[-1].table_id == sent.table_id and seen[-1].highlighted == 2
    finally:
        unsubscribe()


def test_point_at_sky_from_another_application_recentres(link, topcat, hub_dir):
    positions = []
    unsubscribe = link.on_point(positions.append)
    try:
        messagesender(hub_dir, "coord.pointAt.sky", ra="83.633", dec="22.0145")
    finally:
        unsubscribe()
    [position] = positions
    assert isinstance(position, SkyCoord)
    assert position.separation(SkyCoord(83.633, 22.0145, unit="deg")).arcsec < 0.01


def test_no_hub_and_not_allowed_to_start_one(tmp_path):
    with pytest.raises(CtanbError, match="no SAMP hub is running"):
        SampLink.connect(tmp_path / "no-such-lockfile", start_samp_hub=False)


# --- data served by the Jupyter server extension (hosted kernels) --------------------------------
def test_jupyter_server_serves_spool_items_to_topcat_without_login(link, topcat, crab, tmp_path):
    import httpx
    from samp_apps import jupyter_server

    from ctanb.samp import SpoolPublisher, table_to_votable_bytes

    home = tmp_path / "home"
    with jupyter_server(tmp_path, home) as (url, _token):
        spool = SpoolPublisher(home / "samp-spool", base_url=url)
        votable = table_to_votable_bytes(crab, name="crab_runs")
        item_url = spool.publish(votable, "crab_runs.vot", "application/x-votable+xml")
        assert item_url.startswith(url + "ctanb/samp/")

        # No cookie, no token: like TOPCAT. The rest of the server still wants a login.
        assert httpx.get(item_url).content == votable
        assert httpx.get(url + "api/contents").status_code == 403
        assert httpx.get(item_url.replace("/ctanb/samp/", "/ctanb/samp/x")).status_code == 404
        expired = SpoolPublisher(home / "samp-spool", ttl=-1, base_url=url)
        assert httpx.get(expired.publish(b"old", "old.vot", "text/xml")).status_code == 404

        table_id = "ctanb-jupyter-1"
        delivery = link.send(
            "table.load.votable", {"url": item_url, "table-id": table_id}, "topcat"
        )
        assert delivery.ok, delivery.summary()
        held = parse_single_table(loaded_in_topcat(link, table_id)).to_table()
        assert list(held["obs_id"]) == list(crab["obs_id"])


# --- the buttons the panels embed -------------------------------------------------------------------
def test_buttons_send_to_the_chosen_application(link, topcat, crab):
    from ctanb.widgets.samp import ALL_CLIENTS, SampControls

    controls = SampControls(link, table=lambda: crab, rows=lambda: [1, 3])
    assert controls.chooser.options[0] == ALL_CLIENTS and "topcat" in controls.chooser.options
    controls.chooser.value = "topcat"

    controls.send_table_button.click()
    wait_for(lambda: "topcat: samp.ok" in controls.status.value, 20, "the table answer")
    controls.send_selected_button.click()
    wait_for(lambda: "topcat: samp.ok" in controls.status.value, 20, "the selection answer")
    assert link.selection[link.table_id(crab)] == (1, 3)

    controls.send_image_button.click()  # no image given
    assert "no image to send" in controls.status.value
    controls.image = b"SIMPLE"
    controls.send_image_button.click()  # TOPCAT takes no images: said in the widget
    assert "topcat does not accept image.load.fits" in controls.status.value
    assert "#c62828" in controls.status.value
