"""Demo-bank configurations: the default bank and ``alt``, a second bank with other personas.

``alt`` has six personas (not five), other product mixes (FX copy trading, money-market saving,
pensions, gold, index funds, private wealth), other event and deposit rates and other shares, so a
method tuned to the default bank has to generalise to reach its planted personas. A profile is a
set of overrides of the catalogue's per-persona tables; ``use_profile`` applies them only while a
bank is generated (the default profile overrides nothing, so the default bank is unchanged).
``use_truth_at`` moves the truth's snapshot the same way (catalog.overriding).
"""

from __future__ import annotations

import contextlib

import numpy as np
import pandas as pd

from features.demo_bank import catalog as cat

# Persona index 2 is the one whose rich members can be qualified investors (population.py);
# index 0 is the one that trades from the stock-quotes page (activity.py).
ALT = {
    "PERSONAS": (
        "fx_copy_trader",
        "money_market_saver",
        "private_wealth",
        "pension_planner",
        "index_investor",
        "gold_hedger",
    ),
    "PERSONA_SHARE": np.array([0.14, 0.26, 0.08, 0.18, 0.20, 0.14]),
    "AGE_MEAN": np.array([31.0, 41.0, 52.0, 57.0, 35.0, 48.0]),
    "AGE_SD": np.array([6.0, 10.0, 8.0, 6.0, 7.0, 9.0]),
    "INCOME_P": np.array(
        [
            [0.10, 0.30, 0.35, 0.20, 0.05],
            [0.20, 0.35, 0.30, 0.12, 0.03],
            [0.00, 0.00, 0.05, 0.25, 0.70],
            [0.10, 0.30, 0.35, 0.20, 0.05],
            [0.05, 0.25, 0.40, 0.25, 0.05],
            [0.10, 0.25, 0.35, 0.22, 0.08],
        ]
    ),
    "OCCUPATION_P": np.array(
        [
            [0.10, 0.30, 0.00, 0.05, 0.10, 0.05, 0.15, 0.00, 0.20, 0.05],
            [0.10, 0.10, 0.10, 0.15, 0.05, 0.05, 0.10, 0.15, 0.05, 0.15],
            [0.00, 0.05, 0.10, 0.05, 0.45, 0.35, 0.00, 0.00, 0.00, 0.00],
            [0.00, 0.02, 0.40, 0.25, 0.03, 0.05, 0.05, 0.15, 0.00, 0.05],
            [0.05, 0.40, 0.00, 0.10, 0.05, 0.10, 0.10, 0.10, 0.05, 0.05],
            [0.00, 0.05, 0.15, 0.15, 0.20, 0.10, 0.10, 0.05, 0.05, 0.15],
        ]
    ),
    "CITY_P": np.array(
        [
            [0.50, 0.30, 0.15, 0.05],
            [0.20, 0.30, 0.30, 0.20],
            [0.70, 0.25, 0.05, 0.00],
            [0.25, 0.30, 0.25, 0.20],
            [0.40, 0.35, 0.20, 0.05],
            [0.15, 0.25, 0.35, 0.25],
        ]
    ),
    "CHANNEL_P": np.array(
        [
            [0.55, 0.25, 0.10, 0.10, 0.00],
            [0.20, 0.40, 0.15, 0.20, 0.05],
            [0.05, 0.05, 0.50, 0.10, 0.30],
            [0.05, 0.15, 0.15, 0.15, 0.50],
            [0.40, 0.20, 0.15, 0.25, 0.00],
            [0.10, 0.30, 0.20, 0.20, 0.20],
        ]
    ),
    "RISK_P": np.array(
        [
            [0.00, 0.05, 0.20, 0.40, 0.35],
            [0.50, 0.35, 0.12, 0.03, 0.00],
            [0.02, 0.08, 0.25, 0.35, 0.30],
            [0.30, 0.45, 0.20, 0.05, 0.00],
            [0.05, 0.15, 0.45, 0.30, 0.05],
            [0.15, 0.35, 0.35, 0.12, 0.03],
        ]
    ),
    "SESSION_RATE": np.array([0.30, 0.03, 0.07, 0.05, 0.12, 0.06]),
    "DEPOSIT_SCALE": np.array([6_000.0, 15_000.0, 400_000.0, 40_000.0, 12_000.0, 60_000.0]),
    "DEPOSIT_P": np.array([0.30, 0.40, 0.25, 0.35, 0.30, 0.20]),
    "DECLINE_HAZARD": np.array([0.050, 0.020, 0.015, 0.012, 0.030, 0.025]),
    "COMPLAINT_RATE": np.array([0.04, 0.01, 0.05, 0.02, 0.02, 0.02]),
    "SHOP_P": np.array([0.18, 0.06, 0.10, 0.08, 0.14, 0.09]),
    "CAMPAIGN_BASE": np.array([0.10, 0.05, 0.25, 0.08, 0.30, 0.08]),
    "CAMPAIGN_UPLIFT": np.array([0.10, 0.02, 0.20, 0.05, 0.25, 0.10]),
    "PAGE_P": np.array(
        [  # home fund_list detail credit news stock forex p2p account help
            [0.15, 0.05, 0.10, 0.02, 0.08, 0.15, 0.38, 0.01, 0.04, 0.02],
            [0.35, 0.20, 0.12, 0.03, 0.08, 0.02, 0.01, 0.02, 0.14, 0.03],
            [0.18, 0.18, 0.20, 0.02, 0.18, 0.16, 0.02, 0.00, 0.05, 0.01],
            [0.30, 0.22, 0.15, 0.02, 0.12, 0.02, 0.00, 0.01, 0.12, 0.04],
            [0.20, 0.30, 0.15, 0.02, 0.12, 0.10, 0.02, 0.01, 0.06, 0.02],
            [0.30, 0.15, 0.15, 0.02, 0.20, 0.05, 0.03, 0.02, 0.05, 0.03],
        ]
    ),
    "PREF_WEIGHTS": {
        0: {"forex_copy": 0.05, "margin": 0.02, "stock_portfolio": 0.01, "money_market": 0.008},
        1: {"money_market": 0.05, "deposit": 0.02},
        2: {
            "stock_portfolio": 0.03,
            "equity_fund": 0.03,
            "margin": 0.02,
            "gold": 0.01,
            "bond_fund": 0.01,
        },
        3: {"pension": 0.04, "insurance": 0.03, "bond_fund": 0.015, "deposit": 0.01},
        4: {"index_fund": 0.05, "equity_fund": 0.015, "money_market": 0.008},
        5: {"gold": 0.05, "bond_fund": 0.015, "deposit": 0.01},
    },
}
PROFILES = {"default": {}, "alt": ALT}


def use_profile(name: str) -> contextlib.AbstractContextManager[None]:
    """Apply profile ``name``'s overrides to the catalogue while the block runs, then restore."""
    if name not in PROFILES:
        raise ValueError(f"profile must be one of {', '.join(PROFILES)}, got {name!r}")
    return cat.overriding(PROFILES[name])


def use_truth_at(when: pd.Timestamp) -> contextlib.AbstractContextManager[None]:
    """Take the planted truth at month start `when` instead of DEMO_AS_OF while the block runs.

    Only the truth moves (the latent-state snapshot, p_churn_true, the realised labels, the
    conversion truth): the simulation draws nothing for the snapshot, so the tables are the same.
    It judges a model's earlier validation fold against the planted truth of its own cut-off.
    """
    when = pd.Timestamp(when)
    last = cat.END - pd.Timedelta(days=cat.HORIZON_DAYS)
    if when not in cat.MONTH_STARTS or not cat.START < when <= last:
        raise ValueError(
            f"truth_at must be a month start after {cat.START.date()} whose {cat.HORIZON_DAYS}-day "
            f"horizon ends by {cat.END.date()}, got {when.date()}"
        )
    month = int(np.searchsorted(cat.MONTH_STARTS, when))
    return cat.overriding({"DEMO_AS_OF": when, "AS_OF_MONTH": month})
