"""Customer x product matrices of the pair context, sparse so a large catalogue never goes dense.

Holdings are sparse customers x products 0/1 matrices; co-occurrence (cohold, transition) is
the sparse product A^T B (products x products, dense: a catalogue of a few thousand products
fits); group shares are a sparse membership matrix times the holdings.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse

from features.contract import CUSTOMER_ID, PRODUCT_ID

BEST_RULE_PAIRS = 2_000_000  # (customer, held product) rows gathered at once by best_rule


def holding_matrix(
    held: pd.DataFrame, customers: pd.Index, products: pd.Index
) -> sparse.csr_matrix:
    """Sparse customers x products 0/1 holding matrix (a large catalogue never goes dense)."""
    r = customers.get_indexer(held[CUSTOMER_ID])
    c = products.get_indexer(held[PRODUCT_ID])
    keep = (r >= 0) & (c >= 0)
    out = sparse.csr_matrix(
        (np.ones(int(keep.sum()), dtype=np.float32), (r[keep], c[keep])),
        shape=(len(customers), len(products)),
    )
    out.data[:] = 1.0  # a duplicate (customer, product) row counts once
    return out


def rule_matrices(
    ante: sparse.csr_matrix, cons: sparse.csr_matrix, prefix: str
) -> dict[str, np.ndarray]:
    """Confidence P(cons | ante) and lift over the base rate, antecedent x consequent."""
    n_ante = np.asarray(ante.sum(axis=0), dtype=np.float32).ravel()
    both = (ante.T @ cons).toarray()  # products x products: co-occurrence as a sparse product
    conf = both / np.maximum(n_ante, 1.0)[:, None]
    base = (
        np.asarray(cons.mean(axis=0), dtype=np.float32).ravel()
        if cons.shape[0]
        else np.zeros(cons.shape[1], dtype=np.float32)
    )
    lift = conf / np.where(base > 0, base, np.inf)[None, :]
    # a product is not its own antecedent, and rare antecedents give noisy rules
    np.fill_diagonal(conf, 0.0)
    np.fill_diagonal(lift, 0.0)
    rare = n_ante < 5
    conf[rare], lift[rare] = 0.0, 0.0
    return {f"{prefix}_conf": conf.astype(np.float32), f"{prefix}_lift": lift.astype(np.float32)}


def group_share(held: sparse.csr_matrix, keys: np.ndarray, columns: pd.Index) -> pd.DataFrame:
    """Share of each group's customers holding each product (rows: sorted group keys)."""
    codes, groups = pd.factorize(pd.Series(keys), sort=True)
    member = sparse.csr_matrix(
        (np.ones(len(codes), dtype=np.float32), (codes, np.arange(len(codes)))),
        shape=(len(groups), len(codes)),
    )
    counts = np.bincount(codes, minlength=len(groups)).astype(np.float64)
    share = (member @ held).toarray().astype(np.float64) / np.maximum(counts, 1.0)[:, None]
    return pd.DataFrame(share.astype(np.float32), index=pd.Index(groups), columns=columns)


def best_rule(held: sparse.csr_matrix, matrix: np.ndarray) -> np.ndarray:
    """Per customer x product: the strongest rule whose antecedent the customer holds.

    The maximum over each customer's held products of their rows of `matrix`, by
    `np.maximum.reduceat` over the (customer, held product) pairs, in chunks of customers.
    """
    out = np.zeros((held.shape[0], matrix.shape[1]), dtype=np.float32)
    held = held.tocsr()
    held.sort_indices()
    step = max(1, BEST_RULE_PAIRS // max(1, int(np.diff(held.indptr).max(initial=1))))
    for start in range(0, held.shape[0], step):  # chunks of customers, bounded memory
        block = held[start : start + step]
        counts = np.diff(block.indptr)
        rows = np.flatnonzero(counts)
        if len(rows) == 0:
            continue
        gathered = matrix[block.indices]  # one row per held product
        out[start + rows] = np.maximum.reduceat(gathered, block.indptr[rows], axis=0)
    return np.maximum(out, 0.0)
