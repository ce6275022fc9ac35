"""Model metrics as plain functions: churn (ranking, calibration, lift) and top-k recommendation quality.

Ranking metrics follow Microsoft Recommenders' definitions. `recommendations` holds
customer_id, product_id and `rank` (1 = best); `relevant` holds the (customer_id, product_id)
pairs that really happened. Averages run over customers with at least one relevant item
(the `users` argument can widen that to every customer who got a list).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from features.contract import CUSTOMER_ID, PRODUCT_ID

RANK = "rank"


def _checked(y_true, y_score) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype=float)
    s = np.asarray(y_score, dtype=float)
    if y.shape != s.shape:
        raise ValueError(f"labels ({y.shape}) and scores ({s.shape}) differ in length")
    return y, s


def roc_auc(y_true, y_score) -> float:
    """Area under the ROC curve; NaN when only one class is present."""
    y, s = _checked(y_true, y_score)
    return float(roc_auc_score(y, s)) if 0 < y.sum() < len(y) else float("nan")


def pr_auc(y_true, y_score) -> float:
    """Area under the precision-recall curve (average precision); NaN without positives."""
    y, s = _checked(y_true, y_score)
    return float(average_precision_score(y, s)) if y.sum() > 0 else float("nan")


def brier(y_true, y_prob) -> float:
    """Mean squared error of probabilities against 0/1 outcomes."""
    y, p = _checked(y_true, y_prob)
    return float(brier_score_loss(y, p))


def lift_at(y_true, y_score, *, fraction: float = 0.1) -> float:
    """Positive rate in the top `fraction` by score over the overall positive rate (ties by order)."""
    y, s = _checked(y_true, y_score)
    if y.sum() == 0:
        return float("nan")
    n_top = max(1, int(np.ceil(fraction * len(y))))
    top = np.argsort(-s, kind="stable")[:n_top]
    return float(y[top].mean() / y.mean())


def calibration_table(y_true, y_prob, *, bins: int = 10) -> pd.DataFrame:
    """Mean predicted vs observed rate per equal-width probability bin (empty bins dropped)."""
    y, p = _checked(y_true, y_prob)
    idx = np.clip((p * bins).astype(int), 0, bins - 1)
    frame = pd.DataFrame({"bin": idx, "predicted": p, "observed": y})
    out = frame.groupby("bin").agg(
        predicted=("predicted", "mean"), observed=("observed", "mean"), n=("observed", "size")
    )
    return out.reset_index()


def lift_table(y_true, y_score, *, groups: int = 10) -> pd.DataFrame:
    """Positive rate and lift per score decile (decile 1 = highest scores)."""
    y, s = _checked(y_true, y_score)
    order = np.argsort(-s, kind="stable")
    decile = np.empty(len(y), dtype=int)
    decile[order] = np.arange(len(y)) * groups // max(len(y), 1) + 1
    frame = pd.DataFrame({"decile": decile, "y": y})
    out = frame.groupby("decile").agg(rate=("y", "mean"), n=("y", "size")).reset_index()
    out["lift"] = out["rate"] / y.mean() if y.sum() else np.nan
    return out


def churn_metrics(y_true, y_prob) -> dict[str, float]:
    """ROC AUC, PR AUC, Brier score, top-decile lift and the base rate."""
    y, p = _checked(y_true, y_prob)
    return {
        "roc_auc": roc_auc(y, p),
        "pr_auc": pr_auc(y, p),
        "brier": brier(y, p),
        "lift_top_decile": lift_at(y, p, fraction=0.1),
        "positive_rate": float(y.mean()) if len(y) else float("nan"),
        "n": float(len(y)),
    }


def _hits(recommendations: pd.DataFrame, relevant: pd.DataFrame, k: int) -> pd.DataFrame:
    """Top-k rows with a `hit` flag, and per customer the number of relevant items."""
    top = recommendations.loc[recommendations[RANK] <= k, [CUSTOMER_ID, PRODUCT_ID, RANK]]
    rel = relevant[[CUSTOMER_ID, PRODUCT_ID]].drop_duplicates()
    hits = top.merge(rel.assign(hit=1), on=[CUSTOMER_ID, PRODUCT_ID], how="left")
    hits["hit"] = hits["hit"].fillna(0).astype(int)
    return hits


def _per_customer(
    recommendations: pd.DataFrame, relevant: pd.DataFrame, k: int, users: pd.Index | None
) -> pd.DataFrame:
    """Per customer: n relevant, hits in top k, sum of precision at each hit, DCG and ideal DCG."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    hits = _hits(recommendations, relevant, k).sort_values([CUSTOMER_ID, RANK], kind="stable")
    hits["cum_hits"] = hits.groupby(CUSTOMER_ID)["hit"].cumsum()
    hits["prec"] = np.where(hits["hit"] == 1, hits["cum_hits"] / hits[RANK], 0.0)
    hits["dcg"] = hits["hit"] / np.log2(hits[RANK] + 1.0)
    agg = hits.groupby(CUSTOMER_ID).agg(
        hits=("hit", "sum"), prec=("prec", "sum"), dcg=("dcg", "sum")
    )
    n_rel = relevant.drop_duplicates([CUSTOMER_ID, PRODUCT_ID]).groupby(CUSTOMER_ID).size()
    index = n_rel.index if users is None else pd.Index(users)
    out = agg.reindex(index).fillna(0.0).assign(n_rel=n_rel.reindex(index).fillna(0).to_numpy())
    discounts = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))])
    out["idcg"] = discounts[np.minimum(out["n_rel"].to_numpy(dtype=int), k)]
    return out


def ranking_metrics(
    recommendations: pd.DataFrame,
    relevant: pd.DataFrame,
    *,
    k: int,
    users: pd.Index | None = None,
) -> dict[str, float]:
    """MAP@k, NDCG@k, recall@k, precision@k and hit rate@k averaged over customers."""
    per = _per_customer(recommendations, relevant, k, users)
    has = per["n_rel"] > 0
    if not has.any():
        nan = float("nan")
        return {f"{m}@{k}": nan for m in ("map", "ndcg", "recall", "precision", "hit_rate")}
    return {
        f"map@{k}": float(_average_precision(per, k).mean()),
        f"ndcg@{k}": float((per["dcg"] / per["idcg"].where(per["idcg"] > 0)).fillna(0.0).mean()),
        f"recall@{k}": float((per["hits"] / per["n_rel"].where(has)).fillna(0.0).mean()),
        f"precision@{k}": float((per["hits"] / k).mean()),
        f"hit_rate@{k}": float((per["hits"] > 0).mean()),
    }


def _average_precision(per: pd.DataFrame, k: int) -> pd.Series:
    """Each customer's precision summed at each hit over min(relevant, k); 0 with none relevant."""
    return (per["prec"] / np.minimum(per["n_rel"], k).where(per["n_rel"] > 0)).fillna(0.0)


def average_precision_at_k(recommendations, relevant, *, k: int, users=None) -> pd.Series:
    """Each customer's average precision at k, by customer_id: MAP@k is its mean."""
    return _average_precision(_per_customer(recommendations, relevant, k, users), k)


def paired_difference(a: pd.Series, b: pd.Series, *, draws: int = 2000, seed: int = 0) -> dict:
    """Mean of a - b over their common index (customers) and its 95% bootstrap interval.

    Two rankers judged on the same customers: resampling customers keeps each one's pair of
    scores together, so the interval says whether one ranker beats the other or the gap is
    within the noise of this many customers.
    """
    a, b = a.align(b, join="inner")
    diff = (a - b).to_numpy(dtype=float)
    if len(diff) == 0:
        return {"diff": float("nan"), "low": float("nan"), "high": float("nan"), "n": 0}
    draw = np.random.default_rng(seed).integers(0, len(diff), size=(draws, len(diff)))
    low, high = np.percentile(diff[draw].mean(axis=1), [2.5, 97.5])
    return {"diff": float(diff.mean()), "low": float(low), "high": float(high), "n": len(diff)}


def map_at_k(recommendations, relevant, *, k: int, users=None) -> float:
    """Mean average precision at k (precision summed at each hit, over min(relevant, k))."""
    return ranking_metrics(recommendations, relevant, k=k, users=users)[f"map@{k}"]


def ndcg_at_k(recommendations, relevant, *, k: int, users=None) -> float:
    """Normalised discounted cumulative gain at k with binary relevance."""
    return ranking_metrics(recommendations, relevant, k=k, users=users)[f"ndcg@{k}"]


def recall_at_k(recommendations, relevant, *, k: int, users=None) -> float:
    """Share of each customer's relevant items found in the top k, averaged."""
    return ranking_metrics(recommendations, relevant, k=k, users=users)[f"recall@{k}"]


def hit_rate_at_k(recommendations, relevant, *, k: int, users=None) -> float:
    """Share of customers with at least one relevant item in the top k."""
    return ranking_metrics(recommendations, relevant, k=k, users=users)[f"hit_rate@{k}"]


def rank_scores(scores: pd.DataFrame, *, score: str = "score") -> pd.DataFrame:
    """Add `rank` (1 = highest score) within each customer; ties broken by product_id."""
    ordered = scores.sort_values(
        [CUSTOMER_ID, score, PRODUCT_ID], ascending=[True, False, True], kind="stable"
    )
    return ordered.assign(**{RANK: ordered.groupby(CUSTOMER_ID).cumcount() + 1})
