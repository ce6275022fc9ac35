"""Lifecycle stage per customer at a cut-off, and the counts moving between stages over cut-offs.

Rules, first match wins (activity = engagement before the cut-off: an event, a deposit or a buy
by default, features/engagement.py; sells and withdrawals are leaving, not activity):

1. ``churned``: departed (assets withdrawn to about zero, no engagement since), whatever else.
2. ``new``: signed up less than ``new_days`` ago.
3. ``churned``: no activity for ``churned_days`` or more (or never any).
4. ``dormant``: no activity in the last ``active_days`` (not active, not yet churned).
5. ``declining``: 90-day asset trend <= -``trend`` or activity in the last 30 days under
   ``activity_drop`` (a third) x the monthly rate of the 60 days before (``events_trend``).
6. ``growing``: 90-day asset trend >= ``trend``, or any positive trend in the first year.
7. ``mature``: everyone else (active, steady).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.contract import CUSTOMER_ID, TS
from features.engagement import DEFAULT, departed_mask, last_engagement
from features.timeline import (
    before,
    count_by,
    customer_codes,
    days_before,
    days_since,
)
from features.trading import asset_features
from portrait.errors import PortraitError
from portrait.settings import EngagementSettings

STAGES = ("new", "growing", "mature", "declining", "dormant", "churned")
NOT_SIGNED_UP = "not_signed_up"
LIFECYCLE_INPUTS = ("tenure_days", "days_since_last_activity", "asset_trend_90d", "events_trend")
DEPARTED = "departed"  # optional input column: True puts the customer in `churned`


@dataclass(frozen=True)
class LifecycleRule:
    """Thresholds of the lifecycle rules (days, and trend levels on the portrait's scales)."""

    new_days: int = 90
    active_days: int = 90
    churned_days: int = 180
    trend: float = 0.1
    activity_drop: float = 0.34


def lifecycle_frame(portrait: pd.DataFrame) -> pd.DataFrame:
    """The rule inputs from a portrait: days since the last engagement, and the departed flag."""
    if "days_since_last_engagement" in portrait:
        last = portrait["days_since_last_engagement"]
    else:  # a portrait from before engagement was a column: any event or transaction
        last = portrait[["days_since_last_event", "days_since_last_transaction"]].min(axis=1)
    departed = portrait.get("is_departed", False)
    return pd.DataFrame(
        {
            CUSTOMER_ID: portrait[CUSTOMER_ID].to_numpy(),
            "tenure_days": portrait["tenure_days"].to_numpy(dtype=float),
            "days_since_last_activity": last.to_numpy(dtype=float),
            "asset_trend_90d": portrait["asset_trend_90d"].to_numpy(dtype=float),
            "events_trend": portrait["events_trend"].to_numpy(dtype=float),
            DEPARTED: np.broadcast_to(np.asarray(departed, dtype=bool), len(portrait)),
        }
    )


def lifecycle_stages(inputs: pd.DataFrame, *, rule: LifecycleRule = LifecycleRule()) -> pd.Series:
    """Stage name per row of `inputs` (columns LIFECYCLE_INPUTS), by the module's documented rules."""
    missing = [c for c in LIFECYCLE_INPUTS if c not in inputs]
    if missing:
        raise PortraitError(
            f"lifecycle stages need column(s) {missing}; use lifecycle_frame(portrait)"
        )
    if not 0 < rule.active_days <= rule.churned_days:
        raise PortraitError(
            f"lifecycle needs 0 < active_days <= churned_days, got {rule.active_days} and {rule.churned_days}"
        )
    tenure = inputs["tenure_days"].to_numpy(dtype=float)
    idle = inputs["days_since_last_activity"].fillna(np.inf).to_numpy(dtype=float)
    trend = inputs["asset_trend_90d"].fillna(0.0).to_numpy(dtype=float)
    events = inputs["events_trend"].fillna(1.0).to_numpy(dtype=float)
    departed = inputs[DEPARTED].to_numpy(dtype=bool) if DEPARTED in inputs else False
    conditions = [
        np.broadcast_to(departed, len(inputs)),
        tenure < rule.new_days,
        idle >= rule.churned_days,
        idle > rule.active_days,
        (trend <= -rule.trend) | (events <= rule.activity_drop),
        (trend >= rule.trend) | ((tenure < 365) & (trend > 0)),
    ]
    names = ["churned", "new", "churned", "dormant", "declining", "growing"]
    stage = np.select(conditions, names, "mature")
    return pd.Series(stage, index=inputs.index, name="lifecycle_stage")


def lifecycle_inputs(
    tables: dict[str, pd.DataFrame], *, as_of: pd.Timestamp,
    engagement: EngagementSettings = DEFAULT,
) -> pd.DataFrame:  # fmt: skip
    """Rule inputs computed straight from the tables at `as_of` (cheaper than a whole portrait)."""
    as_of = pd.Timestamp(as_of)
    customers = tables["customers"]
    customers = customers.loc[customers["signup_at"] < as_of].sort_values(CUSTOMER_ID)
    index = pd.Index(customers[CUSTOMER_ID], name=CUSTOMER_ID)
    n = len(index)
    last = last_engagement(tables, index, as_of=as_of, rule=engagement)
    events = before(tables["events"], as_of)
    event_codes = customer_codes(events[CUSTOMER_ID], index)
    age = days_before(events[TS], as_of)
    recent, previous = (
        count_by(event_codes[age <= 30], n),
        count_by(event_codes[(age > 30) & (age <= 90)], n),
    )
    trend = asset_features(tables, index, as_of=as_of)["asset_trend_90d"].to_numpy()
    return pd.DataFrame(
        {
            CUSTOMER_ID: index.to_numpy(),
            "tenure_days": ((as_of - customers["signup_at"]) / pd.Timedelta(days=1)).to_numpy(),
            "days_since_last_activity": days_since(last, as_of),
            "asset_trend_90d": trend,
            "events_trend": (recent + 1.0) / (previous / 2.0 + 1.0),
            DEPARTED: departed_mask(tables, index, as_of=as_of, rule=engagement),
        }
    )


def transition_cutoffs(as_of: pd.Timestamp, *, steps: int, step_days: int) -> list[pd.Timestamp]:
    """`steps + 1` consecutive cut-offs ending at `as_of`, oldest first."""
    as_of = pd.Timestamp(as_of)
    return [as_of - pd.Timedelta(days=step_days * i) for i in range(steps, -1, -1)]


def lifecycle_transitions(
    tables: dict[str, pd.DataFrame],
    *,
    cutoffs: list[pd.Timestamp],
    rule: LifecycleRule = LifecycleRule(),
    engagement: EngagementSettings = DEFAULT,
    known: dict[pd.Timestamp, pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """Counts of customers per (from_stage, to_stage) between each pair of consecutive cut-offs.

    Long form: from_cutoff, to_cutoff, from_stage, to_stage, customers. Customers who had not
    signed up at the earlier cut-off come from ``not_signed_up``. `known`: rule inputs already
    at hand for some cut-offs (`lifecycle_frame` of the run's portrait at as_of, built by the
    same `engagement` rule), used instead of computing them again from the tables.
    """
    if len(cutoffs) < 2:
        raise PortraitError("a lifecycle transition table needs at least two cut-offs")
    known = {pd.Timestamp(c): f for c, f in (known or {}).items()}
    stages = [
        (
            known[pd.Timestamp(c)] if pd.Timestamp(c) in known
            else lifecycle_inputs(tables, as_of=c, engagement=engagement)
        ).assign(stage=lambda f: lifecycle_stages(f, rule=rule).to_numpy())
        for c in cutoffs
    ]  # fmt: skip
    parts = []
    for i in range(1, len(cutoffs)):
        pair = stages[i][[CUSTOMER_ID, "stage"]].merge(
            stages[i - 1][[CUSTOMER_ID, "stage"]],
            on=CUSTOMER_ID,
            how="left",
            suffixes=("_to", "_from"),
        )
        counts = (
            pair.fillna({"stage_from": NOT_SIGNED_UP}).groupby(["stage_from", "stage_to"]).size()
        )
        parts.append(
            counts.rename("customers")
            .reset_index()
            .assign(from_cutoff=cutoffs[i - 1], to_cutoff=cutoffs[i])
        )
    table = pd.concat(parts, ignore_index=True).rename(
        columns={"stage_from": "from_stage", "stage_to": "to_stage"}
    )
    return table[["from_cutoff", "to_cutoff", "from_stage", "to_stage", "customers"]]


def transition_matrix(transitions: pd.DataFrame) -> pd.DataFrame:
    """Counts summed over all cut-off pairs as a from x to matrix in lifecycle order."""
    rows = [NOT_SIGNED_UP, *STAGES]
    matrix = transitions.pivot_table(
        index="from_stage", columns="to_stage", values="customers", aggfunc="sum", fill_value=0
    )
    return matrix.reindex(
        index=[r for r in rows if r in matrix.index], columns=list(STAGES), fill_value=0
    )
