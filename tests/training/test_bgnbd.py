"""BG/NBD: recovers its parameters on data drawn from it, and ranks customers as the theory says."""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.models.bgnbd import BGNBD, BGNBDBaseline

R, ALPHA, A, B = 0.8, 20.0, 1.5, 3.0


def _draw(n: int, seed: int, age: float = 365.0) -> tuple[pd.DataFrame, np.ndarray]:
    """Customers from the BG/NBD process itself, and whether each is still alive at the end."""
    rng = np.random.default_rng(seed)
    rate = rng.gamma(R, 1 / ALPHA, n)
    drop = rng.beta(A, B, n)
    x, last, alive = np.zeros(n), np.zeros(n), np.ones(n, bool)
    t = rng.exponential(1 / rate)
    while (live := alive & (t < age)).any():  # one step per repeat, all customers at once
        x[live], last[live] = x[live] + 1, t[live]
        alive &= ~(live & (rng.random(n) < drop))
        t = np.where(live, t + rng.exponential(1 / rate), np.inf)
    frame = pd.DataFrame(
        {"txn_frequency": x, "txn_recency_days": last, "txn_age_days": np.full(n, age)}
    )
    return frame, alive


def test_fit_recovers_the_parameters_of_its_own_process():
    frame, _ = _draw(6000, seed=1)
    r, alpha, a, b = BGNBD(seed=1).fit(frame).params_
    assert abs(r / alpha - R / ALPHA) / (R / ALPHA) < 0.15  # the mean rate
    assert abs(a / (a + b) - A / (A + B)) < 0.08  # the mean drop-out chance


def test_p_alive_and_expected_days_follow_the_theory():
    frame, alive = _draw(6000, seed=2)
    model = BGNBD(seed=2).fit(frame)
    probe = pd.DataFrame(
        {"txn_frequency": [0.0, 5.0, 5.0, 20.0], "txn_recency_days": [0.0, 350.0, 100.0, 350.0],
         "txn_age_days": [365.0] * 4}
    )  # fmt: skip
    p = model.p_alive(probe)
    assert p[0] == 1.0  # no repeat yet: BG/NBD never counts a customer as dropped
    assert p[1] > p[2]  # the same frequency, a longer silence: less likely alive
    e = model.expected(probe, days=60)
    assert e[3] > e[1] > e[2]
    # P(alive) ranks the customers who really are alive above the dropped ones
    scores = model.p_alive(frame)
    assert scores[alive].mean() > scores[~alive].mean() + 0.2


def test_baseline_scores_are_calibrated_probabilities():
    frame, alive = _draw(3000, seed=3)
    frame["churned"] = (~alive).astype(int)
    baseline = BGNBDBaseline(horizon_days=60).fit(frame)
    p = baseline.predict_proba(frame)
    assert ((p >= 0) & (p <= 1)).all()
    assert abs(p.mean() - frame["churned"].mean()) < 0.01
