"""Candidate generators of the next best product: EASE^R, item-item co-occurrence, decayed popularity.

Each is a plain function on the customers x products holding matrix (or on purchases) at a
cut-off; their scores are pair features of the conversion model and, alone, its baselines.

- EASE^R (Steck 2019): item weights B = I - P / diag(P) with P = (X^T X + lambda I)^-1 and a
  zero diagonal; a customer's score is X B. Dense in products: up to MAX_DENSE_PRODUCTS.
- item-item: cosine similarity of product columns (co-holders over sqrt of both counts), zero
  diagonal; a customer's score is the sum over held products.
- decayed popularity: each purchase weighted exp(-ln 2 * age / half-life), shares over products.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse

from features.contract import PRODUCT_ID, TS

# Steck's default for MovieLens; untuned here (not fitted to any bank). On MovieLens 100K's known
# users lambda 100..1000 moves MAP@10 by at most 0.015 at either cut-off: it is not the lever.
EASE_LAMBDA = 500.0
HALF_LIFE_DAYS = 30.0
MAX_DENSE_PRODUCTS = 3_000  # above this a products x products matrix is not built: zeros


def ease_weights(held: sparse.spmatrix, *, lam: float = EASE_LAMBDA) -> np.ndarray:
    """EASE^R item-item weights (products x products, zero diagonal) from a 0/1 holding matrix."""
    n = held.shape[1]
    if n == 0 or n > MAX_DENSE_PRODUCTS:
        return np.zeros((n, n), dtype=np.float32)
    gram = np.asarray((held.T @ held).todense(), dtype=np.float64) + lam * np.eye(n)
    inverse = np.linalg.inv(gram)
    weights = -inverse / np.diag(inverse)[None, :]
    np.fill_diagonal(weights, 0.0)
    return weights.astype(np.float32)


def item_item_weights(held: sparse.spmatrix) -> np.ndarray:
    """Cosine co-occurrence of products (products x products, zero diagonal) from 0/1 holdings."""
    n = held.shape[1]
    if n == 0 or n > MAX_DENSE_PRODUCTS:
        return np.zeros((n, n), dtype=np.float32)
    both = np.asarray((held.T @ held).todense(), dtype=np.float64)
    norm = np.sqrt(np.diag(both))
    cosine = both / np.maximum(np.outer(norm, norm), 1e-12)
    np.fill_diagonal(cosine, 0.0)
    return cosine.astype(np.float32)


def generator_scores(held: sparse.spmatrix, weights: np.ndarray) -> np.ndarray:
    """customers x products scores of a generator: holdings times its item weights."""
    return np.asarray(held @ weights, dtype=np.float32)


def decayed_popularity(
    buys: pd.DataFrame,
    products: pd.Index,
    *,
    cutoff: pd.Timestamp,
    half_life: float = HALF_LIFE_DAYS,
) -> pd.Series:
    """Share of time-decayed purchases per product (rows before `cutoff`), indexed by `products`."""
    past = buys.loc[buys[TS] < cutoff]
    age = ((cutoff - past[TS]) / pd.Timedelta(days=1)).to_numpy(dtype=float)
    weight = np.exp(-np.log(2.0) * age / half_life)
    totals = pd.Series(weight, index=past[PRODUCT_ID].astype(str).to_numpy()).groupby(level=0).sum()
    totals = totals.reindex(products).fillna(0.0)
    return totals / totals.sum() if totals.sum() > 0 else totals


CANDIDATES_PER_GENERATOR = 50  # a catalogue of up to 50 products keeps every pair
GENERATORS = ("ease_score", "item_item_score", "decayed_popularity", "recent_buy_share")
RANKED = {"ease_score": "ease_rank", "item_item_score": "item_item_rank"}


def keep_candidates(
    pairs: pd.DataFrame, *, per_generator: int = CANDIDATES_PER_GENERATOR
) -> pd.DataFrame:
    """The pairs in any generator's top `per_generator` for their customer, with rank features.

    The ranker scores these only; `ease_rank` / `item_item_rank` (1 = the customer's best)
    say how a generator orders the customer's own products, which one probability over all
    customers cannot.
    """
    if pairs.empty:
        return pairs.assign(**{name: pd.Series(dtype=float) for name in RANKED.values()})
    keep = np.zeros(len(pairs), dtype=bool)
    grouped = pairs.groupby("customer_id", sort=False)
    for column in GENERATORS:
        rank = grouped[column].rank(method="first", ascending=False).to_numpy()
        keep |= rank <= per_generator
        if column in RANKED:
            pairs[RANKED[column]] = rank.astype(np.float32)
    return pairs.loc[keep].reset_index(drop=True)
