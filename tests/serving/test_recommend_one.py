"""The single-customer path (arrays indexed once) against the batch recommender and the policy.

For any customer, catalogue, policy facts and visit, `serving.recommend_one.recommend_one` must
give exactly the answer of `serving.recommend.recommend` (frames) for that one customer, and every
item and every exclusion must agree with `features.policy.apply_policy`.
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
from serving.recommend import recommend
from serving.recommend_one import recommend_one
from tests.serving.conftest import candidate_index

QUALIFIED_ASSETS = 3_000_000.0
CASES = {"customers": 0}


def batch_answer(state, cid: str, k: int, views: list[str]) -> pd.DataFrame:
    """The batch recommender's answer for one customer, from the state's frames."""
    inputs = state.recommend_inputs
    session = None
    if views:
        session = pd.DataFrame({"customer_id": cid, "ts": state.as_of, "event": "view_product",
                                "page": None, "product_id": views})  # fmt: skip
    return recommend(
        cid, portrait=inputs.portrait, products=state.products, holdings=inputs.holdings,
        conversion_model=state.models.get("conversion"), rule_base=state.rule_base,
        segments=inputs.segments, policy_customers=inputs.policy_customers, k=k,
        context=state.pair_context, session_events=session,
    )  # fmt: skip


def fast_answer(state, cid: str, k: int, views: list[str]):
    return recommend_one(
        state.candidates, state.product_facts, state.customer_facts, cid, k=k,
        session_products=views, model=state.models.get("conversion"),
    )  # fmt: skip


def assert_same(fast, batch: pd.DataFrame) -> None:
    """Same items, ranks, scores, reasons, sources, flag and exclusions as the batch answer."""
    got = [(i["rank"], i["product_id"], i["score"], i["reasons"]) for i in fast.items]
    want = [(r.rank, r.product_id, r.score, list(r.reasons)) for r in batch.itertuples()]
    assert got == want
    assert fast.sources == batch["source"].tolist()
    assert fast.personalised == (len(batch) > 0 and bool(batch["personalised"].all()))
    rows = batch.attrs.get("excluded_rows", pd.DataFrame({"product_id": [], "reason": []}))
    assert Counter(zip(fast.excluded.product_ids, fast.excluded.reasons, strict=True)) == (
        Counter(zip(rows["product_id"], rows["reason"], strict=True))
    )


def assert_agrees_with_policy(state, cid: str, fast) -> None:
    """Items pass `apply_policy`; each exclusion has the reason `apply_policy` gives the pair."""
    products = state.products.reset_index(drop=True)
    candidates = pd.DataFrame({"customer_id": cid, "product_id": products["product_id"]})
    held = state.recommend_inputs.holdings.loc[lambda h: h["customer_id"].eq(cid)]
    policy = state.recommend_inputs.policy_customers.reset_index(drop=True)
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
    policy = state.recommend_inputs.policy_customers
    groups = [policy["marketing_opt_out"], ~policy["risk_assessed"], policy["qualified"],
              policy["max_product_risk"].ge(4), policy["max_product_risk"].eq(1)]  # fmt: skip
    ids = list(state.portrait.index[:60])
    ids += [i for g in groups for i in policy.index[g.to_numpy()][:12]]
    viewed = list(state.products.index[:3])
    for n, cid in enumerate(dict.fromkeys(ids)):
        views = viewed[: n % 4]  # none, one, two or three products viewed in this visit
        k = 1 + n % 7
        fast = fast_answer(state, cid, k, views)
        assert_same(fast, batch_answer(state, cid, k, views))
        assert_agrees_with_policy(state, cid, fast)


def perturbed(state, cid, facts, catalogue):
    """The state with one customer's policy facts and every product's policy facts replaced."""
    risk, kyc, rich, opted = facts
    row = pd.DataFrame({"customer_id": [cid], "risk_level": [np.nan if risk is None else risk],
                        "kyc_verified": [kyc], "total_assets": [QUALIFIED_ASSETS if rich else 0.0],
                        "marketing_opt_out": [opted]})  # fmt: skip
    inputs = state.recommend_inputs
    policy = inputs.policy_customers.copy()
    new = customer_policy(row, qualified_min_assets=QUALIFIED_ASSETS)
    for column in new.columns:
        policy.loc[cid, column] = new[column].iloc[0]
    products = state.products.copy()
    products["risk_level"], products["is_active"], products["qualified_only"] = catalogue
    inputs = dataclasses.replace(inputs, policy_customers=policy)
    return dataclasses.replace(state, products=products, recommend_inputs=inputs)


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
    return cid, facts, catalogue, views, draw(st.integers(1, n + 2))


def test_random_customers_catalogues_and_visits_get_the_batch_answer(served):
    state = served

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(cases(state))
    def check(case):
        cid, facts, catalogue, views, k = case
        trial = perturbed(state, cid, facts, catalogue)
        fast = fast_answer(trial, cid, k, views)
        assert_same(fast, batch_answer(trial, cid, k, views))
        assert_agrees_with_policy(trial, cid, fast)
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
