"""Settings: lists and booleans from YAML or --set, and the engagement checks."""

from __future__ import annotations

import pytest

from portrait.errors import SettingsError
from portrait.settings import EngagementSettings, load_settings


def test_engagement_defaults_follow_the_contract():
    e = load_settings().engagement
    assert e == EngagementSettings()
    assert e.transaction_types == ("deposit", "buy") and e.departed


def test_lists_and_booleans_from_the_command_line():
    s = load_settings(
        overrides={
            "engagement.transaction_types": "deposit, buy,sell",
            "engagement.non_engagement_events": "push_open",
            "engagement.departed": "false",
        }
    )
    assert s.engagement.transaction_types == ("deposit", "buy", "sell")
    assert s.engagement.non_engagement_events == ("push_open",)
    assert s.engagement.departed is False


def test_lists_from_yaml(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("engagement:\n  transaction_types: [deposit]\n  departed_peak_share: 0.05\n")
    s = load_settings(path)
    assert s.engagement.transaction_types == ("deposit",)
    assert s.engagement.departed_peak_share == 0.05


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("engagement.transaction_types", "deposit,transfer", "unknown type 'transfer'"),
        ("engagement.departed_peak_share", "1.5", "departed_peak_share"),
        ("engagement.departed", "maybe", "true or false"),
    ],
)
def test_bad_engagement_settings_are_clear_errors(key, value, message):
    with pytest.raises(SettingsError, match=message):
        load_settings(overrides={key: value})
