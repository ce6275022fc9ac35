"""Repeat-engagement inputs per customer (the BG/NBD model's frequency, recency and age) at a cut-off.

Counted in whole days, over two streams: inflow transactions (deposit and buy, the classic
"purchases" of a BG/NBD model) and every engagement (events too, features/engagement.py).
`*_frequency` is the number of distinct later days with one (repeat days), `*_recency_days`
the days from the first to the last, `*_age_days` the days from the first to the cut-off
(NaN without any). No model is fitted here: each customer's numbers depend only on their own
rows, so a partitioned (Dask) portrait gives the same values; training/models/bgnbd.py fits the model.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.contract import CUSTOMER_ID, TS
from features.engagement import DEFAULT, engagement_codes
from features.timeline import DAY, before, count_by, customer_codes
from portrait.settings import EngagementSettings

STREAMS = ("txn", "eng")
WINDOWS = (7, 30, 60, 90, 365)


def repeat_inputs(codes: np.ndarray, ts: pd.Series, n: int, as_of: pd.Timestamp) -> pd.DataFrame:
    """frequency, recency_days, age_days and distinct days per trailing window, per customer code."""
    day = np.floor((ts.to_numpy() - np.datetime64(as_of, "ns")) / DAY).astype(np.int64)  # < 0
    keep = codes >= 0
    # distinct (customer, day) keys by hashing, not sorting: the order is never read
    pairs = pd.unique(codes[keep].astype(np.int64) * 1_000_000 + (day[keep] + 500_000))
    c, d = pairs // 1_000_000, pairs % 1_000_000 - 500_000
    days = count_by(c, n)
    first = np.full(n, np.iinfo(np.int64).max)
    last = np.full(n, np.iinfo(np.int64).min)
    np.minimum.at(first, c, d)
    np.maximum.at(last, c, d)
    seen = days > 0
    out = {
        "frequency": np.where(seen, days - 1, np.nan),
        "recency_days": np.where(seen, (last - first).astype(float), np.nan),
        "age_days": np.where(seen, -first.astype(float), np.nan),
    }
    for w in WINDOWS:
        out[f"days_{w}d"] = count_by(c[d >= -w], n)
    return pd.DataFrame(out | _rates(out))


def _rates(out: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The customer's own rhythm: days per day over a year, the last month against it, and the
    days they would have had since their last one at that rate (a quiet week means more for
    a daily user than for a monthly one)."""
    span = np.clip(out["age_days"] + 1.0, 1.0, 365.0)
    rate = out["days_365d"] / span
    before_month = (out["days_365d"] - out["days_30d"]) / np.maximum(span - 30.0, 30.0)
    return {
        "rate_365d": rate,
        "rate_trend_30d": (out["days_30d"] / 30.0 + 1e-3) / (before_month + 1e-3),
        "missed_days": (out["age_days"] - out["recency_days"]) * rate,
    }


def repeat_features(
    tables: dict[str, pd.DataFrame], index: pd.Index, *, as_of: pd.Timestamp,
    rule: EngagementSettings = DEFAULT,
) -> pd.DataFrame:  # fmt: skip
    """The repeat inputs of both streams as portrait columns (e.g. txn_frequency, eng_days_30d)."""
    txns = before(tables["transactions"], as_of)
    inflow = txns.loc[txns["type"].isin(["deposit", "buy"]), [CUSTOMER_ID, TS]]
    streams = {
        "txn": (customer_codes(inflow[CUSTOMER_ID], index), inflow[TS]),
        "eng": engagement_codes(tables, index, end=as_of, rule=rule),
    }
    parts = []
    for name, (codes, ts) in streams.items():
        part = repeat_inputs(codes, ts, len(index), as_of).add_prefix(f"{name}_")
        parts.append(part.set_axis(index))
    return pd.concat(parts, axis=1)
