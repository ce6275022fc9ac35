"""The `rules` stage of `portrait run`: mine holding and transition rules, keep them as a rule base.

Writes `rules.parquet` (the contract's columns plus kind, metrics, risk marks and reason) and
`rule_base/` (loadable by serving with `training.rule_base.load_rule_base`) in the run
directory, adds a report section (top rules by lift, lift against support) and logs the
rule base's parameters, version and counts to MLflow.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd

from features.contract import CUSTOMER_ID, REASON, SEGMENT_ID
from portrait.settings import RuleSettings
from training import tracking
from training.report import Section, figure
from training.rule_base import RuleBase, build_rule_base, rule_reasons, save_rule_base
from training.rules import (
    RulesError,
    build_holding_baskets,
    build_transition_baskets,
    empty_rules,
    mark_risk,
    mine_rules,
    mine_segment_rules,
    sort_rules,
)

TABLE_COLUMNS = [
    "kind",
    SEGMENT_ID,
    "rule",
    "support",
    "confidence",
    "lift",
    "conviction",
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
        "top_rules",
    ):
        if getattr(settings, name) < 1:
            raise RulesError(f"rules.{name} must be at least 1, got {getattr(settings, name)}")


def mine_all_rules(
    tables: dict[str, pd.DataFrame],
    *,
    as_of: pd.Timestamp,
    settings: RuleSettings,
    segments: pd.DataFrame | None,
) -> tuple[pd.DataFrame, list[str]]:
    """Holding and transition rules, overall and per segment, risk-marked, with reasons; plus notes."""
    check_rule_settings(settings)
    txns = tables["transactions"]
    baskets = {
        "holding": build_holding_baskets(txns, as_of=as_of),
        "transition": build_transition_baskets(
            txns,
            as_of=as_of,
            window_days=settings.transition_window_days,
            n_windows=settings.transition_windows,
        ),
    }
    frames, notes = [empty_rules()], []
    for kind, kind_baskets in baskets.items():
        try:
            frames.append(mine_rules(kind_baskets, settings=settings, kind=kind))
        except RulesError as exc:
            notes.append(str(exc))
            continue
        if segments is not None and settings.per_segment:
            seg_rules, skipped = mine_segment_rules(
                kind_baskets, segments, settings=settings, kind=kind
            )
            frames.append(seg_rules)
            if skipped:
                notes.append(
                    f"{kind} rules: segments with too few baskets used overall rules only: {', '.join(skipped)}"
                )
    rules = sort_rules(pd.concat([f for f in frames if len(f)] or frames, ignore_index=True))
    rules = mark_risk(rules, tables["products"])
    return rules.assign(**{REASON: rule_reasons(rules, tables["products"]).to_numpy()}), notes


def segment_frame(segments: Any) -> pd.DataFrame | None:
    """[customer_id, segment_id] from the segments stage's result (a frame or an object holding one)."""
    if segments is None:
        return None
    candidates = [segments] if isinstance(segments, pd.DataFrame) else list(vars(segments).values())
    for value in candidates:
        if isinstance(value, pd.DataFrame) and {CUSTOMER_ID, SEGMENT_ID} <= set(value.columns):
            return value[[CUSTOMER_ID, SEGMENT_ID]]
    return None


def rules_stage(ctx: Any) -> None:
    """Pipeline stage: mine rules at ctx.as_of, write rules.parquet and rule_base/, report and log them."""
    settings = ctx.settings.rules
    segments = segment_frame(ctx.results.get("segments"))
    rules, notes = mine_all_rules(ctx.tables, as_of=ctx.as_of, settings=settings, segments=segments)
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


def _summary_metrics(rules: pd.DataFrame) -> dict[str, float]:
    if rules.empty:
        return {"max_lift": float("nan"), "median_confidence": float("nan")}
    return {
        "max_lift": float(rules["lift"].max()),
        "median_confidence": float(rules["confidence"].median()),
    }


def rules_section(rule_base: RuleBase, *, notes: list[str], top: int) -> Section:
    """Report section: counts, the top rules by lift, and lift against support per kind."""
    rules, counts = rule_base.rules, rule_base.counts()
    section = Section("Product rules").text(
        f"Rule base {rule_base.version}: {counts['rules']} rules ({counts['holding_rules']} holding, "
        f"{counts['transition_rules']} transition; {counts['segment_rules']} segment-specific). "
        "Transition rules read 'customers holding A go on to buy B within the next window'; "
        "rules whose products are riskier than the antecedents are kept and marked, and the "
        "recommendation policy drops them for customers below max_risk_level."
    )
    for note in notes:
        section.text(note, css="note")
    if rules.empty:
        return section.text(
            "No rule passed the thresholds; lower rules.min_support or rules.min_confidence.",
            css="bad",
        )
    table = rules.head(top).assign(rule=rules[REASON].head(top))[TABLE_COLUMNS]
    section.table(
        table.fillna({SEGMENT_ID: "all"}), caption=f"Top {min(top, len(rules))} rules by lift"
    )
    return section.figures((_lift_support_plot(rules), "Lift against support, one point per rule"))


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
