"""The past campaign CMP2025_FUND_PUSH: population, random groups and heterogeneous uplift."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.demo_bank import catalog as cat
from features.demo_bank import money
from features.demo_bank.log import EV, PROP_SESSION

CAMPAIGN_MONTH = int(np.searchsorted(cat.MONTH_STARTS, cat.CAMPAIGN_SENT.normalize()))
CAMPAIGN_J = int(np.flatnonzero(cat.PRODUCT_IDS == cat.CAMPAIGN_PRODUCT)[0])
SENT_T = (cat.CAMPAIGN_SENT - cat.START) / pd.Timedelta(days=1)
WINDOW_DAYS = 30
ACTIVE_DAYS = 90


def campaign_probabilities(persona: np.ndarray, eff_risk: np.ndarray, holds: np.ndarray):
    """Per customer: organic 30-day buy chance p0, persuasion chance u, true uplift (1 - p0) u."""
    fit = np.where(eff_risk >= cat.PRODUCT_RISK[CAMPAIGN_J], 1.0, 0.6) * ~holds
    p0 = cat.CAMPAIGN_BASE[persona] * fit
    u = cat.CAMPAIGN_UPLIFT[persona] * fit
    return p0, u, (1 - p0) * u


def run_campaign(rng: np.random.Generator, w, old: np.ndarray) -> pd.DataFrame:
    """Send the push to active, consenting customers; log the conversions it and nature cause."""
    lat = w.latent
    member = old & ~lat["marketing_opt_out"].to_numpy() & (w.last_active >= SENT_T - ACTIVE_DAYS)
    c = np.flatnonzero(member)
    treat = rng.random(len(c)) < 0.5
    sent = SENT_T + rng.random(len(c)) * 10 / 24
    persona = lat["persona"].to_numpy()[c]
    p0, u, uplift = campaign_probabilities(
        persona, lat["eff_risk"].to_numpy()[c], w.hold[c, CAMPAIGN_J] > 0
    )
    organic = rng.random(len(c)) < p0
    persuaded = treat & ~organic & (rng.random(len(c)) < u)
    t_buy = sent + rng.random(len(c)) ** 2 * (WINDOW_DAYS - 0.5)
    # a customer who has left by then cannot buy; funded status is assumed by the offer
    convert = (organic | persuaded) & (t_buy < w.tau[c])
    bc, bt = c[convert], t_buy[convert]
    w.log.add("events", bc, t=bt - 5 / 1440, event=EV["login"], prop=PROP_SESSION,
              prop_value=w.next_sid + np.arange(len(bc)))  # fmt: skip
    w.next_sid += len(bc)
    money.execute_buys(rng, w.log, np.arange(w.n), bc, np.full(len(bc), CAMPAIGN_J), bt,
                       np.maximum(lat["signup_t"].to_numpy(), SENT_T),
                       w.cash, w.hold, lat["deposit_scale"].to_numpy())  # fmt: skip
    w.last_active[bc] = np.maximum(w.last_active[bc], bt)
    return pd.DataFrame({"c": c, "group": np.where(treat, "treatment", "control"), "sent_t": sent,
                         "persona": persona, "p_base": p0, "persuade_p": u, "true_uplift": uplift,
                         "converted": convert})  # fmt: skip
