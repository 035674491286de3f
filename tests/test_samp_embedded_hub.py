"""The hub SampLink starts when none runs: synchronous calls (``callAndWait``) are answered
however quickly the recipient replies.

pyvo's hub registers the id a ``callAndWait`` waits on only after it has started delivering
the call, and drops a reply that comes back before that. On a loaded machine this made a
TOPCAT-style row selection time out in ``notebooks/02_sky_and_samp.ipynb`` (CI, session 2).
"""

from __future__ import annotations

import time

import pytest
from conftest import wait_for

from ctanb.samp import SampLink
from ctanb.samp._samp_hub import EmbeddedSampHub

pyvo_samp = pytest.importorskip("pyvo.samp")


class DeliverAtOnceHub(EmbeddedSampHub):
    """Runs each hub task on the calling thread: the call is delivered and answered before
    the hub returns from sending it, the window in which pyvo's hub lost the reply."""

    def _launch_thread(self, group=None, target=None, name=None, args=None):
        target(*(args or ()))


def _viewer(params):
    viewer = pyvo_samp.SAMPIntegratedClient(metadata={"samp.name": "viewer"}, addr="127.0.0.1")
    viewer.connect(hub_params=params)
    return viewer


@pytest.fixture
def fast_hub(tmp_path):
    hub = DeliverAtOnceHub(
        lockfile=str(tmp_path / "samp"), web_profile=False, addr="127.0.0.1", label="test"
    )
    hub.start(wait=False)
    yield hub
    hub.stop()


def test_selection_answered_at_once_reaches_the_caller(fast_hub, tmp_path):
    link = SampLink.connect(tmp_path / "samp", start_samp_hub=False, name="ctanb", timeout=5)
    viewer = _viewer(fast_hub.params)
    try:
        wait_for(
            lambda: viewer.get_subscribed_clients("table.select.rowList"), 5, "the subscription"
        )
        ctanb_id = next(iter(viewer.get_subscribed_clients("table.select.rowList")))
        started = time.monotonic()
        answer = viewer.ecall_and_wait(
            ctanb_id,
            "table.select.rowList",
            "60",
            **{"table-id": "runs", "url": "file:///runs.vot", "row-list": ["2", "5"]},
        )
        assert answer["samp.status"] == "samp.ok"
        assert time.monotonic() - started < 30, "the answer came only when the wait timed out"
        assert link.selection["runs"] == (2, 5)
        assert fast_hub._waiting == {}, "finished waits leave nothing behind"
    finally:
        viewer.disconnect()
        link.close()


def test_a_recipient_that_never_answers_times_out_by_name(tmp_path):
    link = SampLink.connect(tmp_path / "samp", start_samp_hub=True, name="ctanb", timeout=5)
    viewer = _viewer(link.samp_hub.params)
    silent = _viewer(link.samp_hub.params)
    silent.bind_receive_call("test.silent", lambda *args: None)
    try:
        started = time.monotonic()
        with pytest.raises(pyvo_samp.SAMPProxyError, match="Timeout expired"):
            viewer.ecall_and_wait(silent.get_public_id(), "test.silent", "1")
        assert 0.9 < time.monotonic() - started < 15
        assert link.samp_hub._waiting == {}
    finally:
        silent.disconnect()
        viewer.disconnect()
        link.close()
