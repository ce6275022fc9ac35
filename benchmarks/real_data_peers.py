"""Peers of benchmarks/real_data.py: BG/NBD's inputs (churn on CDNOW) and a top-k of item scores.

The peers themselves are the project's one implementation of each method: BG/NBD (Fader,
Hardie & Lee 2005; training/models/bgnbd.py, what the `lifetimes` package computes, which is not
installed here) and EASE^R (Steck 2019; features/candidates.py).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.repeat import repeat_inputs
from features.timeline import customer_codes


def repeat_summary(purchases: pd.DataFrame, *, as_of: pd.Timestamp) -> pd.DataFrame:
    """Per customer with a purchase before `as_of`: BG/NBD's inputs as the portrait computes them
    (features/repeat.py, stream `txn`: repeat days, days first to last, days first to as_of) and
    the days since the last purchase."""
    index = pd.Index(purchases["customer_id"].unique())
    codes = customer_codes(purchases["customer_id"], index)
    inputs = repeat_inputs(codes, purchases["ts"], len(index), as_of).set_index(index)
    out = inputs[["frequency", "recency_days", "age_days"]].add_prefix("txn_")
    return out.assign(days_since_last=inputs["age_days"] - inputs["recency_days"])


def top_k(
    scores: np.ndarray, held: np.ndarray, users: pd.Index, items: pd.Index, *, k: int
) -> pd.DataFrame:
    """[customer_id, product_id, score, rank] of each user's k best items not held."""
    masked = np.where(held > 0, -np.inf, scores)
    order = np.argsort(-masked, axis=1, kind="stable")[:, :k]
    picked = np.take_along_axis(masked, order, axis=1)
    frame = pd.DataFrame({
        "customer_id": np.repeat(users.to_numpy(), k), "product_id": items.to_numpy()[order.ravel()],
        "score": picked.ravel(), "rank": np.tile(np.arange(1, k + 1), len(users)),
    })  # fmt: skip
    return frame.loc[np.isfinite(frame["score"])].reset_index(drop=True)
