"""The `segments` stage of `portrait run`: clusters, tiers, lifecycle, tags -> segments.parquet,
segmentation.pkl, segment_profiles.parquet, lifecycle_transitions.parquet, a report section."""

from __future__ import annotations

import io

import joblib
import pandas as pd

from features.holdings import build_holdings
from features.quality import ValidatedData
from portrait.stages.result import RunInputs, StageResult
from portrait.stages.segments_report import segments_section
from portrait.stages.status import ran, reduced
from training.engine import Cluster
from training.segments.build import (
    fit_run_segments,
    lifecycle_rule,
    profile_cards,
    recent_outcomes,
    segment_metrics,
)
from training.segments.lifecycle import lifecycle_frame, lifecycle_transitions, transition_cutoffs
from training.segments.model import SegmentationModel
from training.segments.tags import tag_coverage
from training.segments.tiers import PotentialRule, measure_potential


def segments_stage(
    run: RunInputs, *, data: ValidatedData, portrait: pd.DataFrame, cluster: Cluster | None
) -> StageResult:
    """Fit the segmentation and give every customer segment, tier, lifecycle stage and tags."""
    settings = run.settings.segments
    segments, model, clustered, note = fit_run_segments(
        data.tables, portrait, as_of=run.as_of, settings=settings,
        active_days=run.settings.time.active_days, cluster=cluster,
    )  # fmt: skip
    cards, versus = _profiles(run, data.tables, clustered, segments, model)
    transitions = _transitions(run, data.tables, portrait)
    potential = measure_potential(
        data.tables, as_of=run.as_of, top_n=settings.top_n,
        back_days=settings.potential_back_days, rule=PotentialRule(floor=settings.potential_floor),
    )  # fmt: skip
    section = segments_section(clustered, segments, model, cards, versus, transitions,
                               tag_coverage(portrait), potential)  # fmt: skip
    return StageResult(
        status=reduced(note) if note else ran(),
        gives={"segments": segments, "segment_model": model},
        files={
            "segments.parquet": segments,
            "segmentation.pkl": _pickled(model),
            "segment_profiles.parquet": cards,
            "lifecycle_transitions.parquet": transitions,
        },  # fmt: skip
        metrics=segment_metrics(model, segments, potential),
        sections=(section.text(f"Reduced: {note}.", css="note") if note else section,),
        artifacts={"segmentation.pkl": "segmentation"},
        logged={
            "segmentation/k_selection.json": {str(k): v for k, v in model.criterion_.items()},
            "segmentation/profile_cards.json": _records(cards),
        },  # fmt: skip
    )


def _profiles(
    run: RunInputs, tables: dict[str, pd.DataFrame], portrait: pd.DataFrame,
    segments: pd.DataFrame, model: SegmentationModel,
) -> tuple[pd.DataFrame, pd.DataFrame]:  # fmt: skip
    outcomes = recent_outcomes(
        tables, as_of=run.as_of, active_days=run.settings.time.active_days,
        horizon_days=run.settings.time.churn_horizon_days, engagement=run.settings.engagement,
    )  # fmt: skip
    holdings = build_holdings(tables["transactions"], as_of=run.as_of)
    return profile_cards(portrait, segments, model=model, holdings=holdings, outcomes=outcomes,
                         products=tables["products"])  # fmt: skip


def _transitions(
    run: RunInputs, tables: dict[str, pd.DataFrame], portrait: pd.DataFrame
) -> pd.DataFrame:
    """The transition table; the stages at as_of come from the run's portrait (same rule)."""
    settings = run.settings.segments
    cutoffs = transition_cutoffs(
        run.as_of, steps=settings.transition_steps, step_days=settings.transition_step_days
    )
    rule = lifecycle_rule(settings, active_days=run.settings.time.active_days)
    return lifecycle_transitions(tables, cutoffs=cutoffs, rule=rule,
                                 engagement=run.settings.engagement,
                                 known={run.as_of: lifecycle_frame(portrait)})  # fmt: skip


def _pickled(model: SegmentationModel) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    return buffer.getvalue()


def _records(cards: pd.DataFrame) -> list[dict]:
    return cards.astype({c: str for c in cards.columns if cards[c].dtype == object}).to_dict(
        "records"
    )
