"""Behaviour events: sessions expanded into logins, page views, clicks and line-specific events."""

from __future__ import annotations

import numpy as np

from features.demo_bank import catalog as cat
from features.demo_bank.log import EV, PROP_SESSION, Log
from features.demo_bank.population import choose_rows

MINUTE = 1.0 / 1440
PAGE = {name: i for i, name in enumerate(cat.PAGES)}
P2P_PRODUCTS = np.flatnonzero((cat.PRODUCT_CATEGORY == "p2p") & cat.PRODUCT_ACTIVE)


def draw_sessions(
    rng: np.random.Generator, rate: np.ndarray, start: np.ndarray, end: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Poisson session counts on [start, end); returns (customer, time) sorted by customer, counts."""
    span = np.maximum(end - start, 0.0)
    counts = rng.poisson(rate * span)
    c = np.repeat(np.arange(len(rate)), counts)
    t = start[c] + rng.random(len(c)) * span[c]
    return c, t, counts


def pick_session(
    rng: np.random.Generator, counts: np.ndarray, times: np.ndarray, who: np.ndarray
) -> np.ndarray:
    """Time of one random session of each customer in ``who`` (each must have a session)."""
    first = np.cumsum(counts) - counts
    return times[first[who] + (rng.random(len(who)) * counts[who]).astype(np.int64)]


def view_weights(persona: np.ndarray, pref: np.ndarray) -> np.ndarray:
    """Browsing interest per product: persona preference over products on sale."""
    w = pref[persona] * cat.PRODUCT_ACTIVE + 1e-4
    return w / w.sum(axis=1, keepdims=True)


def log_sessions(
    rng: np.random.Generator,
    log: Log,
    ids: np.ndarray,
    t: np.ndarray,
    persona: np.ndarray,
    shopping: np.ndarray,
    pref: np.ndarray,
    first_sid: int,
) -> int:
    """Log every session's events; ``persona``/``shopping`` are per session. Returns next session id."""
    n = len(ids)
    sid = first_sid + np.arange(n)
    log.add("events", ids, t=t, event=EV["login"], prop=PROP_SESSION, prop_value=sid)
    pages_n = np.where(rng.random(n) < 0.3, 1, 2 + np.minimum(rng.geometric(0.45, n) - 1, 6))
    s = np.repeat(np.arange(n), pages_n)
    page = choose_rows(rng, cat.PAGE_P[persona[s]])
    page = np.where(shopping[s] & (rng.random(len(s)) < 0.3), PAGE["credit_report"], page)
    step = rng.uniform(10, 180, len(s)) / 86400
    cs = np.cumsum(step)
    head = np.cumsum(pages_n) - pages_n
    within = cs - np.repeat(cs[head] - step[head], pages_n)
    pt, pc = t[s] + within, ids[s]
    log.add("events", pc, t=pt, event=EV["page_view"], page=page)
    _log_page_events(rng, log, pc, pt, page, persona[s], pref)
    return first_sid + n


def _log_page_events(rng, log, pc, pt, page, persona, pref) -> None:
    """Clicks, shares, product views and business-line events that follow a page view."""
    later = pt + rng.uniform(2, 30, len(pc)) / 86400
    click = rng.random(len(pc)) < 0.3
    log.add("events", pc[click], t=later[click], event=EV["click"], page=page[click])
    share = rng.random(len(pc)) < 0.015
    log.add("events", pc[share], t=later[share] + MINUTE, event=EV["share"], page=page[share])
    detail = page == PAGE["product_detail"]
    prod = choose_rows(rng, view_weights(persona[detail], pref))
    log.add(
        "events",
        pc[detail],
        t=later[detail],
        event=EV["view_product"],
        page=PAGE["product_detail"],
        product=prod,
    )
    for page_name, event in (
        ("stock_quotes", "stock_view_quote"),
        ("forex_rates", "forex_view_rates"),
    ):
        hit = page == PAGE[page_name]
        log.add("events", pc[hit], t=later[hit], event=EV[event], page=PAGE[page_name])
    trade = (page == PAGE["stock_quotes"]) & (persona == 0) & (rng.random(len(pc)) < 0.35)
    log.add(
        "events",
        pc[trade],
        t=later[trade] + MINUTE,
        event=EV["stock_trade"],
        page=PAGE["stock_quotes"],
    )
    loan = page == PAGE["p2p_market"]
    log.add("events", pc[loan], t=later[loan], event=EV["p2p_view_loan"], page=PAGE["p2p_market"],
            product=rng.choice(P2P_PRODUCTS, loan.sum()))  # fmt: skip


def log_pre_buy_views(
    rng: np.random.Generator,
    log: Log,
    c: np.ndarray,
    t_buy: np.ndarray,
    product: np.ndarray,
    floor_t: np.ndarray,
) -> None:
    """1-3 view_product events (often with a product_detail page view) in the days before a buy."""
    k = rng.integers(1, 4, len(c))
    r = np.repeat(np.arange(len(c)), k)
    room = np.clip(t_buy[r] - floor_t[r], 0, 3.0)
    vt = t_buy[r] - rng.random(len(r)) * room - 1e-3 * rng.random(len(r))
    vt = np.maximum(vt, floor_t[r])
    log.add(
        "events",
        c[r],
        t=vt,
        event=EV["view_product"],
        page=PAGE["product_detail"],
        product=product[r],
    )
    pv = rng.random(len(r)) < 0.7
    pvt = np.maximum(vt[pv] - 20 / 86400, floor_t[r][pv])
    log.add("events", c[r][pv], t=pvt, event=EV["page_view"], page=PAGE["product_detail"])
