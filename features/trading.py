"""Money features: assets and their trend, product mix, trading frequency and investment cycle."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.contract import CUSTOMER_ID, PRODUCT_ID, TS
from features.holdings import build_holdings
from features.returns import modified_dietz
from features.timeline import (
    before,
    count_by,
    customer_codes,
    days_before,
    days_since,
    first_ts,
    last_ts,
    window_counts,
)

TRADE_WINDOWS = (30, 90, 365)
ASSET_LOOKBACKS = (30, 90, 365)


def asset_features(
    tables: dict[str, pd.DataFrame], index: pd.Index, *, as_of: pd.Timestamp
) -> pd.DataFrame:
    """Total assets at the last snapshot before `as_of`, assets some days earlier, trend and peak.

    Without a balances table, assets are the cumulative net external flows (deposits - withdrawals).
    """
    snaps = _snapshots(tables, as_of)
    out = pd.DataFrame(index=index)
    latest = snaps.groupby(CUSTOMER_ID, sort=False)["total_assets"].last()
    out["total_assets"] = latest.reindex(index).fillna(0.0)
    ordered = snaps.sort_values("date", kind="stable")
    for days in ASSET_LOOKBACKS:
        at = pd.Series(as_of - pd.Timedelta(days=days), index=range(len(index))).astype(
            ordered["date"].dtype
        )
        probe = pd.DataFrame({CUSTOMER_ID: index, "at": at})
        past = pd.merge_asof(
            probe, ordered, left_on="at", right_on="date", by=CUSTOMER_ID, direction="backward"
        )
        out[f"assets_{days}d_ago"] = (
            past.set_index(CUSTOMER_ID)["total_assets"].reindex(index).fillna(0.0)
        )
    recent = snaps.loc[snaps["date"] >= as_of - pd.Timedelta(days=365)]
    out["assets_max_365d"] = (
        recent.groupby(CUSTOMER_ID)["total_assets"].max().reindex(index).fillna(0.0)
    )
    for days in (90, 365):
        base = out[f"assets_{days}d_ago"]
        out[f"asset_trend_{days}d"] = (out["total_assets"] - base) / (
            base + out["total_assets"] + 1.0
        )
    out["assets_drawdown_from_peak"] = 1.0 - out["total_assets"] / out["assets_max_365d"].where(
        out["assets_max_365d"] > 0
    )
    out["log_total_assets"] = np.log1p(out["total_assets"])
    return out


def _snapshots(tables: dict[str, pd.DataFrame], as_of: pd.Timestamp) -> pd.DataFrame:
    if "balances" in tables:
        return before(tables["balances"], as_of, column="date").sort_values("date", kind="stable")
    flows = before(tables["transactions"], as_of)
    flows = flows.loc[flows["type"].isin(["deposit", "withdraw"])].sort_values(TS, kind="stable")
    signed = flows["amount"].where(flows["type"].eq("deposit"), -flows["amount"])
    cumulative = signed.groupby(flows[CUSTOMER_ID]).cumsum().clip(lower=0.0)
    return pd.DataFrame(
        {CUSTOMER_ID: flows[CUSTOMER_ID], "date": flows[TS], "total_assets": cumulative}
    )


def return_features(
    tables: dict[str, pd.DataFrame], index: pd.Index, *, as_of: pd.Timestamp
) -> pd.DataFrame:
    """Modified Dietz returns over 90 and 365 days (NaN without balances or without money in)."""
    out = pd.DataFrame(index=index)
    for days in (90, 365):
        if "balances" in tables:
            out[f"return_{days}d"] = modified_dietz(
                tables["balances"], tables["transactions"], as_of=as_of, days=days
            ).reindex(index)
        else:
            out[f"return_{days}d"] = np.nan
    return out


def holding_features(
    tables: dict[str, pd.DataFrame], index: pd.Index, *, as_of: pd.Timestamp
) -> pd.DataFrame:
    """Number of products held, money invested, concentration, risk held and the category mix."""
    products = tables["products"].set_index(PRODUCT_ID)
    held = build_holdings(tables["transactions"], as_of=as_of)
    held = held.join(products[["category", "risk_level"]], on=PRODUCT_ID)
    held["risk_level"] = held["risk_level"].astype(float)
    by = held.groupby(CUSTOMER_ID, sort=False)
    out = pd.DataFrame(index=index)
    out["n_products_held"] = by.size().reindex(index).fillna(0).astype(int)
    out["invested_total"] = by["invested"].sum().reindex(index).fillna(0.0)
    share = held["invested"] / held[CUSTOMER_ID].map(by["invested"].sum()).replace(0, np.nan)
    out["concentration_hhi"] = (share**2).groupby(held[CUSTOMER_ID]).sum().reindex(index)
    out["max_risk_held"] = by["risk_level"].max().reindex(index)
    out["mean_risk_held"] = by["risk_level"].mean().reindex(index)
    categories = sorted(products["category"].dropna().unique())
    mix = (
        pd.crosstab(held[CUSTOMER_ID], held["category"])
        .reindex(index=index, columns=categories)
        .fillna(0)
    )
    for category in categories:
        out[f"holds_{category}"] = mix[category].astype(int)
    return out


def trading_features(
    tables: dict[str, pd.DataFrame], index: pd.Index, *, as_of: pd.Timestamp
) -> pd.DataFrame:
    """Counts and amounts per transaction type in trailing windows, recency and investment cycle."""
    txns = before(tables["transactions"], as_of)
    codes = customer_codes(txns[CUSTOMER_ID], index)
    age = days_before(txns[TS], as_of)
    n = len(index)
    out = pd.DataFrame(index=index)
    amounts = txns["amount"].to_numpy(dtype=float)
    for kind in ("buy", "sell", "deposit", "withdraw", "income"):
        mask = (txns["type"] == kind).to_numpy()
        counts = window_counts(codes[mask], age[mask], n, TRADE_WINDOWS)
        sums = window_counts(codes[mask], age[mask], n, TRADE_WINDOWS, weights=amounts[mask])
        for w in TRADE_WINDOWS:
            out[f"n_{kind}_{w}d"] = counts[w]
            out[f"{kind}_amount_{w}d"] = sums[w]
    for w in TRADE_WINDOWS:
        moved = out[f"deposit_amount_{w}d"] + out[f"withdraw_amount_{w}d"]
        out[f"net_flow_{w}d"] = out[f"deposit_amount_{w}d"] - out[f"withdraw_amount_{w}d"]
        out[f"withdraw_share_{w}d"] = (
            out[f"withdraw_amount_{w}d"] / moved.where(moved > 0)
        ).fillna(0.0)
    out["days_since_last_transaction"] = days_since(last_ts(codes, txns[TS], n), as_of)
    buys = (txns["type"] == "buy").to_numpy()
    first_buy = first_ts(codes[buys], txns[TS][buys], n)
    last_buy = last_ts(codes[buys], txns[TS][buys], n)
    n_buys = count_by(codes[buys], n)
    out["n_buys_total"] = n_buys
    out["days_since_last_buy"] = days_since(last_buy, as_of)
    span = days_since(first_buy, as_of) - out["days_since_last_buy"].to_numpy()
    out["investment_cycle_days"] = np.where(n_buys > 1, span / np.maximum(n_buys - 1, 1), np.nan)
    signup = tables["customers"].set_index(CUSTOMER_ID)["signup_at"].reindex(index).to_numpy()
    out["days_to_first_buy"] = np.where(
        np.isnat(first_buy), np.nan, (first_buy - signup) / np.timedelta64(1, "D")
    )
    return out
