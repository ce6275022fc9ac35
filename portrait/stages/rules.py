"""The `rules` stage of `portrait run`: mine holding and transition rules, keep them as a rule base.

Writes `rules.parquet` (the contract's columns plus kind, metrics, risk marks and reason) and
`rule_base/` (loadable by serving with `training.rules.base.load_rule_base`) in the run
directory, adds a report section (top pair rules per kind by lift_lower, lift against
support; see training.rules.ranking for why not raw lift) and logs the
rule base's parameters, version and counts to MLflow.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd

from features.contract import CUSTOMER_ID, PRODUCT_ID, REASON, SEGMENT_ID
from portrait.report import Section
from portrait.settings import RuleSettings
from portrait.stages.status import StageStatus, ran, reduced, skipped
from training import tracking
from training.engine import RuleMiner
from training.figures import figure
from training.rules.base import RuleBase, build_rule_base, rule_reasons, save_rule_base
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
from training.rules.ranking import ESTIMATES, rank_rules, sort_ranked, top_rules
from training.rules.strata import SIGNUP_SEGMENT, run_strata, signup_segment_frame

TABLE_COLUMNS = [
    "rule",
    "observed",
    "support",
    "confidence",
    "lift",
    "adjusted_lift",
    "risk_ratio",
    "lift_lower",
    "max_risk_level",
]


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


def segment_frame(segments: Any) -> pd.DataFrame | None:
    """[customer_id, segment_id] from the segments stage's result (a frame or an object holding one)."""
    if segments is None:
        return None
    candidates = [segments] if isinstance(segments, pd.DataFrame) else list(vars(segments).values())
    for value in candidates:
        if isinstance(value, pd.DataFrame) and {CUSTOMER_ID, SEGMENT_ID} <= set(value.columns):
            return value[[CUSTOMER_ID, SEGMENT_ID]]
    return None


def rules_stage(ctx: Any) -> StageStatus:
    """Pipeline stage: mine rules at ctx.as_of, write rules.parquet and rule_base/, report and log them."""
    settings = ctx.settings.rules
    segments = segment_frame(ctx.results.get("segments"))
    miner = RuleMiner(ctx.results.get("cluster"))  # None: pandas
    signup = None
    if SIGNUP_SEGMENT in settings.strata_columns:
        signup = signup_segment_frame(ctx.results.get("segment_model"), ctx.portrait)
    rules, notes = mine_all_rules(
        ctx.tables, as_of=ctx.as_of, settings=settings, segments=segments, miner=miner,
        signup_segments=signup,
    )  # fmt: skip
    params = {
        **dataclasses.asdict(settings),
        "as_of": str(ctx.as_of.date()),
        "per_segment_used": segments is not None,
    }
    rule_base = build_rule_base(rules, params=params, created_at=ctx.as_of)
    rules.to_parquet(ctx.out_dir / "rules.parquet", index=False)
    save_rule_base(rule_base, ctx.out_dir / "rule_base")
    ctx.results["rule_base"] = rule_base
    ctx.metrics["rules"] = {**rule_base.counts(), **_summary_metrics(rules)}
    ctx.sections.append(rules_section(rule_base, notes=notes, top=settings.top_rules))
    tracking.log_params(
        {f"rules.{k}": v for k, v in params.items()} | {"rules.version": rule_base.version}
    )
    tracking.log_artifacts(ctx.out_dir / "rule_base", folder="rule_base")
    return rules_status(ctx.tables["products"], rules, notes)


def rules_status(products: pd.DataFrame, rules: pd.DataFrame, notes: list[str]) -> StageStatus:
    """Skipped for a one-product catalogue; reduced when a kind or segment could not be mined."""
    if products[PRODUCT_ID].nunique() < 2:
        return skipped("the catalogue holds one product: a rule needs two")
    if notes:
        return reduced("; ".join(notes))
    return ran("" if len(rules) else "no rule passed the thresholds")


def _summary_metrics(rules: pd.DataFrame) -> dict[str, float]:
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


def rules_section(rule_base: RuleBase, *, notes: list[str], top: int) -> Section:
    """Report section: counts, the top pair rules per kind by lift_lower, and lift against support."""
    rules, counts = rule_base.rules, rule_base.counts()
    section = Section("Product rules").text(
        f"Rule base {rule_base.version}: {counts['rules']} rules ({counts['holding_rules']} holding, "
        f"{counts['transition_rules']} transition; {counts['segment_rules']} segment-specific). "
        "Transition rules read 'customers holding A go on to buy B within the next window'. "
        "Rules are ranked by lift_lower: the 95% lower bound of "
        f"{_estimate_words(rule_base.params)} (a customer can "
        "only buy products up to their risk level, so raw lift makes any two risky products "
        "look related, and a rule on a handful of baskets can show any lift). Rules whose "
        "products are riskier than the antecedents are kept and marked; the recommendation "
        "policy drops them for customers below max_risk_level."
    )
    for note in notes:
        section.text(note, css="note")
    if rules.empty:
        return section.text(
            "No rule passed the thresholds; lower rules.min_support or rules.min_confidence.",
            css="bad",
        )
    for kind in ("transition", "holding"):
        best = top_rules(rules, kind=kind, n=top)
        if best.empty:
            section.text(f"No one-to-one {kind} rule passed the thresholds.", css="note")
            continue
        section.table(
            best.assign(rule=best[REASON])[TABLE_COLUMNS],
            caption=f"Top {len(best)} {kind} rules (one product to one product, all customers) "
            "by lift_lower",
        )
    return section.figures((_lift_support_plot(rules), "Lift against support, one point per rule"))


def _estimate_words(params: dict[str, Any]) -> str:
    columns = params.get("strata_columns") or ()
    within = " x ".join(columns) if columns else "one population"
    if params.get("rank_estimate") == "standardised":
        return f"lift measured within strata of {within}"
    return f"the Mantel-Haenszel risk ratio (holders vs non-holders) within strata of {within}"


def _lift_support_plot(rules: pd.DataFrame) -> Any:
    fig, ax = figure()
    for kind, marker in (("holding", "o"), ("transition", "^")):
        part = rules.loc[rules["kind"].eq(kind)]
        ax.scatter(
            part["support"],
            part["lift"],
            s=14,
            alpha=0.6,
            marker=marker,
            label=f"{kind} ({len(part)})",
        )
    ax.set_xscale("log")
    ax.axhline(1.0, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("support (share of baskets, log scale)")
    ax.set_ylabel("lift")
    ax.legend(frameon=False, fontsize=8)
    ax.set_ylim(bottom=0, top=float(np.nanmax(rules["lift"])) * 1.1)
    return fig
