"""Baselines computed next to every model: a recency/activity churn rule and three product rankers.

- churn: days since the customer's last engagement (event, deposit or buy; older portraits:
  event or transaction), ties broken by fewer
  app events in 30 days; turned into probabilities by isotonic regression on the training rows.
- next best product, all over the same candidate pairs as the model:
  `segment_popularity` (share of the customer's segment holding the product; peers by risk level
  and age when no segments are known), `rules` (confidence of the best rule that fires, rules
  as of the cut-off), `popularity` (share of customers holding it), `recent_popularity` (share
  of purchases in the last horizon), `decayed_popularity` (purchases weighted by a 30-day
  half-life), `item_item` (cosine co-occurrence) and `ease` (EASE^R), see features/candidates.py.
  `BaselineRanker` serves the best of them when no conversion model is champion.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression

from features.contract import CUSTOMER_ID, PRODUCT_ID

NO_ACTIVITY_DAYS = 10_000.0
FALLBACK_FILE = "next_best_fallback.json"  # in a run directory: the baseline serving, if any


def recency_score(frame: pd.DataFrame) -> np.ndarray:
    """Higher = more likely to leave: days since last engagement plus a small penalty for little use."""
    if "days_since_last_engagement" in frame:
        last = frame["days_since_last_engagement"].astype(float).to_numpy()
    else:
        last = np.fmin(
            frame["days_since_last_event"].astype(float).to_numpy(),
            frame["days_since_last_transaction"].astype(float).to_numpy(),
        )
    last = np.where(np.isnan(last), NO_ACTIVITY_DAYS, last)
    events = frame["events_30d"].astype(float).fillna(0.0).to_numpy()
    return last + 1.0 / (1.0 + events)


class RecencyBaseline:
    """The churn rule with isotonic calibration fitted on training rows."""

    kind = "recency_rule"

    def fit(self, train: pd.DataFrame, *, label: str = "churned") -> RecencyBaseline:
        """Map the rule's score to observed churn rates on the training cut-offs."""
        self.calibrator_ = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)
        self.calibrator_.fit(recency_score(train), train[label].to_numpy(dtype=float))
        return self

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated churn probability from recency alone."""
        return self.calibrator_.predict(recency_score(frame))

    def explain(self, frame: pd.DataFrame, *, top: int = 3) -> list[list[str]]:
        """The rule's one reason: how long the customer has been quiet."""
        days = np.minimum(recency_score(frame), NO_ACTIVITY_DAYS)
        return [
            [f"no activity for {d:.0f} days (recency rule, no champion model yet)"] for d in days
        ]

    def rank_score(self, frame: pd.DataFrame) -> np.ndarray:
        """The raw rule score (strictly ordered, for ROC and PR AUC without isotonic ties)."""
        return recency_score(frame)


def _scores(pairs: pd.DataFrame, score: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {
            CUSTOMER_ID: pairs[CUSTOMER_ID].to_numpy(),
            PRODUCT_ID: pairs[PRODUCT_ID].to_numpy(),
            "score": score,
        }
    )


def _rule_score(pairs: pd.DataFrame) -> np.ndarray:
    return np.fmax(
        pairs["transition_conf"].to_numpy(dtype=float), pairs["cohold_conf"].to_numpy(dtype=float)
    )


def _segment_score(pairs: pd.DataFrame) -> np.ndarray:
    segment = (
        pairs["segment_popularity"].astype(float).fillna(pairs["peer_popularity"].astype(float))
    )
    return segment.to_numpy()


# name -> (score of every pair, reason template); ties broken by recent purchases
PRODUCT_BASELINES = {
    "segment_popularity": (_segment_score, "{v:.0%} of customers like you hold it"),
    "rules": (_rule_score, "customers with your products often choose it ({v:.0%})"),
    "popularity": (lambda p: p["popularity"].to_numpy(dtype=float),
                   "popular: {v:.0%} of customers hold it"),
    "recent_popularity": (lambda p: p["recent_buy_share"].to_numpy(dtype=float),
                          "popular lately: {v:.0%} of recent purchases"),
    "decayed_popularity": (lambda p: p["decayed_popularity"].to_numpy(dtype=float),
                           "popular lately: {v:.0%} of purchases, recent ones counting more"),
    "item_item": (lambda p: p["item_item_score"].to_numpy(dtype=float),
                  "often held together with your products (similarity {v:.2f})"),
    "ease": (lambda p: p["ease_score"].to_numpy(dtype=float),
             "customers who hold what you hold choose it (EASE^R {v:.2f})"),
}  # fmt: skip
BASELINE_COLUMNS = ("segment_popularity", "peer_popularity", "transition_conf", "cohold_conf",
                    "popularity", "recent_buy_share", "decayed_popularity", "item_item_score",
                    "ease_score")  # fmt: skip


def baseline_score(name: str, pairs: pd.DataFrame) -> np.ndarray:
    """The score of baseline `name` for every pair (ties broken by recent purchases)."""
    tie = 1e-6 * pairs["recent_buy_share"].to_numpy(dtype=float)
    score = PRODUCT_BASELINES[name][0](pairs)
    return np.nan_to_num(score, nan=0.0) + (0.0 if name == "recent_popularity" else tie)


def product_baselines(pairs: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Baseline scores for every pair: every ranker of PRODUCT_BASELINES."""
    return {name: _scores(pairs, baseline_score(name, pairs)) for name in PRODUCT_BASELINES}


class BaselineRanker:
    """A product baseline with the model interface: what serves when no conversion model is champion."""

    kind = "baseline"

    def __init__(self, name: str) -> None:
        if name not in PRODUCT_BASELINES:
            raise ValueError(
                f"unknown product baseline {name!r}; one of {sorted(PRODUCT_BASELINES)}"
            )
        self.name = name
        self.features = list(BASELINE_COLUMNS)

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """The baseline's score of every pair (a ranking score, not a probability)."""
        return baseline_score(self.name, frame)

    def explain(self, frame: pd.DataFrame, *, top: int = 3) -> list[list[str]]:
        """One reason per pair: the baseline's own evidence, marked as the fallback."""
        values = np.nan_to_num(PRODUCT_BASELINES[self.name][0](frame), nan=0.0)
        template = PRODUCT_BASELINES[self.name][1]
        note = f" (fallback: {self.name.replace('_', ' ')}, the best baseline on validation)"
        return [[template.format(v=v) + note] for v in values]
