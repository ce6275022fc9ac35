"""Value tiers as in the source material: TOP-N large customers, potential large ones, small ones.

- ``top``: the `top_n` customers with the largest total assets (ties by customer_id), assets > 0.
- ``potential_large``: not top, but already holding at least ``floor`` x the smallest top-tier
  balance and growing like a future large customer: 90-day asset trend >= ``min_trend`` (about
  +10% for 0.05, see ``asset_trend_90d``) or net inflow over 90 days >= ``min_inflow_share`` of
  that top-tier threshold. `measure_potential` checks this rule back in time.
- ``small``: everyone else.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.contract import CUSTOMER_ID
from features.trading import asset_features, trading_features
from portrait.errors import PortraitError

TIERS = ("top", "potential_large", "small")
TIER_INPUTS = ("total_assets", "asset_trend_90d", "net_flow_90d")


@dataclass(frozen=True)
class PotentialRule:
    """Thresholds of the documented potential-large rule."""

    floor: float = 0.1
    min_trend: float = 0.05
    min_inflow_share: float = 0.05


def value_tiers(
    portrait: pd.DataFrame, *, top_n: int, rule: PotentialRule = PotentialRule()
) -> pd.DataFrame:
    """customer_id, value_tier and the top-tier asset threshold used, one row per customer."""
    if top_n < 1:
        raise PortraitError(f"segments.top_n must be at least 1, got {top_n}")
    missing = [c for c in (CUSTOMER_ID, *TIER_INPUTS) if c not in portrait]
    if missing:
        raise PortraitError(
            f"value tiers need portrait column(s) {missing}; build them with build_features"
        )
    assets = portrait["total_assets"].astype(float).fillna(0.0).to_numpy()
    order = np.lexsort((portrait[CUSTOMER_ID].astype(str).to_numpy(), -assets))
    top = np.zeros(len(portrait), dtype=bool)
    top[order[:top_n]] = True
    top &= assets > 0
    threshold = float(assets[top].min()) if top.any() else float("inf")
    potential = ~top & potential_rule(portrait, threshold=threshold, rule=rule)
    tier = np.select([top, potential], ["top", "potential_large"], "small")
    return pd.DataFrame(
        {
            CUSTOMER_ID: portrait[CUSTOMER_ID].to_numpy(),
            "value_tier": tier,
            "top_threshold": threshold,
        }
    )


def potential_rule(portrait: pd.DataFrame, *, threshold: float, rule: PotentialRule) -> np.ndarray:
    """True where assets reach `floor` x threshold and the asset trend or the net inflow is strong."""
    assets = portrait["total_assets"].astype(float).fillna(0.0).to_numpy()
    trend = portrait["asset_trend_90d"].astype(float).fillna(0.0).to_numpy()
    inflow = portrait["net_flow_90d"].astype(float).fillna(0.0).to_numpy()
    big_enough = assets >= rule.floor * threshold
    growing = (trend >= rule.min_trend) | (inflow >= rule.min_inflow_share * threshold)
    return big_enough & growing


def tier_inputs(tables: dict[str, pd.DataFrame], *, as_of: pd.Timestamp) -> pd.DataFrame:
    """Only the portrait columns the tiers need, for customers signed up before `as_of` (cheap)."""
    customers = tables["customers"]
    index = pd.Index(
        customers.loc[customers["signup_at"] < as_of, CUSTOMER_ID].sort_values(), name=CUSTOMER_ID
    )
    assets = asset_features(tables, index, as_of=as_of)[["total_assets", "asset_trend_90d"]]
    flows = trading_features(tables, index, as_of=as_of)[["net_flow_90d"]]
    return pd.concat([assets, flows], axis=1).reset_index()


def measure_potential(
    tables: dict[str, pd.DataFrame], *, as_of: pd.Timestamp, top_n: int, back_days: int = 180,
    rule: PotentialRule = PotentialRule(),
) -> dict[str, float]:  # fmt: skip
    """Back-test: tiers at `as_of - back_days`; how many non-top customers are in the top tier at `as_of`.

    Reports the share that made it among potential_large (precision), among small (base rate),
    their ratio (lift) and the share of newcomers to the top tier the rule had flagged (recall).
    """
    as_of = pd.Timestamp(as_of)
    then = value_tiers(
        tier_inputs(tables, as_of=as_of - pd.Timedelta(days=back_days)), top_n=top_n, rule=rule
    )
    now = value_tiers(tier_inputs(tables, as_of=as_of), top_n=top_n, rule=rule)
    reached = then[CUSTOMER_ID].isin(now.loc[now["value_tier"] == "top", CUSTOMER_ID])
    potential = then["value_tier"].eq("potential_large")
    small = then["value_tier"].eq("small")
    precision = float(reached[potential].mean()) if potential.any() else float("nan")
    base = float(reached[small].mean()) if small.any() else float("nan")
    newcomers = reached & ~then["value_tier"].eq("top")
    return {
        "potential_flagged": int(potential.sum()),
        "potential_precision": precision,
        "small_base_rate": base,
        "potential_lift": precision / base if base > 0 else float("nan"),
        "potential_recall": float(potential[newcomers].mean()) if newcomers.any() else float("nan"),
        "top_newcomers": int(newcomers.sum()),
    }
