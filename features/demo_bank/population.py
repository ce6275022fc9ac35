"""Customers: persona draw, demographics, sign-up times and the sign-up funnel."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.demo_bank import catalog as cat

AB_START = (pd.Timestamp("2025-03-01") - cat.START) / pd.Timedelta(days=1)
AB_END = (pd.Timestamp("2025-07-01") - cat.START) / pd.Timedelta(days=1)
FUNNEL_P = {"real_name_auth": 0.85, "bind_card": 0.72, "bind_card_A": 0.66, "bind_card_B": 0.80,
            "invest_success": 0.75}  # fmt: skip


def choose_rows(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One categorical draw per row of a (n, k) probability matrix."""
    cum = np.cumsum(probs, axis=1)
    u = rng.random(len(probs)) * cum[:, -1]
    return (cum < u[:, None]).sum(axis=1).clip(0, probs.shape[1] - 1)


def draw_signup_days(rng: np.random.Generator, n: int) -> np.ndarray:
    """Sign-up time in days since START: decreasing density plus a January 2025 drive."""
    total = cat.MONTH_T0[-1]
    # density 1.7 - 1.2 x on [0, 1] sampled by inverting its CDF (1.7 x - 0.6 x^2) / 1.1
    u = rng.random(n)
    x = (1.7 - np.sqrt(2.89 - 2.64 * u)) / 1.2
    days = x * total
    jan = rng.random(n) < 0.06
    days[jan] = cat.MONTH_T0[12] + rng.random(jan.sum()) * 31
    return np.minimum(days, total - 1e-3)


def draw_customers(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """Latent customer frame (one row per customer, positional index = customer number)."""
    persona = rng.choice(len(cat.PERSONAS), size=n, p=cat.PERSONA_SHARE)
    signup = draw_signup_days(rng, n)
    age = np.clip(rng.normal(cat.AGE_MEAN[persona], cat.AGE_SD[persona]), 18, 85)
    income = choose_rows(rng, cat.INCOME_P[persona]) + 1
    assessed_risk = choose_rows(rng, cat.RISK_P[persona]) + 1
    assessed = rng.random(n) > 0.10
    # unassessed customers behave mostly like level 1-2 investors
    eff_risk = np.where(assessed, assessed_risk, rng.choice([1, 2, 3], size=n, p=[0.5, 0.4, 0.1]))
    rate = cat.SESSION_RATE[persona] * rng.lognormal(-0.18, 0.6, n)
    return pd.DataFrame(
        {
            "persona": persona,
            "signup_t": signup,
            "birth_year": (2024 - age).astype(int),
            "gender": rng.choice(["F", "M", "U"], size=n, p=[0.46, 0.5, 0.04]),
            "occupation": cat.OCCUPATIONS[choose_rows(rng, cat.OCCUPATION_P[persona])],
            "income_band": income,
            "city_tier": choose_rows(rng, cat.CITY_P[persona]) + 1,
            "channel": cat.CHANNELS[choose_rows(rng, cat.CHANNEL_P[persona])],
            "risk_level": np.where(assessed, assessed_risk, 0),
            "eff_risk": eff_risk,
            "marketing_opt_out": rng.random(n) < 0.08,
            "qualified": (persona == 2) & (income >= 4) & (rng.random(n) < 0.7),
            "activity_rate": rate,
            "decline_hazard": cat.DECLINE_HAZARD[persona] * rng.lognormal(-0.12, 0.5, n),
            "complaint_rate": cat.COMPLAINT_RATE[persona] * rng.lognormal(-0.12, 0.5, n),
            "deposit_scale": cat.DEPOSIT_SCALE[persona] * rng.lognormal(-0.3, 0.8, n),
        }
    )


def draw_funnel(rng: np.random.Generator, latent: pd.DataFrame) -> pd.DataFrame:
    """Funnel step times (NaN = never reached), clamped to the sign-up month."""
    n = len(latent)
    t0 = latent["signup_t"].to_numpy()
    month_end = cat.MONTH_T0[np.searchsorted(cat.MONTH_T0, t0, side="right")]
    in_ab = (t0 >= AB_START) & (t0 < AB_END)
    variant = np.where(in_ab, np.where(rng.random(n) < 0.5, 1, 2), 0)  # 0 none, 1 A, 2 B
    p_bind = np.select([variant == 1, variant == 2], [FUNNEL_P["bind_card_A"],
                       FUNNEL_P["bind_card_B"]], FUNNEL_P["bind_card"])  # fmt: skip
    auth = rng.random(n) < FUNNEL_P["real_name_auth"]
    bind = auth & (rng.random(n) < p_bind)
    invest = bind & (rng.random(n) < FUNNEL_P["invest_success"])
    span = np.maximum(month_end - t0, 1e-3)
    steps = np.sort(rng.random((n, 3)) ** 2, axis=1) * np.minimum(span, 12.0)[:, None] * 0.98
    out = pd.DataFrame({"variant": variant, "register": t0})
    for i, (name, ok) in enumerate(
        [("real_name_auth", auth), ("bind_card", bind), ("invest_success", invest)]
    ):
        out[name] = np.where(ok, t0 + steps[:, i] + 1e-4 * (i + 1), np.nan)
    return out
