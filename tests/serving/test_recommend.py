"""The one recommender by hand: top-k ties, policy, consent, cold start, reasons, session views,
and batch scoring (`recommend_all`, blocks of customers) = the single-customer path."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.demo_bank import DEMO_AS_OF, generate_demo_bank
from features.holdings import build_holdings
from features.pairs import build_pair_context
from features.policy import customer_policy, policy_violations
from features.portrait import build_features
from portrait.settings import TimeSettings
from serving.cold_start import newcomer_facts, newcomer_frame
from serving.recommend_all import OUTPUT_COLUMNS, recommend_all, score_every_customer
from serving.recommend_index import (
    build_candidate_index,
    by_customer,
    customer_facts,
    product_facts,
)
from serving.recommend_one import FILL_REASON, newcomer_one, recommend_one
from serving.recommender import OPT_OUT_REASON, top_k
from tests.conftest import make_tables
from training.models.conversion import ConversionModel
from training.models.cutoffs import history
from training.models.datasets import conversion_training_set
from training.models.gbm import CalibratedGBM

AS_OF = pd.Timestamp("2025-02-01").as_unit("ns")


@pytest.fixture
def tiny():
    """The hand-made bank's candidate index (no model, no rules) and its policy facts."""
    tables = make_tables()
    portrait = build_features(tables, as_of=AS_OF)
    policy = customer_policy(portrait, qualified_min_assets=3e6)
    index = build_candidate_index(
        portrait=by_customer(portrait), products=tables["products"],
        holdings=build_holdings(tables["transactions"], as_of=AS_OF), segments=None,
        context=build_pair_context(tables, portrait, cutoff=AS_OF, window_days=60),
        model=None, rule_base=None,
    )  # fmt: skip
    facts = (
        product_facts(tables["products"], index.products),
        customer_facts(policy, index.customers),
    )
    return index, facts


def test_top_k_takes_the_best_source_then_score_then_id_once_per_product():
    owner = np.array([0, 0, 0, 0, 1, 1, 1])
    source = np.array([2, 0, 0, 1, 4, 4, 3])
    score = np.array([0.9, 0.1, 0.1, 0.5, 0.2, 0.7, 0.0])
    id_rank = np.array([1, 2, 0, 1, 0, 1, 0])  # owner 0: products 1, 2, 0, 1; owner 1: 0, 1, 0
    rows, ranks = top_k(owner, source, score, id_rank, k=2)
    # owner 0: source 0 first (tie on score: lower id 0 before 2); product 1 once, from source 1
    # owner 1: source 3 (product 0) before source 4, whose product 0 row is a repeat
    assert rows.tolist() == [2, 1, 6, 5] and ranks.tolist() == [1, 2, 1, 2]
    rows, ranks = top_k(owner, source, score, id_rank, k=5)
    assert rows.tolist() == [2, 1, 3, 6, 5] and ranks.tolist() == [1, 2, 3, 1, 2]


def test_without_a_model_by_hand(tiny):
    index, facts = tiny
    out = recommend_all(index, *facts, k=2, model=None)
    assert list(out.columns) == OUTPUT_COLUMNS
    got = {(r.customer_id, r.rank, r.product_id, r.source) for r in out.itertuples()}
    assert got == {
        ("A", 1, "P1", "segment_popularity"),  # holds P2 and P3
        ("B", 1, "P1", "popularity"),  # not assessed: risk-1 products only; opted out
        ("C", 1, "P1", "segment_popularity"),  # risk 2: P2 (risk 4) is not suitable
        ("C", 2, "P3", "segment_popularity"),
    }
    assert out.attrs["excluded"]["risk_above_customer"] > 0


def test_opted_out_customer_gets_a_marked_non_personalised_list(tiny):
    index, facts = tiny
    out = recommend_all(index, *facts, k=3, model=None)
    b = out.loc[out["customer_id"].eq("B")]
    assert len(b) == 1 and not b["personalised"].any()
    assert b["reasons"].tolist() == [[OPT_OUT_REASON]] and "NOT used" in OPT_OUT_REASON
    one = recommend_one(index, *facts, "B", k=3, session_products=[], model=None)
    assert not one.personalised and [i["reasons"] for i in one.items] == [[OPT_OUT_REASON]]


def newcomer(**attributes):
    """The policy facts of a newcomer with these sign-up attributes."""
    return newcomer_facts(newcomer_frame("NEW", attributes), qualified_min_assets=3e6)


def test_cold_start_is_labelled_and_only_risk_one_when_unassessed(tiny):
    index, (products, _) = tiny
    facts = newcomer(risk_level=None)
    shares = np.array([0.5, 0.4, 0.1])
    where = np.array([index.position(p) for p in ("P2", "P1", "P3")])
    one = newcomer_one(index, products, facts, "NEW", candidates=(where, shares, "held by {:.0%}"),
                       k=3, personalised=True)  # fmt: skip
    assert [(i["product_id"], i["reasons"]) for i in one.items] == [("P1", ["held by 40%"])]
    assert one.sources == ["cold_start"]
    assert sorted(zip(one.excluded.product_ids, one.excluded.reasons, strict=True)) == [
        ("P2", "risk_not_assessed"), ("P3", "risk_not_assessed")]  # fmt: skip
    assessed = newcomer(risk_level=5)
    one = newcomer_one(index, products, assessed, "NEW", candidates=(where[:1], shares[:1], "{}"),
                       k=3, personalised=True)  # fmt: skip
    assert [i["product_id"] for i in one.items] == ["P2", "P1", "P3"]  # filled up by product id
    assert [i["reasons"] for i in one.items][1:] == [[FILL_REASON], [FILL_REASON]]


def test_session_views_lead_without_a_model_but_never_break_the_policy(tiny):
    # C (risk 2) views P3 (risk 2, suitable) and P2 (risk 4, not suitable) in this visit.
    index, facts = tiny
    one = recommend_one(index, *facts, "C", k=2, session_products=["P3", "P3", "P2", "NOPE"],
                        model=None)  # fmt: skip
    first = one.items[0]
    assert first["product_id"] == "P3" and one.sources[0] == "session"
    assert first["reasons"] == ["viewed 2 time(s) in this visit"]
    assert "P2" not in {i["product_id"] for i in one.items}
    excluded = set(zip(one.excluded.product_ids, one.excluded.reasons, strict=True))
    assert {("P2", "risk_above_customer"), ("NOPE", "inactive_product")} <= excluded


def test_k_must_be_positive(tiny):
    index, facts = tiny
    with pytest.raises(ValueError, match="k must be at least 1"):
        recommend_all(index, *facts, k=0, model=None)


@pytest.fixture(scope="module")
def demo():
    """A 2,000-customer demo bank's batch scoring with a conversion model, and its inputs."""
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
    out, index = score_every_customer(
        portrait=portrait, products=tables["products"], holdings=holdings, policy=policy,
        segments=None, context=build_pair_context(past, portrait, cutoff=as_of, window_days=60),
        model=model, rule_base=None, k=5,
    )  # fmt: skip
    facts = (
        product_facts(tables["products"], index.products),
        customer_facts(policy, index.customers),
    )
    return out, index, facts, model, tables["products"], holdings, policy


def test_batch_respects_policy_and_always_has_reasons(demo):
    out, _, _, _, products, holdings, policy = demo
    assert out.groupby("customer_id")["rank"].max().max() == 5
    assert out["customer_id"].is_monotonic_increasing
    violations = policy_violations(out, customers=policy, products=products, holdings=holdings)
    assert violations.empty
    assert all(len(r) >= 1 and all(isinstance(t, str) and t for t in r) for r in out["reasons"])
    opted = set(policy.loc[policy["marketing_opt_out"], "customer_id"])
    assert not out.loc[out["customer_id"].isin(opted), "personalised"].any()
    assert out.loc[~out["customer_id"].isin(opted), "source"].eq("model").mean() > 0.9


def test_the_batch_index_holds_no_visit_matrix(demo):
    _, index, _, model, *_ = demo
    # a visit's input: the batch serves no visit, the service builds it when it loads the index
    assert isinstance(model, CalibratedGBM) and index.pairs is not None
    assert index.pair_matrix is None


def test_blocks_do_not_change_the_batch(demo):
    out, index, facts, model, *_ = demo
    small = recommend_all(index, *facts, k=5, model=model, block=7)
    pd.testing.assert_frame_equal(small, out)
    assert small.attrs == out.attrs


def test_one_customer_equals_the_batch_answer(demo):
    out, index, facts, model, *_ = demo
    for cid in out["customer_id"].drop_duplicates().sample(25, random_state=3):
        one = recommend_one(index, *facts, cid, k=5, session_products=[], model=model)
        rows = out.loc[out["customer_id"] == cid]
        got = [(i["rank"], i["product_id"], i["score"], i["reasons"]) for i in one.items]
        assert got == [(r.rank, r.product_id, r.score, r.reasons) for r in rows.itertuples()]
        assert one.sources == rows["source"].tolist()


def test_session_views_change_the_answer(demo):
    out, index, facts, model, _, _, policy = demo
    cid = policy.loc[~policy["marketing_opt_out"] & policy["risk_assessed"], "customer_id"].iloc[0]
    before = recommend_one(index, *facts, cid, k=5, session_products=[], model=model)
    last = before.items[-1]
    after = recommend_one(index, *facts, cid, k=5, session_products=[last["product_id"]] * 3,
                          model=model)  # fmt: skip
    moved = next(i for i in after.items if i["product_id"] == last["product_id"])
    assert moved["score"] > last["score"] and moved["rank"] < last["rank"]
    assert moved["reasons"][0] == "viewed 3 time(s) in this visit"
