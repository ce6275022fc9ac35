"""Value tiers, lifecycle rules and tags on hand-made customers with exact expected values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.portrait import build_features
from portrait.errors import PortraitError
from training.segments.lifecycle import (
    LifecycleRule,
    lifecycle_frame,
    lifecycle_inputs,
    lifecycle_stages,
    lifecycle_transitions,
    transition_matrix,
)
from training.segments.tags import build_tags, tag_coverage
from training.segments.tiers import PotentialRule, value_tiers


def _tier_portrait() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": ["A", "B", "C", "D", "E", "F"],
            "total_assets": [500.0, 100.0, 100.0, 0.0, 40.0, 5.0],
            "asset_trend_90d": [0.0, 0.0, 0.2, 0.9, 0.0, 0.9],
            "net_flow_90d": [0.0, 0.0, 0.0, 0.0, 6.0, 0.0],
        }
    )


def test_tiers_top_n_by_assets_ties_by_id_and_potential_rule():
    tiers = value_tiers(
        _tier_portrait(),
        top_n=2,
        rule=PotentialRule(floor=0.1, min_trend=0.05, min_inflow_share=0.05),
    )
    # A and B are top (B beats C on id at equal assets); threshold 100, floor 10:
    # C grows 0.2 -> potential; E has net inflow 6 >= 5 -> potential; D has no assets; F is under the floor.
    assert tiers["value_tier"].tolist() == [
        "top",
        "top",
        "potential_large",
        "small",
        "potential_large",
        "small",
    ]
    assert tiers["top_threshold"].iloc[0] == 100.0


def test_tiers_never_put_empty_accounts_on_top_and_reject_bad_n():
    tiers = value_tiers(_tier_portrait(), top_n=10)
    assert tiers.loc[tiers["customer_id"] == "D", "value_tier"].item() == "small"
    assert (tiers["value_tier"] == "top").sum() == 5
    with pytest.raises(PortraitError, match="top_n"):
        value_tiers(_tier_portrait(), top_n=0)
    with pytest.raises(PortraitError, match="net_flow_90d"):
        value_tiers(_tier_portrait().drop(columns="net_flow_90d"), top_n=1)


def test_lifecycle_rules_one_customer_per_stage():
    inputs = pd.DataFrame(
        {
            "customer_id": [
                "new",
                "churned",
                "dormant",
                "declining_assets",
                "declining_use",
                "growing",
                "young_growth",
                "mature",
            ],
            "tenure_days": [30, 400, 400, 400, 400, 400, 200, 400],
            "days_since_last_activity": [2, 200, 120, 5, 5, 5, 5, 5],
            "asset_trend_90d": [0.5, 0.0, 0.0, -0.2, 0.0, 0.15, 0.01, 0.01],
            "events_trend": [1.0, 1.0, 1.0, 1.0, 0.2, 1.0, 1.0, 1.0],
        }
    )
    stages = lifecycle_stages(inputs, rule=LifecycleRule())
    assert stages.tolist() == [
        "new",
        "churned",
        "dormant",
        "declining",
        "declining",
        "growing",
        "growing",
        "mature",
    ]


def test_lifecycle_never_active_is_churned_and_bad_rule_is_an_error():
    inputs = pd.DataFrame(
        {"customer_id": ["X"], "tenure_days": [500.0], "days_since_last_activity": [np.nan],
         "asset_trend_90d": [np.nan], "events_trend": [np.nan]}
    )  # fmt: skip
    assert lifecycle_stages(inputs).tolist() == ["churned"]
    with pytest.raises(PortraitError, match="active_days"):
        lifecycle_stages(inputs, rule=LifecycleRule(active_days=200, churned_days=100))
    with pytest.raises(PortraitError, match="events_trend"):
        lifecycle_stages(inputs.drop(columns="events_trend"))


def test_lifecycle_inputs_and_transitions_on_tiny_bank(tiny_tables):
    inputs = lifecycle_inputs(tiny_tables, as_of=pd.Timestamp("2025-01-01"))
    assert inputs["customer_id"].tolist() == ["A", "B", "C"]
    # A's last activity is the 2024-12-28 page view, 4 days before; B's the 2024-07-01 deposit and register.
    assert inputs["days_since_last_activity"].tolist() == [4.0, 184.0, 16.0]
    cutoffs = [pd.Timestamp("2024-12-01"), pd.Timestamp("2025-01-01")]
    table = lifecycle_transitions(tiny_tables, cutoffs=cutoffs)
    moves = {(r.from_stage, r.to_stage): r.customers for r in table.itertuples()}
    # A: active at both; B: last seen 2024-07-01 -> dormant (153 days) then churned (184); C signs up in between.
    assert moves[("dormant", "churned")] == 1
    assert moves[("not_signed_up", "new")] == 1
    assert table["customers"].sum() == 3
    assert transition_matrix(table).to_numpy().sum() == 3
    with pytest.raises(PortraitError, match="two cut-offs"):
        lifecycle_transitions(tiny_tables, cutoffs=cutoffs[:1])
    # the stages at a cut-off whose portrait the run has come from it, the same table
    at = cutoffs[-1]
    portrait = build_features(tiny_tables, as_of=at)
    known = lifecycle_transitions(
        tiny_tables, cutoffs=cutoffs, known={at: lifecycle_frame(portrait)}
    )
    pd.testing.assert_frame_equal(known, table)
    moved = lifecycle_frame(portrait).assign(days_since_last_activity=1000.0)
    assert not lifecycle_transitions(tiny_tables, cutoffs=cutoffs, known={at: moved}).equals(
        table
    )  # the known inputs are really read


def test_tags_lists_in_definition_order_and_coverage():
    portrait = pd.DataFrame(
        {
            "customer_id": ["A", "B", "C"],
            "channel": pd.array(["branch", None, "wechat"], dtype="string"),
            "age": [25.0, 65.0, np.nan],
            "income_band": [5.0, 1.0, np.nan],
            "risk_level": [3.0, np.nan, 2.0],
            "n_buy_90d": [4, 0, 0],
            "n_sell_90d": [2, 0, 0],
            "funnel_stage": [4, 2, 0],
            "n_products_held": [3, 0, 1],
        }
    )
    tags = build_tags(portrait)
    assert tags["tags"].tolist() == [
        ["branch_acquired", "young_adult", "high_income", "frequent_trader", "multi_product"],
        ["senior", "risk_unassessed", "funnel_stalled"],
        ["social_acquired"],
    ]
    coverage = tag_coverage(portrait).set_index("tag")
    assert coverage.loc["senior", "customers"] == 1
    assert (
        coverage.loc["app_regular", "coverage"] == 0.0
    )  # column absent -> nobody tagged, no error
    assert coverage.loc["high_income", "coverage"] == pytest.approx(1 / 3)
    assert coverage["definition"].str.len().gt(10).all()


def test_tags_for_no_customers_is_empty():
    empty = pd.DataFrame(
        {"customer_id": pd.Series([], dtype=str), "age": pd.Series([], dtype=float)}
    )
    assert build_tags(empty)["tags"].tolist() == []


def test_departed_customers_are_churned_whatever_else_they_show():
    inputs = pd.DataFrame(
        {"customer_id": ["gone_new", "gone_recent", "stays"], "tenure_days": [30.0, 400.0, 400.0],
         "days_since_last_activity": [10.0, 20.0, 20.0], "asset_trend_90d": [0.0, 0.5, 0.5],
         "events_trend": [1.0, 1.0, 1.0], "departed": [True, True, False]}
    )  # fmt: skip
    # departed wins over new and growing; without the column nobody is departed
    assert lifecycle_stages(inputs).tolist() == ["churned", "churned", "growing"]
    assert lifecycle_stages(inputs.drop(columns="departed")).tolist() == [
        "new",
        "growing",
        "growing",
    ]


def test_lifecycle_inputs_mark_a_customer_who_withdrew_everything(tiny_tables):
    tables = dict(tiny_tables)
    out = pd.DataFrame(
        {"customer_id": pd.array(["B"], dtype="string"), "product_id": pd.array([None], dtype="string"),
         "ts": [pd.Timestamp("2024-08-01")], "type": pd.array(["withdraw"], dtype="string"),
         "amount": [50.0]}
    )  # fmt: skip
    tables["transactions"] = pd.concat([tables["transactions"], out], ignore_index=True)
    inputs = lifecycle_inputs(tables, as_of=pd.Timestamp("2024-09-01"))
    assert inputs.set_index("customer_id")["departed"].to_dict() == {"A": False, "B": True}
    # a withdrawal is not activity: B's last engagement is the 2024-07-01 deposit and register
    assert inputs.set_index("customer_id")["days_since_last_activity"]["B"] == 62.0
    assert lifecycle_stages(inputs).tolist()[1] == "churned"
