"""Turn a recommend request into an answer: the one recommender for known customers
(`serving.recommend_one`: batch scoring's candidates, policy, top-k and reasons, moved by the
visit's views), cold start for new ones, THE policy (`features.policy.exclusion_codes`) over every
candidate. Returns the answer and the policy's exclusions so the service counts and audits each.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import pandas as pd

from features.contract import CUSTOMER_ID
from portrait.errors import PortraitError
from serving.audit import Exclusions
from serving.cold_start import newcomer_candidates, newcomer_facts, newcomer_frame
from serving.recommend_one import newcomer_one, recommend_one
from serving.schemas import RecommendRequest
from serving.state import ServingState


class UnknownCustomer(PortraitError):
    """The customer is not in the portrait and the request carries no attributes for a cold start."""


def recommend_answer(
    state: ServingState, request: RecommendRequest
) -> tuple[dict[str, Any], Exclusions]:
    """The answer to one recommend request and the policy's exclusions."""
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
) -> tuple[dict[str, Any], Exclusions]:
    """A plan from similar new customers' segment, labelled cold start."""
    attributes = request.attributes.model_dump()
    frame = newcomer_frame(request.customer_id, attributes)
    facts = newcomer_facts(frame, qualified_min_assets=state.settings.policy.qualified_min_assets)
    opted_out = bool(attributes["marketing_opt_out"])
    segment = None if opted_out else newcomer_segment(state, frame)
    one = newcomer_one(
        state.candidates, state.product_facts, facts, request.customer_id, k=request.k,
        candidates=newcomer_candidates(state.popularity_lists, segment, opted_out=opted_out),
        personalised=not opted_out,
    )  # fmt: skip
    label = "non-personalised (marketing opt-out)" if opted_out else "cold start"
    answer = envelope(
        state, request, one.items, personalised=not opted_out, cold_start=True, label=label
    )
    answer["segment_name"] = None if segment is None else segment["segment_name"]
    return answer, one.excluded


def newcomer_segment(state: ServingState, frame: pd.DataFrame) -> dict[str, Any] | None:
    """Segment of a newcomer from sign-up attributes (None without a segmentation model, or when
    its sign-up attributes did not place held-out customers better than the largest segment)."""
    if state.segmentation is None or not getattr(
        state.segmentation, "cold_start_informative_", True
    ):
        return None
    from training.segments.model import SIGNUP_FEATURES

    signup = tuple(frame[list(SIGNUP_FEATURES)].iloc[0].tolist())
    segment_id, name = _signup_segment(state.segmentation, signup)
    return {"segment_id": segment_id, "segment_name": name}


@lru_cache(maxsize=4096)
def _signup_segment(segmentation: Any, signup: tuple[Any, ...]) -> tuple[int, str]:
    """The sign-up classifier's segment for one set of sign-up attributes (a pure function, memoised:
    the classifier costs milliseconds, and newcomers share few distinct attribute sets)."""
    from training.segments.model import SIGNUP_FEATURES, assign_segment

    frame = pd.DataFrame([("__newcomer__", *signup)], columns=[CUSTOMER_ID, *SIGNUP_FEATURES])
    row = assign_segment(segmentation, frame).iloc[0]
    return int(row["segment_id"]), str(row["segment_name"])


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
) -> tuple[dict[str, Any], Exclusions]:
    """A known customer's answer: the one recommender's, from the state's candidate index."""
    products = state.product_facts
    if not products.active.any():  # nothing on sale: nothing to rank
        empty = Exclusions(request.customer_id, [], [])
        answer = envelope(state, request, [], personalised=False, cold_start=False,
                          label="nothing on sale")  # fmt: skip
        return answer, empty
    customers = state.customer_facts
    one = recommend_one(
        state.candidates, products, customers, request.customer_id, k=request.k,
        session_products=[e.product_id for e in request.session_events if e.product_id],
        model=state.models.get("conversion"),
    )  # fmt: skip
    opted_out = bool(customers.opted_out[state.candidates.customer_pos[request.customer_id]])
    label = (
        "personalised"
        if one.personalised
        else "non-personalised (marketing opt-out)"
        if opted_out
        else "non-personalised (popular overall)"
    )
    answer = envelope(state, request, one.items, personalised=one.personalised,
                      cold_start=False, label=label)  # fmt: skip
    return answer, one.excluded
