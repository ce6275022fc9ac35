"""Inject documented bad rows (for quarantine tests) as modified copies at random positions."""

from __future__ import annotations

import numpy as np
import pandas as pd

KINDS = {
    "customers": ("duplicate_customer_id", "risk_level_out_of_range", "unparseable_timestamp"),
    "transactions": ("unknown_customer_id", "unknown_product_id", "negative_amount",
                     "unparseable_timestamp", "bad_transaction_type"),
    "events": ("unknown_customer_id", "unknown_product_id", "unparseable_timestamp"),
    "interactions": ("unknown_customer_id", "unparseable_timestamp"),
}  # fmt: skip
TS_COLUMN = {"customers": "signup_at", "transactions": "ts", "events": "ts", "interactions": "ts"}


def _corrupt(
    rows: pd.DataFrame, kinds: np.ndarray, table: str, rng: np.random.Generator
) -> pd.DataFrame:
    """Apply one kind of damage per row (columns are already object dtype)."""
    ts = TS_COLUMN[table]
    unknown = kinds == "unknown_customer_id"
    rows.loc[unknown, "customer_id"] = (
        "C_UNKNOWN_" + pd.Series(rng.integers(1, 10**6, unknown.sum()).astype(str)).to_numpy()
    )
    rows.loc[kinds == "unknown_product_id", "product_id"] = "P99"
    negative = kinds == "negative_amount"
    if negative.any():
        rows.loc[negative, "amount"] = -rows.loc[negative, "amount"].astype(float).abs() - 1
    rows.loc[kinds == "unparseable_timestamp", ts] = "not-a-date"
    rows.loc[kinds == "bad_transaction_type", "type"] = "refund"
    rows.loc[kinds == "risk_level_out_of_range", "risk_level"] = 7
    return rows


def inject_bad_rows(
    tables: dict[str, pd.DataFrame], fraction: float, rng: np.random.Generator
) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Return tables with ``fraction`` extra bad rows each, and the list of what was injected."""
    out, records = dict(tables), []
    for table, kinds in KINDS.items():
        good = tables[table]
        n_bad = int(round(fraction * len(good)))
        if n_bad == 0:
            continue
        src = rng.integers(0, len(good), n_bad)
        kind = np.array(kinds)[np.arange(n_bad) % len(kinds)]
        bad = _corrupt(good.iloc[src].astype(object).reset_index(drop=True), kind, table, rng)
        key = np.r_[np.arange(len(good), dtype=float), rng.random(n_bad) * len(good)]
        order = np.argsort(key, kind="stable")
        merged = (
            pd.concat([good.astype(object), bad], ignore_index=True)
            .iloc[order]
            .reset_index(drop=True)
        )
        position = np.empty(len(order), np.int64)
        position[order] = np.arange(len(order))
        out[table] = merged
        records.append(pd.DataFrame({"table": table, "row_index": position[len(good):], "kind": kind,
                                     "customer_id": bad["customer_id"].astype(str).to_numpy()}))  # fmt: skip
    cols = ["table", "row_index", "kind", "customer_id"]
    report = pd.concat(records, ignore_index=True) if records else pd.DataFrame(columns=cols)
    return out, report
