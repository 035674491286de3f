"""One formatter of pydantic errors (ctanb._validation): messages in the user's words,
used alike by job parameters, analysis configurations, access policies, the archive
service's settings and search criteria."""

from __future__ import annotations

from pathlib import Path

import pytest

from ctanb import ConfigError, CriteriaError, JobError
from ctanb.analysis import MapConfig
from ctanb.archive.policy import AccessPolicy
from ctanb.archive.service.state import ArchiveState
from ctanb.client import Criteria
from ctanb.jobs.kinds import get_kind

#: Words of pydantic's internals that a user must never read.
INTERNALS = ("dict[str,any]", "function-after", "Value error", "errors.pydantic.dev",
             "input_value", "type=", "Extra inputs", "Input should")  # fmt: skip


def _plain(message: str) -> str:
    found = [word for word in INTERNALS if word in message]
    assert not found, f"pydantic internals {found} in: {message}"
    return message


def test_job_parameters_name_the_key_without_union_branches() -> None:
    with pytest.raises(JobError) as info:
        get_kind("workflow").validate({"config": 5, "colour": "red"})
    message = _plain(info.value.message)
    assert message.startswith("invalid parameters for a 'workflow' job: ")
    assert "config: should be a valid string" in message
    assert "config: should be a valid dictionary" in message
    assert "colour: unknown parameter" in message


def test_analysis_configuration_errors_are_plain(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        MapConfig.from_dict({"geom": {"wcs": {"binsz": 0.1}}, "colour": "red"})
    message = _plain(info.value.message)
    assert "geom.wcs.binsz: unknown setting" in message and "colour: unknown setting" in message


def test_access_policy_and_service_settings_errors_are_plain(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("groups: {a: {tokens: [t], extra: 1}}\n")
    with pytest.raises(ConfigError) as info:
        AccessPolicy.load(path)
    assert "groups.a.extra: unknown setting" in _plain(info.value.message)
    db = tmp_path / "archive.db"
    db.write_bytes(b"")
    with pytest.raises(ConfigError) as info:
        ArchiveState(db, async_workers=0, maxrec_hard="lots")
    message = _plain(info.value.message)
    assert "async_workers: should be greater than or equal to 1" in message
    assert "maxrec_hard: should be a valid integer" in message


def test_search_criteria_keep_their_own_words() -> None:
    with pytest.raises(CriteriaError) as info:
        Criteria(dataproduct_type=5)
    assert _plain(info.value.message) == "dataproduct_type: should be a valid string (got 5)"
    assert info.value.field == "dataproduct_type"
    with pytest.raises(CriteriaError) as info:
        Criteria(obs_id=[{"a": 1}])
    assert _plain(info.value.message).startswith("obs_id: should be a valid string")
