"""Odd but contract-valid datasets for the end-to-end tests, made by transforming a small demo bank.

Each shape is a pure function of the demo tables (a dict of raw frames) returning new tables;
`write_shape` writes one to a dataset directory. The shapes are the ones real extracts take
(issue 15): one product, a large catalogue, no events, no funnel, only a funnel, two months of
history, one customer, no optional tables, one risk level, nobody assessed, everybody opted out,
CSV with the firm's own extra columns.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from features.contract import FUNNEL_STEPS

AS_OF = pd.Timestamp("2025-11-01")
OPTIONAL = ("balances", "campaigns", "interactions")
Tables = dict[str, pd.DataFrame]


def _copy(tables: Tables) -> Tables:
    return {name: frame.copy() for name, frame in tables.items()}


def one_product(tables: Tables) -> Tables:
    """Every customer buys the same product (a single-product retailer)."""
    out = _copy(tables)
    products = out["products"].iloc[:1].assign(risk_level=1, min_amount=0.0, is_active=True)
    out["products"] = products.assign(qualified_only=False)
    only = products["product_id"].iloc[0]
    for name in ("transactions", "events", "campaigns"):
        frame = out[name]
        frame["product_id"] = frame["product_id"].where(frame["product_id"].isna(), only)
    return out


def many_products(tables: Tables, *, n: int = 2000, seed: int = 3) -> Tables:
    """A catalogue of `n` products: the demo's plus copies; buys spread over all of them."""
    out = _copy(tables)
    base = out["products"]
    rng = np.random.default_rng(seed)
    copies = base.iloc[rng.integers(0, len(base), n - len(base))].reset_index(drop=True)
    copies["product_id"] = [f"X{i:05d}" for i in range(len(copies))]
    copies["name"] = copies["name"] + " " + pd.Series(range(len(copies))).astype(str)
    out["products"] = pd.concat([base, copies], ignore_index=True)
    ids = out["products"]["product_id"].to_numpy()
    for name in ("transactions", "events"):
        frame = out[name]
        held = frame["product_id"].notna().to_numpy()
        moved = held & (rng.random(len(frame)) < 0.7)
        frame.loc[moved, "product_id"] = ids[rng.integers(0, len(ids), int(moved.sum()))]
    return out


def no_events(tables: Tables) -> Tables:
    """An events table with its header only: behaviour comes from transactions alone."""
    out = _copy(tables)
    out["events"] = out["events"].iloc[:0]
    return out


def no_funnel(tables: Tables) -> Tables:
    """Events without any sign-up funnel step."""
    out = _copy(tables)
    events = out["events"]
    out["events"] = events.loc[~events["event"].isin(FUNNEL_STEPS)].reset_index(drop=True)
    return out


def only_funnel(tables: Tables) -> Tables:
    """Events that are only sign-up funnel steps."""
    out = _copy(tables)
    events = out["events"]
    out["events"] = events.loc[events["event"].isin(FUNNEL_STEPS)].reset_index(drop=True)
    return out


def short_history(tables: Tables, *, days: int = 61) -> Tables:
    """Only the last `days` before AS_OF: every customer signed up inside that window."""
    out = _copy(tables)
    start = AS_OF - pd.Timedelta(days=days)
    for name, column in (("transactions", "ts"), ("events", "ts"), ("interactions", "ts"),
                         ("balances", "date"), ("campaigns", "sent_at")):  # fmt: skip
        frame = out[name]
        out[name] = frame.loc[pd.to_datetime(frame[column]) >= start].reset_index(drop=True)
    signup = pd.to_datetime(out["customers"]["signup_at"])
    out["customers"]["signup_at"] = signup.clip(lower=start)
    return out


def one_customer(tables: Tables) -> Tables:
    """The most active customer alone."""
    out = _copy(tables)
    who = out["transactions"]["customer_id"].value_counts().index[0]
    for name, frame in out.items():
        if "customer_id" in frame.columns:
            out[name] = frame.loc[frame["customer_id"] == who].reset_index(drop=True)
    return out


def no_optional(tables: Tables) -> Tables:
    """No balances, campaigns or interactions."""
    return {k: v.copy() for k, v in tables.items() if k not in OPTIONAL}


def same_risk(tables: Tables) -> Tables:
    """Every product at risk level 3."""
    out = _copy(tables)
    out["products"]["risk_level"] = 3
    return out


def unassessed(tables: Tables) -> Tables:
    """No customer has a risk assessment."""
    out = _copy(tables)
    out["customers"]["risk_level"] = pd.array([pd.NA] * len(out["customers"]), dtype="Int64")
    return out


def all_opted_out(tables: Tables) -> Tables:
    """Every customer refuses personalised marketing."""
    out = _copy(tables)
    out["customers"]["marketing_opt_out"] = True
    return out


def extra_columns(tables: Tables, *, seed: int = 5) -> Tables:
    """The firm's own customer columns (numeric and categorical codes) and an extra column elsewhere."""
    out = _copy(tables)
    rng = np.random.default_rng(seed)
    customers = out["customers"]
    n = len(customers)
    customers["household_size"] = rng.integers(1, 6, n)
    customers["credit_score"] = np.where(rng.random(n) < 0.1, np.nan, rng.normal(650, 50, n))
    customers["region_code"] = rng.choice(["north", "south", "east", "west"], n)
    out["transactions"]["branch"] = "main"
    return out


SHAPES: dict[str, Callable[[Tables], Tables]] = {
    "one_product": one_product,
    "many_products": many_products,
    "no_events": no_events,
    "no_funnel": no_funnel,
    "only_funnel": only_funnel,
    "short_history": short_history,
    "one_customer": one_customer,
    "no_optional": no_optional,
    "same_risk": same_risk,
    "unassessed": unassessed,
    "all_opted_out": all_opted_out,
    "extra_columns": extra_columns,
}
CSV_SHAPES = {"extra_columns"}


def demo_tables(n_customers: int = 300, seed: int = 11) -> Tables:
    """A small demo bank's contract tables, without its truth."""
    from features.demo_bank.generate import generate_demo_bank

    return generate_demo_bank(n_customers, seed=seed).tables


def write_shape(tables: Tables, shape: str, out_dir: Path) -> Path:
    """Write the `shape` transform of `tables` to `out_dir` (CSV for CSV_SHAPES, else Parquet)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, frame in SHAPES[shape](tables).items():
        if shape in CSV_SHAPES:
            frame.to_csv(out_dir / f"{name}.csv", index=False, date_format="%Y-%m-%dT%H:%M:%S")
        else:
            frame.to_parquet(out_dir / f"{name}.parquet", index=False)
    return out_dir
