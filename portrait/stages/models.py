"""The `models` stage of `portrait run`: train, tune, gate and register both models, then score at as_of.

Writes churn_scores.parquet (customers active at as_of) and recommendations.parquet (every
customer) with the current champions, so a candidate that fails the gate never changes what is
served. In the demo, when `truth/` sits in the data directory, the planted probabilities are
scored on the realised labels at as_of next to the models (logged, never trained on).
Segments are not model features (they are computed at as_of and would leak into earlier
cut-offs); they feed the recommender's segment popularity fallback and segment rules.
"""

from __future__ import annotations

import contextlib
import ctypes
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from features.contract import CUSTOMER_ID, PRODUCT_ID
from features.engagement import kept_engagement
from features.quality import ValidatedData
from portrait.errors import NotEnoughData
from portrait.settings import Settings
from portrait.stages.models_report import log_outcome, models_section, recs_status
from portrait.stages.result import RunInputs, StageResult
from portrait.stages.status import StageStatus, combined, ran, reduced, skipped
from serving.index_files import index_files, scorer_name
from serving.recommend_all import score_every_customer, scored_pairs
from serving.recommend_index import CandidateIndex
from training import tracking
from training.engine import Cluster
from training.models.churn import LABEL as CHURN_LABEL
from training.models.churn import score_churn
from training.models.cutoffs import stamp
from training.models.datasets import BLOCK_CUSTOMERS, ConversionSampling, TrainingSet
from training.models.fallback import fallback_files, fallback_ranker, usable
from training.models.metrics import pr_auc
from training.models.modelling import (
    Outcome,
    flat_metrics,
    pair_ranking_metrics,
    train_churn,
    train_conversion,
)
from training.models.propensity import (
    AsOfInputs,
    allowed_propensity,
    as_of_inputs,
    score_propensity,
)
from training.models.run_sets import training_sets
from training.models.truth import truth_metrics
from training.registry import (
    CHURN_MODEL,
    CONVERSION_MODEL,
    Candidate,
    load_champion,
    prepare,
    promote_together,
)
from training.rules.base import RuleBase

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
    tables: dict[str, pd.DataFrame], *, as_of: pd.Timestamp, settings: Settings, log: bool = True,
    cluster: Cluster | None = None,
) -> TrainedModels:  # fmt: skip
    """Training sets, tuning, baselines, MLflow logging and the gate, each model on its own.

    A model the data cannot train (NotEnoughData: too little history, one class) is skipped
    with the reason; the other model still trains. Fewer cut-offs than asked: reduced.
    """
    trained, candidates = TrainedModels(), {}
    with kept_engagement():  # the portraits, labels and pairs of every cut-off read it
        sets = run_training_sets(tables, as_of=as_of, settings=settings)
        for name, train in (("churn", _train_churn), ("conversion", _train_conversion)):
            try:  # one training set at a time, freed once its model is trained
                data = sets.pop(name)()
                outcome, candidates[name] = train(data, tables, settings=settings, log=log,
                                                  cluster=cluster)  # fmt: skip
            except NotEnoughData as exc:
                trained.statuses[name] = skipped(str(exc))
                continue
            setattr(trained, name, outcome)
            trained.statuses[name] = reduced(data.cutoffs.note) if data.cutoffs.note else ran()
            del data
    _promote(trained, candidates)
    return trained


def run_training_sets(
    tables: dict[str, pd.DataFrame], *, as_of: pd.Timestamp, settings: Settings
) -> dict[str, Callable[[], TrainingSet]]:
    """Both models' training sets as a run builds them: its cut-offs, engagement rule and pair
    sampling (`training.models.run_sets.training_sets`; build inside `kept_engagement()`)."""
    sampling = ConversionSampling(NEGATIVE_RATE, settings.models.seed,
                                  settings.experiments.campaign_window_days)  # fmt: skip
    return training_sets(tables, as_of=as_of, time=settings.time,
                         engagement=settings.engagement, sampling=sampling)  # fmt: skip


def return_freed_memory() -> None:
    """Give the heap pages that freed frames left behind back to the system (glibc's
    `malloc_trim`; nothing elsewhere). The training sets are gone once both models are trained,
    but glibc keeps their pages for reuse, and the scoring that follows allocates its own: at
    1M customers the process then counted both. It frees no live object and changes no output."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to give back
        ctypes.CDLL("libc.so.6").malloc_trim(0)


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


def _train_churn(churn_set, tables, *, settings, log, cluster):
    with tracking.start_run("churn model", nested=True):
        churn = train_churn(churn_set, settings=settings.models, log=log, cluster=cluster)
        y = churn.valid[CHURN_LABEL].to_numpy()
        candidate = prepare(
            churn.model, name=CHURN_MODEL, metric=churn.primary,
            score=lambda m: pr_auc(y, m.predict_proba(churn.valid)),
            baselines=churn.baseline_scores(), frame=churn.valid,
            scored=churn.metrics["model"][churn.primary],  # the same score, not computed again
        )  # fmt: skip
        log_outcome(churn, None, tables=tables, cutoffs=churn_set.cutoffs)
    return churn, candidate


def _train_conversion(conv_set, tables, *, settings, log, cluster):
    with tracking.start_run("conversion model", nested=True):
        conv = train_conversion(conv_set, settings=settings.models, log=log, cluster=cluster)
        k = settings.models.k
        candidate = prepare(
            conv.model, name=CONVERSION_MODEL, metric=conv.primary,
            score=lambda m: pair_ranking_metrics(conv.valid, m.predict_proba(conv.valid), k=k)[
                conv.primary
            ],
            baselines=conv.baseline_scores(), frame=conv.valid,
            scored=conv.metrics["model"][conv.primary],  # the same score, not computed again
        )  # fmt: skip
        log_outcome(conv, None, tables=tables, cutoffs=conv_set.cutoffs)
    return conv, candidate


def score_recommendations(
    model: Any,
    tables: dict[str, pd.DataFrame],
    portrait: pd.DataFrame,
    *,
    inputs: AsOfInputs,
    settings: Settings,
    segments: pd.DataFrame | None,
    rule_base: Any,
) -> tuple[pd.DataFrame, CandidateIndex]:
    """Top-k allowed products for every customer through the one recommender, and the candidate
    index they came from (`serving.recommend_all.score_every_customer`; the service reads it)."""
    return score_every_customer(
        portrait=portrait, products=tables["products"], holdings=inputs.holdings,
        policy=inputs.policy, segments=segments, context=inputs.context, model=model,
        rule_base=rule_base, k=settings.models.k,
    )  # fmt: skip


def models_stage(
    run: RunInputs, *, data: ValidatedData, portrait: pd.DataFrame,
    segments: pd.DataFrame | None, rule_base: RuleBase | None, cluster: Cluster | None,
) -> StageResult:  # fmt: skip
    """Train and gate both models; churn scores, recommendations and propensity for every customer."""
    as_of, settings, tables = stamp(run.as_of), run.settings, data.tables
    with tracking.start_run("models", nested=True):
        trained = train_and_gate(tables, as_of=as_of, settings=settings, cluster=cluster)
        return_freed_memory()
        churn_model, churn_version = _churn_scorer(trained, portrait)
        conv_model, conv_version = usable(load_champion(CONVERSION_MODEL), portrait) or (
            None, "none (rules and popularity)")  # fmt: skip
        ranker = conv_model or fallback_ranker(trained)
        if conv_model is None and ranker is not None:
            conv_version = f"none (baseline {ranker.name}, the best on validation, serves)"
        scores = score_churn(churn_model, portrait)
        inputs = as_of_inputs(tables, portrait, as_of=as_of, settings=settings, segments=segments)
        recs, index = score_recommendations(ranker, tables, portrait, inputs=inputs,
                                            settings=settings, segments=segments,
                                            rule_base=rule_base)  # fmt: skip
        truth = _truth(run, tables, portrait, trained, churn_model, conv_model, as_of=as_of)
        propensity, prop_status = _propensity(portrait, tables, conv_model, trained, inputs, index)
    champions = {
        CHURN_MODEL: {"version": churn_version, "gate": _gate(trained, "churn")},
        CONVERSION_MODEL: {"version": conv_version, "gate": _gate(trained, "conversion")},
    }
    parts = trained.statuses | {"recommendations": recs_status(recs, conv_model, ranker),
                                "propensity": prop_status}  # fmt: skip
    return StageResult(
        status=combined(parts), parts=parts,
        gives={"churn_scores": scores, "recommendations": recs, "champions": champions},
        files={"churn_scores.parquet": scores,
               "recommendations.parquet": recs.drop(columns=["source"]),
               "propensity.parquet": propensity,
               **index_files(index, scored_by=scorer_name(ranker, conv_model and conv_version)),
               **fallback_files(None if conv_model is not None else ranker)},
        metrics=flat_metrics(trained, truth),
        sections=(models_section(trained, truth, recs=recs, champions=champions),),
        logged={"truth_metrics.json": truth} if truth else {},
    )  # fmt: skip


def _propensity(
    portrait: pd.DataFrame, tables: dict[str, pd.DataFrame], conv_model: Any,
    trained: TrainedModels, inputs: AsOfInputs, index: CandidateIndex,
) -> tuple[pd.DataFrame | None, StageStatus]:  # fmt: skip
    """Calibrated purchase probability of every allowed pair (champion, else this run's model).

    The champion scored every pair for the candidate index already: those scores are used."""
    model = conv_model or (trained.conversion and trained.conversion.model)
    if model is None:
        return None, skipped("no conversion model: no propensity per product")
    held = inputs.holdings[[CUSTOMER_ID, PRODUCT_ID]].astype(str)
    policy = {"policy_customers": inputs.policy, "products": tables["products"], "holdings": held}
    if conv_model is not None:
        frame = allowed_propensity(scored_pairs(index, block=BLOCK_CUSTOMERS), **policy)
        return frame, ran()
    frame = score_propensity(model, portrait, inputs.context, block=BLOCK_CUSTOMERS, **policy)
    return frame, reduced("propensity from this run's conversion model, which is not champion")


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


def _truth(
    run: RunInputs, tables: dict[str, pd.DataFrame], portrait: pd.DataFrame,
    trained: TrainedModels, churn_model: Any, conv_model: Any, *, as_of: pd.Timestamp,
) -> dict | None:  # fmt: skip
    if trained.churn is None or churn_model is None:
        return None
    return truth_metrics(
        run.data_dir, tables, portrait, as_of=as_of, settings=run.settings,
        churn_model=churn_model,
        conversion_model=conv_model or (trained.conversion and trained.conversion.model),
        churn_baseline=trained.churn.extra["baseline"],
    )  # fmt: skip
