"""The monthly forward simulation: one loop over months, vectorised over customers."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from features.demo_bank import catalog as cat
from features.demo_bank import dynamics as dyn
from features.demo_bank import money
from features.demo_bank.activity import draw_sessions, log_sessions, pick_session
from features.demo_bank.campaign import CAMPAIGN_J, CAMPAIGN_MONTH, run_campaign
from features.demo_bank.log import EV, KIND, PROP_CHANNEL, PROP_VARIANT_A, TX, Log
from features.demo_bank.population import choose_rows

# silent: a leaver just stops (holdings stay, no more sessions); sellout: at the leave time a
# leaver sells every holding and withdraws all cash (no session, no event), then stops
EXIT_STYLES = ("silent", "sellout")


@dataclass
class World:
    """Mutable simulation state (arrays over customers) and what the truth needs later."""

    latent: pd.DataFrame
    funnel: pd.DataFrame
    pref: np.ndarray
    returns: np.ndarray
    n: int
    log: Log = field(default_factory=Log)
    state: np.ndarray = None
    tau: np.ndarray = None
    cash: np.ndarray = None
    hold: np.ndarray = None
    complaints: np.ndarray = None
    port_return: np.ndarray = None
    shop: np.ndarray = None
    last_active: np.ndarray = None
    snapshots: dict = field(default_factory=dict)
    campaign: pd.DataFrame | None = None
    next_sid: int = 1
    exit_style: str = "silent"  # EXIT_STYLES: how a customer who leaves goes

    def __post_init__(self) -> None:
        n = self.n
        self.state = np.zeros(n, np.int64)
        self.tau = np.full(n, np.inf)
        self.cash = np.zeros(n)
        self.hold = np.zeros((n, cat.N_PRODUCTS))
        self.complaints = np.zeros((n, cat.N_MONTHS), np.int16)
        self.port_return = np.zeros((n, cat.N_MONTHS))
        self.shop = np.zeros(n, bool)
        self.last_active = np.full(n, -np.inf)


def simulate(rng: np.random.Generator, world: World) -> World:
    """Run every month in order; snapshot the latent state at the DEMO_AS_OF boundary."""
    for m in range(cat.N_MONTHS):
        if m == cat.AS_OF_MONTH:
            world.snapshots["as_of"] = snapshot(world)
        simulate_month(rng, world, m)
    world.snapshots["end"] = {"assets": world.cash + world.hold.sum(axis=1)}
    return world


def snapshot(w: World) -> dict:
    """Copy of the latent state that the truth at DEMO_AS_OF is computed from."""
    return {"state": w.state.copy(), "tau": w.tau.copy(), "hold": w.hold.copy(), "shop": w.shop.copy(),
            "complaints": w.complaints.copy(), "port_return": w.port_return.copy(),
            "assets": w.cash + w.hold.sum(axis=1)}  # fmt: skip


def simulate_month(rng: np.random.Generator, w: World, m: int) -> None:
    """Transitions, sessions, funnel, trading, campaign, interactions, returns and balances."""
    lat = w.latent
    t0, t1 = cat.MONTH_T0[m], cat.MONTH_T0[m + 1]
    signup = lat["signup_t"].to_numpy()
    old = (signup < t0) & np.isinf(w.tau)
    new = (signup >= t0) & (signup < t1)
    hazard = dyn.decline_hazard(lat["decline_hazard"].to_numpy(), w.complaints, w.port_return, m)
    prev = w.state.copy()
    stepped, leaving = dyn.step_states(rng, w.state, hazard)
    leaving &= old
    w.state = np.where(old, stepped, w.state)
    w.tau[leaving] = t0 + rng.random(leaving.sum()) * (t1 - t0)
    mult = np.where(leaving, dyn.DECAY ** (prev + 1.0), dyn.activity_multiplier(w.state))
    alive = old | new
    start = np.where(alive, np.maximum(signup, t0), t0)
    end = np.where(alive, np.minimum(w.tau, t1), t0)
    persona = lat["persona"].to_numpy()
    rate = lat["activity_rate"].to_numpy() * cat.MONTH_FACTOR[m] * mult
    s_c, s_t, counts = draw_sessions(rng, rate, start, end)
    shop_prev, w.shop = w.shop, alive & (rng.random(w.n) < cat.SHOP_P[persona])
    ids = np.arange(w.n)
    w.next_sid = log_sessions(rng, w.log, s_c, s_t, persona[s_c], w.shop[s_c], w.pref, w.next_sid)
    funded = w.funnel["invest_success"].to_numpy() < t0  # binders who never invested stay out
    log_funnel(rng, w, new, m)
    if m == CAMPAIGN_MONTH:
        w.campaign = run_campaign(rng, w, old)
    trade(rng, w, m, ids, counts, s_t, funded & old, shop_prev, start)
    if w.exit_style == "sellout":
        sell_out(rng, w, np.flatnonzero(leaving))
    log_interactions(rng, w, alive, start, end, m)
    np.maximum.at(w.last_active, s_c, s_t)
    month_end(w, m, t1)


def log_funnel(rng: np.random.Generator, w: World, new: np.ndarray, m: int) -> None:
    """Funnel events of this month's sign-ups and their first investment."""
    f, lat = w.funnel, w.latent
    idx = np.flatnonzero(new)
    variant = f["variant"].to_numpy()[idx]
    prop = np.where(variant > 0, PROP_VARIANT_A + variant - 1, PROP_CHANNEL)
    w.log.add("events", idx, t=f["register"].to_numpy()[idx], event=EV["register"], prop=prop)
    for step in ("real_name_auth", "bind_card"):
        t = f[step].to_numpy()[idx]
        ok = ~np.isnan(t)
        w.log.add("events", idx[ok], t=t[ok], event=EV[step])
    t_inv = f["invest_success"].to_numpy()[idx]
    c = idx[~np.isnan(t_inv)]
    weights = money.base_buy_probability(w.pref, lat["persona"].to_numpy()[c],
                                         lat["eff_risk"].to_numpy()[c], lat["qualified"].to_numpy()[c],
                                         w.hold[c] > 0, m)  # fmt: skip
    product = choose_rows(rng, weights + 1e-9)
    scale = lat["deposit_scale"].to_numpy()
    floor = lat["signup_t"].to_numpy()
    money.execute_buys(
        rng,
        w.log,
        np.arange(w.n),
        c,
        product,
        t_inv[~np.isnan(t_inv)],
        floor,
        w.cash,
        w.hold,
        scale,
    )
    w.last_active[idx] = np.maximum(w.last_active[idx], f["register"].to_numpy()[idx])


def trade(rng, w: World, m: int, ids, counts, s_t, funded, shop_prev, start) -> None:
    """Sells, withdrawals, deposits and buys of funded customers that had a session this month."""
    lat = w.latent
    who = np.flatnonzero(funded & (counts > 0))
    declining = w.state[who] > 0
    persona = lat["persona"].to_numpy()[who]
    t_sell = pick_session(rng, counts, s_t, who)
    money.execute_sells(
        rng, w.log, ids, who, t_sell, np.where(declining, 0.5, 0.025), w.cash, w.hold
    )
    share = np.where(declining, rng.uniform(0.7, 1.0, len(who)) * (rng.random(len(who)) < 0.85),
                     rng.uniform(0.2, 0.6, len(who)) * (rng.random(len(who)) < 0.06))  # fmt: skip
    money.execute_withdrawals(rng, w.log, ids, who, t_sell + 0.01, share, w.cash)
    dep = ~declining & (rng.random(len(who)) < cat.DEPOSIT_P[persona])
    amount = np.round(
        lat["deposit_scale"].to_numpy()[who[dep]] * rng.lognormal(-1.5, 0.5, dep.sum()) + 1, 2
    )
    t_dep = pick_session(rng, counts, s_t, who[dep])
    w.log.add("transactions", who[dep], t=t_dep, type=TX["deposit"], amount=amount)
    w.cash[who[dep]] += amount
    base = money.base_buy_probability(w.pref, persona, lat["eff_risk"].to_numpy()[who],
                                      lat["qualified"].to_numpy()[who], w.hold[who] > 0, m)  # fmt: skip
    if m == CAMPAIGN_MONTH:  # the campaign population's buys of its product follow the campaign
        member = np.isin(who, w.campaign["c"].to_numpy())
        base[member, CAMPAIGN_J] = 0.0
    p = money.buy_probability(base, w.shop[who] | shop_prev[who], declining)
    r, j = np.nonzero(rng.random(p.shape) < p)
    c = who[r]
    t = pick_session(rng, counts, s_t, c) + rng.uniform(2, 10, len(c)) / 1440
    money.execute_buys(
        rng, w.log, ids, c, j, t, start, w.cash, w.hold, lat["deposit_scale"].to_numpy()
    )


def sell_out(rng: np.random.Generator, w: World, who: np.ndarray) -> None:
    """Leavers sell every holding an hour after their leave time (after their last session's
    events) and withdraw all their cash a minute later."""
    ids, t = np.arange(w.n), w.tau[who] + 1 / 24
    money.execute_sells(rng, w.log, ids, who, t, np.ones(len(who)), w.cash, w.hold)
    money.execute_withdrawals(rng, w.log, ids, who, t + 1 / 1440, np.ones(len(who)), w.cash)
    # the cent rounding can take a hair more than the cash; a negative balance would later
    # draw a top-up deposit with no session time
    np.maximum(w.cash, 0.0, out=w.cash)


def log_interactions(rng, w: World, alive, start, end, m: int) -> None:
    """Complaints (far more often when declining), surveys, inquiries, calls and chats."""
    lat = w.latent
    frac = np.where(alive, (end - start) / (cat.MONTH_T0[m + 1] - cat.MONTH_T0[m]), 0.0)
    declining = w.state > 0
    rates = {
        "complaint": lat["complaint_rate"].to_numpy() * np.where(declining, 8.0, 1.0),
        "survey": np.full(w.n, 0.05), "inquiry": np.where(declining, 0.12, 0.06),
        "call": np.full(w.n, 0.03), "chat": np.full(w.n, 0.08),
    }  # fmt: skip
    for kind, rate in rates.items():
        k = rng.poisson(rate * frac)
        c = np.repeat(np.arange(w.n), k)
        t = start[c] + rng.random(len(c)) * (end[c] - start[c])
        score = np.nan
        if kind == "survey":
            score = np.clip(np.round(rng.normal(np.where(declining[c], 4.0, 8.0), 1.6)), 1, 10)
        if kind == "complaint":
            w.complaints[:, m] = k
        w.log.add("interactions", c, t=t, kind=KIND[kind], score=score)


def month_end(w: World, m: int, t1: float) -> None:
    """Market returns, quarter-end income for customers still there, month-end balances."""
    r = w.returns[m]
    value = w.hold.sum(axis=1)
    gain = w.hold @ r
    w.port_return[:, m] = np.where(value > 1, gain / np.maximum(value, 1), 0.0)
    w.hold *= 1 + r
    if m % 3 == 2:
        t_pay = t1 - 1 + 10 / 24
        who = np.flatnonzero((w.latent["signup_t"].to_numpy() < t_pay) & (w.tau > t_pay))
        paid = money.pay_income(w.log, np.arange(w.n), who, t_pay, w.cash, w.hold)
        w.last_active[paid] = np.maximum(w.last_active[paid], t_pay)
    seen = np.flatnonzero(w.latent["signup_t"].to_numpy() < t1)
    total = np.round(np.maximum(w.cash[seen] + w.hold[seen].sum(axis=1), 0.0), 2)
    w.log.add("balances", seen, t=t1 - 1, total_assets=total)
