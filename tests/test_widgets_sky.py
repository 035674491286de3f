"""The sky's survey (issue 15, item 5): offline there is no survey to fetch, so Aladin
draws on a plain sky (the front end's part is checked in tests/test_browser_story.py)."""

from __future__ import annotations

import pytest

from ctanb.widgets import SkyView


@pytest.mark.parametrize(
    ("offline", "survey", "expected"),
    [("1", None, ""), ("", None, "P/DSS2/color"), ("1", "file-hips", "file-hips"),
     ("", "P/2MASS/color", "P/2MASS/color")],
)  # fmt: skip
def test_offline_sky_fetches_no_survey_unless_one_is_named(monkeypatch, offline, survey, expected):
    monkeypatch.setenv("CTANB_OFFLINE", offline)
    if survey is None:
        monkeypatch.delenv("CTANB_SKY_SURVEY", raising=False)
    else:
        monkeypatch.setenv("CTANB_SKY_SURVEY", survey)
    assert SkyView().survey == expected
    assert SkyView(survey="").survey == ""  # asked for a plain sky: always
