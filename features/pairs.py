"""Customer x product pairs and their features for the conversion model, point in time.

A `PairContext` holds everything about products known at a cut-off (catalogue, holdings,
co-holding and transition rule statistics, popularity overall / among peers / in segment,
recent product views, and each customer's year of views and purchases per product from
`pair_history`), indexed once so that scoring one customer per request is a few lookups. Rule statistics are recomputed at each cut-off from rows before it: the run's
rule base is mined up to `as_of`, so using it as a feature for earlier cut-offs would leak
their labels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from features.candidates import (
    decayed_popularity,
    ease_weights,
    generator_scores,
    item_item_weights,
    keep_candidates,
)
from features.contract import CUSTOMER_ID, PRODUCT_ID, SEGMENT_ID
from features.holdings import build_holdings
from features.pair_history import HISTORY_FEATURES, product_history, recent_views
from features.pair_matrices import best_rule, group_share, holding_matrix, rule_matrices
from features.portrait import EXTRA_PREFIX
from features.timeline import between

CUSTOMER_FEATURES = (
    "age", "income_band", "risk_level", "risk_assessed", "kyc_verified", "tenure_days",
    "log_total_assets", "asset_trend_90d", "n_products_held", "max_risk_held", "n_buy_90d",
    "n_buy_365d", "days_since_last_buy", "days_since_last_event", "logins_30d", "events_30d",
    "product_views_7d", "product_views_30d", "p2p_events_90d", "forex_events_90d",
    "stock_events_90d", "funnel_stage", "complaints_90d", "is_active", "mean_risk_held",
    "n_buys_total", "p2p_share", "forex_share", "stock_share",
)  # fmt: skip
# Business-line share of a customer's recent events: what kind of investor they are.
LINE_SHARES = {"p2p_share": "p2p_events_90d", "forex_share": "forex_events_90d",
               "stock_share": "stock_events_90d"}  # fmt: skip
PAIR_FEATURES = (
    "product_code", "category_code", "product_risk", "log_min_amount", "qualified_only",
    "risk_gap", "affordability", "holds_same_category", "views_7d", "views_30d",
    "cohold_conf", "cohold_lift", "transition_conf", "transition_lift",
    "popularity", "recent_buy_share", "peer_popularity", "segment_popularity", *HISTORY_FEATURES,
    "ease_score", "item_item_score", "decayed_popularity", "ease_rank", "item_item_rank",
)  # fmt: skip
PAIR_CATEGORICAL = ("product_code", "category_code")
PEER = "peer_key"
ATTRIBUTES = ("gender", "occupation")  # text attributes of the customer on every pair


@dataclass(frozen=True)
class PairContext:
    """Product-side facts at one cut-off, indexed for fast per-customer lookups."""

    cutoff: pd.Timestamp
    products: pd.DataFrame  # active products, indexed by product_id, with codes
    held: pd.DataFrame  # holdings at the cut-off, indexed by customer_id
    rule_stats: dict[str, np.ndarray]  # name -> (antecedent x consequent) matrix
    product_stats: pd.DataFrame  # per product: popularity, recent_buy_share
    peer_popularity: pd.DataFrame  # peer_key x product share holding
    segment_popularity: pd.DataFrame | None  # segment_id x product share holding
    segment_of: pd.Series | None  # customer_id -> segment_id
    views: pd.DataFrame  # per (customer_id, product_id) views_7d, views_30d, indexed by customer
    rule_products: pd.Index  # every catalogue product: the rows (antecedents) of rule_stats
    history: dict[str, np.ndarray]  # name -> (customers x active products), see pair_history
    history_customers: pd.Index  # the rows of `history`
    # candidate generators: name -> (catalogue products x active products) item weights
    generators: dict[str, np.ndarray] = field(default_factory=dict)


def peer_key(portrait: pd.DataFrame) -> pd.Series:
    """Peers for popularity: same risk level (0 = not assessed) and age decade."""
    risk = portrait["risk_level"].fillna(0).astype(int).astype(str)
    age = (portrait["age"].fillna(-10) // 10).astype(int).astype(str)
    return risk + "|" + age


def build_pair_context(
    tables: dict[str, pd.DataFrame],
    portrait: pd.DataFrame,
    *,
    cutoff: pd.Timestamp,
    window_days: int,
    segments: pd.DataFrame | None = None,
) -> PairContext:
    """Everything product-side a pair needs, from rows strictly before `cutoff`."""
    cat = tables["products"]
    products = _active_products(cat)
    all_ids = pd.Index(cat[PRODUCT_ID].astype(str).sort_values())
    customers = pd.Index(portrait[CUSTOMER_ID].astype(str))
    txns = tables["transactions"]
    held = build_holdings(txns, as_of=cutoff)[[CUSTOMER_ID, PRODUCT_ID]].astype(str)
    start = cutoff - pd.Timedelta(days=window_days)
    held_then = build_holdings(txns, as_of=start)[[CUSTOMER_ID, PRODUCT_ID]].astype(str)
    buys = window_buys(txns, cutoff, days=window_days)
    hold_now = holding_matrix(held, customers, all_ids)
    stats = rule_matrices(hold_now, hold_now, "cohold")
    stats |= rule_matrices(
        holding_matrix(held_then, customers, all_ids),
        holding_matrix(buys, customers, all_ids),
        "transition",
    )
    stats = {k: v[:, all_ids.get_indexer(products.index)] for k, v in stats.items()}
    product_stats = _product_stats(hold_now, buys, txns, all_ids, cutoff=cutoff)
    active_at = all_ids.get_indexer(products.index)
    generators = {
        "ease_score": ease_weights(hold_now)[:, active_at],
        "item_item_score": item_item_weights(hold_now)[:, active_at],
    }
    peer = group_share(hold_now, peer_key(portrait).to_numpy(), all_ids)
    seg_pop, seg_of = None, None
    if segments is not None and len(segments):
        seg_of = segments.set_index(segments[CUSTOMER_ID].astype(str))[SEGMENT_ID].astype(str)
        seg_pop = group_share(hold_now, seg_of.reindex(customers).fillna("?").to_numpy(), all_ids)
    views = recent_views(tables["events"], cutoff=cutoff)
    own = product_history(tables, customers, products, cutoff=cutoff)
    return PairContext(
        pd.Timestamp(cutoff), products, held.set_index(CUSTOMER_ID), stats, product_stats,
        peer, seg_pop, seg_of, views.set_index(CUSTOMER_ID), all_ids, own, customers, generators,
    )  # fmt: skip


def _active_products(catalogue: pd.DataFrame) -> pd.DataFrame:
    """The active products' pair columns, by product_id (sorted)."""
    active = catalogue.loc[catalogue["is_active"].astype(bool)].sort_values(PRODUCT_ID)
    return pd.DataFrame(
        {
            "product_code": active[PRODUCT_ID].astype(str).to_numpy(),
            "category_code": active["category"].astype(str).to_numpy(),
            "category": active["category"].astype(str).to_numpy(),
            "product_risk": active["risk_level"].astype(float).to_numpy(),
            "log_min_amount": np.log1p(active["min_amount"].astype(float).to_numpy()),
            "qualified_only": active["qualified_only"].astype(float).to_numpy(),
        },
        index=pd.Index(active[PRODUCT_ID].astype(str), name=PRODUCT_ID),
    )


def window_buys(txns: pd.DataFrame, cutoff: pd.Timestamp, *, days: int) -> pd.DataFrame:
    """Distinct [customer_id, product_id] bought in the `days` days before `cutoff`."""
    buys = between(txns, cutoff - pd.Timedelta(days=days), cutoff)
    buys = buys.loc[buys["type"].eq("buy") & buys[PRODUCT_ID].notna(), [CUSTOMER_ID, PRODUCT_ID]]
    return buys.astype(str).drop_duplicates()


def _product_stats(
    hold_now, buys: pd.DataFrame, txns: pd.DataFrame, all_ids: pd.Index, *, cutoff: pd.Timestamp
) -> pd.DataFrame:
    """Per product: share of customers holding it, share of the window's buys, decayed popularity."""
    bought = txns.loc[txns["type"].eq("buy") & txns[PRODUCT_ID].notna()]
    return pd.DataFrame(
        {
            "popularity": pd.Series(
                np.asarray(hold_now.mean(axis=0), dtype=np.float32).ravel(), index=all_ids
            ),
            "recent_buy_share": buys[PRODUCT_ID].value_counts(normalize=True).reindex(all_ids),
            "decayed_popularity": decayed_popularity(bought, all_ids, cutoff=cutoff),
        }
    ).fillna(0.0)


def _rows(indexed: pd.DataFrame, ids: pd.Index) -> pd.DataFrame:
    """Rows of a customer-indexed frame for `ids` (hash lookups, no scan of the whole table)."""
    return indexed.loc[indexed.index.intersection(ids)].rename_axis(CUSTOMER_ID).reset_index()


def build_pairs(
    portrait_rows: pd.DataFrame,
    context: PairContext,
    *,
    session_events: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """(customer, active product not held) pairs with customer, product and pair features.

    Only the candidates of features/candidates.py (any generator's top 50 for the customer:
    every pair in a catalogue of up to 50 products) are kept: the ranker scores these only.
    """
    rows = portrait_rows.reset_index(drop=True)
    ids = pd.Index(rows[CUSTOMER_ID].astype(str))
    products = context.products
    n, m = len(ids), len(products)
    ci, pj = np.repeat(np.arange(n), m), np.tile(np.arange(m), n)
    cols: dict[str, np.ndarray] = {
        CUSTOMER_ID: ids.to_numpy(dtype=object)[ci],
        PRODUCT_ID: products.index.to_numpy(dtype=object)[pj],
    }
    profile = _profile(rows)
    for c in CUSTOMER_FEATURES:
        cols[c] = profile[c][ci]
    for c in attribute_columns(rows):  # who the customer is: gender, occupation, firm columns
        cols[c] = rows[c].to_numpy()[ci]
    for c in products.columns.drop("category"):
        cols[c] = products[c].to_numpy()[pj]
    held = _rows(context.held, ids)
    hmat = holding_matrix(held, ids, context.rule_products)
    for name, matrix in context.rule_stats.items():
        cols[name] = best_rule(hmat, matrix).ravel()
    for name, weights in context.generators.items():
        cols[name] = generator_scores(hmat, weights).ravel()
    frame = pd.DataFrame(cols)
    frame["risk_gap"] = frame["risk_level"].fillna(1.0) - frame["product_risk"]
    frame["affordability"] = frame["log_total_assets"] - frame["log_min_amount"]
    frame["holds_same_category"] = _same_category(held, products, ids)[ci, pj]
    stats = context.product_stats.reindex(products.index)
    for c in stats.columns:
        frame[c] = stats[c].to_numpy()[pj]
    peer = context.peer_popularity.reindex(peer_key(rows).to_numpy())
    frame["peer_popularity"] = peer.reindex(columns=products.index).to_numpy()[ci, pj]
    frame["segment_popularity"] = _segment_popularity(context, ids, products.index)[ci, pj]
    at = context.history_customers.get_indexer(ids)[ci]
    known = at >= 0  # a customer the context was not built with has no history: zeros
    for name, matrix in context.history.items():
        values = np.zeros(len(ci), dtype=np.float32)
        values[known] = matrix[at[known], pj[known]]
        frame[name] = values
    frame = _add_views(frame, context, ids, session_events)
    held_pair = hmat[:, context.rule_products.get_indexer(products.index)].toarray().ravel() > 0
    return keep_candidates(frame.loc[~held_pair].reset_index(drop=True))


def attribute_columns(frame: pd.DataFrame) -> list[str]:
    """Customer attributes a pair carries besides CUSTOMER_FEATURES: ATTRIBUTES and extra_* columns."""
    extras = [c for c in frame.columns if str(c).startswith(EXTRA_PREFIX)]
    return [c for c in (*ATTRIBUTES, *extras) if c in frame.columns]


def _profile(rows: pd.DataFrame) -> dict[str, np.ndarray]:
    """The customer columns of a pair as float32 (NaN when the portrait lacks one)."""
    nan = pd.Series(np.nan, index=rows.index)
    events = rows.get("events_90d", nan).astype(float)
    out = {}
    for c in CUSTOMER_FEATURES:
        if c in LINE_SHARES:
            values = rows.get(LINE_SHARES[c], nan).astype(float) / events.where(events > 0)
        else:
            values = rows.get(c, nan).astype(float)
        out[c] = values.to_numpy(dtype=np.float32)
    return out


def _same_category(held: pd.DataFrame, products: pd.DataFrame, ids: pd.Index) -> np.ndarray:
    """customers x products: 1 when the customer holds another product of the same category."""
    cats = held.merge(products[["category"]], left_on=PRODUCT_ID, right_index=True, how="inner")[
        [CUSTOMER_ID, "category"]
    ]
    owned = pd.crosstab(cats[CUSTOMER_ID], cats["category"]).clip(upper=1)
    owned = owned.reindex(index=ids, columns=products["category"].unique(), fill_value=0)
    return owned.reindex(columns=products["category"]).to_numpy(dtype=np.float32)


def _segment_popularity(context: PairContext, ids: pd.Index, products: pd.Index) -> np.ndarray:
    """Share of the customer's segment holding each product (peers when no segments are known)."""
    if context.segment_popularity is None or context.segment_of is None:
        return np.full((len(ids), len(products)), np.nan, dtype=np.float32)
    seg = context.segment_of.reindex(ids).fillna("?").to_numpy()
    table = context.segment_popularity.reindex(seg).reindex(columns=products)
    return table.to_numpy(dtype=np.float32)


def _add_views(
    frame: pd.DataFrame, context: PairContext, ids: pd.Index, session: pd.DataFrame | None
) -> pd.DataFrame:
    """Recent product views of each pair, plus views in the current session (they count as today)."""
    views = _rows(context.views, ids)
    if session is not None and len(session):
        now = session.loc[session[PRODUCT_ID].notna()]
        extra = pd.DataFrame(
            {
                CUSTOMER_ID: now[CUSTOMER_ID].astype(str).to_numpy(),
                PRODUCT_ID: now[PRODUCT_ID].astype(str).to_numpy(),
                "views_7d": 1.0,
                "views_30d": 1.0,
            }
        )
        views = pd.concat([views, extra], ignore_index=True)
        views = views.groupby([CUSTOMER_ID, PRODUCT_ID], as_index=False).sum()
    frame = frame.merge(views, on=[CUSTOMER_ID, PRODUCT_ID], how="left")
    frame[["views_7d", "views_30d"]] = frame[["views_7d", "views_30d"]].fillna(0.0)
    return frame
