"""What a customer's own history says about each product, point in time: views and purchases.

A customer's taste shows in what they browse and buy over months, not only in the last 30
days: over a year the share of their product views that fall on a product (or on its
category) estimates their preference for it far better than a week's count. Products a
customer bought before and no longer holds, and the categories they bought, say the same
from money. Arrays are dense customers x products (float32) so one customer's row is one
lookup in serving and a block of customers is one slice in batch scoring.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.contract import CUSTOMER_ID, PRODUCT_ID, TS
from features.timeline import before, between, customer_codes

HISTORY_FEATURES = (
    "views_90d", "views_365d", "view_share", "category_view_share",
    "bought_before", "category_buy_share",
)  # fmt: skip
VIEW_WINDOWS = {"views_90d": 90, "views_365d": 365}


def _grid(
    customers: np.ndarray, products: np.ndarray, shape: tuple[int, int], keep: np.ndarray
) -> np.ndarray:
    """Counts per (customer, product) code pair; rows outside either index are skipped."""
    ok = keep & (customers >= 0) & (products >= 0)
    flat = np.bincount(customers[ok] * shape[1] + products[ok], minlength=shape[0] * shape[1])
    return flat.reshape(shape).astype(np.float32)


def _shares(counts: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each product's and its category's share of a customer's total (0 when the total is 0)."""
    total = np.maximum(counts.sum(axis=1, keepdims=True), 1.0)
    onehot = (groups[:, None] == np.unique(groups)[None, :]).astype(np.float32)
    by_group = (counts @ onehot) @ onehot.T  # every product gets its category's sum
    return counts / total, by_group / total


def product_history(
    tables: dict[str, pd.DataFrame],
    customers: pd.Index,
    products: pd.DataFrame,
    *,
    cutoff: pd.Timestamp,
) -> dict[str, np.ndarray]:
    """customers x products arrays of HISTORY_FEATURES from rows strictly before `cutoff`.

    `products` is indexed by product_id and has a `category` column (the pair context's
    catalogue of active products).
    """
    shape = (len(customers), len(products))
    groups = pd.factorize(products["category"])[0]
    events = before(tables["events"], cutoff)
    events = events.loc[events[PRODUCT_ID].notna()]
    views = events.loc[events["event"].astype(str).str.contains("view", regex=False)]
    c = customer_codes(views[CUSTOMER_ID], customers)
    p = customer_codes(views[PRODUCT_ID], products.index)
    age = ((cutoff - views[TS]) / pd.Timedelta(days=1)).to_numpy()
    out = {name: _grid(c, p, shape, age <= days) for name, days in VIEW_WINDOWS.items()}
    out["view_share"], out["category_view_share"] = _shares(
        _grid(c, p, shape, np.ones(len(c), bool)), groups
    )
    txns = before(tables["transactions"], cutoff)
    buys = txns.loc[txns["type"].eq("buy") & txns[PRODUCT_ID].notna()]
    bc = customer_codes(buys[CUSTOMER_ID], customers)
    bp = customer_codes(buys[PRODUCT_ID], products.index)
    out["bought_before"] = _grid(bc, bp, shape, np.ones(len(bc), bool))
    out["category_buy_share"] = _shares(out["bought_before"], groups)[1]
    return out


def recent_views(events: pd.DataFrame, *, cutoff: pd.Timestamp) -> pd.DataFrame:
    """Per (customer, product): product views in the 7 and 30 days before `cutoff`."""
    recent = between(events, cutoff - pd.Timedelta(days=30), cutoff)
    recent = recent.loc[
        recent[PRODUCT_ID].notna() & recent["event"].astype(str).str.contains("view")
    ]
    return session_views(recent, cutoff=cutoff)


def session_views(events: pd.DataFrame, *, cutoff: pd.Timestamp) -> pd.DataFrame:
    """Product views per (customer, product) in the last 7 and 30 days of events before `cutoff`."""
    seen = before(events, cutoff)
    seen = seen.loc[seen[PRODUCT_ID].notna()]
    age = (cutoff - seen[TS]) / pd.Timedelta(days=1)
    frame = pd.DataFrame(
        {
            CUSTOMER_ID: seen[CUSTOMER_ID].astype(str).to_numpy(),
            PRODUCT_ID: seen[PRODUCT_ID].astype(str).to_numpy(),
            "views_7d": (age <= 7).to_numpy(dtype=float),
            "views_30d": (age <= 30).to_numpy(dtype=float),
        }
    )
    return frame.groupby([CUSTOMER_ID, PRODUCT_ID], as_index=False).sum()
