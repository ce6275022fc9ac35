"""Labels per the contract, at a cut-off, and training sets over earlier cut-offs."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from features.contract import CUSTOMER_ID, PRODUCT_ID, TS
from features.engagement import DEFAULT, active_customers, engagement
from features.holdings import build_holdings
from features.timeline import activity, between, in_ids
from portrait.settings import EngagementSettings


def build_churn_labels(
    tables: dict[str, pd.DataFrame],
    *,
    as_of: pd.Timestamp,
    active_days: int = 90,
    horizon_days: int = 60,
    rule: EngagementSettings = DEFAULT,
    active: pd.Index | None = None,
) -> pd.DataFrame:
    """`churned` = 1 for an active customer with no engagement in [as_of, as_of + horizon).

    Active and departed are decided on rows before `as_of` only; sells and withdrawals in the
    horizon are leaving, not staying (unless `rule` counts them as engagement). `active`: the
    active customers when known (a portrait's `is_active` at `as_of` by the same rule and
    `active_days`), else computed here.
    """
    as_of = pd.Timestamp(as_of)
    if active is None:
        active = active_customers(tables, as_of=as_of, active_days=active_days, rule=rule)
    future = between(engagement(tables, rule=rule), as_of, as_of + pd.Timedelta(days=horizon_days))
    seen = pd.Index(future[CUSTOMER_ID].unique())
    return pd.DataFrame({CUSTOMER_ID: active, "churned": (~in_ids(active, seen)).astype(int)})


def build_conversion_labels(
    tables: dict[str, pd.DataFrame], *, as_of: pd.Timestamp, horizon_days: int = 60
) -> pd.DataFrame:
    """(customer, product) pairs bought in [as_of, as_of + horizon) that the customer did not hold at as_of."""
    as_of = pd.Timestamp(as_of)
    txns = between(tables["transactions"], as_of, as_of + pd.Timedelta(days=horizon_days))
    bought = txns.loc[(txns["type"] == "buy") & txns[PRODUCT_ID].notna(), [CUSTOMER_ID, PRODUCT_ID]]
    bought = bought.drop_duplicates()
    held = build_holdings(tables["transactions"], as_of=as_of)[[CUSTOMER_ID, PRODUCT_ID]]
    merged = bought.merge(held, on=[CUSTOMER_ID, PRODUCT_ID], how="left", indicator=True)
    new = merged.loc[merged["_merge"] == "left_only", [CUSTOMER_ID, PRODUCT_ID]]
    return new.assign(converted=1).sort_values([CUSTOMER_ID, PRODUCT_ID]).reset_index(drop=True)


def training_cutoffs(as_of: pd.Timestamp, *, horizon_days: int, n: int) -> list[pd.Timestamp]:
    """Earlier cut-offs whose label horizon closes before `as_of`, oldest first; the last is validation."""
    as_of = pd.Timestamp(as_of)
    return [as_of - pd.Timedelta(days=horizon_days * i) for i in range(n, 0, -1)]


def latest_timestamp(tables: dict[str, pd.DataFrame]) -> pd.Timestamp:
    """The newest event or transaction: a label window must close before it to be observed."""
    return pd.Timestamp(activity(tables)[TS].max())


def stack_cutoffs(
    cutoffs: list[pd.Timestamp], build: Callable[[pd.Timestamp], pd.DataFrame]
) -> pd.DataFrame:
    """Concatenate `build(cutoff)` frames with a `cutoff` column (time-ordered training set)."""
    frames = [build(c).assign(cutoff=c) for c in cutoffs]
    return pd.concat(frames, ignore_index=True)
