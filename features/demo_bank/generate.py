"""Assemble the demo bank: draw customers, simulate, build the contract tables and the truth."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.demo_bank import catalog as cat
from features.demo_bank import tables as tb
from features.demo_bank import truth as tr
from features.demo_bank.bad_rows import inject_bad_rows
from features.demo_bank.population import draw_customers, draw_funnel
from features.demo_bank.profiles import use_profile, use_truth_at
from features.demo_bank.simulate import EXIT_STYLES, World, simulate


@dataclass(frozen=True)
class DemoBank:
    """A simulated brokerage: the seven contract tables and the truth planted in them."""

    tables: dict[str, pd.DataFrame]
    truth: dict[str, pd.DataFrame | dict]


def generate_demo_bank(
    n_customers: int = 20_000,
    seed: int = 7,
    bad_rows: float = 0.0,
    activity_scale: float = 1.0,
    exit_style: str = "silent",
    profile: str = "default",
    truth_at: pd.Timestamp | None = None,
) -> DemoBank:
    """Simulate ``n_customers`` over 2024-01-01..2026-01-01; same seed, same bank.

    ``activity_scale`` multiplies every customer's app-session rate (the planted truth uses the
    scaled rate, so it stays consistent). The default 1.0 gives about 190 events per customer;
    benchmarks use e.g. 0.3 (about 60) to reach 1M customers with ~60M events in memory.
    Fewer sessions also mean fewer session-driven trades, so other rates shift with it.
    ``exit_style`` is how leavers go: ``silent`` (they stop; the default bank) or ``sellout``
    (at the leave time they sell everything and withdraw all cash, then stop).
    ``profile`` picks the configuration (features/demo_bank/profiles.py): ``default`` or ``alt``
    (six other personas with other product mixes and event rates).
    ``truth_at`` takes the planted truth at another month start than DEMO_AS_OF (the tables
    are the same): a model's validation fold is judged against its own cut-off's truth.
    """
    if exit_style not in EXIT_STYLES:
        raise ValueError(f"exit_style must be one of {', '.join(EXIT_STYLES)}, got {exit_style!r}")
    if not 0.0 < activity_scale <= 10.0:
        raise ValueError(f"activity_scale must be within (0, 10], got {activity_scale}")
    if not 0.0 <= bad_rows <= 0.2:
        raise ValueError(f"bad_rows must be within 0..0.2, got {bad_rows}")
    if n_customers < 1:
        raise ValueError(f"n_customers must be at least 1, got {n_customers}")
    with use_profile(profile), use_truth_at(cat.DEMO_AS_OF if truth_at is None else truth_at):
        bank = _generate(n_customers, seed, bad_rows, activity_scale, exit_style)
    if profile != "default":  # the default bank's truth stays byte-identical
        bank.truth["meta"]["profile"] = profile
    if activity_scale != 1.0:  # what it takes to simulate the same bank again
        bank.truth["meta"]["activity_scale"] = activity_scale
    return bank


def _generate(
    n_customers: int, seed: int, bad_rows: float, activity_scale: float, exit_style: str
) -> DemoBank:
    rng = np.random.default_rng(seed)
    latent = draw_customers(rng, n_customers)
    if activity_scale != 1.0:  # the default draws and bank stay bit-identical
        latent["activity_rate"] *= activity_scale
    funnel = draw_funnel(rng, latent)
    world = World(
        latent, funnel, cat.preference_matrix(), _returns(rng), n_customers, exit_style=exit_style
    )
    simulate(rng, world)
    ids = tb.customer_ids(n_customers)
    tables = _build_tables(world, ids)
    truth = _build_truth(world, ids, tables, seed)
    if bad_rows > 0:
        tables, truth["bad_rows"] = inject_bad_rows(tables, bad_rows, rng)
    else:
        truth["bad_rows"] = inject_bad_rows(tables, 0.0, rng)[1]
    truth["meta"]["bad_rows_fraction"] = bad_rows
    return DemoBank(tables=tables, truth=truth)


def _returns(rng: np.random.Generator) -> np.ndarray:
    from features.demo_bank.money import monthly_returns

    return monthly_returns(rng)


def _build_tables(world: World, ids: np.ndarray) -> dict[str, pd.DataFrame]:
    log, lat = world.log, world.latent
    kyc = ~np.isnan(world.funnel["real_name_auth"].to_numpy())
    channel = pd.Categorical(lat["channel"], categories=cat.CHANNELS).codes
    return {
        "customers": tb.build_customers(lat, ids, kyc),
        "products": tb.build_products(),
        "transactions": tb.build_transactions(log.columns("transactions"), ids),
        "events": tb.build_events(log.columns("events"), ids, channel),
        "balances": tb.build_balances(log.columns("balances"), ids),
        "campaigns": tb.build_campaigns(world.campaign, ids),
        "interactions": tb.build_interactions(log.columns("interactions"), ids),
    }


def _build_truth(world: World, ids: np.ndarray, tables: dict, seed: int) -> dict:
    flags = tr.activity_flags(tables, pd.Series(ids, dtype="str"))
    active = flags["active_at_as_of"].to_numpy()
    p_churn, weights = tr.churn_truth(world, active)
    customers = tr.customers_truth(world, ids, flags, p_churn)
    campaign, uplift = tr.campaign_truth(world.campaign, ids)
    meta = _meta(world, customers, campaign, seed)
    return {
        "customers": customers,
        "affinities": cat.AFFINITIES.copy(),
        "conversion": tr.conversion_truth(world, ids, active, weights),
        "campaign": campaign,
        "campaign_uplift": uplift,
        "meta": meta,
    }


def _meta(world: World, customers: pd.DataFrame, campaign: dict, seed: int) -> dict:
    active = customers[customers["active_at_as_of"]]
    shares = customers["persona"].value_counts(normalize=True)
    return {
        "seed": seed, "n_customers": int(world.n), "demo_as_of": str(cat.DEMO_AS_OF.date()),
        "window": [str(cat.START.date()), str(cat.END.date())], "horizon_days": cat.HORIZON_DAYS,
        "active_days": tr.ACTIVE_DAYS, "exit_style": world.exit_style,
        "persona_shares": {p: float(shares.get(p, 0.0)) for p in cat.PERSONAS},
        "churn_at_as_of": {"active_customers": int(len(active)),
                           "realised_rate": float(active["churn_label"].mean()) if len(active) else None,
                           "mean_p_churn_true": float(active["p_churn_true"].mean()) if len(active) else None},
        "funnel": tr.funnel_truth(),
        "campaign": campaign,
        "affinities": cat.AFFINITIES.to_dict(orient="records"),
    }  # fmt: skip
