"""The candidate index: every customer's candidates as arrays, built once per batch or service load.

`build_candidate_index` runs once over every customer: the pair features (`features.pairs`)
and their conversion scores, the rule candidates (`training.rules.base`), the segment (else
peer) shares and overall popularity. Batch scoring and a request slice customers' rows
(`serving.recommender`); a visit rescores only the pairs whose views it changes. The model's
reasons of a pair are explained when it is first recommended and kept (`serving.pair_reasons`).

The policy facts (`ProductFacts`, `CustomerFacts`) come from the frames the state serves, at the
index's positions, so the policy always reads what the state holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from features.contract import CUSTOMER_ID, PRODUCT_ID, SEGMENT_ID
from features.pairs import PairContext, build_pairs, peer_key
from features.policy import UNASSESSED_MAX_RISK
from serving.pair_matrix import PairMatrix, pair_matrix
from serving.pair_reasons import ReasonMemo
from serving.pair_store import JoinedPairs, StoredPairs

CHUNK_CUSTOMERS = 20_000  # pair rows are built and scored this many customers at a time


@dataclass(frozen=True, eq=False)
class ProductFacts:
    """Policy and display facts per product position; the last position is a product not on file."""

    risk: np.ndarray  # float, inf for the unknown product
    active: np.ndarray  # bool
    qualified_only: np.ndarray  # bool
    names: np.ndarray  # object
    categories: np.ndarray  # object
    levels: np.ndarray  # int risk level for display


@dataclass(frozen=True, eq=False)
class CustomerFacts:
    """Policy facts per customer position (a customer missing from the policy reads most cautiously)."""

    known: np.ndarray
    assessed: np.ndarray
    allowed_risk: np.ndarray
    qualified: np.ndarray
    opted_out: np.ndarray


@dataclass(frozen=True, eq=False)
class Rows:
    """Per-customer rows in CSR form: customer i owns positions ptr[i]:ptr[i + 1]."""

    ptr: np.ndarray
    product: np.ndarray  # product position of each row
    score: np.ndarray

    def span(self, i: int) -> slice:
        """The rows of customer position i."""
        return slice(int(self.ptr[i]), int(self.ptr[i + 1]))


@dataclass(frozen=True, eq=False)
class CandidateIndex:
    """Every known customer's candidates from each source, by customer and product position."""

    products: np.ndarray  # product ids (object) by position; position len(products) = not on file
    product_pos: dict[str, int]
    id_rank: np.ndarray  # rank of each product id in sorted order (ties break on product_id)
    customers: pd.Index
    customer_pos: dict[str, int]
    held: np.ndarray  # bool, customers x (products + 1)
    pairs: Rows | None  # conversion-model pairs (not held, on sale at the cut-off) and scores
    pair_frame: pd.DataFrame | StoredPairs | None  # model columns of each pair, `pairs` order
    pair_reasons: ReasonMemo | None  # the model's reasons of each pair, kept once explained
    pair_matrix: PairMatrix | None  # a calibrated LightGBM's inputs of each pair (visits)
    rules: Rows | None  # rule candidates, best first; reasons in `rule_reasons`
    rule_reasons: np.ndarray | None
    shares: np.ndarray | None  # customers x products: segment (else peer) share holding it
    popularity: np.ndarray  # per product: share of all customers holding it

    def position(self, product_id: str) -> int:
        """Position of a product id (the unknown-product position when it is not on file)."""
        return self.product_pos.get(product_id, len(self.products))


def build_candidate_index(
    *,
    portrait: pd.DataFrame,
    products: pd.DataFrame,
    holdings: pd.DataFrame,
    segments: pd.DataFrame | None,
    context: PairContext | None,
    model: Any | None,
    rule_base: Any | None,
    visits: bool = True,
) -> CandidateIndex:
    """Score and index every customer's candidates once (slow: the batch and service load only).

    `portrait` is indexed by customer_id (its order is the index's customer order); `segments`
    holds customer_id and segment_id. `context` (the pairs at the scoring time) is needed by the
    model; without it or without a model the candidates are rules and popularity. `visits=False`
    (the batch, which serves no visit) keeps the pairs' columns as Parquet bytes
    (`serving.pair_store`), not the frame and matrix a visit rescores from.
    """
    customers = pd.Index(portrait.index.astype(str), name=CUSTOMER_ID)
    rows = portrait.reset_index(drop=True)
    rule_candidates = _rule_candidates(holdings, segments, rule_base)
    universe = _universe(products, holdings, rule_candidates)
    pos = {p: i for i, p in enumerate(universe)}
    return assemble_index(
        universe, customers, holdings,
        parts=_pair_rows(rows, customers, pos, context, model, visits=visits)
        | _rule_rows(rule_candidates, customers, pos),
        shares=None if context is None else personal_shares(
            rows, context, None if segments is None else segments.reset_index(drop=True), universe
        ),
        popularity=overall_popularity(context, universe).to_numpy(dtype=float),
    )  # fmt: skip


def assemble_index(
    universe: pd.Index,
    customers: pd.Index,
    holdings: pd.DataFrame,
    *,
    parts: dict[str, Any],
    shares: np.ndarray | None,
    popularity: np.ndarray,
) -> CandidateIndex:
    """The index of scored `parts` (pair and rule rows) over product ids `universe` and customer
    ids `customers`; the held matrix comes from `holdings` (what the caller serves)."""
    pos = {p: i for i, p in enumerate(universe)}
    return CandidateIndex(
        products=universe.to_numpy(dtype=object),
        product_pos=pos,
        id_rank=np.argsort(np.argsort(universe.to_numpy(dtype=str), kind="stable")),
        customers=customers,
        customer_pos={c: i for i, c in enumerate(customers)},
        held=_held_matrix(holdings, customers, pos),
        shares=shares,
        popularity=popularity,
        **parts,
    )


def by_customer(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` indexed by its customer_id as text (the column stays), for row look-ups."""
    return frame.set_index(frame[CUSTOMER_ID].astype(str), drop=False).rename_axis(CUSTOMER_ID)


def _universe(products, holdings, rule_candidates) -> pd.Index:
    """Catalogue ids first, then any id a holding or rule names that the catalogue lacks."""
    listed = pd.Index(products[PRODUCT_ID].astype(str).to_numpy())
    named = [holdings[PRODUCT_ID].astype(str).to_numpy()]
    if rule_candidates is not None:
        named.append(rule_candidates[PRODUCT_ID].astype(str).to_numpy())
    extra = pd.Index(np.unique(np.concatenate(named))).difference(listed, sort=True)
    return listed.append(extra).rename(PRODUCT_ID)


def _held_matrix(holdings: pd.DataFrame, customers: pd.Index, pos: dict[str, int]) -> np.ndarray:
    held = np.zeros((len(customers), len(pos) + 1), dtype=bool)
    r = customers.get_indexer(holdings[CUSTOMER_ID].astype(str))
    held[r[r >= 0], _positions(holdings[PRODUCT_ID], pos)[r >= 0]] = True
    return held


def _positions(ids: pd.Series, pos: dict[str, int]) -> np.ndarray:
    """Each id's product position (len(pos): not on file), looked up once per distinct id."""
    codes, distinct = pd.factorize(ids)
    at = np.array([pos.get(str(p), len(pos)) for p in distinct], dtype=np.int64)
    return np.append(at, len(pos))[codes]  # code -1 (missing) takes the not-on-file position


def _csr(owner: np.ndarray, n: int, product: np.ndarray, score: np.ndarray) -> Rows:
    """Rows grouped by owner position (owners must already be in order)."""
    ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(owner, minlength=n), out=ptr[1:])
    return Rows(ptr, product.astype(np.int64), np.asarray(score, dtype=float))


def _pair_rows(rows, customers, pos, context, model, *, visits: bool) -> dict[str, Any]:
    """Every (customer, product) pair the model scores, scored once, in customer order."""
    if model is None or context is None or rows.empty:
        return {"pairs": None, "pair_frame": None, "pair_reasons": None, "pair_matrix": None}
    kept = JoinedPairs() if visits else StoredPairs()
    scores, owner, product = [], [], []
    for start in range(0, len(rows), CHUNK_CUSTOMERS):
        pairs = build_pairs(rows.iloc[start : start + CHUNK_CUSTOMERS], context)
        pairs = pairs[model_columns(model, pairs.columns)]
        scores.append(model.predict_proba(pairs) if len(pairs) else np.zeros(0))
        owner.append(customers.get_indexer(pairs[CUSTOMER_ID].astype(str)))
        product.append(_positions(pairs[PRODUCT_ID], pos))
        kept.append(pairs)
    frame = kept.finish()
    return {
        "pairs": _csr(
            np.concatenate(owner), len(customers), np.concatenate(product), np.concatenate(scores)
        ),  # fmt: skip
        "pair_frame": frame,
        "pair_reasons": ReasonMemo(len(frame)),
        "pair_matrix": pair_matrix(model, frame) if visits else None,
    }


def model_columns(model: Any, columns: pd.Index) -> list[str]:
    """Ids and every feature column the model or its parts (e.g. a fallback model) read."""
    parts = [model, *vars(model).values()] if hasattr(model, "__dict__") else [model]
    lists = [getattr(part, "features", None) for part in parts]
    wanted = {f for found in lists if isinstance(found, list | tuple) for f in found}
    if not wanted:  # a model that does not list its features keeps every column
        return list(columns)
    return [c for c in columns if c in wanted or c in (CUSTOMER_ID, PRODUCT_ID)]


def _rule_candidates(holdings, segments, rule_base) -> pd.DataFrame | None:
    """Every rule candidate of every customer, best first (a request keeps its first k)."""
    if rule_base is None or len(rule_base.rules) == 0 or holdings.empty:
        return None
    from training.rules.base import candidates_from_rules

    held = holdings.reset_index(drop=True)[[CUSTOMER_ID, PRODUCT_ID]].astype(str)
    segs = None
    if segments is not None and len(segments):
        segs = segments.reset_index(drop=True)[[CUSTOMER_ID, SEGMENT_ID]]
    every = len(rule_base.rules) * 1000  # more than any customer's candidates: keep them all
    return candidates_from_rules(held, rule_base.rules, every, segments=segs)


def _rule_rows(cand, customers, pos) -> dict[str, Any]:
    """The rule candidates as rows by customer position, each customer's best first (ids and
    reasons looked up once per distinct value, not per candidate)."""
    if cand is None:
        return {"rules": None, "rule_reasons": None}
    # factorize reads a categorical's codes: each distinct id and text is looked up once
    owner, customer_ids = pd.factorize(cand[CUSTOMER_ID])
    owner = customers.get_indexer(pd.Index(customer_ids).astype(str))[owner]
    kept = np.flatnonzero(owner >= 0)
    kept = kept[np.argsort(owner[kept], kind="stable")]  # keeps each customer's best-first order
    at = _positions(cand[PRODUCT_ID], pos)[kept]
    rows = _csr(owner[kept], len(customers), at, cand["score"].to_numpy()[kept])
    reason, texts = pd.factorize(cand["reason"])
    texts = np.asarray(pd.Index(texts).astype(str), dtype=object)
    return {"rules": rows, "rule_reasons": texts[reason[kept]]}


def overall_popularity(context: PairContext | None, products: pd.Index) -> pd.Series:
    """Share of all customers holding each product (0 without a context), indexed by product_id."""
    if context is None:
        return pd.Series(0.0, index=products)
    return context.product_stats["popularity"].reindex(products).fillna(0.0)


def personal_shares(
    rows: pd.DataFrame, context: PairContext, seg: pd.DataFrame | None, products: pd.Index
) -> np.ndarray:
    """customers x products: share of the customer's segment (else peers) holding each product."""
    by_peer = context.peer_popularity.reindex(peer_key(rows).to_numpy())
    share = by_peer.reindex(columns=products).fillna(0.0)
    if context.segment_popularity is not None and seg is not None and len(seg):
        known = pd.Index(rows[CUSTOMER_ID].astype(str))
        seg_of = seg.set_index(CUSTOMER_ID)[SEGMENT_ID].astype(str).reindex(known)
        by_seg = context.segment_popularity.reindex(seg_of.to_numpy()).reindex(columns=products)
        share = by_seg.set_axis(share.index).fillna(share)
    return share.to_numpy(dtype=float)


def product_facts(products: pd.DataFrame, universe: np.ndarray) -> ProductFacts:
    """The policy and display facts of `products` at the index's positions (+ the unknown one)."""
    table = products.set_index(products[PRODUCT_ID].astype(str)).reindex(universe)

    def column(name: str, unknown: Any, fill: Any, dtype: Any) -> np.ndarray:
        values = table[name].astype(object).where(table[name].notna(), fill).to_numpy()
        return np.append(values, unknown).astype(dtype)

    return ProductFacts(
        risk=column("risk_level", np.inf, np.inf, float),
        active=column("is_active", False, False, bool),
        qualified_only=column("qualified_only", True, True, bool),
        names=column("name", "", "", object),
        categories=column("category", "", "", object),
        levels=column("risk_level", -1, -1, int),
    )


def customer_facts(policy: pd.DataFrame, customers: pd.Index) -> CustomerFacts:
    """The `customer_policy` facts at the index's customer positions (unknown: most cautious)."""
    rows = policy.set_index(policy[CUSTOMER_ID].astype(str)).reindex(customers)
    return CustomerFacts(
        known=rows["max_product_risk"].notna().to_numpy(),
        assessed=rows["risk_assessed"].fillna(False).astype(bool).to_numpy(),
        allowed_risk=rows["max_product_risk"].astype(float).fillna(UNASSESSED_MAX_RISK).to_numpy(),
        qualified=rows["qualified"].fillna(False).astype(bool).to_numpy(),
        opted_out=rows["marketing_opt_out"].fillna(True).astype(bool).to_numpy(),
    )
