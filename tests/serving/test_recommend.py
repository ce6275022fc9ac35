"""The shared recommender: policy always, consent, cold start, reasons, session events, batch = one."""

from __future__ import annotations

import pandas as pd
import pytest

from features.demo_bank import DEMO_AS_OF, generate_demo_bank
from features.holdings import build_holdings
from features.pairs import build_pair_context
from features.policy import customer_policy, policy_violations
from features.portrait import build_features
from portrait.settings import TimeSettings
from serving.recommend import (
    COLD_START_REASON,
    OPT_OUT_REASON,
    OUTPUT_COLUMNS,
    index_inputs,
    recommend,
)
from tests.conftest import make_tables
from training.models.conversion import ConversionModel
from training.models.datasets import conversion_training_set, history

AS_OF = pd.Timestamp("2025-02-01").as_unit("ns")


@pytest.fixture
def tiny():
    tables = make_tables()
    portrait = build_features(tables, as_of=AS_OF)
    return {
        "portrait": portrait,
        "products": tables["products"],
        "holdings": build_holdings(tables["transactions"], as_of=AS_OF),
        "policy_customers": customer_policy(portrait, qualified_min_assets=3e6),
        "context": build_pair_context(tables, portrait, cutoff=AS_OF, window_days=60),
        "conversion_model": None,
        "rule_base": None,
        "segments": None,
    }


def test_without_a_model_by_hand(tiny):
    out = recommend(["A", "B", "C", "Z"], k=2, **tiny)
    assert list(out.columns) == OUTPUT_COLUMNS
    got = {(r.customer_id, r.rank, r.product_id, r.source) for r in out.itertuples()}
    assert got == {
        ("A", 1, "P1", "segment_popularity"),  # holds P2 and P3
        ("B", 1, "P1", "popularity"),  # not assessed: risk-1 products only; opted out
        ("C", 1, "P1", "segment_popularity"),  # risk 2: P2 (risk 4) is not suitable
        ("C", 2, "P3", "segment_popularity"),
        ("Z", 1, "P1", "cold_start"),  # unknown: the most cautious reading
    }


def test_opted_out_customer_gets_a_marked_non_personalised_list(tiny):
    out = recommend(["B"], k=3, **tiny)
    assert not out["personalised"].any()
    assert all(r == [OPT_OUT_REASON] for r in out["reasons"])
    assert "NOT used" in OPT_OUT_REASON


def test_cold_start_is_labelled(tiny):
    out = recommend("Z", k=3, **tiny)
    assert set(out["source"]) == {"cold_start"}
    assert all(r == [COLD_START_REASON] for r in out["reasons"])


def test_session_views_lead_without_a_model_but_never_break_the_policy(tiny):
    # C (risk 2) views P3 (risk 2, suitable) and P2 (risk 4, not suitable) in this visit.
    session = pd.DataFrame(
        {"customer_id": ["C", "C", "C"], "ts": AS_OF, "event": "view_product", "page": None,
         "product_id": ["P3", "P3", "P2"]}
    )  # fmt: skip
    out = recommend(["C"], k=2, session_events=session, **tiny)
    assert out.iloc[0]["product_id"] == "P3" and out.iloc[0]["source"] == "session"
    assert out.iloc[0]["reasons"] == ["viewed 2 time(s) in this visit"]
    assert "P2" not in set(out["product_id"])
    assert set(out.attrs["excluded_rows"]["reason"]) >= {"risk_above_customer"}


def test_k_must_be_positive(tiny):
    with pytest.raises(ValueError, match="k must be at least 1"):
        recommend(["A"], k=0, **tiny)


@pytest.fixture(scope="module")
def demo():
    tables = generate_demo_bank(n_customers=2000, seed=9).tables
    data = conversion_training_set(
        tables, as_of=DEMO_AS_OF, time=TimeSettings(training_cutoffs=1), negative_rate=0.3, seed=1
    )
    model = ConversionModel(seed=1).fit(data.train)
    as_of = DEMO_AS_OF.as_unit("ns")
    past = history(tables, as_of=as_of)
    portrait = build_features(past, as_of=as_of)
    holdings = build_holdings(past["transactions"], as_of=as_of)
    policy = customer_policy(portrait, qualified_min_assets=3e6)
    inputs = index_inputs(portrait=portrait, policy_customers=policy, holdings=holdings)
    return (
        {
            "portrait": inputs.portrait,
            "products": tables["products"],
            "holdings": inputs.holdings,
            "policy_customers": inputs.policy_customers,
            "context": build_pair_context(past, portrait, cutoff=as_of, window_days=60),
            "conversion_model": model,
            "rule_base": None,
            "segments": None,
            "k": 5,
        },
        portrait,
        holdings,
        policy,
    )


def test_batch_respects_policy_and_always_has_reasons(demo):
    kw, portrait, holdings, policy = demo
    out = recommend(portrait, **kw)
    assert out.groupby("customer_id")["rank"].max().max() == 5
    violations = policy_violations(
        out, customers=policy, products=kw["products"], holdings=holdings
    )
    assert violations.empty
    assert all(len(r) >= 1 and all(isinstance(t, str) and t for t in r) for r in out["reasons"])
    opted = set(policy.loc[policy["marketing_opt_out"], "customer_id"])
    assert not out.loc[out["customer_id"].isin(opted), "personalised"].any()
    assert out.loc[~out["customer_id"].isin(opted), "source"].eq("model").mean() > 0.9


def test_one_customer_equals_the_batch_answer(demo):
    kw, portrait, _, policy = demo
    ids = policy.loc[~policy["marketing_opt_out"], "customer_id"].iloc[:3].tolist()
    batch = recommend(ids, **kw)
    for cid in ids:
        one = recommend([cid], **kw)
        expected = batch.loc[batch["customer_id"] == cid].reset_index(drop=True)
        pd.testing.assert_frame_equal(one, expected)


def test_session_views_change_the_answer(demo):
    kw, _, _, policy = demo
    cid = policy.loc[~policy["marketing_opt_out"] & policy["risk_assessed"], "customer_id"].iloc[0]
    before = recommend([cid], **kw)
    last = before["product_id"].iloc[-1]
    session = pd.DataFrame(
        {
            "customer_id": [cid] * 3,
            "ts": [DEMO_AS_OF] * 3,
            "event": ["view_product"] * 3,
            "page": [None] * 3,
            "product_id": [last] * 3,
            "properties": [None] * 3,
        }
    )
    after = recommend([cid], session_events=session, **kw)
    old = before.set_index("product_id")["score"]
    new = after.set_index("product_id")["score"]
    assert new[last] > old[last]
    assert after.loc[after["product_id"] == last, "rank"].iloc[0] < before["rank"].iloc[-1]
