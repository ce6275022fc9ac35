"""The BG/NBD model (Fader, Hardie & Lee 2005) on repeat-day inputs, and the churn baseline built on it.

Inputs per customer are the portrait's `{stream}_frequency`, `{stream}_recency_days` and
`{stream}_age_days` (features/repeat.py): x repeat days, t_x the days from the first to the
last, T the days from the first to the cut-off. Parameters (r, alpha, a, b) are fitted by
maximum likelihood with scipy; the churn score is the expected number of repeat days in the
horizon (fewer = more likely to churn), the classic "expected purchases" ranking.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import betaln, expit, gammaln, hyp2f1
from sklearn.isotonic import IsotonicRegression

FIT_ROWS = 20_000  # customers the parameters are fitted on (a seeded sample beyond that)


def _inputs(frame: pd.DataFrame, stream: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = frame[f"{stream}_frequency"].to_numpy(dtype=float)
    t_x = frame[f"{stream}_recency_days"].to_numpy(dtype=float)
    age = frame[f"{stream}_age_days"].to_numpy(dtype=float)
    return np.nan_to_num(x), np.nan_to_num(t_x), np.nan_to_num(age)


def _log_terms(params, x, t_x, age):
    """ln A (the 'still alive' term) and ln of the 'dropped after the last day' odds."""
    r, alpha, a, b = params
    base = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    alive = base + betaln(a, b + x) - betaln(a, b) - (r + x) * np.log(alpha + age)
    with np.errstate(divide="ignore"):
        odds = (
            np.log(a)
            - np.log(np.maximum(b + x - 1, 1e-12))
            + (r + x) * (np.log(alpha + age) - np.log(alpha + t_x))
        )
    return alive, np.where(x > 0, odds, -np.inf)


class BGNBD:
    """BG/NBD fitted on (frequency, recency, age) in days; sklearn style (`params_` once fitted)."""

    def __init__(self, *, stream: str = "txn", seed: int = 42) -> None:
        self.stream = stream
        self.seed = seed

    def fit(self, frame: pd.DataFrame) -> BGNBD:
        """Maximum likelihood over (a seeded sample of) the rows' inputs."""
        if len(frame) > FIT_ROWS:
            frame = frame.sample(FIT_ROWS, random_state=self.seed)
        x, t_x, age = _inputs(frame, self.stream)

        def nll(log_params: np.ndarray) -> float:
            alive, odds = _log_terms(np.exp(log_params), x, t_x, age)
            return -float(np.sum(alive + np.logaddexp(0.0, odds)))

        fit = minimize(nll, np.zeros(4), method="L-BFGS-B", bounds=[(-8.0, 8.0)] * 4)
        self.params_ = tuple(float(v) for v in np.exp(fit.x))
        return self

    def p_alive(self, frame: pd.DataFrame) -> np.ndarray:
        """P(the customer has not dropped out) at the cut-off."""
        _, odds = _log_terms(self.params_, *_inputs(frame, self.stream))
        return expit(-odds)

    def expected(self, frame: pd.DataFrame, *, days: float) -> np.ndarray:
        """Expected repeat days in the next `days` given each customer's history."""
        r, alpha, a, b = self.params_
        x, _, age = _inputs(frame, self.stream)
        z = days / (alpha + age + days)
        head = (a + b + x - 1) / (a - 1)  # a < 1 is fine: the 2F1 term changes sign with it
        tail = 1 - ((alpha + age) / (alpha + age + days)) ** (r + x) * hyp2f1(
            r + x, b + x, a + b + x - 1, z
        )
        return np.nan_to_num(head * tail * self.p_alive(frame), nan=0.0, posinf=0.0)


class BGNBDBaseline:
    """Churn baseline: fewer expected repeat days in the horizon = more likely to churn."""

    kind = "bgnbd"

    def __init__(self, *, stream: str = "txn", horizon_days: int = 60, seed: int = 42) -> None:
        self.stream = stream
        self.horizon_days = horizon_days
        self.seed = seed

    def fit(self, train: pd.DataFrame, *, label: str = "churned") -> BGNBDBaseline:
        """Fit BG/NBD on the training rows, then calibrate its score to churn rates (isotonic)."""
        self.model_ = BGNBD(stream=self.stream, seed=self.seed).fit(train)
        self.calibrator_ = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)
        self.calibrator_.fit(self.rank_score(train), train[label].to_numpy(dtype=float))
        return self

    def rank_score(self, frame: pd.DataFrame) -> np.ndarray:
        """Higher = more likely to churn: minus the expected repeat days in the horizon."""
        return -self.model_.expected(frame, days=self.horizon_days)

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated churn probability from the BG/NBD score alone."""
        return self.calibrator_.predict(self.rank_score(frame))
