"""The `experiments` stage of `portrait run`: campaigns, funnels and A/B tests, uplift and ready-made audiences."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from experiments.audience import run_audience
from experiments.campaign import evaluate_campaign
from experiments.funnel import ab_test, funnel_table, funnel_times, page_traffic
from experiments.plots import funnel_chart, lift_chart, qini_chart
from experiments.ready_made import READY_MADE
from experiments.syntax import QueryError
from experiments.uplift import persuadables, train_uplift, uplift_training_set
from features.contract import CUSTOMER_ID
from features.quality import ValidatedData
from portrait.errors import PortraitError
from portrait.report import Section
from portrait.stages.result import RunInputs, StageResult
from portrait.stages.status import StageStatus, combined, ran, reduced, skipped
from training import tracking


@dataclass(frozen=True)
class _Run:
    """What the experiment sections read."""

    run: RunInputs
    tables: dict[str, pd.DataFrame]
    portrait: pd.DataFrame
    segments: pd.DataFrame | None
    churn_scores: pd.DataFrame | None


def experiments_stage(
    run: RunInputs, *, data: ValidatedData, portrait: pd.DataFrame,
    segments: pd.DataFrame | None, churn_scores: pd.DataFrame | None,
) -> StageResult:  # fmt: skip
    """Evaluate every campaign, the sign-up funnel and A/B test, train uplift, and count ready-made audiences."""
    ctx = _Run(run, data.tables, portrait, segments, churn_scores)
    settings = run.settings.experiments
    metrics: dict[str, float] = {}
    parts: dict[str, StageStatus] = {}
    sections: list[Section] = []
    files: dict[str, pd.DataFrame] = {}
    campaigns = ctx.tables.get("campaigns")
    if campaigns is not None and not campaigns.empty:
        sections.append(campaign_section(ctx, settings, metrics))
        parts["campaigns"] = ran()
        section, parts["uplift"] = uplift_section(ctx, settings, metrics, files)
        sections.append(section)
    else:
        why = "no campaigns table" if campaigns is None else "the campaigns table has no rows"
        parts["campaigns"] = parts["uplift"] = skipped(why)
    section, parts["funnel"] = funnel_section(ctx, settings, metrics)
    sections += [section, audience_section(ctx, metrics, files.get("uplift_scores.parquet"))]
    parts["audiences"] = ran()
    return StageResult(status=combined(parts), files=files, metrics=metrics,
                       sections=tuple(sections), parts=parts)  # fmt: skip


def campaign_section(ctx: _Run, settings: Any, metrics: dict[str, float]) -> Section:
    """Treatment against control per campaign, with lift intervals and the per-segment breakdown."""
    section = Section("Campaigns: treatment against control")
    segments = ctx.segments
    results = {
        cid: evaluate_campaign(
            ctx.tables,
            campaign_id=cid,
            window_days=settings.campaign_window_days,
            segments=segments,
            expected_share=settings.expected_treatment_share,
        )  # fmt: skip
        for cid in sorted(
            ctx.tables["campaigns"]["campaign_id"].unique()
        )  # a few campaigns, not customers
    }
    for cid, result in results.items():
        section.text(result.statement(), css="bad" if result.srm["mismatch"] else "")
        row = result.overall.iloc[0]
        for key in (
            "rate_treatment",
            "rate_control",
            "abs_lift",
            "abs_lift_low",
            "abs_lift_high",
            "p_value",
        ):
            metrics[f"{cid}.{key}"] = float(row[key])
        metrics[f"{cid}.srm_p_value"] = float(result.srm["p_value"])
    overall = pd.concat(
        [r.overall.assign(campaign=c) for c, r in results.items()], ignore_index=True
    )
    section.table(
        overall[["campaign", *overall.columns[:-1].drop("breakdown")]],
        caption="Overall",
        floatfmt="{:,.4f}",
    )
    figs = [
        lift_chart(
            overall, label="campaign", title="Lift per campaign with 95% confidence intervals"
        )
    ]
    for cid, result in results.items():
        if not result.breakdown.empty:
            rows = result.breakdown.assign(
                label=result.breakdown["breakdown"] + "=" + result.breakdown["value"]
            )
            section.table(rows.drop(columns="label"), caption=f"{cid} by group", floatfmt="{:,.4f}")
            figs.append(
                lift_chart(rows, label="label", title=f"{cid}: lift per group with 95% CIs")
            )
    return section.figures(*figs)


def funnel_section(
    ctx: _Run, settings: Any, metrics: dict[str, float]
) -> tuple[Section, StageStatus]:
    """Funnel per variant and per cohort, the A/B significance table and page traffic."""
    section = Section("Funnels, A/B tests and page traffic")
    times = funnel_times(ctx.tables, as_of=ctx.run.as_of, within_days=settings.funnel_days)
    if times.empty:
        why = "no register event before as_of: the sign-up funnel and its A/B test need one"
        section.text(f"Funnel skipped: {why}.", css="note")
        return _page_traffic(ctx, settings, section), skipped(why)
    section.text(
        f"{len(times):,} registered customers; a step counts when it follows the previous one within "
        f"{settings.funnel_days} days of registering (first investment = invest_success or a first buy)."
    )
    by_variant = funnel_table(times, by="variant")
    by_cohort = funnel_table(times, by="cohort")
    recent = sorted(times["cohort"].unique())[-12:]
    section.table(by_variant, caption="Funnel by sign-up variant", floatfmt="{:,.3f}")
    ab = ab_test(times)
    if not ab.empty:
        section.table(
            ab,
            caption="A/B test: variant B against A (conversion from register)",
            floatfmt="{:,.4f}",
        )
        bind = ab.loc[ab["step"] == "register -> bind_card"].iloc[0]
        metrics.update(
            {
                "ab.bind_card_lift": float(bind["abs_lift"]),
                "ab.bind_card_p_value": float(bind["p_value"]),
            }
        )
    wide = by_cohort.loc[by_cohort["cohort"].isin(recent)].pivot(
        index="cohort", columns="step", values="from_register"
    )
    section.table(
        wide.reset_index(),
        caption="Conversion from register per monthly cohort (last 12)",
        floatfmt="{:.1%}",
    )
    section.figures(funnel_chart(by_variant, by="variant"))
    _page_traffic(ctx, settings, section)
    metrics["funnel.registered"] = float(len(times))
    metrics["funnel.invested_share"] = float(times["first_investment"].notna().mean())
    return section, ran() if not ab.empty else reduced("no A/B variants A and B among registers")


def _page_traffic(ctx: _Run, settings: Any, section: Section) -> Section:
    pages = page_traffic(
        ctx.tables, as_of=ctx.run.as_of, session_gap_minutes=settings.session_gap_minutes
    )
    if pages.empty:
        return section.text("No page_view events with a page: no page traffic table.", css="note")
    return section.table(
        pages, caption="Page views, unique visitors and bounce rate per page and business line"
    )


def uplift_section(
    ctx: _Run, settings: Any, metrics: dict[str, float], files: dict[str, pd.DataFrame]
) -> tuple[Section, StageStatus]:
    """Train the uplift model, plot its Qini curve, log it to MLflow and write the persuadables."""
    section = Section("Uplift: who is persuadable")
    try:
        training = uplift_training_set(
            ctx.tables,
            window_days=settings.campaign_window_days,
            active_days=ctx.run.settings.time.active_days,
        )
        result = train_uplift(
            training, holdout_share=settings.uplift_holdout_share, seed=settings.seed
        )
    except PortraitError as exc:
        return section.text(f"No uplift model: {exc}", css="bad"), skipped(str(exc))
    ranked = persuadables(result.model, ctx.portrait)
    scores = result.model.predict_uplift(ctx.portrait).assign(
        customer_id=ctx.portrait[CUSTOMER_ID].to_numpy()
    )
    files["uplift_scores.parquet"] = scores[[CUSTOMER_ID, "uplift", "p_treated", "p_control"]]
    files["persuadables.parquet"] = ranked
    m = result.metrics
    metrics.update({f"uplift.{k}": v for k, v in m.items()})
    metrics["uplift.persuadables"] = float(len(ranked))
    section.text(
        f"T-learner (two LightGBM models) on {int(m['train_rows']):,} campaign customers, measured on "
        f"{int(m['holdout_customers']):,} held-out customers: Qini coefficient {m['qini_coefficient']:.4f} "
        f"(random targeting 0), AUUC {m['auuc']:.4f} against {m['auuc_random']:.4f} for random targeting. "
        f"{len(ranked):,} customers (opted-out excluded) have positive predicted uplift; ranked list in "
        "persuadables.parquet, scores in uplift_scores.parquet (query field `uplift`)."
    )
    fig, caption = qini_chart(result.curve, metrics=m)
    with tracking.start_run("uplift", nested=True):
        tracking.log_params(
            {
                "learner": "T-learner LightGBM",
                "features": len(result.features),
                "seed": settings.seed,
            }
        )
        tracking.log_metrics(m)
        tracking.log_figure(fig, "qini_curve.png")
    return section.figures((fig, caption)), ran()


def audience_section(
    ctx: _Run, metrics: dict[str, float], uplift_scores: pd.DataFrame | None
) -> Section:
    """Counts of the ready-made audiences (those whose fields this run has)."""
    given = {"segments": ctx.segments, "churn_scores": ctx.churn_scores,
             "uplift_scores": uplift_scores}  # fmt: skip
    extras = {k: v for k, v in given.items() if v is not None}
    rows = []
    for name, text in READY_MADE.items():  # a handful of named queries
        try:
            result = run_audience(
                text,
                tables=ctx.tables,
                portrait=ctx.portrait,
                extras=extras,
                as_of=ctx.run.as_of,
                explain=False,
                limit=0,
            )
        except QueryError as exc:
            rows.append(
                {
                    "audience": name,
                    "query": text,
                    "count": None,
                    "opted_out_excluded": None,
                    "note": str(exc).splitlines()[0],
                }
            )
            continue
        rows.append(
            {
                "audience": name,
                "query": text,
                "count": result.count,
                "opted_out_excluded": result.opted_out_excluded,
                "note": "",
            }
        )
        metrics[f"audience.{name}"] = float(result.count)
    section = Section("Ready-made audiences")
    section.text(
        "Export any of these with `portrait audience NAME --data DIR --as-of DATE --run RUN --out FILE.csv`."
    )
    return section.table(pd.DataFrame(rows), floatfmt="{:,.0f}")
