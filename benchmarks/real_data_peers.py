"""Peers of benchmarks/real_data.py: BG/NBD (churn on CDNOW) and EASE^R (next best product), in numpy/scipy.

BG/NBD follows Fader, Hardie & Lee (2005), "Counting your customers the easy way": the
log-likelihood of (frequency x, recency t_x, age T) maximised over (r, alpha, a, b), and the
expected number of purchases in the next t periods given a customer's history (what the
`lifetimes` package computes; lifetimes 0.11.3 itself does not install on pandas 2).
EASE^R (Steck 2019): item-item weights B = -P / diag(P) with P = (X^T X + lambda I)^-1, diag 0.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import betaln, gammaln, hyp2f1


def rfm_summary(
    purchases: pd.DataFrame, *, as_of: pd.Timestamp, unit_days: float = 7.0
) -> pd.DataFrame:
    """Per customer: repeat purchase days x, time of the last t_x and age T (units of `unit_days`)."""
    days = purchases.assign(day=purchases["ts"].dt.floor("D")).drop_duplicates(
        ["customer_id", "day"]
    )
    grouped = days.groupby("customer_id")["day"]
    first, last = grouped.min(), grouped.max()
    unit = pd.Timedelta(days=unit_days)
    return pd.DataFrame({
        "x": grouped.size() - 1, "t_x": (last - first) / unit, "T": (as_of - first) / unit,
        "days_since_last": (as_of - last) / pd.Timedelta(days=1),
    })  # fmt: skip


def _negative_ll(
    log_params: np.ndarray, x: np.ndarray, t_x: np.ndarray, big_t: np.ndarray
) -> float:
    r, alpha, a, b = np.exp(log_params)
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = betaln(a, b + x) - betaln(a, b)
    a3 = -(r + x) * np.log(alpha + big_t)
    with np.errstate(divide="ignore"):
        a4 = np.where(
            x > 0,
            np.log(a) - np.log(np.maximum(b + x - 1, 1e-12)) - (r + x) * np.log(alpha + t_x),
            -np.inf,
        )
    return -float(np.sum(a1 + a2 + np.logaddexp(a3, a4)))


def fit_bgnbd(summary: pd.DataFrame) -> dict[str, float]:
    """Maximum-likelihood (r, alpha, a, b) over every customer's (x, t_x, T)."""
    data = [summary[c].to_numpy(dtype=float) for c in ("x", "t_x", "T")]
    best = minimize(_negative_ll, x0=np.zeros(4), args=tuple(data), method="Nelder-Mead",
                    options={"maxiter": 4000, "xatol": 1e-6, "fatol": 1e-6})  # fmt: skip
    return dict(zip(("r", "alpha", "a", "b"), np.exp(best.x).tolist(), strict=True))


def bgnbd_expected(params: dict[str, float], summary: pd.DataFrame, *, t: float) -> pd.Series:
    """Expected purchases in the next `t` units given each customer's history."""
    r, alpha, a, b = (params[k] for k in ("r", "alpha", "a", "b"))
    x, t_x, big_t = (summary[c].to_numpy(dtype=float) for c in ("x", "t_x", "T"))
    z = t / (alpha + big_t + t)
    first = (a + b + x - 1) / (a - 1)
    second = 1 - ((alpha + big_t) / (alpha + big_t + t)) ** (r + x) * hyp2f1(
        r + x, b + x, a + b + x - 1, z
    )
    alive = 1 + (x > 0) * a / np.maximum(b + x - 1, 1e-12) * ((alpha + big_t) / (alpha + t_x)) ** (
        r + x
    )
    return pd.Series(first * second / alive, index=summary.index)


def ease_scores(matrix: np.ndarray, *, lam: float = 500.0) -> np.ndarray:
    """EASE^R scores users x items from a 0/1 users x items matrix."""
    gram = matrix.T @ matrix + lam * np.eye(matrix.shape[1])
    inverse = np.linalg.inv(gram)
    weights = -inverse / np.diag(inverse)[None, :]
    np.fill_diagonal(weights, 0.0)
    return matrix @ weights


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
