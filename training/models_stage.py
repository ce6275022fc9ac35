"""The `models` stage of `portrait run`: train, tune, gate and register both models, then score at as_of.

Writes churn_scores.parquet (customers active at as_of) and recommendations.parquet (every
customer) with the current champions, so a candidate that fails the gate never changes what is
served. In the demo, when `truth/` sits in the data directory, the planted probabilities are
scored on the realised labels at as_of next to the models (logged, never trained on).
Segments are not model features (they are computed at as_of and would leak into earlier
cut-offs); they feed the recommender's segment popularity fallback and segment rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from features.contract import CUSTOMER_ID, PRODUCT_ID
from portrait.errors import NotEnoughData
from portrait.settings import Settings
from serving.recommend import index_inputs, recommend
from training import tracking
from training.churn import LABEL as CHURN_LABEL
from training.churn import score_churn
from training.datasets import (
    BLOCK_CUSTOMERS,
    churn_training_set,
    conversion_training_set,
    history,
    history_start,
    model_cutoffs,
    portraits_at,
    stamp,
)
from training.fallback import fallback_ranker, recs_status, usable, write_fallback
from training.metrics import pr_auc
from training.modelling import (
    Outcome,
    flat_metrics,
    pair_ranking_metrics,
    train_churn,
    train_conversion,
)
from training.models_report import log_outcome, models_section
from training.propensity import AsOfInputs, as_of_inputs, score_propensity
from training.registry import (
    CHURN_MODEL,
    CONVERSION_MODEL,
    Candidate,
    load_champion,
    prepare,
    promote_together,
)
from training.stage_status import StageStatus, combined, ran, reduced, skipped
from training.truth import truth_metrics

NEGATIVE_RATE = 0.15  # share of conversion negatives kept at training cut-offs (weighted back)


@dataclass
class TrainedModels:
    """Both outcomes (None when the data cannot train that model), gate decisions, versions, statuses."""

    churn: Outcome | None = None
    conversion: Outcome | None = None
    decisions: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    statuses: dict[str, StageStatus] = field(default_factory=dict)


def train_and_gate(
    tables: dict[str, pd.DataFrame], *, as_of: pd.Timestamp, settings: Settings, log: bool = True
) -> TrainedModels:
    """Training sets, tuning, baselines, MLflow logging and the gate, each model on its own.

    A model the data cannot train (NotEnoughData: too little history, one class) is skipped
    with the reason; the other model still trains. Fewer cut-offs than asked: reduced.
    """
    past = history(tables, as_of=as_of)
    portraits = portraits_at(past, _labelled_cutoffs(past, as_of, settings.time),
                             active_days=settings.time.active_days,
                             engagement=settings.engagement)  # fmt: skip
    trained, candidates = TrainedModels(), {}
    for name, train in (("churn", _train_churn), ("conversion", _train_conversion)):
        try:
            outcome, candidates[name], cutoffs = train(
                past, tables, as_of=as_of, settings=settings, portraits=portraits, log=log
            )
        except NotEnoughData as exc:
            trained.statuses[name] = skipped(str(exc))
            continue
        setattr(trained, name, outcome)
        trained.statuses[name] = reduced(cutoffs.note) if cutoffs.note else ran()
    _promote(trained, candidates)
    return trained


def _promote(trained: TrainedModels, candidates: dict[str, Candidate]) -> None:
    """Each model was trained and logged in its own run; none is registered or promoted until
    every model of the run is, and then in one step under the store's lock (training/registry.py)."""
    if not candidates:
        return
    done = promote_together(list(candidates.values()))
    for kind, candidate in candidates.items():
        decision, version = done[candidate.name]
        trained.decisions[kind], trained.versions[kind] = decision, version
        tracking.log_metrics({f"{kind}.gate_passed": float(decision.passed)})
        tracking.log_dict(decision.__dict__, f"gate_{kind}.json")


def _labelled_cutoffs(past: dict, as_of: pd.Timestamp, time: Any) -> list[pd.Timestamp]:
    """Every labelled cut-off of both models that fits the history (shared portraits)."""
    cuts: list[pd.Timestamp] = []
    for horizon in (time.churn_horizon_days, time.conversion_horizon_days):
        try:
            cuts += model_cutoffs(as_of, horizon_days=horizon, n_training=time.training_cutoffs,
                                  start=history_start(past)).labelled  # fmt: skip
        except NotEnoughData:
            continue  # the model's own training set says why
    return cuts


def _train_churn(past, tables, *, as_of, settings, portraits, log):
    churn_set = churn_training_set(
        past, as_of=as_of, time=settings.time, portraits=portraits, engagement=settings.engagement
    )
    with tracking.start_run("churn model", nested=True):
        churn = train_churn(churn_set, settings=settings.models, log=log)
        y = churn.valid[CHURN_LABEL].to_numpy()
        candidate = prepare(
            churn.model, name=CHURN_MODEL, metric=churn.primary,
            score=lambda m: pr_auc(y, m.predict_proba(churn.valid)),
            baselines=churn.baseline_scores(), frame=churn.valid,
        )  # fmt: skip
        log_outcome(churn, None, tables=tables, cutoffs=churn_set.cutoffs)
    return churn, candidate, churn_set.cutoffs


def _train_conversion(past, tables, *, as_of, settings, portraits, log):
    conv_set = conversion_training_set(
        past, as_of=as_of, time=settings.time, negative_rate=NEGATIVE_RATE, seed=settings.models.seed,
        portraits=portraits, campaign_window_days=settings.experiments.campaign_window_days,
    )  # fmt: skip
    with tracking.start_run("conversion model", nested=True):
        conv = train_conversion(conv_set, settings=settings.models, log=log)
        k = settings.models.k
        candidate = prepare(
            conv.model, name=CONVERSION_MODEL, metric=conv.primary,
            score=lambda m: pair_ranking_metrics(conv.valid, m.predict_proba(conv.valid), k=k)[
                conv.primary
            ],
            baselines=conv.baseline_scores(), frame=conv.valid,
        )  # fmt: skip
        log_outcome(conv, None, tables=tables, cutoffs=conv_set.cutoffs)
    return conv, candidate, conv_set.cutoffs


def score_recommendations(
    model: Any,
    tables: dict[str, pd.DataFrame],
    portrait: pd.DataFrame,
    *,
    inputs: AsOfInputs,
    settings: Settings,
    segments: pd.DataFrame | None,
    rule_base: Any,
) -> pd.DataFrame:
    """Top-k allowed products for every customer through the shared recommender."""
    return recommend_in_blocks(
        portrait,
        portrait=portrait,
        products=tables["products"],
        holdings=inputs.holdings,
        conversion_model=model,
        rule_base=rule_base,
        segments=segments,
        policy_customers=inputs.policy,
        k=settings.models.k,
        context=inputs.context,
    )


def recommend_in_blocks(customers: pd.DataFrame, **kw: Any) -> pd.DataFrame:
    """`serving.recommend.recommend` per block of BLOCK_CUSTOMERS customers, concatenated.

    Candidates are customers x products with reasons; one block at a time keeps memory flat
    at any bank size. Exclusion counts of the blocks are summed.
    """
    inputs = index_inputs(
        portrait=kw["portrait"], policy_customers=kw["policy_customers"],
        holdings=kw["holdings"], segments=kw.get("segments"),
    )  # fmt: skip
    kw |= {"portrait": inputs.portrait, "policy_customers": inputs.policy_customers,
           "holdings": inputs.holdings, "segments": inputs.segments}  # fmt: skip
    parts, excluded = [], {}
    for start in range(0, len(customers), BLOCK_CUSTOMERS):  # blocks, not rows
        part = recommend(customers.iloc[start : start + BLOCK_CUSTOMERS], **kw)
        for reason, count in part.attrs.get("excluded", {}).items():
            excluded[reason] = excluded.get(reason, 0) + count
        part.attrs = {}
        parts.append(part)
    out = pd.concat(parts, ignore_index=True) if parts else recommend(customers, **kw)
    out.attrs["excluded"] = excluded
    return out


def models_stage(ctx) -> StageStatus:
    """Train and gate both models, write churn_scores.parquet and recommendations.parquet, report."""
    as_of, settings = stamp(ctx.as_of), ctx.settings
    segments = ctx.results.get("segments")
    with tracking.start_run("models", nested=True):
        trained = train_and_gate(ctx.tables, as_of=as_of, settings=settings)
        churn_model, churn_version = _churn_scorer(trained, ctx.portrait)
        conv_model, conv_version = usable(load_champion(CONVERSION_MODEL), ctx.portrait) or (
            None, "none (rules and popularity)")  # fmt: skip
        ranker = conv_model or fallback_ranker(trained)
        if conv_model is None and ranker is not None:
            conv_version = f"none (baseline {ranker.name}, the best on validation, serves)"
        scores = score_churn(churn_model, ctx.portrait)
        inputs = as_of_inputs(ctx.tables, ctx.portrait, as_of=as_of, settings=settings,
                              segments=segments)  # fmt: skip
        recs = score_recommendations(
            ranker, ctx.tables, ctx.portrait, inputs=inputs, settings=settings,
            segments=segments, rule_base=ctx.results.get("rule_base"),
        )  # fmt: skip
        truth = _truth(ctx, trained, churn_model, conv_model, as_of=as_of)
        propensity, prop_status = _propensity(ctx, conv_model, trained, inputs)
    scores.to_parquet(ctx.out_dir / "churn_scores.parquet", index=False)
    recs.drop(columns=["source"]).to_parquet(ctx.out_dir / "recommendations.parquet", index=False)
    write_fallback(ctx.out_dir, None if conv_model is not None else ranker)
    if propensity is not None:
        propensity.to_parquet(ctx.out_dir / "propensity.parquet", index=False)
    ctx.results["churn_scores"] = scores
    ctx.results["recommendations"] = recs
    ctx.results["champions"] = {
        CHURN_MODEL: {"version": churn_version, "gate": _gate(trained, "churn")},
        CONVERSION_MODEL: {"version": conv_version, "gate": _gate(trained, "conversion")},
    }
    ctx.metrics["models"] = flat_metrics(trained, truth)
    parts = trained.statuses | {"recommendations": recs_status(recs, conv_model, ranker),
                                "propensity": prop_status}  # fmt: skip
    for name, status in parts.items():
        ctx.record(f"models.{name}", status)
    ctx.sections.append(
        models_section(trained, truth, recs=recs, champions=ctx.results["champions"])
    )
    return combined(parts)


def _propensity(ctx, conv_model, trained, inputs: AsOfInputs) -> tuple[Any, StageStatus]:
    """Calibrated purchase probability of every allowed pair (champion, else this run's model)."""
    model = conv_model or (trained.conversion and trained.conversion.model)
    if model is None:
        return None, skipped("no conversion model: no propensity per product")
    held = inputs.holdings[[CUSTOMER_ID, PRODUCT_ID]].astype(str)
    frame = score_propensity(model, ctx.portrait, inputs.context, block=BLOCK_CUSTOMERS,
                             policy_customers=inputs.policy, products=ctx.tables["products"],
                             holdings=held)  # fmt: skip
    return frame, ran() if conv_model is not None else reduced(
        "propensity from this run's conversion model, which is not champion"
    )


def _gate(trained: TrainedModels, name: str) -> str:
    decision = trained.decisions.get(name)
    return decision.reason if decision is not None else trained.statuses[name].reason


def _churn_scorer(trained: TrainedModels, portrait: pd.DataFrame) -> tuple[Any | None, str]:
    """The churn champion, else this run's recency rule, else nothing (no churn scores)."""
    champion = usable(load_champion(CHURN_MODEL), portrait)
    if champion is not None:
        return champion
    if trained.churn is not None:
        return trained.churn.extra["baseline"], "none (recency rule)"
    return None, "none (no churn model could be trained)"


def _truth(ctx, trained: TrainedModels, churn_model, conv_model, *, as_of) -> dict | None:
    if trained.churn is None or churn_model is None:
        return None
    truth = truth_metrics(
        ctx.data_dir, ctx.tables, ctx.portrait, as_of=as_of, settings=ctx.settings,
        churn_model=churn_model,
        conversion_model=conv_model or (trained.conversion and trained.conversion.model),
        churn_baseline=trained.churn.extra["baseline"],
    )  # fmt: skip
    if truth:
        tracking.log_dict(truth, "truth_metrics.json")
    return truth
