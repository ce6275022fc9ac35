"""Next best products for one customer per request: the one recommender (`serving.recommender`)
on the candidate index, as response items, in well under a millisecond.

A known customer's answer is batch scoring's answer for that customer (`serving.recommend_all`:
the same candidates, policy, top-k and reasons), moved by the products viewed in this visit:
their model pairs are scored again with the views added to the pairs' view features (from the
index's feature matrix), or, without model pairs, the viewed products lead as a source. A
newcomer's answer is the cold-start list (`serving.cold_start`) through the same policy and top-k.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from features.policy import REASON_OF_CODE, exclusion_codes
from serving.audit import Exclusions
from serving.recommend_index import CandidateIndex, CustomerFacts, ProductFacts
from serving.recommender import (
    MODEL,
    PERSONALISED,
    SESSION,
    SOURCES,
    choose,
    gather,
    plain_reasons,
    policy_codes,
    top_k,
)
from serving.visit import model_reasons, visit_scores

FILL_REASON = "fallback: a suitable product from the catalogue (no better signal)"


@dataclass(frozen=True)
class OneAnswer:
    """Ranked items, whether every item is personalised, and the candidates the policy excluded."""

    items: list[dict[str, Any]]
    sources: list[str]  # the source of each item
    personalised: bool
    excluded: Exclusions


def recommend_one(
    index: CandidateIndex,
    products: ProductFacts,
    customers: CustomerFacts,
    customer_id: str,
    *,
    k: int,
    session_products: list[str],
    model: Any | None,
) -> OneAnswer:
    """Top-k allowed products of a customer in the index, with reasons and the policy's exclusions."""
    positions = np.array([index.customer_pos[customer_id]])
    views = Counter(session_products)
    viewed = np.array(list(views), dtype=object)
    session = visit = None
    if views:
        session = (np.array([index.position(p) for p in viewed], dtype=np.int64),
                   np.array(list(views.values()), dtype=float))  # fmt: skip
        visit = visit_scores(index, int(positions[0]), session, model)
    cands = gather(index, products, positions, k=k, session=session,
                   pair_score=None if visit is None else visit.score)  # fmt: skip
    codes = policy_codes(cands, index, products, customers, positions)
    chosen, ranks = choose(cands, codes, index, k=k)
    opted = np.full(len(chosen), bool(customers.opted_out[positions[0]]))
    reasons = plain_reasons(cands, chosen, index, opted)
    is_model = cands.source[chosen] == MODEL
    if is_model.any():
        explained = iter(model_reasons(index, model, cands.row[chosen[is_model]], visit=visit))
        reasons = [next(explained) if m else r for m, r in zip(is_model, reasons, strict=True)]
    items = [item(index, products, int(rank), int(cands.product[c]), float(cands.score[c]), why)
             for rank, c, why in zip(ranks, chosen, reasons, strict=True)]  # fmt: skip
    sources = cands.source[chosen]
    excluded = _excluded(index, customer_id, cands, codes, viewed)
    personalised = bool(items) and bool(PERSONALISED[sources].all())
    return OneAnswer(items, [SOURCES[s] for s in sources], personalised, excluded)


def item(index, products, rank: int, pos: int, score: float, reasons) -> dict[str, Any]:
    """One response item: rank, product facts, score and reasons."""
    return {
        "rank": rank,
        "product_id": str(index.products[pos]),
        "name": str(products.names[pos]),
        "category": str(products.categories[pos]),
        "risk_level": int(products.levels[pos]),
        "score": float(score),
        "reasons": [str(t) for t in reasons],
    }


def _excluded(index, customer_id, cands, codes, viewed: np.ndarray) -> Exclusions:
    """One (product, rule) per excluded candidate; a viewed product is named as the visit sent it."""
    bad = np.flatnonzero(codes)
    session = cands.source[bad] == SESSION
    names = np.empty(len(bad), dtype=object)  # only a viewed product may be not on file
    names[~session] = index.products[cands.product[bad[~session]]]
    names[session] = viewed[cands.row[bad[session]]]
    return Exclusions(customer_id, names.tolist(), REASON_OF_CODE[codes[bad]].tolist())


def newcomer_one(
    index: CandidateIndex,
    products: ProductFacts,
    facts: dict[str, Any],
    customer_id: str,
    *,
    candidates: tuple[np.ndarray, np.ndarray, str],
    k: int,
    personalised: bool,
) -> OneAnswer:
    """Top-k for a customer not in the portrait: the candidates (positions, shares, reason
    template), topped up from the catalogue with score 0, through THE policy and the top-k."""
    product, share, template = candidates
    fill = np.setdiff1d(np.arange(len(index.products)), product)
    pool = np.concatenate([product, fill])
    score = np.concatenate([share, np.zeros(len(fill))])
    codes = exclusion_codes(
        product_risk=products.risk[pool], active=products.active[pool],
        qualified_only=products.qualified_only[pool], held=False, known=True,
        assessed=facts["risk_assessed"], allowed_risk=facts["max_product_risk"],
        qualified=facts["qualified"], opted_out=facts["marketing_opt_out"],
        personalised=personalised,
    )  # fmt: skip
    kept = np.flatnonzero(codes == 0)
    zeros = np.zeros(len(kept), dtype=np.int64)
    rows, ranks = top_k(zeros, zeros, score[kept], index.id_rank[pool[kept]], k=k)
    best = kept[rows]
    items = [
        item(index, products, int(rank), pool[r], score[r],
             [template.format(score[r]) if r < len(product) else FILL_REASON])
        for rank, r in zip(ranks, best, strict=True)
    ]  # fmt: skip
    bad = np.flatnonzero(codes[: len(product)])
    names = np.append(index.products, "").astype(object)[product[bad]]
    excluded = Exclusions(customer_id, names.tolist(), REASON_OF_CODE[codes[bad]].tolist())
    return OneAnswer(items, ["cold_start"] * len(items), personalised and bool(items), excluded)
