"""Returns robust to deposits and withdrawals: the modified Dietz method over balance snapshots."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.contract import CUSTOMER_ID, TS
from features.timeline import DAY, before

EXTERNAL_FLOWS = {"deposit": 1.0, "withdraw": -1.0}


def modified_dietz(
    balances: pd.DataFrame, transactions: pd.DataFrame, *, as_of: pd.Timestamp, days: int
) -> pd.Series:
    """Per-customer return over the `days` ending at the last balance snapshot before `as_of`.

    R = (V1 - V0 - F) / (V0 + sum(w_i * F_i)), with F_i the deposits (+) and withdrawals (-)
    in (t0, t1] and w_i = (t1 - t_i) / (t1 - t0) the share of the period each flow was invested.
    V0 is the latest snapshot at or before t1 - days (0 when the customer had none yet).
    NaN where the denominator is not positive (nothing was invested).
    """
    snaps = before(balances, as_of, column="date").sort_values("date", kind="stable")
    if snaps.empty:
        return pd.Series(dtype=float, name=f"return_{days}d")
    ends = snaps.groupby(CUSTOMER_ID, sort=True).agg(
        t1=("date", "last"), v1=("total_assets", "last")
    )
    ends["target"] = ends["t1"] - pd.Timedelta(days=days)
    starts = pd.merge_asof(
        ends.reset_index().sort_values("target"),
        snaps.rename(columns={"date": "t0", "total_assets": "v0"})[[CUSTOMER_ID, "t0", "v0"]],
        left_on="target",
        right_on="t0",
        by=CUSTOMER_ID,
        direction="backward",
    ).set_index(CUSTOMER_ID)
    starts["v0"] = starts["v0"].fillna(0.0)
    starts["t0"] = starts["t0"].fillna(starts["target"])
    net, weighted = _weighted_flows(transactions, starts)
    v0, v1 = starts["v0"], starts["v1"]
    denominator = v0 + weighted.reindex(starts.index, fill_value=0.0)
    gain = v1 - v0 - net.reindex(starts.index, fill_value=0.0)
    result = (gain / denominator).where(denominator > 0)
    return result.sort_index().rename(f"return_{days}d")


def _weighted_flows(
    transactions: pd.DataFrame, periods: pd.DataFrame
) -> tuple[pd.Series, pd.Series]:
    """Net external flow and its time-weighted sum inside each customer's (t0, t1]."""
    flows = transactions.loc[
        transactions["type"].isin(list(EXTERNAL_FLOWS)), [CUSTOMER_ID, TS, "type", "amount"]
    ]
    if flows.empty:
        empty = pd.Series(dtype=float)
        return empty, empty
    flows = flows.merge(periods[["t0", "t1"]], left_on=CUSTOMER_ID, right_index=True, how="inner")
    flows = flows.loc[(flows[TS] > flows["t0"]) & (flows[TS] <= flows["t1"])]
    signed = flows["amount"] * flows["type"].map(EXTERNAL_FLOWS).astype(float)
    length = (flows["t1"] - flows["t0"]) / DAY
    weight = ((flows["t1"] - flows[TS]) / DAY) / length.where(length > 0, np.nan)
    frame = pd.DataFrame(
        {CUSTOMER_ID: flows[CUSTOMER_ID], "net": signed, "weighted": signed * weight.fillna(0.0)}
    )
    sums = frame.groupby(CUSTOMER_ID, sort=True)[["net", "weighted"]].sum()
    return sums["net"], sums["weighted"]
