"""Batch scoring: every customer's next best products from the one recommender, as one frame.

The same candidates, policy, top-k and reasons as a request to the service
(`serving.recommend_one`), over a block of customers per call (a vectorised top-k; no loop over
customers). The models stage writes the frame as recommendations.parquet.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from features.contract import CUSTOMER_ID, PRODUCT_ID
from features.policy import EXCLUSION_REASONS, REASON_OF_CODE
from serving.recommend_index import (
    CandidateIndex,
    CustomerFacts,
    ProductFacts,
    build_candidate_index,
    by_customer,
    customer_facts,
    product_facts,
)
from serving.recommender import (
    MODEL,
    PERSONALISED,
    SOURCES,
    choose,
    gather,
    plain_reasons,
    policy_codes,
)
from serving.visit import model_reasons

OUTPUT_COLUMNS = [CUSTOMER_ID, "rank", PRODUCT_ID, "score", "reasons", "personalised", "source"]
BLOCK_CUSTOMERS = 20_000  # customers per vectorised block (TreeSHAP of its model rows: one batch)


def recommend_all(
    index: CandidateIndex,
    products: ProductFacts,
    customers: CustomerFacts,
    *,
    k: int,
    model: Any | None,
    block: int = BLOCK_CUSTOMERS,
) -> pd.DataFrame:
    """Top-k allowed products of every customer in the index (customers in id order, then rank)
    with score, reasons, personalised flag and source; exclusion counts in `.attrs["excluded"]`."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    order = np.argsort(index.customers.to_numpy(dtype=str), kind="stable")
    parts, excluded = [], Counter()
    for start in range(0, len(order), block):  # blocks of customers, each one vectorised
        frame = recommend_block(index, products, customers, order[start : start + block], k=k,
                                model=model)  # fmt: skip
        excluded.update(frame.attrs.pop("excluded"))
        parts.append(frame)
    if not parts or not products.active.any():
        parts = [pd.DataFrame({c: pd.Series(dtype=object) for c in OUTPUT_COLUMNS})]
    out = pd.concat(parts, ignore_index=True)
    out.attrs["excluded"] = {reason: excluded.get(reason, 0) for reason in EXCLUSION_REASONS}
    return out


def recommend_block(
    index: CandidateIndex,
    products: ProductFacts,
    customers: CustomerFacts,
    positions: np.ndarray,
    *,
    k: int,
    model: Any | None,
) -> pd.DataFrame:
    """Top-k rows of the customers at index `positions` (in that order), vectorised over them;
    exclusion counts by rule in `.attrs["excluded"]`."""
    cands = gather(index, products, positions, k=k)
    codes = policy_codes(cands, index, products, customers, positions)
    chosen, ranks = choose(cands, codes, index, k=k)
    who = positions[cands.owner[chosen]]
    reasons = plain_reasons(cands, chosen, index, customers.opted_out[who])
    source = cands.source[chosen]
    is_model = np.flatnonzero(source == MODEL)
    if len(is_model):
        explained = model_reasons(index, model, cands.row[chosen[is_model]])
        for at, texts in zip(is_model, explained, strict=True):
            reasons[at] = texts
    frame = pd.DataFrame(
        {
            CUSTOMER_ID: index.customers.to_numpy(dtype=object)[who],
            "rank": ranks.astype(np.int64),
            PRODUCT_ID: index.products[cands.product[chosen]],
            "score": cands.score[chosen],
            "reasons": pd.Series(reasons, dtype=object),
            "personalised": PERSONALISED[source],
            "source": np.array(SOURCES, dtype=object)[source],
        }
    )
    frame.attrs["excluded"] = Counter(REASON_OF_CODE[codes[codes > 0]].tolist())
    return frame


def score_every_customer(
    *,
    portrait: pd.DataFrame,
    products: pd.DataFrame,
    holdings: pd.DataFrame,
    policy: pd.DataFrame,
    segments: pd.DataFrame | None,
    context: Any | None,
    model: Any | None,
    rule_base: Any | None,
    k: int,
) -> tuple[pd.DataFrame, CandidateIndex]:
    """Batch scoring of the models stage: the candidate index of every customer (as the service
    builds it, but without the matrix only visits read) and every customer's top-k from it.
    `policy` is a `customer_policy` frame."""
    index = build_candidate_index(
        portrait=by_customer(portrait), products=products, holdings=holdings,
        segments=segments, context=context, model=model, rule_base=rule_base, visits=False,
    )  # fmt: skip
    facts = product_facts(products, index.products), customer_facts(policy, index.customers)
    return recommend_all(index, *facts, k=k, model=model), index


def scored_pairs(index: CandidateIndex, *, block: int) -> Iterator[pd.DataFrame]:
    """The index's model pairs as (customer_id, product_id, probability) frames, `block`
    customers at a time, in index order: the scores the batch computed, not computed again."""
    if index.pairs is None:
        return
    ptr, customers = index.pairs.ptr, index.customers.to_numpy(dtype=object)
    for start in range(0, len(customers), block):  # blocks of customers, bounded memory
        stop = min(start + block, len(customers))
        rows = slice(int(ptr[start]), int(ptr[stop]))
        owner = np.repeat(np.arange(start, stop), np.diff(ptr[start : stop + 1]))
        yield pd.DataFrame({
            CUSTOMER_ID: customers[owner],
            PRODUCT_ID: index.products[index.pairs.product[rows]],
            "probability": index.pairs.score[rows],
        })  # fmt: skip
