"""Holdings at a cut-off, derived from buy and sell transactions (the contract has no positions table)."""

from __future__ import annotations

import pandas as pd

from features.contract import CUSTOMER_ID, PRODUCT_ID, TS
from features.timeline import before

HOLDING_COLUMNS = [CUSTOMER_ID, PRODUCT_ID, "invested", "bought", "first_buy_at", "last_buy_at"]


def build_holdings(transactions: pd.DataFrame, *, as_of: pd.Timestamp) -> pd.DataFrame:
    """Products each customer holds just before `as_of`, one row per (customer, product).

    A product is held when the customer's latest buy or sell of it before `as_of` is a buy:
    amounts include returns, so comparing bought and sold sums would misread a full sale at
    a loss as a remaining position. `invested` is bought minus sold, floored at zero.
    """
    trades = before(transactions, as_of)
    trades = trades.loc[trades["type"].isin(["buy", "sell"]) & trades[PRODUCT_ID].notna()]
    if trades.empty:
        return pd.DataFrame(columns=HOLDING_COLUMNS)
    trades = trades.assign(
        is_buy=trades["type"].eq("buy"),
        signed=trades["amount"].where(trades["type"].eq("buy"), -trades["amount"]),
    )
    ordered = trades.sort_values(TS, kind="stable")
    keys = [CUSTOMER_ID, PRODUCT_ID]
    grouped = ordered.groupby(keys, sort=True, observed=True)
    summary = grouped.agg(last_is_buy=("is_buy", "last"), invested=("signed", "sum"))
    buys = ordered.loc[ordered["is_buy"]].groupby(keys, sort=True, observed=True)
    buy_stats = buys.agg(
        bought=("amount", "sum"), first_buy_at=(TS, "min"), last_buy_at=(TS, "max")
    )
    summary = summary.join(buy_stats, how="left")
    held = summary.loc[summary["last_is_buy"]].drop(columns="last_is_buy")
    held["invested"] = held["invested"].clip(lower=0.0)
    return held.reset_index()[HOLDING_COLUMNS]
