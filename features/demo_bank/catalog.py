"""Static catalogue of the demo bank: simulation clock, products, personas and planted pairs."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd

START = pd.Timestamp("2024-01-01")
END = pd.Timestamp("2026-01-01")
DEMO_AS_OF = pd.Timestamp("2025-11-01")
MONTH_STARTS = pd.date_range(START, END, freq="MS")  # 25 edges -> 24 months
N_MONTHS = len(MONTH_STARTS) - 1
MONTH_T0 = ((MONTH_STARTS - START) / pd.Timedelta(days=1)).to_numpy(dtype=float)
AS_OF_MONTH = int(np.searchsorted(MONTH_STARTS, DEMO_AS_OF))  # index of November 2025
HORIZON_DAYS = 60


def as_of_t() -> float:
    """Days from START to the truth's snapshot (DEMO_AS_OF, or `use_truth_at`'s month start)."""
    return (DEMO_AS_OF - START) / pd.Timedelta(days=1)


@contextmanager
def overriding(values: dict[str, object]) -> Iterator[None]:
    """Set these catalogue names while the block runs, then restore them (use_profile, use_truth_at)."""
    module = sys.modules[__name__]
    saved = {key: getattr(module, key) for key in values}
    for key, value in values.items():
        setattr(module, key, value)
    try:
        yield
    finally:
        for key, value in saved.items():
            setattr(module, key, value)


# Mild seasonality of app use (Spring Festival dip in February, year-end pick-up).
MONTH_FACTOR = np.array([1.0, 0.8, 1.05, 1.0, 1.0, 0.95, 0.95, 0.95, 1.0, 0.9, 1.05, 1.1] * 2)

# product_id, name, category, risk, min_amount, is_active, qualified_only, monthly mu, sigma,
# beta to the market, yearly income yield paid at quarter ends
PRODUCT_ROWS = [
    ("P01", "Daily Cash Deposit", "deposit", 1, 0.0, True, False, 0.0015, 0.0, 0.0, 0.018),
    ("P02", "12-Month Term Deposit", "deposit", 1, 1000.0, True, False, 0.0, 0.0, 0.0, 0.025),
    ("P03", "Cash Plus Money Market", "money_market", 1, 1.0, True, False, 0.0, 0.0005, 0.0, 0.022),
    ("P04", "Treasury Money Fund", "money_market", 1, 100.0, True, False, 0.0, 0.0005, 0.0, 0.02),
    (
        "P05",
        "Steady Government Bond Fund",
        "bond_fund",
        2,
        1000.0,
        True,
        False,
        0.001,
        0.006,
        0.05,
        0.03,
    ),
    (
        "P06",
        "Corporate Credit Bond Fund",
        "bond_fund",
        2,
        1000.0,
        True,
        False,
        0.0015,
        0.01,
        0.1,
        0.035,
    ),
    (
        "P07",
        "Balanced Growth Mixed Fund",
        "equity_fund",
        3,
        1000.0,
        True,
        False,
        0.005,
        0.03,
        0.6,
        0.0,
    ),
    (
        "P08",
        "Consumer Leaders Equity Fund",
        "equity_fund",
        4,
        1000.0,
        True,
        False,
        0.006,
        0.05,
        1.0,
        0.0,
    ),
    ("P09", "New Energy Theme Fund", "equity_fund", 4, 1000.0, True, False, 0.007, 0.07, 1.2, 0.0),
    ("P10", "CSI 300 Index Fund", "index_fund", 3, 100.0, True, False, 0.005, 0.04, 1.0, 0.0),
    ("P11", "ChiNext Index Fund", "index_fund", 4, 100.0, True, False, 0.006, 0.06, 1.3, 0.0),
    (
        "P12",
        "Blue Chip Stock Portfolio",
        "stock_portfolio",
        4,
        10000.0,
        True,
        False,
        0.006,
        0.06,
        1.1,
        0.0,
    ),
    (
        "P13",
        "Quant Alpha Stock Portfolio",
        "stock_portfolio",
        5,
        50000.0,
        True,
        True,
        0.008,
        0.07,
        0.9,
        0.0,
    ),
    ("P14", "P2P Select 90-Day Loans", "p2p", 3, 1000.0, True, False, 0.0, 0.004, 0.0, 0.08),
    ("P15", "P2P High Yield 12-Month", "p2p", 4, 5000.0, True, False, 0.0, 0.008, 0.0, 0.11),
    (
        "P16",
        "Forex Copy Trading Starter",
        "forex_copy",
        4,
        500.0,
        True,
        False,
        0.003,
        0.06,
        0.2,
        0.0,
    ),
    ("P17", "Forex Copy Pro Signals", "forex_copy", 5, 5000.0, True, False, 0.004, 0.09, 0.3, 0.0),
    ("P18", "Term Life Protection", "insurance", 1, 500.0, True, False, 0.0, 0.0, 0.0, 0.0),
    ("P19", "Critical Illness Cover", "insurance", 2, 1000.0, True, False, 0.0, 0.0, 0.0, 0.0),
    ("P20", "Physical Gold Account", "gold", 3, 100.0, True, False, 0.006, 0.035, -0.2, 0.0),
    (
        "P21",
        "Personal Pension Target 2045",
        "pension",
        2,
        100.0,
        True,
        False,
        0.003,
        0.015,
        0.3,
        0.0,
    ),
    ("P22", "Margin Financing Line", "margin", 5, 50000.0, True, True, 0.004, 0.09, 1.6, 0.0),
    (
        "P23",
        "Private Equity Pioneer Fund",
        "equity_fund",
        5,
        100000.0,
        True,
        True,
        0.008,
        0.05,
        0.8,
        0.0,
    ),
    (
        "P24",
        "Legacy Structured Note 2024",
        "bond_fund",
        3,
        10000.0,
        False,
        False,
        0.002,
        0.01,
        0.2,
        0.04,
    ),
    ("P25", "Legacy P2P Express", "p2p", 4, 1000.0, False, False, 0.0, 0.006, 0.0, 0.1),
]
PRODUCT_COLUMNS = [
    "product_id", "name", "category", "risk_level", "min_amount", "is_active",
    "qualified_only", "mu", "sigma", "beta", "yield_",
]  # fmt: skip
PRODUCT_FRAME = pd.DataFrame(PRODUCT_ROWS, columns=PRODUCT_COLUMNS)
PRODUCT_IDS = PRODUCT_FRAME["product_id"].to_numpy()
N_PRODUCTS = len(PRODUCT_ROWS)
PRODUCT_RISK = PRODUCT_FRAME["risk_level"].to_numpy()
PRODUCT_ACTIVE = PRODUCT_FRAME["is_active"].to_numpy()
PRODUCT_QUALIFIED = PRODUCT_FRAME["qualified_only"].to_numpy()
PRODUCT_MIN = PRODUCT_FRAME["min_amount"].to_numpy()
PRODUCT_CATEGORY = PRODUCT_FRAME["category"].to_numpy()
INACTIVE_FROM_MONTH = 12  # the two legacy products stopped selling in January 2025
CAMPAIGN_PRODUCT = "P07"
CAMPAIGN_ID = "CMP2025_FUND_PUSH"
CAMPAIGN_SENT = pd.Timestamp("2025-07-01 09:00")

# Planted affinities: holding the antecedent multiplies the monthly chance of buying the consequent.
AFFINITIES = pd.DataFrame(
    [("P03", "P05", 6.0), ("P10", "P08", 6.0), ("P14", "P15", 7.0),
     ("P12", "P22", 6.0), ("P01", "P18", 5.0), ("P16", "P17", 6.0)],
    columns=["antecedent", "consequent", "multiplier"],
)  # fmt: skip

PERSONAS = (
    "young_active_trader", "conservative_saver", "affluent_investor",
    "p2p_yield_seeker", "casual_dabbler",
)  # fmt: skip
PERSONA_SHARE = np.array([0.22, 0.28, 0.10, 0.15, 0.25])

# Per persona (rows in PERSONAS order).
AGE_MEAN = np.array([27.0, 55.0, 46.0, 36.0, 32.0])
AGE_SD = np.array([4.0, 8.0, 8.0, 7.0, 8.0])
INCOME_P = np.array([  # income band 1..5
    [0.15, 0.35, 0.35, 0.12, 0.03], [0.10, 0.30, 0.35, 0.20, 0.05],
    [0.00, 0.02, 0.08, 0.30, 0.60], [0.05, 0.25, 0.40, 0.25, 0.05],
    [0.35, 0.35, 0.20, 0.08, 0.02],
])  # fmt: skip
OCCUPATIONS = np.array(["student", "it_engineer", "retired", "civil_servant", "business_owner",
                        "executive", "sales", "teacher", "freelancer", "worker"])  # fmt: skip
OCCUPATION_P = np.array([
    [0.20, 0.35, 0.00, 0.05, 0.05, 0.02, 0.10, 0.03, 0.15, 0.05],
    [0.00, 0.03, 0.45, 0.20, 0.04, 0.03, 0.05, 0.12, 0.02, 0.06],
    [0.00, 0.10, 0.05, 0.05, 0.40, 0.35, 0.02, 0.01, 0.02, 0.00],
    [0.02, 0.15, 0.05, 0.10, 0.15, 0.05, 0.25, 0.05, 0.10, 0.08],
    [0.25, 0.10, 0.02, 0.05, 0.02, 0.01, 0.15, 0.05, 0.15, 0.20],
])  # fmt: skip
CITY_P = np.array([  # city tier 1..4
    [0.45, 0.35, 0.15, 0.05], [0.20, 0.30, 0.30, 0.20], [0.65, 0.25, 0.08, 0.02],
    [0.25, 0.35, 0.25, 0.15], [0.20, 0.30, 0.30, 0.20],
])  # fmt: skip
CHANNELS = np.array(["app_store", "wechat", "referral", "web", "branch"])
CHANNEL_P = np.array([
    [0.50, 0.30, 0.10, 0.10, 0.00], [0.05, 0.15, 0.15, 0.15, 0.50], [0.10, 0.10, 0.40, 0.10, 0.30],
    [0.30, 0.35, 0.15, 0.20, 0.00], [0.35, 0.45, 0.10, 0.10, 0.00],
])  # fmt: skip
RISK_P = np.array([  # assessed risk level 1..5
    [0.02, 0.08, 0.25, 0.40, 0.25], [0.45, 0.40, 0.12, 0.03, 0.00], [0.02, 0.10, 0.30, 0.33, 0.25],
    [0.03, 0.17, 0.40, 0.35, 0.05], [0.20, 0.35, 0.30, 0.12, 0.03],
])  # fmt: skip
SESSION_RATE = np.array([0.22, 0.06, 0.09, 0.10, 0.04])  # mean app sessions per day
DEPOSIT_SCALE = np.array([8_000.0, 30_000.0, 250_000.0, 25_000.0, 2_000.0])
DEPOSIT_P = np.array([0.35, 0.30, 0.30, 0.35, 0.12])  # monthly top-up chance (healthy, funded)
DECLINE_HAZARD = np.array([0.035, 0.016, 0.018, 0.045, 0.055])  # monthly, healthy -> declining
COMPLAINT_RATE = np.array([0.03, 0.02, 0.04, 0.04, 0.015])  # monthly, healthy
SHOP_P = np.array([0.15, 0.08, 0.12, 0.12, 0.06])  # monthly chance of a "shopping" month
CAMPAIGN_BASE = np.array([0.22, 0.10, 0.30, 0.18, 0.14])  # organic 30-day buy of P07
CAMPAIGN_UPLIFT = np.array([0.20, 0.0, 0.30, 0.15, 0.09])  # persuasion probability
PAGES = np.array(["home", "fund_list", "product_detail", "credit_report", "news",
                  "stock_quotes", "forex_rates", "p2p_market", "account", "help"])  # fmt: skip
PAGE_P = np.array([
    [0.20, 0.10, 0.10, 0.02, 0.10, 0.30, 0.08, 0.02, 0.06, 0.02],
    [0.30, 0.20, 0.15, 0.02, 0.12, 0.03, 0.01, 0.02, 0.12, 0.03],
    [0.20, 0.20, 0.18, 0.02, 0.15, 0.12, 0.05, 0.01, 0.06, 0.01],
    [0.20, 0.08, 0.12, 0.02, 0.08, 0.04, 0.04, 0.35, 0.05, 0.02],
    [0.35, 0.15, 0.10, 0.02, 0.20, 0.06, 0.04, 0.04, 0.02, 0.02],
])  # fmt: skip

PREF_WEIGHTS = {  # monthly base buy chance by persona and category
    0: {"stock_portfolio": 0.035, "index_fund": 0.03, "equity_fund": 0.02, "forex_copy": 0.025,
        "margin": 0.03, "money_market": 0.01, "gold": 0.008},
    1: {"deposit": 0.03, "money_market": 0.03, "bond_fund": 0.02, "insurance": 0.015,
        "pension": 0.015, "gold": 0.006},
    2: {"equity_fund": 0.03, "stock_portfolio": 0.025, "bond_fund": 0.02, "gold": 0.015,
        "insurance": 0.012, "pension": 0.012, "index_fund": 0.015, "margin": 0.015},
    3: {"p2p": 0.05, "money_market": 0.02, "bond_fund": 0.01, "deposit": 0.01},
    4: {"money_market": 0.02, "index_fund": 0.01, "deposit": 0.01, "gold": 0.006},
}  # fmt: skip


def preference_matrix() -> np.ndarray:
    """Monthly base chance (given a session that month) that a persona buys each product."""
    cat = {c: c == PRODUCT_CATEGORY for c in set(PRODUCT_CATEGORY)}
    pref = np.full((len(PERSONAS), N_PRODUCTS), 0.002)
    weights = PREF_WEIGHTS
    for p, row in weights.items():
        for c, w in row.items():
            pref[p, cat[c]] = w
    return pref
