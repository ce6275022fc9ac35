"""Next best products for one known customer, from the candidate index in a few milliseconds.

The batch recommender's answer (`serving.recommend.recommend`) without a data frame per request:
the same sources in the same order of preference, THE policy (`features.policy.exclusion_codes`)
over every candidate, the same ties (source, score, product_id) and the same reasons.
tests/serving/test_recommend_one.py checks it against `recommend` and against `apply_policy`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from features.policy import REASON_OF_CODE, exclusion_codes
from serving.audit import Exclusions
from serving.pair_reasons import EXPLAINED, explain_pairs
from serving.recommend import (
    OPT_OUT_REASON,
    SOURCES,
    personal_share_reason,
    popular_reason,
)
from serving.recommend_index import CandidateIndex, CustomerFacts, ProductFacts

PRIORITY = {source: i for i, source in enumerate(SOURCES)}
MODEL_FALLBACK_REASON = "predicted to suit you"
FILL_REASON = "fallback: a suitable product from the catalogue (no better signal)"
VIEW_COLUMNS = ("views_7d", "views_30d")
PERSONALISED_ROWS = np.array([[True], [False]])  # policy codes for personalised, then not


@dataclass(frozen=True)
class Source:
    """One source's candidates for the customer: product positions, scores and where they came from."""

    name: str
    product: np.ndarray
    score: np.ndarray
    personalised: bool
    first_row: int = 0  # the source's own row of the first candidate (rules, pairs)
    ids: np.ndarray | None = None  # product ids, where a position may be "not on file" (session)


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
    i = index.customer_pos[customer_id]
    views = Counter(session_products)
    pairs, sources = _sources(index, products, i, k=k, views=views, model=model)
    codes = exclusion_codes(
        product_risk=products.risk, active=products.active,
        qualified_only=products.qualified_only, held=index.held[i],
        known=customers.known[i], assessed=customers.assessed[i],
        allowed_risk=customers.allowed_risk[i], qualified=customers.qualified[i],
        opted_out=customers.opted_out[i], personalised=PERSONALISED_ROWS,
    )  # fmt: skip
    per_source = [codes[0 if s.personalised else 1][s.product] for s in sources]
    chosen = _top_k(index, sources, per_source, k)
    items = _items(index, products, sources, chosen, pairs, model, bool(customers.opted_out[i]))
    personalised = bool(items) and all(sources[s].personalised for s, _ in chosen)
    excluded = _excluded(index, customer_id, sources, per_source)
    return OneAnswer(items, [sources[s].name for s, _ in chosen], personalised, excluded)


def _sources(index, products, i, *, k, views, model) -> tuple[PairRows | None, list[Source]]:
    """Candidates in the batch recommender's order: model (else session), rules, popularity, segment."""
    out: list[Source] = []
    pairs = None
    if index.pairs is not None and index.pairs.ptr[i + 1] > index.pairs.ptr[i]:
        pairs = _scored_pairs(index, index.pairs.span(i), views, model)
        out.append(Source("model", pairs.product, pairs.score, True, pairs.span.start))
    elif views:  # with a model, the session's views already moved the model's view features
        ids = np.array(list(views), dtype=object)
        counts = np.array(list(views.values()), dtype=float)
        product = np.array([index.position(p) for p in ids], dtype=np.int64)
        out.append(Source("session", product, counts, True, ids=ids))
    if index.rules is not None:
        span = index.rules.span(i)
        span = slice(span.start, min(span.stop, span.start + k))
        out.append(Source("rules", index.rules.product[span], index.rules.score[span], True,
                          span.start))  # fmt: skip
    active = np.flatnonzero(products.active[:-1])
    out.append(Source("popularity", active, index.popularity[active], False))
    if index.shares is not None:
        out.append(Source("segment_popularity", active, index.shares[i, active], True))
    return pairs, [s for s in out if len(s.product)]


@dataclass(frozen=True)
class PairRows:
    """One customer's model pairs: rows in the index, products, scores, rows this visit changed."""

    span: slice
    product: np.ndarray
    score: np.ndarray
    changed: pd.DataFrame | None  # the changed rows (views of this visit added), by local row


def _scored_pairs(index, span, views, model) -> PairRows:
    """The customer's pairs and scores; pairs of products viewed in this visit are scored again."""
    product, score = index.pairs.product[span], index.pairs.score[span]
    columns = [c for c in VIEW_COLUMNS if c in index.pair_frame.columns]
    seen = np.array([views[index.products[p]] for p in product], dtype=float) if views else None
    if seen is None or not columns or not seen.any():
        return PairRows(span, product, score, None)
    local = np.flatnonzero(seen)
    changed = index.pair_frame.iloc[span.start + local].copy()
    for column in columns:
        changed[column] = changed[column].to_numpy() + seen[local]
    score = score.copy()
    score[local] = model.predict_proba(changed)
    return PairRows(span, product, score, changed.set_axis(local))


def _top_k(index, sources, per_source, k) -> list[tuple[int, int]]:
    """(source, row) of the k best allowed candidates: best source first, then score, then id."""
    if not sources:
        return []
    kept = [np.flatnonzero(codes == 0) for codes in per_source]
    src = np.concatenate([np.full(len(rows), s, dtype=np.int64) for s, rows in enumerate(kept)])
    row = np.concatenate(kept)
    if len(row) == 0:
        return []
    product = np.concatenate([s.product[rows] for s, rows in zip(sources, kept, strict=True)])
    score = np.concatenate([s.score[rows] for s, rows in zip(sources, kept, strict=True)])
    priority = np.array([PRIORITY[s.name] for s in sources])[src]
    order = np.lexsort((index.id_rank[product], -score, priority))
    _, first = np.unique(product[order], return_index=True)
    best = order[np.sort(first)][:k]
    return list(zip(src[best].tolist(), row[best].tolist(), strict=True))


def _items(index, products, sources, chosen, pairs, model, opted_out) -> list[dict[str, Any]]:
    """Response items with product facts, score and the reasons of the source that chose them."""
    model_rows = [r for s, r in chosen if sources[s].name == "model"]
    explained = iter(_explain(index, pairs, model_rows, model) if model_rows else [])
    items = []
    for rank, (s, r) in enumerate(chosen, start=1):
        source = sources[s]
        pos, score = int(source.product[r]), float(source.score[r])
        if source.name == "model":
            reasons = next(explained)
        elif source.name == "session":
            reasons = [f"viewed {int(score)} time(s) in this visit"]
        elif source.name == "rules":
            reasons = [str(index.rule_reasons[source.first_row + r])]
        elif source.name == "popularity":
            reasons = [OPT_OUT_REASON if opted_out else popular_reason(score)]
        else:
            reasons = [personal_share_reason(score)]
        items.append(item(index, products, rank, pos, score, reasons))
    return items


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


def _explain(index, pairs, rows, model) -> list[list[str]]:
    """Model reasons (top SHAP factors) of the chosen pairs: kept ones from the index, and pairs
    this visit changed explained again."""
    changed = pairs.changed
    kept = [r for r in rows if changed is None or r not in changed.index]
    rows_in_index = pairs.span.start + np.array(kept, dtype=np.int64)

    def explain(missing: np.ndarray) -> list[list[str]]:
        return explain_pairs(index, model, missing)

    reasons = dict(zip(kept, index.pair_reasons.reasons(rows_in_index, explain), strict=True))
    fresh = [r for r in rows if r not in reasons]
    if fresh:
        reasons |= dict(zip(fresh, model.explain(changed.loc[fresh], top=EXPLAINED), strict=True))
    return [reasons[r] or [MODEL_FALLBACK_REASON] for r in rows]


def _excluded(index, customer_id, sources, per_source) -> Exclusions:
    """One (product, rule) per excluded candidate, source by source."""
    ids, reasons = [], []
    for source, codes in zip(sources, per_source, strict=True):
        bad = np.flatnonzero(codes)
        if len(bad):
            names = (
                source.ids[bad] if source.ids is not None else index.products[source.product[bad]]
            )
            ids.extend(names.tolist())
            reasons.extend(REASON_OF_CODE[codes[bad]].tolist())
    return Exclusions(customer_id, ids, reasons)


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
    template), topped up from the catalogue with score 0, through THE policy."""
    product, share, template = candidates
    codes = exclusion_codes(
        product_risk=products.risk, active=products.active,
        qualified_only=products.qualified_only, held=False, known=True,
        assessed=facts["risk_assessed"], allowed_risk=facts["max_product_risk"],
        qualified=facts["qualified"], opted_out=facts["marketing_opt_out"],
        personalised=personalised,
    )  # fmt: skip
    fill = np.setdiff1d(np.arange(len(index.products)), product)
    pool = np.concatenate([product, fill])
    score = np.concatenate([share, np.zeros(len(fill))])
    kept = np.flatnonzero(codes[pool] == 0)
    best = kept[np.lexsort((index.id_rank[pool[kept]], -score[kept]))][:k]
    items = [
        item(index, products, rank, pool[r], score[r],
             [template.format(score[r]) if r < len(product) else FILL_REASON])
        for rank, r in enumerate(best, start=1)
    ]  # fmt: skip
    source = Source("cold_start", product, share, personalised)
    excluded = _excluded(index, customer_id, [source], [codes[product]])
    return OneAnswer(items, ["cold_start"] * len(items), personalised and bool(items), excluded)
