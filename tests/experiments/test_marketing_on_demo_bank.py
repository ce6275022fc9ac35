"""Integration on a 6,000-customer demo bank: campaign lift recovers the planted ATE, uplift beats random,
the sign-up A/B test finds variant B, ready-made audiences run and never export opted-out customers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from experiments.audience import run_audience
from experiments.campaign import evaluate_campaign
from experiments.funnel import ab_test, funnel_times, page_traffic
from experiments.ready_made import READY_MADE
from experiments.uplift import (
    persuadables,
    qini_curve,
    qini_metrics,
    train_uplift,
    uplift_training_set,
)
from features.demo_bank import DEMO_AS_OF, generate_demo_bank
from features.portrait import build_features

CAMPAIGN = "CMP2025_FUND_PUSH"
# features.trading merge_asof needs as_of in the tables' ns unit (DEMO_AS_OF is in seconds).
AS_OF = pd.Timestamp(DEMO_AS_OF).as_unit("ns")


@pytest.fixture(scope="module")
def bank():
    return generate_demo_bank(
        n_customers=6000, seed=7
    )  # held-out Qini needs ~1,800 campaign customers


@pytest.fixture(scope="module")
def portrait(bank):
    return build_features(bank.tables, as_of=AS_OF)


@pytest.fixture(scope="module")
def uplift(bank):
    training = uplift_training_set(bank.tables, window_days=30, campaign_id=CAMPAIGN)
    return train_uplift(training, holdout_share=0.3, seed=42)


def test_campaign_evaluation_recovers_the_planted_uplift(bank):
    truth = bank.truth["campaign"]
    result = evaluate_campaign(bank.tables, campaign_id=CAMPAIGN, window_days=truth["window_days"])
    row = result.overall.iloc[0]
    assert row.rate_treatment == pytest.approx(truth["realised_treatment_rate"])
    assert row.rate_control == pytest.approx(truth["realised_control_rate"])
    assert row.abs_lift_low < truth["true_ate"] < row.abs_lift_high
    assert row.abs_lift_low > 0 and row.p_value < 0.05
    assert not result.srm["mismatch"]  # the demo split is a random 50/50
    assert "95% CI" in result.statement()


def test_sample_ratio_mismatch_is_flagged_when_control_is_lost(bank):
    campaigns = bank.tables["campaigns"]
    control = campaigns.index[campaigns["group"] == "control"]
    broken = dict(bank.tables, campaigns=campaigns.drop(control[: len(control) // 3]))
    result = evaluate_campaign(broken, campaign_id=CAMPAIGN, window_days=30)
    assert result.srm["mismatch"]
    assert "sample ratio mismatch" in result.statement()


def test_uplift_model_beats_random_targeting_on_qini(bank, uplift):
    holdout = uplift.holdout
    assert uplift.metrics["qini_coefficient"] > 0
    assert uplift.metrics["auuc"] > uplift.metrics["auuc_random"]
    rng = np.random.default_rng(0)
    random_qini = [
        qini_metrics(
            qini_curve(holdout["converted"], holdout["treated"], rng.random(len(holdout)))
        )["qini_coefficient"]
        for _ in range(20)  # 20 random rankings as the baseline
    ]
    assert uplift.metrics["qini_coefficient"] > np.mean(random_qini)
    true = bank.truth["campaign_uplift"].set_index("customer_id")["true_uplift"]
    assert np.corrcoef(holdout["uplift"], true.reindex(holdout["customer_id"]))[0, 1] > 0.2


def test_persuadables_are_ranked_by_uplift_and_exclude_opted_out(uplift, portrait):
    ranked = persuadables(uplift.model, portrait, limit=200)
    assert ranked["uplift"].is_monotonic_decreasing and (ranked["uplift"] > 0).all()
    opted = set(portrait.loc[portrait["marketing_opt_out"], "customer_id"])
    assert not opted & set(ranked["customer_id"])


def test_signup_ab_test_finds_variant_b_raises_bind_card(bank):
    times = funnel_times(bank.tables, as_of=AS_OF, within_days=30)
    result = ab_test(times).set_index("step")
    bind = result.loc["register -> bind_card"]
    assert bind["abs_lift"] > 0 and bind["p_value"] < 0.05
    assert set(times.loc[times["variant"] != "none", "cohort"]) <= {
        "2025-03",
        "2025-04",
        "2025-05",
        "2025-06",
    }


def test_page_traffic_counts_views_and_visitors(bank):
    pages = page_traffic(bank.tables, as_of=AS_OF).set_index("page")
    events = bank.tables["events"]
    views = events.loc[(events["event"] == "page_view") & (events["ts"] < AS_OF)]
    assert pages["page_views"].sum() == len(views)
    assert (
        pages.loc["credit_report", "unique_visitors"]
        == views.loc[views["page"] == "credit_report", "customer_id"].nunique()
    )
    assert pages.loc["p2p_market", "business_line"] == "p2p"
    assert pages["bounce_rate"].between(0, 1).all()


@pytest.mark.parametrize("name", ["dormant_to_reactivate", "high_intent_non_investors"])
def test_ready_made_audiences_run_and_respect_opt_out(bank, portrait, name):
    result = run_audience(name, tables=bank.tables, portrait=portrait, as_of=AS_OF)
    assert result.query == READY_MADE[name]
    assert 0 < result.count == len(result.frame) < len(portrait)
    opted = portrait.set_index("customer_id").loc[result.frame["customer_id"], "marketing_opt_out"]
    assert not opted.any()
    assert result.frame["matched_because"].str.len().gt(0).all()


def test_churn_risk_among_large_customers_uses_run_extras(bank, portrait):
    ids = portrait["customer_id"]
    extras = {
        "segments": pd.DataFrame(
            {
                "customer_id": ids,
                "value_tier": np.where(portrait["total_assets"] > 50000, "top", "small"),
            }
        ),
        "churn_scores": pd.DataFrame(
            {"customer_id": ids, "churn_probability": np.linspace(0, 1, len(ids))}
        ),
    }
    result = run_audience(
        "churn_risk_large", tables=bank.tables, portrait=portrait, extras=extras, as_of=AS_OF
    )
    expected = (portrait["total_assets"] > 50000) & (
        extras["churn_scores"]["churn_probability"] > 0.6
    )
    assert result.matched == int(expected.sum())
    assert result.count + result.opted_out_excluded == result.matched
