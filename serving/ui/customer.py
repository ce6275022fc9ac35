"""What the Customer 360 page shows, as plain values: portrait, segment card, churn, products, timeline.

Pure functions of a ServingState and a customer id (the page escapes everything it prints).
Seed 004: front-line staff have little time, so every block answers one question in a line or two.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from features.contract import BUSINESS_LINES, CUSTOMER_ID, PRODUCT_ID, TS
from features.policy import apply_policy
from serving.profile import churn_band, holdings_of, plain

if TYPE_CHECKING:
    from serving.state import ServingState

AGE_BANDS = (
    (0, "under 25"),
    (25, "25–34"),
    (35, "35–44"),
    (45, "45–54"),
    (55, "55–64"),
    (65, "65+"),
)
GENERAL, WEALTH = "general", "wealth"
LINES = (*BUSINESS_LINES, WEALTH, GENERAL)
LINE_LABELS = {"p2p": "P2P", "forex": "Forex", "stock": "Stock", WEALTH: "Funds & wealth",
               GENERAL: "App & account"}  # fmt: skip
CARD_FEATURES = (
    ("age", "age"), ("total_assets", "total assets"), ("logins_30d", "logins in 30 days"),
    ("n_products_held", "products held"), ("n_buy_90d", "buys in 90 days"),
)  # fmt: skip
REASON_TEXT = {
    "inactive_product": "not on sale",
    "already_held": "already held",
    "risk_not_assessed": "risk above level 1 and the customer has no risk assessment (suitability)",
    "risk_above_customer": "product risk above the customer's risk level (suitability)",
    "qualified_only": "for qualified investors only (suitability)",
    "marketing_opt_out": "customer opted out of personalised marketing (consent)",
}
PAGE_SIZE = 20


def age_band(age: Any) -> str:
    """An age band label such as "35–44", or "unknown"."""
    if age is None or pd.isna(age):
        return "unknown"
    return [label for floor, label in AGE_BANDS if age >= floor][-1]


def portrait_summary(state: ServingState, customer_id: str) -> dict[str, str]:
    """Who the customer is, in the words staff use: bands, tiers, channel, risk and KYC."""
    row = state.portrait.loc[customer_id]
    risk = plain(row.get("risk_level"))
    return {
        "age band": age_band(plain(row.get("age"))),
        "occupation": _text(row.get("occupation")).replace("_", " "),
        "income band": _band(row.get("income_band"), "of 5"),
        "city tier": _band(row.get("city_tier"), ""),
        "channel": _text(row.get("channel")).replace("_", " "),
        "risk level": f"C{int(risk)}" if risk is not None else "not assessed",
        "KYC": "verified" if bool(plain(row.get("kyc_verified"))) else "not verified",
    }


def _text(value: Any) -> str:
    value = plain(value)
    return "unknown" if value is None else str(value)


def _band(value: Any, suffix: str) -> str:
    value = plain(value)
    return "unknown" if value is None else f"{int(value)} {suffix}".strip()


def opted_out(state: ServingState, customer_id: str) -> bool:
    """Whether the customer refused personalised marketing (missing counts as refused)."""
    value = plain(state.policy.at[customer_id, "marketing_opt_out"])
    return value is None or bool(value)


@lru_cache(maxsize=1)  # the state being served; a swap replaces it
def _segment_means(state: ServingState) -> tuple[pd.DataFrame, pd.Series]:
    """Means of the card features per segment and over everybody (once per served state)."""
    cols = [c for c, _ in CARD_FEATURES if c in state.portrait.columns]
    frame = state.portrait[cols].astype(float)
    if state.segments is None:
        return pd.DataFrame(columns=cols), frame.mean()
    ids = state.segments.set_index(CUSTOMER_ID)["segment_id"]
    by = ids.reindex(state.portrait.index.astype(str)).to_numpy()
    return frame.groupby(by).mean(), frame.mean()


def segment_facts(state: ServingState, customer_id: str) -> dict[str, Any]:
    """Segment name, value tier, lifecycle stage and tags (a plain list) of the customer."""
    segment = state.segment_of(customer_id)
    tags = segment.get("tags")
    return {
        "segment_name": plain(segment.get("segment_name")),
        "value_tier": plain(segment.get("value_tier")),
        "lifecycle_stage": plain(segment.get("lifecycle_stage")),
        "tags": [] if tags is None else [str(t) for t in tags],
    }


def segment_card(
    state: ServingState, customer_id: str, profiles: pd.DataFrame | None
) -> dict[str, Any] | None:
    """The customer's segment: name, size, share, top products and means against the population."""
    segment = state.segment_of(customer_id)
    if not segment:
        return None
    sid = int(segment["segment_id"])
    means, population = _segment_means(state)
    card = {"id": sid, "name": str(segment.get("segment_name")), "facts": [], "compare": []}
    if profiles is not None and sid in set(profiles["segment_id"]):
        p = profiles.loc[profiles["segment_id"] == sid].iloc[0]
        card["facts"] = [
            ("customers", f"{int(p['customers']):,} ({float(p['share']):.0%} of all)"),
            ("top products", _text(p.get("top_products")) if pd.notna(p.get("top_products")) else "none yet"),
            ("recent churn rate", _pct(p.get("recent_churn_rate"))),
            ("recent conversion rate", _pct(p.get("recent_conversion_rate"))),
        ]  # fmt: skip
    if sid in means.index:
        card["compare"] = [
            (label, _num(means.at[sid, col]), _num(population[col]))
            for col, label in CARD_FEATURES
            if col in means.columns
        ]
    return card


def _pct(value: Any) -> str:
    value = plain(value)
    return "n/a" if value is None else f"{float(value):.1%}"


def _num(value: Any) -> str:
    value = plain(value)
    if value is None:
        return "n/a"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.1f}"


def churn_view(state: ServingState, customer_id: str) -> dict[str, Any]:
    """Churn band, probability and the top reasons behind it."""
    probability = plain(state.churn_probability.get(customer_id))
    return {
        "band": churn_band(probability),
        "probability": None if probability is None else f"{probability:.0%}",
        "reasons": state.churn_reasons_of(customer_id, top=3),
    }


def not_offered(state: ServingState, customer_id: str, offered: set[str]) -> list[dict[str, str]]:
    """Every catalogue product not offered, with the policy rule that excluded it (suitability, consent)."""
    products = state.products.reset_index(drop=True)
    candidates = pd.DataFrame(
        {CUSTOMER_ID: customer_id, PRODUCT_ID: products[PRODUCT_ID].astype(str), "score": 0.0}
    )
    held = state.holdings_by_customer.get(customer_id)
    holdings = held if held is not None else state.holdings.iloc[:0]
    result = apply_policy(
        candidates,
        customers=state.policy.loc[[customer_id]].reset_index(
            drop=True
        ),  # keeps its customer_id column
        products=products,
        holdings=holdings,
    )
    names = state.products["name"].astype(str)
    rows = result.excluded.loc[~result.excluded[PRODUCT_ID].isin(offered)]
    return [
        {"product_id": pid, "name": names.get(pid, pid), "reason": REASON_TEXT.get(r, r)}
        for pid, r in zip(rows[PRODUCT_ID], rows["reason"], strict=True)
    ]


def holdings_view(state: ServingState, customer_id: str) -> list[dict[str, Any]]:
    """Holdings with invested amounts, largest first."""
    return sorted(holdings_of(state, customer_id), key=lambda h: -h["invested"])


@lru_cache(maxsize=1)  # the state being served; a swap replaces it
def _balances_index(state: ServingState) -> dict[str, pd.DataFrame]:
    balances = state.tables.get("balances")
    if balances is None:
        return {}
    past = balances.loc[balances["date"] < state.as_of, [CUSTOMER_ID, "date", "total_assets"]]
    past = past.sort_values([CUSTOMER_ID, "date"], kind="stable")
    return {str(k): g for k, g in past.groupby(CUSTOMER_ID, sort=False)}


def asset_series(state: ServingState, customer_id: str) -> list[tuple[pd.Timestamp, float]]:
    """Month-end total assets before the cut-off, oldest first."""
    frame = _balances_index(state).get(customer_id)
    if frame is None:
        return []
    return list(zip(frame["date"], frame["total_assets"].astype(float), strict=True))


def timeline_lines(frame: pd.DataFrame, categories: pd.Series) -> np.ndarray:
    """Business line of each timeline row: p2p/forex/stock by event, page or product, else wealth or general."""
    line = np.full(len(frame), GENERAL, dtype=object)
    category = frame[PRODUCT_ID].map(categories).astype(object).fillna("").to_numpy(dtype=str)
    line[frame[PRODUCT_ID].notna().to_numpy()] = WEALTH
    texts = (
        frame["what"].astype(str).to_numpy(dtype=str),
        frame["page"].astype(object).fillna("").to_numpy(dtype=str),
        category,
    )
    for name in BUSINESS_LINES:
        hit = np.zeros(len(frame), dtype=bool)
        for text in texts:
            hit |= np.char.startswith(text, name)
        line[hit] = name
    return line


def timeline_page(state: ServingState, customer_id: str, *, page: int, line: str) -> dict[str, Any]:
    """One page (newest first) of the customer's events and transactions, optionally of one business line."""
    start, stop = state.timeline.bounds.get(customer_id, (0, 0))
    rows = state.timeline.frame.iloc[start:stop]
    if line in LINES:
        rows = rows.loc[timeline_lines(rows, state.products["category"].astype(str)) == line]
    pages = max(1, -(-len(rows) // PAGE_SIZE))
    page = min(max(page, 1), pages)
    shown = rows.iloc[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    names = state.products["name"].astype(str)
    items = [
        {
            "when": pd.Timestamp(ts).strftime("%Y-%m-%d %H:%M"),
            "kind": kind,
            "what": str(what).replace("_", " "),
            "product": "" if plain(pid) is None else f"{names.get(pid, pid)} ({pid})",
            "page": plain(pg) or "",
            "amount": "" if plain(amount) is None else f"{amount:,.2f}",
        }
        for ts, kind, what, pid, pg, amount in zip(
            shown[TS], shown["kind"], shown["what"], shown[PRODUCT_ID], shown["page"],
            shown["amount"], strict=True,
        )
    ]  # fmt: skip
    return {"items": items, "page": page, "pages": pages, "total": len(rows), "line": line}
