"""What the panels say when something is wrong: in the form's words, with the place
in the query and a hint; never a parser's internals, Python keywords or HTTP headers
(issue 15, deliver item 6). Against the embedded archive over real HTTP."""

from __future__ import annotations

import re

import pytest

from ctanb.widgets import SearchPanel

#: Marks of what a person at the panel must never read.
JARGON = re.compile(r"<class|sqlglot|Required keyword|Traceback|tokeniz|\bra=|\bdec=|"
                    r"Authorization|Bearer|CTANB_TOKEN|ctanb\.connect")  # fmt: skip


@pytest.fixture(scope="module")
def archive(archive_url):
    import ctanb

    with ctanb.connect(archive_url, progress=False, offline=True) as archive:
        yield archive


@pytest.mark.parametrize(
    ("adql", "where", "near", "hint"),
    [
        ("SELECT * FROM ivoa.obscore WHERE s_ra *", "line 1, column 39", "*", "missing"),
        ("SELECT *\nFROM ivoa.obscore\nWHERE s_ra * > 3", "line 3, column 14", ">", "missing"),
        ("SELECT TOP x * FROM ivoa.obscore", "line 1, column 12", "x", "TOP needs a whole"),
        ("SELEC * FROM ivoa.obscore", "line 1", "", "starts with SELECT"),
        ("SELECT * FROM ivoa.obscore WHERE target_name = 'Crab", "", "", "quote"),
        ("SELECT * FROM ivoa.obscor", "line 1, column 15", "ivoa.obscor", "ivoa.obscore"),
        ("SELECT nocol FROM ivoa.obscore", "line 1, column 8", "nocol", "Columns"),
    ],
)
def test_adql_errors_give_line_column_text_and_a_hint(archive, adql, where, near, hint):
    panel = SearchPanel(archive)
    panel.adql_text.value = adql
    panel.search_button.click()
    message = panel.error
    assert message.startswith("The ADQL cannot be run"), message
    assert where in message and f'near "{near}"' in message if near else where in message
    assert "Hint:" in message and hint in message.split("Hint:")[1]
    assert not JARGON.search(message), message
    assert not JARGON.search(panel.error_display.value), panel.error_display.value
    if where.startswith("line 3"):  # the line itself, with a caret under the column
        assert "\n    WHERE s_ra * > 3\n" + " " * 17 + "^" in message


def test_resolve_and_form_errors_speak_of_the_form_not_of_python(archive):
    panel = SearchPanel(archive)
    panel.target_text.value = "Crabb Nebulla"
    assert "Did you mean" in panel.error and "type RA and Dec" in panel.error
    assert not JARGON.search(panel.error_display.value), panel.error
    panel.target_text.value = ""
    panel.numbers["radius"].value = "2"
    panel.search_button.click()
    assert panel.error == "Radius: needs a position: a Target or RA and Dec"
    panel.numbers["ra"].value = "83.6"
    panel.search_button.click()
    assert panel.error == "Dec: type both RA and Dec"
    panel.numbers["dec"].value = "95"
    assert panel.error.startswith("Dec: must be in [-90, 90] degrees")


def test_a_samp_send_nobody_received_is_not_green():
    from ctanb.samp._messages import Delivery, SampResponse
    from ctanb.widgets.samp import SampControls

    class Hub:  # only the two calls the controls make on building, and the send
        def on_clients(self, callback):
            pass

        def client_names(self):
            return []

        def send_table(self, table, to=None, wait=False):
            return self.delivery

    hub = Hub()
    controls = SampControls(hub, table=lambda: [1])
    hub.delivery = Delivery("table.load.votable", {})  # no application connected
    controls.send_table_button.click()
    assert "no application received it" in controls.status.value
    assert "#2e7d32" not in controls.status.value and "#c62828" in controls.status.value
    hub.delivery = Delivery("table.load.votable", {"c1": "topcat"})
    controls.send_table_button.click()
    assert "waiting" in controls.status.value and "#2e7d32" not in controls.status.value
    hub.delivery.add_response(SampResponse("c1", "topcat", "samp.error", error="cannot read"))
    assert "cannot read" in controls.status.value and "#c62828" in controls.status.value


def test_old_samp_names_still_work_with_a_deprecation_warning(tmp_path):
    import ctanb.samp.widgets as old_place
    from ctanb import CtanbError
    from ctanb.samp import SampLink
    from ctanb.samp.bridge import SampBridge
    from ctanb.widgets import samp

    with pytest.warns(DeprecationWarning, match=r"ctanb\.widgets\.samp\.SampControls"):
        assert old_place.SampControls is samp.SampControls
    with pytest.warns(DeprecationWarning, match="use start_samp_hub"):  # and it is honoured:
        with pytest.raises(CtanbError, match="no SAMP hub is running"):
            SampLink.connect(tmp_path / "none", start_hub=False, timeout=5)
    link = SampLink.connect(tmp_path / "lockfile", timeout=5)
    try:
        assert link.samp_hub is not None
        with pytest.warns(DeprecationWarning, match=r"use SampLink\.samp_hub"):
            assert link.hub is link.samp_hub
    finally:
        link.close()
    with pytest.warns(DeprecationWarning, match="use samp_hub_url"):
        bridge = SampBridge(hub_url="http://127.0.0.1:1/")
    assert bridge.hub_url == "http://127.0.0.1:1/"
