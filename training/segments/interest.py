"""What each customer does with which products: a mix over categories, compressed for big catalogues.

``product_interactions`` counts, per customer and item, the holdings at ``as_of``, the buys and
the product views before it. An item is the product's category when the catalogue has categories
(a product's buyers are few in a 2,000-product catalogue; its category's are not), else the
product. ``interest_features`` turns the counts into each customer's mix: within each source
(hold, buy, view) the share of each item, averaged over the three sources, square-rooted
(Hellinger: small shares still count); what a customer does, not how much. With more items than
``n_components`` the mix is compressed with a seeded TruncatedSVD (sparse input, so 2,000 items
stay cheap). Customers with no product activity get zeros.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.decomposition import TruncatedSVD

from features.contract import CUSTOMER_ID, PRODUCT_ID
from features.holdings import build_holdings
from features.timeline import before

ITEM = "item"
SOURCE = "source"
WEIGHT = "weight"
SOURCES = ("hold", "buy", "view")
INTEREST_PREFIX = "interest_"
INTERACTION_COLUMNS = [CUSTOMER_ID, SOURCE, ITEM, WEIGHT]


def product_interactions(tables: dict[str, pd.DataFrame], *, as_of: pd.Timestamp) -> pd.DataFrame:
    """customer_id, source (hold / buy / view), item (category, or product), weight (count) before ``as_of``."""
    transactions = tables["transactions"]
    held = build_holdings(transactions, as_of=as_of)[[CUSTOMER_ID, PRODUCT_ID]]
    trades = before(transactions, as_of)
    buys = trades.loc[trades["type"].eq("buy") & trades[PRODUCT_ID].notna()]
    parts = [
        held.assign(**{SOURCE: "hold"}),
        buys[[CUSTOMER_ID, PRODUCT_ID]].assign(**{SOURCE: "buy"}),
    ]
    events = tables.get("events")
    if events is not None and PRODUCT_ID in events:
        seen = before(events, as_of)
        parts.append(
            seen.loc[seen[PRODUCT_ID].notna(), [CUSTOMER_ID, PRODUCT_ID]].assign(**{SOURCE: "view"})
        )
    rows = pd.concat(parts, ignore_index=True).astype({CUSTOMER_ID: str, PRODUCT_ID: str})
    rows[ITEM] = rows[PRODUCT_ID].map(item_of(tables.get("products"))).fillna(rows[PRODUCT_ID])
    counts = rows.groupby([CUSTOMER_ID, SOURCE, ITEM], sort=True).size().rename(WEIGHT)
    return counts.astype("float64").reset_index()[INTERACTION_COLUMNS]


def item_of(products: pd.DataFrame | None) -> pd.Series:
    """product_id -> its category when the catalogue has two or more categories, else empty (by product)."""
    if products is None or "category" not in products or products["category"].nunique() < 2:
        return pd.Series(dtype=object)
    return products.set_index(products[PRODUCT_ID].astype(str))["category"].astype(str)


def interest_mix(
    interactions: pd.DataFrame, customers: pd.Series
) -> tuple[sparse.csr_matrix, pd.Index]:
    """Sparse (customers x items) Hellinger mix: per-source shares averaged over SOURCES, square-rooted."""
    items = pd.Index(np.sort(interactions[ITEM].astype(str).unique()))
    rows = pd.Index(customers.astype(str)).get_indexer(interactions[CUSTOMER_ID].astype(str))
    known = rows >= 0
    frame = interactions.loc[known].assign(row=rows[known])
    total = frame.groupby(["row", SOURCE])[WEIGHT].transform("sum")
    share = frame[WEIGHT] / total / len(SOURCES)
    mix = sparse.csr_matrix(
        (share.to_numpy(), (frame["row"].to_numpy(), items.get_indexer(frame[ITEM].astype(str)))),
        shape=(len(customers), len(items)),
    )  # duplicates (one item from several sources) are summed
    mix.data = np.sqrt(mix.data)
    return mix, items


def interest_features(
    interactions: pd.DataFrame, customers: pd.Series, *, n_components: int = 16, seed: int = 42
) -> pd.DataFrame:
    """customer_id plus ``interest_<item>`` columns (or ``interest_svd<i>`` past ``n_components`` items)."""
    mix, items = interest_mix(interactions, customers)
    if len(items) <= n_components:
        values, names = mix.toarray(), [f"{INTEREST_PREFIX}{item}" for item in items]
    else:
        svd = TruncatedSVD(n_components=n_components, random_state=seed)
        values, names = (
            svd.fit_transform(mix),
            [f"{INTEREST_PREFIX}svd{i}" for i in range(n_components)],
        )
    out = pd.DataFrame(values, columns=names, index=customers.index)
    out.insert(0, CUSTOMER_ID, customers.to_numpy())
    return out


def scale_by(values: np.ndarray, weight: float) -> np.ndarray:
    """``values * weight``: the interest mix's weight in the clustering (a picklable step)."""
    return values * weight
