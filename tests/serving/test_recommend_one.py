"""The one recommender's single-customer path against its batch path and against the policy.

For any customer, catalogue and policy facts, `serving.recommend_one.recommend_one` must give
exactly that customer's rows of batch scoring (`serving.recommend_all.recommend_block`, the
customer inside a block of others), and every item and every exclusion, with or without products
viewed in this visit, must agree with `features.policy.apply_policy` (the policy on frames).
"""

from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.policy import apply_policy, customer_policy
from serving.pair_reasons import UNEXPLAINED, WARM_TOP, ReasonMemo
from serving.recommend_all import recommend_block
from serving.recommend_one import recommend_one
from serving.visit import visit_scores
from tests.serving.conftest import candidate_index

QUALIFIED_ASSETS = 3_000_000.0
CASES = {"customers": 0}


def batch_answer(state, cid: str, k: int, others: list[str]) -> pd.DataFrame:
    """Batch scoring's rows of one customer, scored in one block with `others`."""
    block = list(dict.fromkeys([*others, cid]))
    positions = np.array([state.candidates.customer_pos[c] for c in block])
    rows = recommend_block(state.candidates, state.product_facts, state.customer_facts, positions,
                           k=k, model=state.models.get("conversion"))  # fmt: skip
    one = rows.loc[rows["customer_id"] == cid].reset_index(drop=True)
    mine = np.array([state.candidates.customer_pos[cid]])
    alone = recommend_block(state.candidates, state.product_facts, state.customer_facts, mine,
                            k=k, model=state.models.get("conversion"))  # fmt: skip
    one.attrs["excluded"] = alone.attrs["excluded"]
    return one


def fast_answer(state, cid: str, k: int, views: list[str]):
    return recommend_one(
        state.candidates, state.product_facts, state.customer_facts, cid, k=k,
        session_products=views, model=state.models.get("conversion"),
    )  # fmt: skip


def assert_same(fast, batch: pd.DataFrame) -> None:
    """Same items, ranks, scores, reasons, sources, flag and exclusion counts as the batch rows."""
    got = [(i["rank"], i["product_id"], i["score"], i["reasons"]) for i in fast.items]
    want = [(r.rank, r.product_id, r.score, list(r.reasons)) for r in batch.itertuples()]
    assert got == want
    assert fast.sources == batch["source"].tolist()
    assert fast.personalised == (len(batch) > 0 and bool(batch["personalised"].all()))
    assert Counter(fast.excluded.reasons) == batch.attrs["excluded"]


def assert_agrees_with_policy(state, cid: str, fast) -> None:
    """Items pass `apply_policy`; each exclusion has the reason `apply_policy` gives the pair."""
    products = state.products.reset_index(drop=True)
    candidates = pd.DataFrame({"customer_id": cid, "product_id": products["product_id"]})
    held = state.holdings.loc[lambda h: h["customer_id"].eq(cid)]
    policy = state.policy.reset_index(drop=True)
    reason = {}
    for flag in (True, False):
        result = apply_policy(candidates, customers=policy.loc[policy["customer_id"].eq(cid)],
                              products=products, holdings=held, personalised=flag)  # fmt: skip
        reason[flag] = dict.fromkeys(result.kept["product_id"], "") | dict(
            zip(result.excluded["product_id"], result.excluded["reason"], strict=True)
        )
    for item, source in zip(fast.items, fast.sources, strict=True):
        assert reason[source != "popularity"][item["product_id"]] == ""
    for pid, why in zip(fast.excluded.product_ids, fast.excluded.reasons, strict=True):
        assert why in {reason[True].get(pid, "inactive_product"), reason[False].get(pid)}


@pytest.fixture(params=["state", "state_without_model", "state_with_baseline"])
def served(request):
    """The state with the conversion model, without it, and with the baseline fallback."""
    return request.getfixturevalue(request.param)


def test_every_kind_of_customer_gets_the_batch_answer(served):
    state = served
    policy = state.policy
    groups = [policy["marketing_opt_out"], ~policy["risk_assessed"], policy["qualified"],
              policy["max_product_risk"].ge(4), policy["max_product_risk"].eq(1)]  # fmt: skip
    ids = list(state.portrait.index[:60])
    ids += [i for g in groups for i in policy.index[g.to_numpy()][:12]]
    ids = list(dict.fromkeys(ids))
    viewed = list(state.products.index[:3])
    for n, cid in enumerate(ids):
        k = 1 + n % 7
        fast = fast_answer(state, cid, k, [])
        assert_same(fast, batch_answer(state, cid, k, ids[n + 1 : n + 9]))
        assert_agrees_with_policy(state, cid, fast)
        visit = fast_answer(state, cid, k, viewed[: 1 + n % 3])  # one to three products viewed
        assert_agrees_with_policy(state, cid, visit)


def test_a_visit_rescores_only_the_viewed_pairs_from_the_matrix(state):
    """Views move the viewed products' pair scores exactly as the model scores the changed rows
    (frame path), and no other pair's score."""
    index, model = state.candidates, state.models["conversion"]
    assert index.pair_matrix is not None  # the demo's conversion model is a calibrated LightGBM
    for cid in state.portrait.index[:40]:
        i = index.customer_pos[cid]
        span = index.pairs.span(i)
        if span.stop - span.start < 2:
            continue
        product = index.pairs.product[span][:2]
        visit = visit_scores(index, i, (product, np.array([2.0, 1.0])), model)
        changed = index.pair_frame.iloc[span.start : span.start + 2].copy()
        for column in ("views_7d", "views_30d"):
            changed[column] = changed[column].to_numpy() + np.array([2.0, 1.0])
        np.testing.assert_allclose(visit.score[:2], model.predict_proba(changed), rtol=1e-12)
        assert (visit.score[2:] == index.pairs.score[span][2:]).all()
        assert visit.rows.tolist() == [span.start, span.start + 1]


def perturbed(state, cid, facts, catalogue):
    """The state with one customer's policy facts and every product's policy facts replaced."""
    risk, kyc, rich, opted = facts
    row = pd.DataFrame({"customer_id": [cid], "risk_level": [np.nan if risk is None else risk],
                        "kyc_verified": [kyc], "total_assets": [QUALIFIED_ASSETS if rich else 0.0],
                        "marketing_opt_out": [opted]})  # fmt: skip
    policy = state.policy.copy()
    new = customer_policy(row, qualified_min_assets=QUALIFIED_ASSETS)
    for column in new.columns:
        policy.loc[cid, column] = new[column].iloc[0]
    products = state.products.copy()
    products["risk_level"], products["is_active"], products["qualified_only"] = catalogue
    return dataclasses.replace(state, products=products, policy=policy)


@st.composite
def cases(draw, state):
    n = len(state.products)
    cid = draw(st.sampled_from(list(state.portrait.index[:400])))
    facts = (draw(st.one_of(st.none(), st.integers(1, 5))), draw(st.booleans()),
             draw(st.booleans()), draw(st.booleans()))  # fmt: skip
    catalogue = (
        draw(st.lists(st.integers(1, 5), min_size=n, max_size=n)),
        draw(st.lists(st.booleans(), min_size=n, max_size=n)),
        draw(st.lists(st.booleans(), min_size=n, max_size=n)),
    )
    products = [*state.products.index, "NOT-ON-FILE"]
    views = draw(st.lists(st.sampled_from(products), max_size=4))
    others = draw(st.lists(st.sampled_from(list(state.portrait.index[:400])), max_size=6))
    return cid, facts, catalogue, views, draw(st.integers(1, n + 2)), others


def test_random_customers_catalogues_and_visits_get_the_batch_answer(served):
    state = served

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(cases(state))
    def check(case):
        cid, facts, catalogue, views, k, others = case
        trial = perturbed(state, cid, facts, catalogue)
        fast = fast_answer(trial, cid, k, [])
        assert_same(fast, batch_answer(trial, cid, k, others))
        assert_agrees_with_policy(trial, cid, fast)
        assert_agrees_with_policy(trial, cid, fast_answer(trial, cid, k, views))
        CASES["customers"] += 1

    before = CASES["customers"]
    check()
    assert CASES["customers"] - before >= 150


def test_warming_explains_default_answers_ahead_and_changes_no_answer(state):
    """`ServingState.warm` (run in the background by the service) explains each customer's best
    allowed pairs, so default answers find their reasons kept; answers are the same either way."""
    fresh = dataclasses.replace(
        state, candidates=candidate_index(state, state.models["conversion"])
    )
    memo = fresh.candidates.pair_reasons
    assert (memo._codes[:, 0] == UNEXPLAINED).all()
    ids = list(state.portrait.index[:150])
    cold = [fast_answer(fresh, cid, WARM_TOP, []).items for cid in ids]
    explained_on_demand = int((memo._codes[:, 0] != UNEXPLAINED).sum())
    assert explained_on_demand > 0  # the model chose some items: the test exercises its reasons

    warmed = dataclasses.replace(fresh, candidates=dataclasses.replace(
        fresh.candidates, pair_reasons=ReasonMemo(len(fresh.candidates.pair_frame))
    ))  # fmt: skip
    assert warmed.warm() >= explained_on_demand
    before = warmed.candidates.pair_reasons._codes.copy()
    assert [fast_answer(warmed, cid, WARM_TOP, []).items for cid in ids] == cold
    assert (warmed.candidates.pair_reasons._codes == before).all()  # nothing left to explain
