"""Baselines computed next to every model: a recency/activity churn rule and three product rankers.

- churn: days since the customer's last engagement (event, deposit or buy; older portraits:
  event or transaction), ties broken by fewer
  app events in 30 days; turned into probabilities by isotonic regression on the training rows.
- next best product, all over the same candidate pairs as the model:
  `segment_popularity` (share of the customer's segment holding the product; peers by risk level
  and age when no segments are known), `rules` (confidence of the best rule that fires, rules
  as of the cut-off) and `popularity` (share of recent purchases overall).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression

from features.contract import CUSTOMER_ID, PRODUCT_ID

NO_ACTIVITY_DAYS = 10_000.0


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


def product_baselines(pairs: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Baseline scores for every pair: segment popularity, rule confidence, overall popularity."""
    tie = 1e-6 * pairs["recent_buy_share"].to_numpy(dtype=float)
    segment = (
        pairs["segment_popularity"].astype(float).fillna(pairs["peer_popularity"].astype(float))
    )
    rules = np.fmax(
        pairs["transition_conf"].to_numpy(dtype=float), pairs["cohold_conf"].to_numpy(dtype=float)
    )
    return {
        "segment_popularity": _scores(pairs, segment.to_numpy() + tie),
        "rules": _scores(pairs, rules + tie),
        "popularity": _scores(pairs, pairs["recent_buy_share"].to_numpy(dtype=float)),
    }
