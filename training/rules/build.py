"""Rules for a dataset at a cut-off: every kind mined within the budget, ranked overall and per segment."""

from __future__ import annotations

from typing import Any

import pandas as pd

from features.contract import CUSTOMER_ID, REASON, SEGMENT_ID
from portrait.settings import RuleSettings
from training.engine import RuleMiner
from training.rules.base import rule_reasons
from training.rules.budget import budget_settings
from training.rules.mining import (
    BASKET_ID,
    KINDS,
    RulesError,
    basket_matrix,
    basket_problem,
    empty_rules,
    kind_settings,
    mark_risk,
)
from training.rules.ranking import ESTIMATES, rank_rules, sort_ranked
from training.rules.strata import FALLBACK_STRATUM, SIGNUP_SEGMENT, run_strata


def check_rule_settings(settings: RuleSettings) -> None:
    """Refuse rule settings that cannot work, naming the setting."""
    if settings.min_lift < 0:
        raise RulesError(f"rules.min_lift must be at least 0, got {settings.min_lift}")
    if (
        not 0 < settings.transition_min_support <= 1
        or not 0 <= settings.transition_min_confidence <= 1
    ):
        raise RulesError(
            "rules.transition_min_support must be in (0, 1] and rules.transition_min_confidence in [0, 1]"
        )
    for name in (
        "transition_window_days",
        "transition_windows",
        "min_segment_baskets",
        "min_rule_baskets",
        "min_stratum_baskets",
        "top_rules",
    ):
        if getattr(settings, name) < 1:
            raise RulesError(f"rules.{name} must be at least 1, got {getattr(settings, name)}")
    if settings.rank_estimate not in ESTIMATES:
        raise RulesError(
            f"rules.rank_estimate must be one of {', '.join(ESTIMATES)}, got {settings.rank_estimate!r}"
        )


def mine_all_rules(
    tables: dict[str, pd.DataFrame],
    *,
    as_of: pd.Timestamp,
    settings: RuleSettings,
    segments: pd.DataFrame | None,
    kinds: tuple[str, ...] = KINDS,
    miner: RuleMiner | None = None,
    signup_segments: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """Rules of `kinds`, overall and per segment, ranked, risk-marked, with reasons; plus notes.

    ``miner`` (training/engine.py) builds and mines the baskets on a Dask cluster when given.
    ``segments`` and ``signup_segments`` ([customer_id, segment_id or signup_segment]) are
    the strata of those names (rules.strata_columns).
    """
    check_rule_settings(settings)
    stage_columns = {SEGMENT_ID: segments, SIGNUP_SEGMENT: signup_segments}
    strata, absent = run_strata(tables.get("customers"), stage_columns, settings.strata_columns)
    miner = miner or RuleMiner()
    baskets = miner.baskets(tables["transactions"], as_of=as_of, settings=settings, kinds=kinds)
    frames, notes = (
        [_ranked_empty()],
        [f"rules ranked without the stratum {c}: its stage gave none" for c in absent],
    )
    if absent and strata is not None and FALLBACK_STRATUM not in settings.strata_columns:
        notes.append(f"rules ranked within {', '.join(strata.columns)} instead")
    for kind, kind_baskets in baskets.items():
        settings, note = within_budget(kind_baskets, settings, kind=kind)
        notes += [note] if note else []
        try:
            overall = miner.mine(kind_baskets, settings=settings, kind=kind)
        except RulesError as exc:
            notes.append(str(exc))
            continue
        frames.append(rank_rules(overall, kind_baskets, strata, **_rank_options(settings)))
        if segments is not None and settings.per_segment:
            seg_rules, skipped = miner.mine_segments(
                kind_baskets, segments, settings=settings, kind=kind
            )
            frames.extend(_rank_per_segment(seg_rules, kind_baskets, segments, strata, settings))
            if skipped:
                notes.append(
                    f"{kind} rules: segments with too few baskets used overall rules only: {', '.join(skipped)}"
                )
    rules = sort_ranked(pd.concat([f for f in frames if len(f)] or frames, ignore_index=True))
    if 0 < settings.max_rules < len(rules):
        notes.append(
            f"{len(rules):,} rules mined; the best {settings.max_rules:,} by lift_lower are kept "
            "(rules.max_rules)"
        )
        rules = rules.head(settings.max_rules)
    rules = mark_risk(rules, tables["products"])
    return rules.assign(**{REASON: rule_reasons(rules, tables["products"]).to_numpy()}), notes


def within_budget(
    baskets: pd.DataFrame, settings: RuleSettings, *, kind: str
) -> tuple[RuleSettings, str]:
    """Settings whose support floor for `kind` keeps the itemsets within rules.max_itemsets."""
    if basket_problem(baskets):
        return settings, ""
    effective = kind_settings(settings, kind, n_baskets=baskets[BASKET_ID].nunique())
    matrix, _ = basket_matrix(baskets)
    return budget_settings(matrix, settings, kind=kind, min_support=effective.min_support)


def _rank_options(settings: RuleSettings) -> dict[str, Any]:
    return {
        "estimate": settings.rank_estimate,
        "min_stratum_baskets": settings.min_stratum_baskets,
    }


def _rank_per_segment(
    rules: pd.DataFrame,
    baskets: pd.DataFrame,
    segments: pd.DataFrame,
    strata: pd.DataFrame | None,
    settings: RuleSettings,
) -> list[pd.DataFrame]:
    """Rank each segment's rules against that segment's own baskets."""
    if rules.empty:
        return []
    seg_of = segments.astype({CUSTOMER_ID: str}).set_index(CUSTOMER_ID)[SEGMENT_ID].astype(str)
    in_segment = baskets[CUSTOMER_ID].astype(str).map(seg_of)
    return [
        rank_rules(
            group, baskets.loc[in_segment.eq(seg).to_numpy()], strata, **_rank_options(settings)
        )
        for seg, group in rules.groupby(SEGMENT_ID, sort=True)
    ]


def _ranked_empty() -> pd.DataFrame:
    return rank_rules(empty_rules(), pd.DataFrame())


def segment_frame(segments: pd.DataFrame | None) -> pd.DataFrame | None:
    """[customer_id, segment_id] of the segments stage's table (None without segments)."""
    return None if segments is None else segments[[CUSTOMER_ID, SEGMENT_ID]]


def summary_metrics(rules: pd.DataFrame) -> dict[str, float]:
    if rules.empty:
        return {
            "max_lift": float("nan"),
            "max_lift_lower": float("nan"),
            "median_confidence": float("nan"),
        }
    return {
        "max_lift": float(rules["lift"].max()),
        "max_lift_lower": float(rules["lift_lower"].max()),
        "median_confidence": float(rules["confidence"].median()),
    }
