"""Ground truth of the planted structure, computed from the simulator's latent state."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.demo_bank import catalog as cat
from features.demo_bank import dynamics as dyn
from features.demo_bank import money
from features.demo_bank.campaign import CAMPAIGN_J
from features.demo_bank.population import FUNNEL_P
from features.demo_bank.tables import to_timestamps
from features.engagement import departed_mask
from features.labels import build_churn_labels

ACTIVE_DAYS = 90


def window_months() -> tuple[list[int], list[tuple[float, float]]]:
    """Months overlapping [as_of, as_of + horizon) and (days in month, days inside the window)."""
    end = cat.as_of_t() + cat.HORIZON_DAYS
    months = [m for m in range(cat.AS_OF_MONTH, cat.N_MONTHS) if cat.MONTH_T0[m] < end]
    days = [
        (cat.MONTH_T0[m + 1] - cat.MONTH_T0[m], min(cat.MONTH_T0[m + 1], end) - cat.MONTH_T0[m])
        for m in months
    ]
    return months, days


def activity_flags(tables: dict[str, pd.DataFrame], ids: pd.Series) -> pd.DataFrame:
    """Realised contract flags at DEMO_AS_OF (default engagement settings): departed, active, churn.

    The contract's own definitions (features/engagement.py, features/labels.py), so the truth
    and a run judge the same population and the same outcome.
    """
    labels = build_churn_labels(
        tables, as_of=cat.DEMO_AS_OF, active_days=ACTIVE_DAYS, horizon_days=cat.HORIZON_DAYS
    ).set_index("customer_id")["churned"]
    signed = tables["customers"].loc[tables["customers"]["signup_at"] < cat.DEMO_AS_OF]
    index = pd.Index(signed["customer_id"])
    departed = pd.Series(departed_mask(tables, index, as_of=cat.DEMO_AS_OF), index=index)
    active = ids.isin(labels.index)
    return pd.DataFrame(
        {
            "departed_at_as_of": departed.reindex(ids).fillna(False).to_numpy(dtype=bool),
            "active_at_as_of": active.to_numpy(),
            "churn_label": labels.reindex(ids).fillna(0).to_numpy(dtype=int).astype(bool)
            & active.to_numpy(),
        }
    )


def churn_truth(world, active: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """p_churn_true per customer (NaN when not active) and per-month buy weights for alive ones."""
    snap, lat = world.snapshots["as_of"], world.latent
    months, days = window_months()
    base = lat["decline_hazard"].to_numpy()
    hazards = [dyn.decline_hazard(base, snap["complaints"], snap["port_return"], m) for m in months]
    rates = [lat["activity_rate"].to_numpy() * cat.MONTH_FACTOR[m] for m in months]
    p_silent, weights = dyn.forward_truth(snap["state"], hazards, rates, days)
    gone = np.isfinite(snap["tau"])
    p = np.where(gone, 1.0, p_silent)
    weights = [np.where(gone, 0.0, w_) for w_ in weights]
    return np.where(active, p, np.nan), weights


def conversion_truth(
    world, ids: np.ndarray, active: np.ndarray, weights: list[np.ndarray]
) -> pd.DataFrame:
    """p_buy_true for every active customer x product not held at DEMO_AS_OF.

    Per month m of the horizon: a_m = min(base_m x E[intent_m], cap) x P(alive with a session in m,
    weighted by the decline buy factor) from the exact state forecast; p = 1 - prod(1 - a_m).
    Holdings are frozen at DEMO_AS_OF (a buy inside the horizon that would switch on an
    affinity is ignored), so this is a close approximation, not an exact probability.
    """
    snap, lat = world.snapshots["as_of"], world.latent
    c = np.flatnonzero(active)
    persona = lat["persona"].to_numpy()[c]
    held = snap["hold"][c] > 0
    funded = world.funnel["invest_success"].to_numpy()[c] < cat.as_of_t()
    months, _ = window_months()
    s = cat.SHOP_P[persona]
    shop_now = snap["shop"][c]
    miss = np.ones(held.shape)
    for i, m in enumerate(months):
        base = money.base_buy_probability(world.pref, persona, lat["eff_risk"].to_numpy()[c],
                                          lat["qualified"].to_numpy()[c], held, m)  # fmt: skip
        # intent in month m = shopping in m or in m-1; October's flag is known at DEMO_AS_OF
        p_intent = np.where(shop_now, 1.0, s) if i == 0 else 1 - (1 - s) ** 2
        intent = 1 + (money.INTENT_BOOST - 1) * p_intent
        a = np.minimum(base * intent[:, None], money.BUY_CAP) * (weights[i][c] * funded)[:, None]
        miss *= 1 - a
    r, j = np.nonzero(~held)
    return pd.DataFrame(
        {"customer_id": ids[c[r]], "product_id": cat.PRODUCT_IDS[j], "p_buy_true": 1 - miss[r, j]}
    )


def customers_truth(
    world, ids: np.ndarray, flags: pd.DataFrame, p_churn: np.ndarray
) -> pd.DataFrame:
    """Per-customer persona, latent values, churn timing and probability, assets."""
    lat, snap = world.latent, world.snapshots["as_of"]
    tau = world.tau
    out = pd.DataFrame(
        {"customer_id": ids, "persona": np.array(cat.PERSONAS)[lat["persona"].to_numpy()]}
    )
    for col in (
        "activity_rate",
        "decline_hazard",
        "complaint_rate",
        "deposit_scale",
        "eff_risk",
        "qualified",
    ):
        out[col] = lat[col].to_numpy()
    out["state_at_as_of"] = np.where(
        np.isfinite(snap["tau"]), "left", np.where(snap["state"] > 0, "declining", "healthy")
    )
    out.loc[lat["signup_t"].to_numpy() >= cat.as_of_t(), "state_at_as_of"] = "not_signed_up"
    out["churned_at"] = (
        to_timestamps(np.where(np.isfinite(tau), tau, np.nan)).where(np.isfinite(tau)).to_numpy()
    )
    out["departed_at_as_of"] = flags["departed_at_as_of"].to_numpy()
    out["active_at_as_of"] = flags["active_at_as_of"].to_numpy()
    out["p_churn_true"] = p_churn
    out["churn_label"] = flags["churn_label"].to_numpy()
    out["assets_at_as_of"] = np.round(snap["assets"], 2)
    out["assets_at_end"] = np.round(world.snapshots["end"]["assets"], 2)
    return out


def campaign_truth(campaign: pd.DataFrame, ids: np.ndarray) -> tuple[dict, pd.DataFrame]:
    """Campaign summary (base, ATE, per persona) and per-customer true uplift."""
    treated = campaign["group"] == "treatment"
    conv = campaign["converted"]
    by_persona = campaign.groupby("persona")["true_uplift"].mean()
    summary = {
        "campaign_id": cat.CAMPAIGN_ID, "product_id": cat.PRODUCT_IDS[CAMPAIGN_J],
        "sent_at": str(cat.CAMPAIGN_SENT.date()), "window_days": 30, "population": int(len(campaign)),
        "outcome": "buy of the campaign product within 30 days of sent_at",
        "base_conversion_expected": float(campaign["p_base"].mean()),
        "true_ate": float(campaign["true_uplift"].mean()),
        "realised_control_rate": float(conv[~treated].mean()),
        "realised_treatment_rate": float(conv[treated].mean()),
        "per_persona_uplift": {cat.PERSONAS[int(k)]: float(v) for k, v in by_persona.items()},
        "per_persona_persuasion_probability": dict(zip(cat.PERSONAS, map(float, cat.CAMPAIGN_UPLIFT), strict=True)),
    }  # fmt: skip
    uplift = pd.DataFrame({"customer_id": ids[campaign["c"].to_numpy()], "group": campaign["group"].to_numpy(),
                           "true_uplift": campaign["true_uplift"].to_numpy(),
                           "p_base": campaign["p_base"].to_numpy()})  # fmt: skip
    return summary, uplift


def funnel_truth() -> dict:
    """True funnel step probabilities and the A/B test on bind_card."""
    return {
        "steps": ["register", "real_name_auth", "bind_card", "invest_success"],
        "p_real_name_auth_given_register": FUNNEL_P["real_name_auth"],
        "p_bind_card_given_auth": FUNNEL_P["bind_card"],
        "p_invest_given_bind": FUNNEL_P["invest_success"],
        "ab_test": {"experiment": "signup_ab_2025", "registered_from": "2025-03-01", "registered_to": "2025-06-30",
                    "property": "variant on the register event", "split": "50/50",
                    "p_bind_card_given_auth": {"A": FUNNEL_P["bind_card_A"], "B": FUNNEL_P["bind_card_B"]}},
    }  # fmt: skip
