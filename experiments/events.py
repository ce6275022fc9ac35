"""Event rows behind `did` conditions: name aliases, business lines, filters on columns and JSON properties."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from experiments.syntax import Condition, Did, Query, QueryError
from features.behaviour import base_event
from features.contract import BUSINESS_LINES, CUSTOMER_ID, TRANSACTION_TYPES, TS

# Marketers' words for the tracked event names (the seeds say "view page" for a page view).
EVENT_ALIASES = {"view_page": "page_view", "page_visit": "page_view", "invest": "invest_success"}
EVENT_COLUMNS = ("page", "product_id")
TRANSACTION_COLUMNS = ("product_id", "amount")


def property_values(properties: pd.Series, key: str) -> pd.Series:
    """The value of one top-level key of JSON-object text, per row (missing when absent); vectorised regex."""
    pattern = r'"' + re.escape(key) + r'"\s*:\s*("(?:[^"\\]|\\.)*"|[^,}\s]+)'
    raw = properties.astype("str").str.extract(pattern, expand=False)
    return raw.str.strip('"').where(raw != "null")


def event_rows(
    node: Did, *, tables: dict[str, pd.DataFrame], query: Query, as_of: pd.Timestamp
) -> pd.DataFrame:
    """customer_id and ts of every event (or transaction, for buy/sell/deposit/withdraw/income) matching `node`."""
    name = EVENT_ALIASES.get(node.event.lower(), node.event.lower())
    if name in TRANSACTION_TYPES:
        txns = tables["transactions"]
        rows = txns.loc[(txns["type"] == name).to_numpy()]
        return _filtered(rows, node, query, TRANSACTION_COLUMNS, allow_properties=False)
    events = tables["events"]
    names = events["event"]
    prefixed = any(name.startswith(f"{line}_") for line in BUSINESS_LINES)
    hit = (names == name) if prefixed else (base_event(names) == name)
    hit = hit.to_numpy(dtype=bool)
    if not hit.any():
        _unknown_event(node, names, query)
    return _filtered(events.loc[hit], node, query, EVENT_COLUMNS, allow_properties=True)


def _filtered(
    rows: pd.DataFrame, node: Did, query: Query, columns: tuple[str, ...], *, allow_properties: bool
) -> pd.DataFrame:
    from experiments.evaluate import compare

    keep = np.ones(len(rows), dtype=bool)
    for f in node.filters:
        if f.field in columns:
            column = rows[f.field]
        elif allow_properties and "properties" in rows.columns:
            column = property_values(rows["properties"], f.field)
            if f.values[0].kind == "number":
                column = pd.to_numeric(column, errors="coerce")
        else:
            known = ", ".join(columns)
            raise QueryError(
                query.text,
                f.pos,
                f"{node.event!r} rows have no field {f.field!r}; use one of: {known}",
            )
        keep &= compare(
            column, Condition(f.field, f.op, f.values, f.pos, f.text), query=query, as_of=pd.NaT
        )
    return rows.loc[keep, [CUSTOMER_ID, TS]]


def _unknown_event(node: Did, names: pd.Series, query: Query) -> None:
    """A name that never occurs is almost always a typo: list the names the data holds."""
    known = pd.Index(base_event(names).unique()).union(pd.Index(names.unique())).sort_values()
    if len(known) == 0:
        return  # an empty events table: every `did` is simply false
    shown = ", ".join(map(str, known[:40]))
    aliases = ", ".join(f"{a} = {b}" for a, b in EVENT_ALIASES.items())
    raise QueryError(
        query.text,
        node.pos,
        f"no event named {node.event!r} in the events table",
        hint=f"known events: {shown}; transactions: {', '.join(TRANSACTION_TYPES)}; aliases: {aliases}",
    )
