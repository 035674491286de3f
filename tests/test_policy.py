"""The access policy: YAML groups/tokens/rules and release dates."""

from __future__ import annotations

import datetime as dt

import pytest

from ctanb import ConfigError
from ctanb.archive.policy import AccessPolicy

NOW = dt.datetime(2026, 11, 21, tzinfo=dt.UTC)


def test_demo_policy_marks_proposals_proprietary_until_their_release_date():
    policy = AccessPolicy.demo()
    row = {"obs_collection": "CTAO-SIM", "proposal_id": "CTAO-2026A-001", "obs_id": "100019"}
    assert policy.apply(row, now=NOW) == {
        "data_rights": "proprietary",
        "obs_release_date": "2028-03-31T00:00:00",
        "_access_group": "vela-team",
    }
    # After the release date the same row is ingested as public (date kept).
    later = policy.apply(row, now=dt.datetime(2028, 4, 1, tzinfo=dt.UTC))
    assert later == {"data_rights": "public", "obs_release_date": "2028-03-31T00:00:00",
                     "_access_group": None}  # fmt: skip
    past = {"obs_collection": "CTAO-SIM", "proposal_id": "CTAO-2025A-003"}
    assert policy.apply(past, now=NOW)["data_rights"] == "public"
    hess = {"obs_collection": "HESS-DL3-DR1", "proposal_id": None, "obs_id": "23523"}
    assert policy.apply(hess, now=NOW) == {"data_rights": "public", "obs_release_date": None,
                                          "_access_group": None}  # fmt: skip


def test_tokens_map_to_groups_including_included_groups():
    policy = AccessPolicy.demo()
    assert policy.groups_for_token("demo-token-vela") == {"vela-team"}
    assert policy.groups_for_token("demo-token-consortium") == {
        "ctao-consortium", "vela-team", "pks2155-team", "mrk421-team", "crab-team"}  # fmt: skip
    assert policy.groups_for_token("wrong") == set()
    assert policy.groups_for_token(None) == set()
    assert policy.groups_for_token("") == set()


def test_is_released_compares_dates_in_utc():
    policy = AccessPolicy.demo()
    assert policy.is_released("2026-03-01", now=NOW)
    assert policy.is_released("2026-11-21T00:00:00", now=NOW)
    assert not policy.is_released("2028-03-31T00:00:00", now=NOW)
    assert not policy.is_released(None, now=NOW)  # no date: stays closed
    assert policy.is_released("2000-01-01")  # default now: the current time
    with pytest.raises(ConfigError, match="bad release date"):
        policy.is_released("next spring", now=NOW)


def test_rules_match_globs_on_several_fields_first_rule_wins(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(
        "groups:\n  a: {tokens: [ta]}\n  b: {tokens: [tb]}\n"
        "rules:\n"
        "  - {match: {obs_collection: CTAO-*, target_name: 'Vela*'}, group: a, release_date: 2099-01-01}\n"
        "  - {match: {obs_id: '1000*'}, group: b, release_date: 2099-01-01}\n"
    )
    policy = AccessPolicy.load(path)
    vela = {"obs_collection": "CTAO-SIM", "target_name": "Vela X", "obs_id": "100019"}
    crab = {"obs_collection": "CTAO-SIM", "target_name": "Crab Nebula", "obs_id": "100001"}
    other = {"obs_collection": "HESS-DL3-DR1", "target_name": "Vela X", "obs_id": "20136"}
    assert policy.apply(vela)["_access_group"] == "a"
    assert policy.apply(crab)["_access_group"] == "b"
    assert policy.apply(other)["_access_group"] is None
    again = AccessPolicy.load(policy.save(tmp_path / "copy.yaml"))
    assert again == policy


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("groups: [\n", "not valid YAML"),
        ("rules:\n  - {match: {obs_id: '1'}, group: nobody}\n", "unknown group 'nobody'"),
        ("groups: {a: {tokens: [t]}}\nrules:\n  - {match: {colour: red}, group: a}\n",
         "cannot match on"),
        ("groups: {a: {tokens: [t], extra: 1}}\n", "extra"),
    ],
)  # fmt: skip
def test_bad_policy_files_raise_config_error_naming_the_file(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        AccessPolicy.load(path)
    assert str(path) in str(info.value)


def test_missing_policy_file_raises_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read access policy"):
        AccessPolicy.load(tmp_path / "nope.yaml")
