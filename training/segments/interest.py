"""What each customer does with which products: a mix over categories, compressed for big catalogues.

``product_interactions`` counts, per customer and item, the holdings at ``as_of``, the buys and
the product views before it. An item is the product's category when the catalogue has categories
(a product's buyers are few in a 2,000-product catalogue; its category's are not), else the
product. ``interest_features`` turns the counts into each customer's mix: every interaction
(a holding, a buy, a view) is one observation of interest, so the sources are pooled and the
share of each item is square-rooted (Hellinger: small shares still count); what a customer
does, not how much. (Averaging per-source shares instead made one buy weigh as much as fifty
views, and a customer's number of sources set the vector's length: an engagement signal, not
an interest one.) With more items than ``n_components`` the mix is compressed with a seeded
TruncatedSVD (sparse input, so 2,000 items stay cheap). A mix seen through few interactions is
noisy (one view makes a one-hot vector), so each customer's is shrunk toward the mean mix of the
customers with product activity by ``n / (n + prior)`` (n = the customer's interactions; a prior
worth ``prior`` observations). Customers with no product activity keep zeros: not "average
interest" but none, which is itself behaviour.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.decomposition import TruncatedSVD

from features.contract import CUSTOMER_ID, PRODUCT_ID
from features.holdings import build_holdings
from features.timeline import before
from portrait.errors import PortraitError

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
) -> tuple[sparse.csr_matrix, pd.Index, np.ndarray]:
    """Sparse (customers x items) Hellinger mix of all sources pooled, items, and interactions per customer."""
    items = pd.Index(np.sort(interactions[ITEM].astype(str).unique()))
    rows = pd.Index(customers.astype(str)).get_indexer(interactions[CUSTOMER_ID].astype(str))
    known = rows >= 0
    counts = sparse.csr_matrix(
        (
            interactions.loc[known, WEIGHT].to_numpy(dtype="float64"),
            (rows[known], items.get_indexer(interactions.loc[known, ITEM].astype(str))),
        ),
        shape=(len(customers), len(items)),
    )  # duplicates (one item from several sources) are summed
    total = np.asarray(counts.sum(axis=1)).ravel()
    mix = sparse.diags(1.0 / np.where(total > 0, total, 1.0)) @ counts
    mix = sparse.csr_matrix(mix)
    mix.data = np.sqrt(mix.data)
    return mix, items, total


def interest_features(
    interactions: pd.DataFrame, customers: pd.Series, *, n_components: int = 16,
    prior: float = 1.0, seed: int = 42,
) -> pd.DataFrame:  # fmt: skip
    """customer_id plus ``interest_<item>`` columns (or ``interest_svd<i>`` past ``n_components`` items)."""
    if not prior >= 0:
        raise PortraitError(f"segments.interest_prior must be >= 0 (observations), got {prior}")
    mix, items, total = interest_mix(interactions, customers)
    if len(items) <= n_components:
        values, names = mix.toarray(), [f"{INTEREST_PREFIX}{item}" for item in items]
    else:
        svd = TruncatedSVD(n_components=n_components, random_state=seed)
        values, names = (
            svd.fit_transform(mix),
            [f"{INTEREST_PREFIX}svd{i}" for i in range(n_components)],
        )
    values = shrink(values, total, prior=prior)
    out = pd.DataFrame(values, columns=names, index=customers.index)
    out.insert(0, CUSTOMER_ID, customers.to_numpy())
    return out


def shrink(values: np.ndarray, evidence: np.ndarray, *, prior: float) -> np.ndarray:
    """Rows with evidence pulled toward their mean row by ``evidence / (evidence + prior)``; the rest stay."""
    seen = evidence > 0
    if not seen.any() or prior == 0:
        return values
    keep = (evidence[seen] / (evidence[seen] + prior))[:, None]
    out = values.copy()
    out[seen] = keep * values[seen] + (1.0 - keep) * values[seen].mean(axis=0)
    return out


class BlockScaler(BaseEstimator, TransformerMixin):
    """Centres a block of columns and scales it to a total variance of ``weight`` (shape kept).

    Blocks of different widths (three profile columns, six engagement ones, a dozen interest
    shares) then weigh in the clustering by ``weight``, not by their number of columns or their
    units. The block's variance is counted as at least ``floor``: a block of scaled columns of
    which only some vary in the data (MovieLens has an age but no income or risk level) keeps
    the share of each column it would have had, rather than giving the rest the whole weight.
    """

    def __init__(self, weight: float = 1.0, floor: float = 0.0) -> None:
        self.weight = weight
        self.floor = floor

    def fit(self, x: np.ndarray, y: None = None) -> BlockScaler:
        """Learn the block's column means and the factor that gives it total variance ``weight``."""
        x = np.asarray(x, dtype="float64")
        self.mean_ = x.mean(axis=0)
        total = max(float(x.var(axis=0).sum()), self.floor)
        self.scale_ = float(np.sqrt(self.weight / total)) if total > 0 else 0.0
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        """The block centred and scaled."""
        return (np.asarray(x, dtype="float64") - self.mean_) * self.scale_


def scale_by(values: np.ndarray, weight: float) -> np.ndarray:
    """``values * weight``: the interest weighting step of models pickled before BlockScaler (they still load)."""
    return values * weight
