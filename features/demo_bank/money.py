"""Money movements: purchase probabilities, buys, sells, deposits, withdrawals, returns, income."""

from __future__ import annotations

import numpy as np

from features.demo_bank import catalog as cat
from features.demo_bank.activity import log_pre_buy_views
from features.demo_bank.dynamics import DECLINE_BUY_FACTOR
from features.demo_bank.log import EV, TX, Log

INTENT_BOOST = 3.0  # buying multiplier in a shopping month and the month after
BUY_CAP = 0.9
_PAIRS = [
    (int(np.flatnonzero(a == cat.PRODUCT_IDS)[0]), int(np.flatnonzero(b == cat.PRODUCT_IDS)[0]), m)
    for a, b, m in cat.AFFINITIES.itertuples(index=False)
]


def risk_fit(eff_risk: np.ndarray) -> np.ndarray:
    """(n, P) multiplier: 1 at or below the customer's level, small above it."""
    gap = cat.PRODUCT_RISK[None, :] - eff_risk[:, None]
    return np.select([gap <= 0, gap == 1], [1.0, 0.06], 0.005)


def affinity_boost(held: np.ndarray) -> np.ndarray:
    """(n, P) multiplier from the planted antecedent -> consequent pairs."""
    boost = np.ones(held.shape)
    for a, b, mult in _PAIRS:
        boost[:, b] *= np.where(held[:, a], mult, 1.0)
    return boost


def base_buy_probability(
    pref: np.ndarray,
    persona: np.ndarray,
    eff_risk: np.ndarray,
    qualified: np.ndarray,
    held: np.ndarray,
    month: int,
) -> np.ndarray:
    """(n, P) monthly chance to buy, given a session that month, before intent and decline."""
    on_sale = cat.PRODUCT_ACTIVE | (month < cat.INACTIVE_FROM_MONTH)
    allowed = on_sale[None, :] & (~cat.PRODUCT_QUALIFIED[None, :] | qualified[:, None]) & ~held
    return pref[persona] * risk_fit(eff_risk) * affinity_boost(held) * allowed


def buy_probability(base: np.ndarray, intent: np.ndarray, declining: np.ndarray) -> np.ndarray:
    """Apply the intent boost and the decline factor, capped."""
    mult = np.where(intent, INTENT_BOOST, 1.0) * np.where(declining, DECLINE_BUY_FACTOR, 1.0)
    return np.minimum(base * mult[:, None], BUY_CAP)


def buy_amount(rng: np.random.Generator, scale: np.ndarray, product: np.ndarray) -> np.ndarray:
    """Ticket size: a share of the customer's typical deposit, at least the product minimum."""
    amount = scale * rng.lognormal(-1.0, 0.6, len(scale))
    return np.round(
        np.maximum(amount, cat.PRODUCT_MIN[product] * rng.uniform(1, 1.5, len(scale))) + 1, 2
    )


def execute_buys(
    rng: np.random.Generator,
    log: Log,
    ids: np.ndarray,
    c: np.ndarray,
    product: np.ndarray,
    t: np.ndarray,
    floor_t: np.ndarray,
    cash: np.ndarray,
    hold: np.ndarray,
    scale: np.ndarray,
) -> None:
    """Log buys (with earlier views, a funding deposit when cash is short, invest_success)."""
    if len(c) == 0:
        return
    amount = buy_amount(rng, scale[c], product)
    need = np.bincount(c, amount, len(cash))
    short = np.flatnonzero(need > cash)
    first_t = np.full(len(cash), np.inf)
    np.minimum.at(first_t, c, t)
    top_up = np.round((need[short] - cash[short]) * rng.uniform(1.0, 1.3, len(short)) + 1, 2)
    log.add(
        "transactions", ids[short], t=first_t[short] - 5 / 1440, type=TX["deposit"], amount=top_up
    )
    cash[short] += top_up
    cash -= need
    np.add.at(hold, (c, product), amount)
    log_pre_buy_views(rng, log, ids[c], t, product, floor_t[c])
    log.add("transactions", ids[c], t=t, type=TX["buy"], product=product, amount=amount)
    log.add("events", ids[c], t=t + 1 / 86400, event=EV["invest_success"], product=product)
    cat_ = cat.PRODUCT_CATEGORY[product]
    for category, event in (("p2p", "p2p_invest"), ("forex_copy", "forex_copy_follow")):
        hit = cat_ == category
        log.add("events", ids[c][hit], t=t[hit] + 2 / 86400, event=EV[event], product=product[hit])


def execute_sells(
    rng: np.random.Generator,
    log: Log,
    ids: np.ndarray,
    who: np.ndarray,
    t: np.ndarray,
    p_sell: np.ndarray,
    cash: np.ndarray,
    hold: np.ndarray,
) -> None:
    """Full sells of held products for customers ``who`` (session time ``t``), chance per product."""
    sold = (hold[who] > 0) & (rng.random((len(who), hold.shape[1])) < p_sell[:, None])
    r, j = np.nonzero(sold)
    c = who[r]
    value = np.round(hold[c, j], 2)
    ok = value > 0.01
    log.add(
        "transactions", ids[c[ok]], t=t[r[ok]], type=TX["sell"], product=j[ok], amount=value[ok]
    )
    np.add.at(cash, c, hold[c, j])
    hold[c, j] = 0.0


def execute_withdrawals(
    rng: np.random.Generator,
    log: Log,
    ids: np.ndarray,
    who: np.ndarray,
    t: np.ndarray,
    share: np.ndarray,
    cash: np.ndarray,
) -> None:
    """Withdraw ``share`` of cash for customers ``who`` at times ``t`` (share 0 = none)."""
    amount = np.round(cash[who] * share, 2)
    ok = amount > 1.0
    log.add("transactions", ids[who[ok]], t=t[ok], type=TX["withdraw"], amount=amount[ok])
    cash[who[ok]] -= amount[ok]


def monthly_returns(rng: np.random.Generator) -> np.ndarray:
    """(months, P) product returns: drift + beta x market factor + own noise."""
    market = rng.normal(0.004, 0.045, cat.N_MONTHS)
    f = cat.PRODUCT_FRAME
    eps = rng.normal(0.0, 1.0, (cat.N_MONTHS, cat.N_PRODUCTS))
    r = f["mu"].to_numpy() + f["beta"].to_numpy() * market[:, None] + f["sigma"].to_numpy() * eps
    return np.maximum(r, -0.5)


def pay_income(
    log: Log, ids: np.ndarray, who: np.ndarray, t: float, cash: np.ndarray, hold: np.ndarray
) -> np.ndarray:
    """Quarter-end interest and dividends on held income products; returns who was paid."""
    income = hold[who] * cat.PRODUCT_FRAME["yield_"].to_numpy() / 4
    r, j = np.nonzero(income > 0.5)
    amount = np.round(income[r, j], 2)
    log.add("transactions", ids[who[r]], t=t, type=TX["income"], product=j, amount=amount)
    np.add.at(cash, who[r], amount)
    return np.unique(who[r])
