"""The customer profile for front-line staff, and the paged behaviour timeline behind it.

Kept short on purpose (seed 004: staff have little time, useless tags waste it): a handful of
key features, segment, value tier, lifecycle stage, tags, churn risk with reasons, holdings and
the recent events and transactions, newest first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from features.contract import CUSTOMER_ID, PRODUCT_ID, TS
from features.timeline import before

if TYPE_CHECKING:
    from serving.state import ServingState

KEY_FEATURES = (
    "age", "gender", "occupation", "income_band", "city_tier", "channel", "risk_level",
    "kyc_verified", "marketing_opt_out", "tenure_days", "total_assets", "asset_trend_90d",
    "return_365d", "n_products_held", "invested_total", "n_buy_90d", "days_since_last_buy",
    "investment_cycle_days", "logins_30d", "product_views_30d", "days_since_last_login",
    "funnel_stage", "complaints_90d", "survey_score_last", "is_active",
)  # fmt: skip
TIMELINE_COLUMNS = [CUSTOMER_ID, TS, "kind", "what", PRODUCT_ID, "page", "amount"]
CHURN_BANDS = ((0.5, "high"), (0.2, "medium"), (0.0, "low"))


@dataclass(frozen=True, eq=False)
class TimelineIndex:
    """Events and transactions sorted by customer then newest first, with each customer's row range."""

    frame: pd.DataFrame
    bounds: dict[str, tuple[int, int]]

    def page(self, customer_id: str, *, page: int, page_size: int) -> dict[str, Any]:
        """One page of a customer's timeline (page 1 is the newest) and the total row count."""
        start, stop = self.bounds.get(customer_id, (0, 0))
        first = start + (page - 1) * page_size
        rows = self.frame.iloc[first : min(first + page_size, stop)] if first < stop else None
        items = [] if rows is None else [_timeline_item(r) for r in rows.itertuples(index=False)]
        return {"page": page, "page_size": page_size, "total": stop - start, "items": items}


def build_timeline_index(tables: dict[str, pd.DataFrame], *, as_of: pd.Timestamp) -> TimelineIndex:
    """Index every event and transaction before `as_of` by customer, newest first."""
    events = before(tables["events"], as_of)
    txns = before(tables["transactions"], as_of)
    parts = [
        pd.DataFrame(
            {
                CUSTOMER_ID: events[CUSTOMER_ID].astype(str).to_numpy(),
                TS: events[TS].to_numpy(),
                "kind": "event",
                "what": events["event"].astype(str).to_numpy(),
                PRODUCT_ID: events[PRODUCT_ID].astype(object).to_numpy(),
                "page": events["page"].astype(object).to_numpy(),
                "amount": np.nan,
            }
        ),
        pd.DataFrame(
            {
                CUSTOMER_ID: txns[CUSTOMER_ID].astype(str).to_numpy(),
                TS: txns[TS].to_numpy(),
                "kind": "transaction",
                "what": txns["type"].astype(str).to_numpy(),
                PRODUCT_ID: txns[PRODUCT_ID].astype(object).to_numpy(),
                "page": None,
                "amount": txns["amount"].astype(float).to_numpy(),
            }
        ),
    ]
    frame = pd.concat(parts, ignore_index=True)[TIMELINE_COLUMNS]
    frame = frame.sort_values(
        [CUSTOMER_ID, TS, "kind"], ascending=[True, False, True], kind="stable"
    ).reset_index(drop=True)
    ids, starts, counts = np.unique(
        frame[CUSTOMER_ID].to_numpy(dtype=object), return_index=True, return_counts=True
    )
    bounds = {str(c): (int(s), int(s + n)) for c, s, n in zip(ids, starts, counts, strict=True)}
    return TimelineIndex(frame, bounds)


def _timeline_item(row: Any) -> dict[str, Any]:
    return {
        "ts": pd.Timestamp(row.ts).isoformat(),
        "kind": row.kind,
        "what": row.what,
        "product_id": plain(row.product_id),
        "page": plain(row.page),
        "amount": plain(row.amount),
    }


def plain(value: Any) -> Any:
    """A JSON-safe Python value: NaN/NA -> None, numpy scalars -> int/float/bool/str."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


def churn_band(probability: float | None) -> str:
    """high / medium / low, or "not scored" for customers inactive at the cut-off."""
    if probability is None:
        return "not scored (inactive at the cut-off)"
    return next(name for floor, name in CHURN_BANDS if probability >= floor)


def build_profile(
    state: ServingState, customer_id: str, *, page: int, page_size: int
) -> dict[str, Any]:
    """The profile of a customer known to `state` (the caller checks that it is known)."""
    row = state.portrait.loc[customer_id]
    segment = state.segment_of(customer_id)
    probability = plain(state.churn_probability.get(customer_id))
    return {
        "customer_id": customer_id,
        "as_of": str(state.as_of.date()),
        "key_features": {c: plain(row[c]) for c in KEY_FEATURES if c in row.index},
        "segment_id": plain(segment.get("segment_id")),
        "segment_name": plain(segment.get("segment_name")),
        "value_tier": plain(segment.get("value_tier")),
        "lifecycle_stage": plain(segment.get("lifecycle_stage")),
        "tags": [str(t) for t in segment.get("tags", [])],
        "churn": {
            "probability": probability,
            "band": churn_band(probability),
            "reasons": state.churn_reasons_of(customer_id),
        },
        "holdings": holdings_of(state, customer_id),
        "timeline": state.timeline.page(customer_id, page=page, page_size=page_size),
    }


def holdings_of(state: ServingState, customer_id: str) -> list[dict[str, Any]]:
    """The customer's holdings with product name, category and risk level."""
    held = state.holdings_by_customer.get(customer_id)
    if held is None:
        return []
    products = state.products.loc[held[PRODUCT_ID]]
    return [
        {
            "product_id": pid,
            "name": str(products.at[pid, "name"]),
            "category": str(products.at[pid, "category"]),
            "risk_level": int(products.at[pid, "risk_level"]),
            "invested": float(inv),
            "first_buy_at": plain(first),
            "last_buy_at": plain(last),
        }
        for pid, inv, first, last in zip(
            held[PRODUCT_ID],
            held["invested"],
            held["first_buy_at"],
            held["last_buy_at"],
            strict=True,
        )
    ]
