"""Two-group comparisons of conversion rates: lift, confidence intervals, p-values and sample ratio checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats


def compare_rates(
    conv_t: np.ndarray | float,
    n_t: np.ndarray | float,
    conv_c: np.ndarray | float,
    n_c: np.ndarray | float,
    *,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Rates, absolute lift with a Wald (unpooled) CI, relative lift with a log-ratio CI, pooled z-test p-value.

    Vectorised over arrays of groups; a group with no customers on one side gets NaN, not an error.
    """
    conv_t, n_t, conv_c, n_c = (
        np.atleast_1d(np.asarray(x, dtype=float)) for x in (conv_t, n_t, conv_c, n_c)
    )
    z = stats.norm.ppf(0.5 + confidence / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        p_t, p_c = conv_t / n_t, conv_c / n_c
        diff = p_t - p_c
        se = np.sqrt(p_t * (1 - p_t) / n_t + p_c * (1 - p_c) / n_c)
        pooled = (conv_t + conv_c) / (n_t + n_c)
        se0 = np.sqrt(pooled * (1 - pooled) * (1 / n_t + 1 / n_c))
        z_stat = np.where(se0 > 0, diff / se0, 0.0)
        p_value = np.where(np.isfinite(z_stat), 2 * stats.norm.sf(np.abs(z_stat)), np.nan)
        log_ratio = np.log(p_t / p_c)
        se_log = np.sqrt((1 - p_t) / conv_t + (1 - p_c) / conv_c)
    return pd.DataFrame(
        {
            "n_treatment": n_t, "n_control": n_c,
            "conversions_treatment": conv_t, "conversions_control": conv_c,
            "rate_treatment": p_t, "rate_control": p_c,
            "abs_lift": diff, "abs_lift_low": diff - z * se, "abs_lift_high": diff + z * se,
            "rel_lift": p_t / p_c - 1,
            "rel_lift_low": np.exp(log_ratio - z * se_log) - 1,
            "rel_lift_high": np.exp(log_ratio + z * se_log) - 1,
            "p_value": p_value,
        }
    )  # fmt: skip


def sample_ratio_mismatch(
    n_t: int, n_c: int, *, expected_share: float = 0.5
) -> dict[str, float | bool]:
    """Chi-square goodness-of-fit of the treatment/control split against the planned share."""
    total = n_t + n_c
    if total == 0:
        return {
            "observed_share": float("nan"),
            "expected_share": expected_share,
            "p_value": float("nan"),
            "mismatch": False,
        }
    expected = np.array([expected_share, 1 - expected_share]) * total
    p_value = float(stats.chisquare([n_t, n_c], expected).pvalue)
    return {
        "observed_share": n_t / total,
        "expected_share": expected_share,
        "p_value": p_value,
        "mismatch": bool(p_value < 0.001),  # the usual SRM alarm level: a broken split, not chance
    }
