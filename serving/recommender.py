"""The one recommender: candidates from the index, THE policy, a vectorised top-k and the reasons.

Batch scoring (`serving.recommend_all`: every customer, a block of customers per call) and the
service (`serving.recommend_one`: one customer and the products viewed in this visit) run these
same functions on the same `serving.recommend_index.CandidateIndex`; only the output differs.

Sources, in order of preference: the conversion model (else the products viewed in this visit),
the rule base, the customer's segment (else peers) popularity, popularity overall. Every
candidate passes `features.policy.exclusion_codes` (suitability always; consent: a customer who
opted out keeps only the non-personalised overall popularity). Among the allowed candidates a
customer's list takes the best source first, then the higher score, then the lower product id,
one row per product. Every item says why it is there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from features.policy import exclusion_codes
from serving.recommend_index import CandidateIndex, CustomerFacts, ProductFacts, Rows

SOURCES = ("model", "session", "rules", "segment_popularity", "popularity", "cold_start")
MODEL, SESSION, RULES, SEGMENT, POPULAR, COLD = range(len(SOURCES))
PERSONALISED = np.array([True, True, True, True, False, True])  # by source (cold start: as asked)
OPT_OUT_REASON = (
    "you opted out of personalised marketing, so popular with customers like you is NOT used; "
    "popular overall"
)
MODEL_FALLBACK_REASON = "predicted to suit you"


@dataclass(frozen=True, eq=False)
class Candidates:
    """Flat candidate rows of a block of customers (`owner` indexes the block's positions)."""

    owner: np.ndarray  # int64, index into the block's customer positions
    source: np.ndarray  # int64, index into SOURCES
    product: np.ndarray  # int64 product position (len(index.products): not on file)
    score: np.ndarray  # float
    row: np.ndarray  # int64: the source's own row (pair, rule, viewed product), else -1


def span_rows(rows: Rows, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The CSR rows of customer `positions`: (block owner, row, rank within its customer)."""
    if len(positions) == 1:  # one customer (a request): one slice
        start, stop = int(rows.ptr[positions[0]]), int(rows.ptr[positions[0] + 1])
        rank = np.arange(stop - start)
        return np.zeros(stop - start, dtype=np.int64), rank + start, rank
    start, stop = rows.ptr[positions], rows.ptr[positions + 1]
    counts = stop - start
    owner = np.repeat(np.arange(len(positions)), counts)
    offset = np.repeat(np.cumsum(counts) - counts, counts)
    rank = np.arange(int(counts.sum())) - offset
    return owner, np.repeat(start, counts) + rank, rank


def gather(
    index: CandidateIndex,
    products: ProductFacts,
    positions: np.ndarray,
    *,
    k: int,
    pair_score: np.ndarray | None = None,
    session: tuple[np.ndarray, np.ndarray] | None = None,
) -> Candidates:
    """Every source's candidates of the customers at `positions` (one block, no loop over them).

    `pair_score` replaces the scores of the block's model pairs (a visit's views moved them);
    `session` (product positions, view counts) is the one customer's visit, a source only when
    the model has no pairs for them (with a model, views already moved the model's features).
    """
    parts = []
    has_pairs = np.zeros(len(positions), dtype=bool)
    if index.pairs is not None:
        owner, row, _ = span_rows(index.pairs, positions)
        score = index.pairs.score[row] if pair_score is None else pair_score
        parts.append((owner, MODEL, index.pairs.product[row], score, row))
        has_pairs[owner] = True
    if session is not None and not has_pairs[0]:
        product, views = session
        parts.append((np.zeros(len(product), np.int64), SESSION, product, views,
                      np.arange(len(product))))  # fmt: skip
    if index.rules is not None:
        owner, row, rank = span_rows(index.rules, positions)
        first = rank < k  # a customer's rules are best first: k of them can fill any list
        parts.append((owner[first], RULES, index.rules.product[row[first]],
                      index.rules.score[row[first]], row[first]))  # fmt: skip
    active = np.flatnonzero(products.active[:-1])
    n = len(positions)
    owner = np.repeat(np.arange(n), len(active))
    if index.shares is not None:
        shares = index.shares[positions][:, active].ravel()
        parts.append((owner, SEGMENT, np.tile(active, n), shares, np.full(len(owner), -1)))
    popularity = np.tile(index.popularity[active], n)
    parts.append((owner, POPULAR, np.tile(active, n), popularity, np.full(len(owner), -1)))
    return _concat(parts)


def _concat(parts: list[tuple]) -> Candidates:
    """One Candidates of (owner, source, product, score, row) parts."""
    owner, source, product, score, row = zip(*parts, strict=True)
    sizes = [len(o) for o in owner]
    return Candidates(
        owner=np.concatenate(owner).astype(np.int64),
        source=np.repeat(np.array(source, dtype=np.int64), sizes),
        product=np.concatenate(product).astype(np.int64),
        score=np.concatenate(score).astype(float),
        row=np.concatenate(row).astype(np.int64),
    )


def policy_codes(
    cands: Candidates,
    index: CandidateIndex,
    products: ProductFacts,
    customers: CustomerFacts,
    positions: np.ndarray,
) -> np.ndarray:
    """THE policy's exclusion code of every candidate (0: allowed)."""
    what = cands.product
    if len(positions) == 1:  # one customer (a request): its facts are scalars, broadcast
        who, held = positions[0], index.held[positions[0]][what]
    else:
        who = positions[cands.owner]
        held = index.held[who, what]
    return exclusion_codes(
        product_risk=products.risk[what], active=products.active[what],
        qualified_only=products.qualified_only[what], held=held,
        known=customers.known[who], assessed=customers.assessed[who],
        allowed_risk=customers.allowed_risk[who], qualified=customers.qualified[who],
        opted_out=customers.opted_out[who], personalised=PERSONALISED[cands.source],
    )  # fmt: skip


def top_k(
    owner: np.ndarray, source: np.ndarray, score: np.ndarray, id_rank: np.ndarray, *, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The k best rows per owner (best source, then score, then product id; one per product).

    `id_rank` is each row's product rank in id order. Returns the chosen rows, owner by owner
    in owner order and best first, and their ranks 1..k.
    """
    order = np.lexsort((id_rank, -score, source, owner))
    key = owner[order] * (int(id_rank.max(initial=0)) + 1) + id_rank[order]
    _, first = np.unique(key, return_index=True)  # the best row of each (owner, product)
    best = order[np.sort(first)]
    owners = owner[best]
    starts = np.concatenate(([True], owners[1:] != owners[:-1]))
    at = np.arange(len(best))
    rank = at - np.maximum.accumulate(np.where(starts, at, 0))
    keep = rank < k
    return best[keep], rank[keep] + 1


def choose(
    cands: Candidates, codes: np.ndarray, index: CandidateIndex, *, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The rows of `cands` that make each customer's top k (allowed only), and their ranks."""
    kept = np.flatnonzero(codes == 0)  # never a product not on file: it is not on sale
    rank_of_id = index.id_rank[cands.product[kept]]
    rows, ranks = top_k(cands.owner[kept], cands.source[kept], cands.score[kept], rank_of_id, k=k)
    return kept[rows], ranks


def personal_share_reason(share: float) -> str:
    """The reason of a segment (or peer) popularity candidate."""
    return f"{share:.0%} of customers like you hold it"


def popular_reason(share: float) -> str:
    """The reason of an overall popularity candidate."""
    return f"popular overall: {share:.0%} of customers hold it"


def session_reason(views: float) -> str:
    """The reason of a product viewed in this visit."""
    return f"viewed {int(views)} time(s) in this visit"


def plain_reasons(
    cands: Candidates, chosen: np.ndarray, index: CandidateIndex, opted_out: np.ndarray
) -> list[list[str] | None]:
    """The reasons of the chosen rows that are not the model's (None there: the caller explains
    model rows). `opted_out` is per chosen row."""
    out: list[list[str] | None] = []
    for source, score, row, opted in zip(
        cands.source[chosen].tolist(), cands.score[chosen].tolist(),
        cands.row[chosen].tolist(), opted_out.tolist(), strict=True,
    ):  # fmt: skip
        if source == RULES:
            out.append([str(index.rule_reasons[row])])
        elif source == POPULAR:
            out.append([OPT_OUT_REASON if opted else popular_reason(score)])
        elif source == SEGMENT:
            out.append([personal_share_reason(score)])
        elif source == SESSION:
            out.append([session_reason(score)])
        else:
            out.append(None)
    return out
