"""Keep frequent-itemset mining within a budget: estimate the itemset count before fpgrowth runs.

A real catalogue (1,700 products, baskets of ~100 items) at the default support has tens of
millions of frequent 3-itemsets; fpgrowth would run for hours. Before mining, the counts of
frequent items and pairs are exact (column sums and the sparse product X^T X of the basket
matrix) and the 3-itemsets are bounded above by the triangles of the frequent-pair graph
(Apriori: every pair inside a frequent triple is frequent). When items + pairs + triangles
exceed `rules.max_itemsets`, min support is raised to the smallest value (searched over the
observed item and pair supports) that brings the estimate within the budget.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from portrait.settings import RuleSettings

DENSE_ITEMS = 3000  # up to this many frequent items the triangle count uses a dense product


@dataclass(frozen=True)
class ItemsetEstimate:
    """Frequent items and pairs (exact) and an upper bound on 3-itemsets at `min_support`."""

    min_support: float
    items: int
    pairs: int
    triples: int

    @property
    def total(self) -> int:
        return self.items + self.pairs + self.triples


def estimate_itemsets(
    matrix: sparse.csr_matrix, *, min_support: float, max_len: int
) -> ItemsetEstimate:
    """Count frequent items and pairs of a baskets x items 0/1 matrix and bound the 3-itemsets."""
    n = max(matrix.shape[0], 1)
    counts = np.asarray(matrix.sum(axis=0)).ravel()
    keep = np.flatnonzero(counts / n >= min_support)
    if len(keep) < 2 or max_len < 2:
        return ItemsetEstimate(min_support, len(keep), 0, 0)
    x = matrix[:, keep].astype(np.float32)
    both = sparse.triu(x.T @ x, k=1).tocsr()
    both.data = (both.data / n >= min_support).astype(np.float32)
    both.eliminate_zeros()
    pairs = int(both.nnz)
    triples = _triangles(both) if max_len >= 3 and pairs else 0
    return ItemsetEstimate(min_support, len(keep), pairs, triples)


def _triangles(upper: sparse.csr_matrix) -> int:
    """Triangles of the graph whose edges are the upper-triangular entries of `upper`."""
    a = upper + upper.T
    if a.shape[0] <= DENSE_ITEMS:
        dense = a.toarray()
        return int(round(float(((dense @ dense) * dense).sum()) / 6))
    return int(round(float((a @ a).multiply(a).sum()) / 6))


def support_within_budget(
    matrix: sparse.csr_matrix, *, min_support: float, max_len: int, max_itemsets: int
) -> ItemsetEstimate:
    """The estimate at the smallest support >= `min_support` whose estimate fits `max_itemsets`."""
    first = estimate_itemsets(matrix, min_support=min_support, max_len=max_len)
    if first.total <= max_itemsets:
        return first
    candidates = _candidate_supports(matrix, min_support=min_support)
    lo, hi, best = 0, len(candidates) - 1, None
    while lo <= hi:  # the estimate falls as support rises: binary search
        mid = (lo + hi) // 2
        estimate = estimate_itemsets(matrix, min_support=candidates[mid], max_len=max_len)
        if estimate.total <= max_itemsets:
            best, hi = estimate, mid - 1
        else:
            lo = mid + 1
    return best or ItemsetEstimate(1.0, 0, 0, 0)


def _candidate_supports(matrix: sparse.csr_matrix, *, min_support: float) -> np.ndarray:
    """Distinct item and pair supports above `min_support`: where the estimate can change."""
    n = max(matrix.shape[0], 1)
    counts = np.asarray(matrix.sum(axis=0)).ravel()
    keep = np.flatnonzero(counts / n >= min_support)
    x = matrix[:, keep].astype(np.float32)
    pair_counts = sparse.triu(x.T @ x, k=1).data
    values = np.unique(np.concatenate([counts[keep], pair_counts]).astype(np.int64)) / n
    # a support just above each observed value drops that value's itemsets
    return np.concatenate([values[values > min_support], [1.0]])


def budget_settings(
    matrix: sparse.csr_matrix, settings: RuleSettings, *, kind: str, min_support: float
) -> tuple[RuleSettings, str]:
    """Settings with the kind's support floor raised to fit `rules.max_itemsets`, and what was chosen."""
    if settings.max_itemsets <= 0:
        return settings, ""
    estimate = support_within_budget(
        matrix, min_support=min_support, max_len=settings.max_len,
        max_itemsets=settings.max_itemsets,
    )  # fmt: skip
    if estimate.min_support <= min_support:
        return settings, ""
    name = "transition_min_support" if kind == "transition" else "min_support"
    note = (
        f"{kind} rules: min support raised from {min_support:.4g} to {estimate.min_support:.4g} "
        f"(rules.max_itemsets = {settings.max_itemsets:,}): about {estimate.items:,} frequent "
        f"items, {estimate.pairs:,} pairs and at most {estimate.triples:,} 3-itemsets remain"
    )
    return dataclasses.replace(settings, **{name: float(estimate.min_support)}), note
