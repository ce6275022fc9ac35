"""Turn a recommend request into an answer: the shared recommender for known customers, cold start
for new ones, THE policy (`serving.policy.apply_policy`) over every candidate, ranks and reasons.

Returns the answer and the excluded (customer, product, reason) rows so the service can count
and audit every exclusion.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from features.contract import CUSTOMER_ID, PRODUCT_ID
from features.holdings import HOLDING_COLUMNS
from portrait.errors import PortraitError
from serving.cold_start import (
    cold_start_candidates,
    newcomer_frame,
    newcomer_policy,
    popular_candidates,
)
from serving.policy import apply_policy
from serving.recommend import recommend
from serving.schemas import RecommendRequest
from serving.state import ServingState

FILL_REASON = "fallback: a suitable product from the catalogue (no better signal)"
OPT_OUT_TEMPLATE = "non-personalised: held by {:.0%} of all customers (marketing opt-out)"
EMPTY_HOLDINGS = pd.DataFrame({c: pd.Series(dtype=str) for c in HOLDING_COLUMNS[:2]})


class UnknownCustomer(PortraitError):
    """The customer is not in the portrait and the request carries no attributes for a cold start."""


def recommend_answer(
    state: ServingState, request: RecommendRequest
) -> tuple[dict[str, Any], pd.DataFrame]:
    """The answer to one recommend request and the rows the policy excluded."""
    if state.knows(request.customer_id):
        return known_answer(state, request)
    if request.attributes is None:
        raise UnknownCustomer(
            f"customer {request.customer_id!r} is not in the portrait as of {state.as_of.date()}; "
            "send 'attributes' (age, occupation, income_band, risk_level) for a cold-start plan"
        )
    return cold_start_answer(state, request)


def cold_start_answer(
    state: ServingState, request: RecommendRequest
) -> tuple[dict[str, Any], pd.DataFrame]:
    """A plan from similar new customers' segment, labelled cold start."""
    attributes = request.attributes.model_dump()
    frame = newcomer_frame(request.customer_id, attributes)
    policy = newcomer_policy(frame, qualified_min_assets=state.settings.policy.qualified_min_assets)
    opted_out = bool(attributes["marketing_opt_out"])
    segment = None if opted_out else newcomer_segment(state, frame)
    candidates = (
        popular_candidates(state.popularity, request.customer_id, OPT_OUT_TEMPLATE)
        if opted_out
        else cold_start_candidates(state.popularity, request.customer_id, segment)
    )
    items, excluded = finish(
        state, candidates, policy, EMPTY_HOLDINGS, k=request.k, personalised=not opted_out
    )
    label = "non-personalised (marketing opt-out)" if opted_out else "cold start"
    answer = envelope(
        state, request, items, personalised=not opted_out, cold_start=True, label=label
    )
    answer["segment_name"] = None if segment is None else segment["segment_name"]
    return answer, excluded


def newcomer_segment(state: ServingState, frame: pd.DataFrame) -> dict[str, Any] | None:
    """Segment of a newcomer from sign-up attributes (None without a segmentation model)."""
    if state.segmentation is None:
        return None
    from training.segments import SIGNUP_FEATURES, assign_segment

    row = assign_segment(state.segmentation, frame[[CUSTOMER_ID, *SIGNUP_FEATURES]]).iloc[0]
    return {"segment_id": int(row["segment_id"]), "segment_name": str(row["segment_name"])}


def finish(
    state: ServingState,
    candidates: pd.DataFrame,
    policy: pd.DataFrame,
    holdings: pd.DataFrame,
    *,
    k: int,
    personalised: bool,
) -> tuple[list[dict[str, Any]], pd.DataFrame]:
    """Apply THE policy to candidates (topped up from the catalogue), keep the best k, rank them."""
    customer_id = str(policy[CUSTOMER_ID].iloc[0])
    catalogue = pd.DataFrame(
        {
            CUSTOMER_ID: customer_id,
            PRODUCT_ID: state.products.index.to_numpy(),
            "score": 0.0,
            "reasons": [[FILL_REASON]] * len(state.products),
        }
    )
    pool = pd.concat([candidates, catalogue], ignore_index=True).drop_duplicates(PRODUCT_ID)
    result = apply_policy(
        pool,
        customers=policy,
        products=state.products.reset_index(drop=True),
        holdings=holdings,
        personalised=personalised,
    )
    kept = result.kept.sort_values(["score", PRODUCT_ID], ascending=[False, True], kind="stable")
    excluded = result.excluded.loc[result.excluded.index < len(candidates)]
    return items_from(state, kept.head(k)), excluded[[CUSTOMER_ID, PRODUCT_ID, "reason"]]


def items_from(state: ServingState, kept: pd.DataFrame) -> list[dict[str, Any]]:
    """Response items: rank, product facts, score and reasons."""
    products = state.products.loc[kept[PRODUCT_ID].astype(str)]
    return [
        {
            "rank": rank,
            "product_id": pid,
            "name": str(products.at[pid, "name"]),
            "category": str(products.at[pid, "category"]),
            "risk_level": int(products.at[pid, "risk_level"]),
            "score": float(score),
            "reasons": [str(r) for r in reasons],
        }
        for rank, (pid, score, reasons) in enumerate(
            zip(kept[PRODUCT_ID].astype(str), kept["score"], kept["reasons"], strict=True), start=1
        )
    ]


def envelope(
    state: ServingState,
    request: RecommendRequest,
    items: list[dict[str, Any]],
    *,
    personalised: bool,
    cold_start: bool,
    label: str,
) -> dict[str, Any]:
    """The fields every recommend answer carries around its items."""
    segment = state.segment_of(request.customer_id)
    return {
        "customer_id": request.customer_id,
        "personalised": personalised,
        "cold_start": cold_start,
        "label": label,
        "segment_name": segment.get("segment_name"),
        "model_version": state.model_version,
        "as_of": str(state.as_of.date()),
        "items": items,
    }


def smoke_check(state: ServingState) -> None:
    """One real prediction for a known customer and one cold start; raises when either fails."""
    if state.portrait.empty:
        raise PortraitError(f"run {state.run_dir} has an empty portrait; nothing to serve")
    customer = str(state.portrait.index[0])
    answer, _ = known_answer(state, RecommendRequest(customer_id=customer, k=3))
    if not isinstance(answer["items"], list):
        raise PortraitError(f"smoke prediction for {customer} returned no item list")
    cold = RecommendRequest(customer_id="__smoke__", k=3, attributes={"age": 30})
    cold_start_answer(state, cold)


def known_answer(
    state: ServingState, request: RecommendRequest
) -> tuple[dict[str, Any], pd.DataFrame]:
    """A known customer's answer from THE shared recommender (`serving.recommend.recommend`)."""
    inputs = state.recommend_inputs
    if not state.products["is_active"].astype(bool).any():  # nothing on sale: nothing to rank
        empty = pd.DataFrame({c: pd.Series(dtype=str) for c in (CUSTOMER_ID, PRODUCT_ID, "reason")})
        answer = envelope(state, request, [], personalised=False, cold_start=False,
                          label="nothing on sale")  # fmt: skip
        return answer, empty
    ranked = recommend(
        request.customer_id,
        portrait=inputs.portrait,
        products=state.products,
        holdings=inputs.holdings,
        conversion_model=state.models.get("conversion"),
        rule_base=state.rule_base,
        segments=inputs.segments,
        policy_customers=inputs.policy_customers,
        k=request.k,
        context=state.pair_context,
        session_events=session_frame(request, state.as_of),
    )
    personalised = bool(len(ranked)) and bool(ranked["personalised"].all())
    opted_out = bool(inputs.policy_customers.at[request.customer_id, "marketing_opt_out"])
    label = (
        "personalised"
        if personalised
        else "non-personalised (marketing opt-out)"
        if opted_out
        else "non-personalised (popular overall)"
    )
    answer = envelope(state, request, items_from(state, ranked), personalised=personalised,
                      cold_start=False, label=label)  # fmt: skip
    return answer, excluded_rows(ranked, request.customer_id)


def session_frame(request: RecommendRequest, as_of: pd.Timestamp) -> pd.DataFrame | None:
    """The request's current-session events in the events schema (they happen 'now', at as_of)."""
    if not request.session_events:
        return None
    return pd.DataFrame(
        {
            CUSTOMER_ID: request.customer_id,
            "ts": as_of,
            "event": [e.event for e in request.session_events],
            "page": [e.page for e in request.session_events],
            PRODUCT_ID: [e.product_id for e in request.session_events],
        }
    )


def excluded_rows(ranked: pd.DataFrame, customer_id: str) -> pd.DataFrame:
    """The recommender's exclusions as (customer_id, product_id, reason) rows for the audit.

    Uses the per-pair rows when the recommender provides them (`attrs["excluded_rows"]`), else
    one row per reason and excluded product count, product_id "*" (the counts stay exact).
    """
    rows = ranked.attrs.get("excluded_rows")
    if rows is not None:
        return rows[[CUSTOMER_ID, PRODUCT_ID, "reason"]]
    counts = {r: n for r, n in ranked.attrs.get("excluded", {}).items() if n}
    reasons = [r for r, n in counts.items() for _ in range(n)]
    return pd.DataFrame({CUSTOMER_ID: customer_id, PRODUCT_ID: "*", "reason": reasons})
