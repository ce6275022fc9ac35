"""Strata for rule ranking: customer strata from columns, pooling of thin strata, per-stratum counts.

A stratum is a combination of customer columns (``rules.strata_columns``, e.g. risk level x
segment). The ranking compares a rule's observed baskets with what independence *within each
stratum* predicts, so a stratum with a handful of baskets says little and, worse, explains
away whatever its few baskets hold. So a stratum with fewer than ``min_baskets`` baskets backs
off to the coarser stratum of its leading columns (risk level x segment -> risk level), and
what is still too thin shares one pooled stratum.

The Mantel-Haenszel risk ratio (``mantel_haenszel``) compares, within each stratum, the rate
at which holders of the antecedents buy the consequents with the rate of the customers who do
*not* hold them, pooled over strata with weights n_A,s * n_notA,s / n_s; its 95% lower bound
uses the Greenland-Robins variance of log RR_MH. Unlike lift, whose reference rate includes
the holders themselves, it is not capped at 1 / P(antecedent): a planted affinity whose
antecedent is popular keeps its full strength.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse, stats

from features.contract import CUSTOMER_ID
from training.rules.mining import RulesError

NOT_ASSESSED = "not assessed"
UNKNOWN = "unknown"
POOLED = "pooled"
SEPARATOR = " x "
SIGNUP_SEGMENT = "signup_segment"
LOWER_BOUND_LEVEL = 0.95
FALLBACK_STRATUM = "risk_level"


def customer_strata(
    customers: pd.DataFrame | None, columns: tuple[str, ...] | str
) -> pd.DataFrame | None:
    """Stratum labels per customer_id, one column per named column (nulls "not assessed"), or None."""
    names = [c for c in ((columns,) if isinstance(columns, str) else columns) if c]
    if customers is None or not names:
        return None
    labels = {
        c: customers[c].astype(object).where(customers[c].notna(), NOT_ASSESSED).astype(str)
        for c in names
    }
    frame = pd.DataFrame({c: v.to_numpy() for c, v in labels.items()}, dtype=object)
    return frame.set_index(customers[CUSTOMER_ID].astype(str).to_numpy())


def run_strata(
    customers: pd.DataFrame | None,
    stage_columns: dict[str, pd.DataFrame | None],
    columns: tuple[str, ...],
) -> tuple[pd.DataFrame | None, list[str]]:
    """Stratum columns per customer and the names left out (a stage column its stage did not give).

    `stage_columns` maps names such as segment_id or signup_segment to [customer_id, name]
    frames from earlier stages; every other name must be a column of the customers table.
    When every name is left out, the customers' FALLBACK_STRATUM (risk level) stands in where
    the table has it: suitability is the confounder any brokerage has.
    """
    frame = None if customers is None else customers.astype({CUSTOMER_ID: str})
    absent = [c for c in columns if c in stage_columns and stage_columns[c] is None]
    for name, given in stage_columns.items():
        if frame is not None and given is not None and name in columns and name not in frame:
            frame = frame.merge(given.astype({CUSTOMER_ID: str}), on=CUSTOMER_ID, how="left")
    columns = tuple(c for c in columns if c not in absent)
    if absent and not columns and frame is not None and FALLBACK_STRATUM in frame:
        columns = (FALLBACK_STRATUM,)
    missing = [c for c in columns if frame is None or c not in frame.columns]
    if missing:
        raise RulesError(
            f"rules.strata_columns names {missing[0]!r}, not a column of the customers table; "
            f"name customers columns (e.g. risk_level), {' or '.join(stage_columns)}, or set "
            "it empty to rank by plain lift"
        )
    return customer_strata(frame, columns), absent


def signup_segment_frame(model: Any, portrait: pd.DataFrame | None) -> pd.DataFrame | None:
    """[customer_id, signup_segment]: the segment the segmentation predicts from sign-up attributes.

    Age, income, city tier, risk level, occupation and channel do not change with what a
    customer buys, so, unlike the behavioural segment at as_of (built from the very purchases
    a transition rule counts), this stratum cannot explain a rule away. None without a model.
    """
    if model is None or portrait is None or not hasattr(model, "predict_signup"):
        return None
    labels = np.asarray(model.predict_signup(portrait)).astype(str)
    return pd.DataFrame({CUSTOMER_ID: portrait[CUSTOMER_ID].to_numpy(), SIGNUP_SEGMENT: labels})


def stratum_labels(
    basket_customer: np.ndarray, strata: pd.Series | pd.DataFrame | None, *, min_baskets: int
) -> pd.Series:
    """Stratum label per basket: the finest combination of leading columns holding >= min_baskets."""
    n = len(basket_customer)
    if strata is None:
        return pd.Series(np.full(n, POOLED, dtype=object))
    frame = strata.to_frame() if isinstance(strata, pd.Series) else strata
    per_basket = frame.reindex(pd.Index(basket_customer, dtype=object)).fillna(UNKNOWN)
    chosen = pd.Series(np.full(n, POOLED, dtype=object))
    settled = np.zeros(n, dtype=bool)
    for depth in range(frame.shape[1], 0, -1):
        label = per_basket.iloc[:, 0].astype(str)
        for k in range(1, depth):
            label = label + SEPARATOR + per_basket.iloc[:, k].astype(str)
        label = pd.Series(label.to_numpy(), dtype=object)
        size = label.map(label[~settled].value_counts()).fillna(0).to_numpy()
        take = ~settled & (size >= min_baskets)
        chosen[take] = label[take]
        settled |= take
    return chosen


def stratum_counts(
    has_a: sparse.spmatrix, has_c: sparse.spmatrix, codes: np.ndarray
) -> dict[str, np.ndarray]:
    """Per stratum (rows) and rule (columns): baskets n, with A n_a, with C n_c, with both a."""
    n_strata = int(codes.max()) + 1
    by_stratum = sparse.csr_matrix(
        (np.ones(len(codes)), (codes, np.arange(len(codes)))), shape=(n_strata, len(codes))
    )
    return {
        "n": np.bincount(codes, minlength=n_strata).astype(float)[:, None],
        "n_a": (by_stratum @ has_a).toarray(),
        "n_c": (by_stratum @ has_c).toarray(),
        "a": (by_stratum @ has_a.multiply(has_c)).toarray(),
    }


def mantel_haenszel(counts: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Mantel-Haenszel risk ratio of C for holders of A vs non-holders, and its 95% lower bound.

    A rule with no exposed case or no unexposed case (a zero numerator or denominator) gets
    0.5 added to both case counts in every stratum (Haldane's correction) so both are finite.
    """
    plain = _mh(counts["n"], counts["n_a"], counts["a"], counts["n_c"] - counts["a"])
    fixed = _mh(
        counts["n"] + 2, counts["n_a"] + 1, counts["a"] + 0.5, counts["n_c"] - counts["a"] + 0.5
    )
    degenerate = (plain[2] == 0) | (plain[3] == 0)
    ratio = np.where(degenerate, fixed[0], plain[0])
    lower = np.where(degenerate, fixed[1], plain[1])
    return ratio, lower


def _mh(n, n1, a, b):  # noqa: ANN001, ANN202
    """(RR_MH, lower bound, numerator, denominator) from per-stratum exposed/unexposed cases."""
    n0 = n - n1
    num = (a * n0 / n).sum(axis=0)
    den = (b * n1 / n).sum(axis=0)
    spread = (((a + b) * n1 * n0 - a * b * n) / n**2).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = num / den
        se = np.sqrt(np.maximum(spread, 0) / (num * den))
        lower = np.exp(np.log(ratio) - stats.norm.ppf(LOWER_BOUND_LEVEL) * se)
    return ratio, np.nan_to_num(lower), num, den
