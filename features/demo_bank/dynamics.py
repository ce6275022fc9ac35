"""Engagement state machine (healthy -> declining -> left) and its exact forward probabilities.

State codes: 0 healthy, k = 1..K the k-th month of decline. Leaving happens at a uniform
time inside a month and only from a declining state. The same constants drive the
simulation and the closed-form truth, so p_churn_true is the probability of the contract's
label under the simulator itself.
"""

from __future__ import annotations

import numpy as np

K_MAX = 5  # decline months are capped here
LEAVE_P = 0.40  # monthly chance that a declining customer leaves
RECOVER_P = 0.08  # monthly chance that a declining customer recovers
DECAY = 0.5  # activity multiplier per month of decline
DECLINE_BUY_FACTOR = 0.3  # declining customers buy less
COMPLAINT_EFFECT = 1.2  # hazard multiplier slope per recent complaint (capped at 3)
POOR_RETURN_EFFECT = 1.5  # extra hazard after a month with portfolio return below -4%
POOR_RETURN = -0.04


def decline_hazard(
    base: np.ndarray, complaints: np.ndarray, returns: np.ndarray, month: int
) -> np.ndarray:
    """Monthly healthy -> declining probability; uses complaints of months m-3, m-2 and return of m-2.

    The lag keeps the hazard of the two months after the cut-off known at the cut-off.
    """
    recent = complaints[:, max(month - 3, 0) : max(month - 1, 0)].sum(axis=1)
    poor = returns[:, month - 2] < POOR_RETURN if month >= 2 else np.zeros(len(base), bool)
    rate = base * (1 + COMPLAINT_EFFECT * np.minimum(recent, 3)) * (1 + POOR_RETURN_EFFECT * poor)
    return 1 - np.exp(-rate)


def activity_multiplier(state: np.ndarray) -> np.ndarray:
    """Session-rate multiplier of a state (1 when healthy, DECAY**k in decline month k)."""
    return DECAY ** state.astype(float)


def step_states(
    rng: np.random.Generator, state: np.ndarray, hazard: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """One monthly transition; returns the new state and a mask of customers leaving this month."""
    u = rng.random(len(state))
    healthy = state == 0
    leaving = ~healthy & (u < LEAVE_P)
    recover = ~healthy & (u >= LEAVE_P) & (u < LEAVE_P + RECOVER_P)
    new = np.where(healthy, (u < hazard).astype(state.dtype), np.minimum(state + 1, K_MAX))
    new = np.where(recover, 0, new)
    return new, leaving


def _transition(dist: np.ndarray, hazard: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Push a state distribution (n, K+1) one month; returns (alive dist, leave mass per state)."""
    out = np.zeros_like(dist)
    declining = dist[:, 1:]
    out[:, 0] = dist[:, 0] * (1 - hazard) + RECOVER_P * declining.sum(axis=1)
    out[:, 1] = dist[:, 0] * hazard
    stay = declining * (1 - LEAVE_P - RECOVER_P)
    out[:, 2:] += stay[:, :-1]
    out[:, K_MAX] += stay[:, -1]
    leave = np.zeros_like(dist)
    leave[:, 1:] = declining * LEAVE_P
    return out, leave


def _zero_probs(rate: np.ndarray, days: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """P(no session in the observed part of a month) per alive state and per leaving-from state.

    ``days`` is (days in the month, days of it inside the window); a leaver leaves at a uniform
    time in the whole month and has sessions only before that.
    """
    full, seen = days
    k = np.arange(K_MAX + 1)
    lam_alive = rate[:, None] * DECAY**k
    lam_leave = np.maximum(rate[:, None] * DECAY ** (k + 1.0), 1e-12)
    z_leave = -np.expm1(-lam_leave * seen) / (lam_leave * full) + (1 - seen / full) * np.exp(
        -lam_leave * seen
    )
    return np.exp(-lam_alive * seen), z_leave


def forward_truth(
    state: np.ndarray,
    hazards: list[np.ndarray],
    rates: list[np.ndarray],
    days: list[tuple[float, float]],
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Exact P(no session over the months) for alive customers, and per month P(buying possible).

    P(buying possible) is the chance of being alive with at least one session that month,
    weighted by the decline buy factor; purchases only happen in sessions.
    """
    n = len(state)
    dist = np.zeros((n, K_MAX + 1))
    dist[np.arange(n), state] = 1.0
    silent, gone_silent, buy_weights = dist.copy(), np.zeros(n), []
    factor = np.r_[1.0, np.full(K_MAX, DECLINE_BUY_FACTOR)]
    for hazard, rate, d in zip(hazards, rates, days, strict=True):
        z_alive, z_leave = _zero_probs(rate, d)
        dist, leave = _transition(dist, hazard)
        buy_weights.append(
            (dist * (1 - z_alive) * factor).sum(1) + (leave * (1 - z_leave) * factor).sum(1)
        )
        silent, silent_leave = _transition(silent, hazard)
        gone_silent += (silent_leave * z_leave).sum(axis=1)
        silent = silent * z_alive
    return silent.sum(axis=1) + gone_silent, buy_weights
