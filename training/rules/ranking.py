"""Rank product rules by risk-adjusted lift, not raw lift.

Raw lift ranks rules badly on brokerage data, for two reasons measured on the demo bank:

- **Suitability confounds it.** A customer may only buy products at or below their assessed
  risk level, so any two risky products look "associated": holders of one risky fund are the
  only customers able to buy another. Raw lift filled the top of the table with such pairs
  (equity fund -> index fund -> forex) and pushed real affinities (money market -> bond fund,
  deposit -> life cover, whose buyers are spread over every risk level) down to rank 50+.
- **Customer type confounds it.** Each persona holds and buys its own products, so a popular
  product held by a type of customer who never buys Y hides a real "holders of X buy Y" (on
  the alt demo bank money-market savers hold P03 and never buy bond funds: P03 -> P05 at rank
  30-45 within risk level).
- **Small counts make lift noisy.** A rule resting on 8 baskets can show lift 12 by chance.

So every rule gets, within each stratum of customers (``rules.strata_columns``: by default
the segments stage's segment, which holds risk appetite and the product-interest mix; the
customers' risk level, "not assessed" its own stratum, when there are no segments; thin strata
back off and pool, see training/rules/strata.py):

- ``expected``: the baskets expected to contain antecedents and consequents together if they
  were independent *within each stratum*: sum over strata of n_A,s * n_C,s / n_s;
- ``observed``: the baskets that do contain both;
- ``adjusted_lift`` = observed / expected (indirectly standardised lift; equals lift when there
  is one stratum);
- ``risk_ratio``: the Mantel-Haenszel risk ratio of buying the consequents, holders of the
  antecedents vs non-holders, pooled over strata (not capped by a popular antecedent);
- ``lift_lower``: the ranking key, the one-sided 95% lower bound of the estimate
  ``rules.rank_estimate`` names: ``mantel_haenszel`` (default; Greenland-Robins variance) or
  ``standardised`` (exact Poisson bound on the observed count, expected held fixed). Either way
  a rule ranks high only when the data show a strong effect *and* enough baskets to trust it.

Rules are ranked by ``lift_lower`` (then adjusted_lift, confidence, rule_id); raw lift,
support and confidence stay in the table unchanged. The report's top rules are the
one-product -> one-product rules for all customers, per kind: "holders of X go on to buy Y"
is what a marketer acts on, while rules with two antecedents on this data mostly restate a
pair rule plus a product that marks the customer's type (deposit + term deposit -> life
cover). They stay in rules.parquet and serving fires them as candidates.

Measured (benchmarks/rules.py --confounders, README; transition pair rules for all customers,
5k customers, seeds 7, 2, 3): raw lift puts the planted affinities as low as 56 on the default
bank and 78 on alt; the Mantel-Haenszel risk ratio within risk level at most 6 on the default
bank but 30-45 for P03 -> P05 on alt; within the segments (default) at most 8 on both. The
segment at as_of is fitted on purchases that include the windows' consequents; the segment at
each basket's own cut-off ranked the planted affinities the same, so the simpler one is used.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse, stats

from features.contract import CUSTOMER_ID, SEGMENT_ID
from training.rules.mining import BASKET_ID, BOUGHT, HELD, ITEM, RulesError
from training.rules.strata import (
    LOWER_BOUND_LEVEL,
    mantel_haenszel,
    stratum_counts,
    stratum_labels,
)

RANK_COLUMNS = ["observed", "expected", "adjusted_lift", "risk_ratio", "lift_lower"]
ESTIMATES = ("standardised", "mantel_haenszel")
# dense per-stratum x rule arrays are built this many cells at a time (bounds memory)
CHUNK_CELLS = 4_000_000


def rank_rules(
    rules: pd.DataFrame,
    baskets: pd.DataFrame,
    strata: pd.Series | pd.DataFrame | None = None,
    *,
    estimate: str = "mantel_haenszel",
    min_stratum_baskets: int = 1,
) -> pd.DataFrame:
    """Add observed, expected, adjusted_lift, risk_ratio and lift_lower to rules mined from `baskets`.

    `strata` maps customer_id to stratum labels (a Series, or a frame of one column per
    stratifying column; customers missing from it are "unknown"); None treats all baskets as
    one stratum. Strata with fewer than `min_stratum_baskets` baskets back off to coarser ones
    (training.rules.strata). `estimate` picks what lift_lower bounds: the standardised lift
    (observed / expected) or the Mantel-Haenszel risk ratio. The rules must all be of one kind
    and segment, mined from exactly these baskets.
    """
    if estimate not in ESTIMATES:
        raise RulesError(
            f"rules.rank_estimate must be one of {', '.join(ESTIMATES)}, got {estimate!r}"
        )
    if rules.empty:
        return rules.assign(**{c: pd.Series(dtype=float) for c in RANK_COLUMNS})
    matrix, columns, basket_customer = _basket_matrix(baskets)
    prefixes = (HELD, BOUGHT) if rules["kind"].iloc[0] == "transition" else ("", "")
    has_a = _contains(matrix, columns, rules["antecedents"], prefixes[0])
    has_c = _contains(matrix, columns, rules["consequents"], prefixes[1])
    labels = stratum_labels(basket_customer, strata, min_baskets=min_stratum_baskets)
    codes = pd.factorize(labels)[0]
    step = max(1, CHUNK_CELLS // (int(codes.max()) + 1))
    parts = [
        _estimates(has_a[:, i : i + step], has_c[:, i : i + step], codes)
        for i in range(0, len(rules), step)
    ]
    found = {c: np.concatenate([p[c] for p in parts]) for c in parts[0]}
    key = "standardised_lower" if estimate == "standardised" else "ratio_lower"
    return rules.assign(
        observed=found["observed"],
        expected=found["expected"],
        adjusted_lift=found["observed"] / found["expected"],
        risk_ratio=found["ratio"],
        lift_lower=found[key],
    )


def _estimates(has_a: sparse.spmatrix, has_c: sparse.spmatrix, codes: np.ndarray) -> dict:
    """Observed, expected (sum over strata of n_A,s * n_C,s / n_s), both lower bounds, RR_MH."""
    counts = stratum_counts(has_a, has_c, codes)
    observed = counts["a"].sum(axis=0).astype(float)
    expected = (counts["n_a"] * counts["n_c"] / counts["n"]).sum(axis=0)
    poisson = stats.chi2.ppf(1 - LOWER_BOUND_LEVEL, 2 * observed) / 2
    ratio, ratio_lower = mantel_haenszel(counts)
    return {
        "observed": observed,
        "expected": expected,
        "standardised_lower": np.nan_to_num(poisson) / expected,
        "ratio": ratio,
        "ratio_lower": ratio_lower,
    }


def _basket_matrix(baskets: pd.DataFrame) -> tuple[sparse.csr_matrix, pd.Index, np.ndarray]:
    pairs = baskets[[BASKET_ID, CUSTOMER_ID, ITEM]].drop_duplicates([BASKET_ID, ITEM])
    rows, basket_index = pd.factorize(pairs[BASKET_ID], sort=True)
    cols, item_index = pd.factorize(pairs[ITEM].astype(str), sort=True)
    matrix = sparse.csr_matrix(
        (np.ones(len(rows), dtype=np.int32), (rows, cols)),
        shape=(len(basket_index), len(item_index)),
    )
    customer = np.empty(len(basket_index), dtype=object)
    customer[rows] = pairs[CUSTOMER_ID].astype(str).to_numpy()
    return matrix, pd.Index(item_index), customer


def _contains(
    matrix: sparse.csr_matrix, columns: pd.Index, sides: pd.Series, prefix: str
) -> sparse.csc_matrix:
    """Basket x rule 0/1 matrix: does the basket hold every item of the rule's side."""
    items = [[prefix + str(p) for p in side] for side in sides]
    flat = pd.Index([i for side in items for i in side])
    where = columns.get_indexer(flat)
    if (where < 0).any():
        raise RulesError(
            f"rules name items absent from the baskets ({sorted(set(flat[where < 0]))[:5]}); "
            "rank rules with the baskets they were mined from"
        )
    sizes = np.array([len(side) for side in items])
    member = sparse.csr_matrix(
        (np.ones(len(flat), dtype=np.int32), (where, np.repeat(np.arange(len(items)), sizes))),
        shape=(matrix.shape[1], len(items)),
    )
    counts = (matrix @ member).tocsc()
    full = counts.data == np.repeat(sizes, np.diff(counts.indptr))
    return sparse.csc_matrix(
        (full.astype(np.int32), counts.indices, counts.indptr), shape=counts.shape
    )


def sort_ranked(rules: pd.DataFrame) -> pd.DataFrame:
    """Best first: lift_lower, then adjusted_lift, confidence and rule_id (deterministic)."""
    return rules.sort_values(
        ["lift_lower", "adjusted_lift", "confidence", "rule_id"],
        ascending=[False, False, False, True],
        kind="stable",
    ).reset_index(drop=True)


def top_rules(rules: pd.DataFrame, *, kind: str, n: int) -> pd.DataFrame:
    """The n best one-product -> one-product rules of a kind for all customers (segment_id null)."""
    pair = rules["antecedents"].map(len).eq(1) & rules["consequents"].map(len).eq(1)
    chosen = rules.loc[rules["kind"].eq(kind) & rules[SEGMENT_ID].isna() & pair]
    return sort_ranked(chosen).head(n)
