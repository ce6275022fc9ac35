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

from features.contract import PRODUCT_ID, REASON
from features.quality import ValidatedData
from portrait.report import Section
from portrait.stages.result import RunInputs, StageResult
from portrait.stages.status import StageStatus, ran, reduced, skipped
from training.engine import Cluster, RuleMiner
from training.figures import figure
from training.rules.base import RuleBase, build_rule_base, rule_base_files
from training.rules.build import mine_all_rules, segment_frame, summary_metrics
from training.rules.ranking import top_rules
from training.rules.strata import SIGNUP_SEGMENT, signup_segment_frame
from training.segments.model import SegmentationModel

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


def rules_stage(
    run: RunInputs, *, data: ValidatedData, portrait: pd.DataFrame, cluster: Cluster | None,
    segments: pd.DataFrame | None, segment_model: SegmentationModel | None,
) -> StageResult:  # fmt: skip
    """Mine rules at as_of: rules.parquet and rule_base/ (the rule base serving loads), report."""
    settings = run.settings.rules
    segments = segment_frame(segments)
    signup = None
    if SIGNUP_SEGMENT in settings.strata_columns:
        signup = signup_segment_frame(segment_model, portrait)
    rules, notes = mine_all_rules(
        data.tables, as_of=run.as_of, settings=settings, segments=segments,
        miner=RuleMiner(cluster), signup_segments=signup,
    )  # fmt: skip
    params = {**dataclasses.asdict(settings), "as_of": str(run.as_of.date()),
              "per_segment_used": segments is not None}  # fmt: skip
    rule_base = build_rule_base(rules, params=params, created_at=run.as_of)
    files = {f"rule_base/{name}": value for name, value in rule_base_files(rule_base).items()}
    return StageResult(
        status=rules_status(data.tables["products"], rules, notes),
        gives={"rule_base": rule_base},
        files={"rules.parquet": rules, **files},
        metrics={**rule_base.counts(), **summary_metrics(rules)},
        params={f"rules.{k}": v for k, v in params.items()} | {"rules.version": rule_base.version},
        sections=(rules_section(rule_base, notes=notes, top=settings.top_rules),),
        artifacts={"rule_base": "rule_base"},
    )


def rules_status(products: pd.DataFrame, rules: pd.DataFrame, notes: list[str]) -> StageStatus:
    """Skipped for a one-product catalogue; reduced when a kind or segment could not be mined."""
    if products[PRODUCT_ID].nunique() < 2:
        return skipped("the catalogue holds one product: a rule needs two")
    if notes:
        return reduced("; ".join(notes))
    return ran("" if len(rules) else "no rule passed the thresholds")


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
