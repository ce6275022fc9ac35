"""`portrait train | tune | evaluate`: the models without the rest of the pipeline (also the MLproject entry points)."""

from __future__ import annotations

import dataclasses
import json

from features.engagement import kept_engagement
from features.validate import load_dataset
from portrait.arguments import parse_as_of
from portrait.errors import PortraitError
from portrait.settings import Settings
from portrait.stages.models import run_training_sets, train_and_gate
from training import tracking
from training.models.baselines import RecencyBaseline, product_baselines
from training.models.churn import LABEL as CHURN_LABEL
from training.models.cutoffs import stamp
from training.models.metrics import churn_metrics
from training.models.modelling import baseline_churn_metrics, pair_ranking_metrics
from training.registry import CHURN_MODEL, CONVERSION_MODEL, require_champion


def _settings(settings: Settings, *, trials: int | None, seed: int | None) -> Settings:
    models = settings.models
    if trials is not None or seed is not None:
        if trials is not None and trials < 1:
            raise PortraitError(f"--trials must be at least 1, got {trials}")
        models = dataclasses.replace(
            models,
            n_trials=trials if trials is not None else models.n_trials,
            seed=seed if seed is not None else models.seed,
        )
    return dataclasses.replace(settings, models=models)


def _train(
    settings: Settings, *, data: str, as_of: str, trials: int | None, seed: int | None, what: str
) -> int:
    settings = _settings(settings, trials=trials, seed=seed)
    tables = load_dataset(data, max_bad_fraction=settings.validation.max_bad_fraction).tables
    uri = tracking.configure(settings.tracking)
    cutoff = stamp(parse_as_of(as_of))
    with tracking.start_run(f"{what} {cutoff.date()}"):
        tracking.log_params(
            {"data_dir": str(data), "as_of": str(cutoff.date()), "settings": settings}
        )
        trained = train_and_gate(tables, as_of=cutoff, settings=settings)
    for name, outcome in (("churn", trained.churn), ("conversion", trained.conversion)):
        if outcome is None:
            print(f"{name}: {trained.statuses[name].reason}")
            continue
        decision = trained.decisions[name]
        print(f"{name}: {outcome.primary} model {outcome.metrics['model'][outcome.primary]:.4f}; "
              f"baselines {json.dumps({k: round(v, 4) for k, v in outcome.baseline_scores().items()})}")  # fmt: skip
        verdict = "promoted to champion" if decision.passed else "NOT promoted"
        print(f"  version {trained.versions[name]} {verdict}: {decision.reason}")
    print(f"MLflow: {tracking.ui_command(uri)}")
    return 0


def train(
    *, settings: Settings, data: str, as_of: str, trials: int | None, seed: int | None
) -> int:
    """Train both models with the default parameters (one trial), gate and register them."""
    return _train(settings, data=data, as_of=as_of, trials=trials or 1, seed=seed, what="train")


def tune(*, settings: Settings, data: str, as_of: str, trials: int | None, seed: int | None) -> int:
    """Tune both models with Optuna (--trials, default models.n_trials), refit, gate, register."""
    return _train(settings, data=data, as_of=as_of, trials=trials, seed=seed, what="tune")


def evaluate(
    *, settings: Settings, data: str, as_of: str, seed: int | None, trials: int | None
) -> int:
    """Score the current champions and the baselines on the validation fold before --as-of."""
    settings = _settings(settings, trials=None, seed=seed)
    tables = load_dataset(data, max_bad_fraction=settings.validation.max_bad_fraction).tables
    tracking.configure(settings.tracking)
    as_of = stamp(parse_as_of(as_of))
    churn, churn_version = require_champion(CHURN_MODEL)
    conv, conv_version = require_champion(CONVERSION_MODEL)
    k = settings.models.k
    with kept_engagement():  # the run's training sets: one portrait per cut-off, its settings
        sets = run_training_sets(tables, as_of=as_of, settings=settings)
        cs = sets.pop("churn")()
        y = cs.valid[CHURN_LABEL].to_numpy()
        rule = RecencyBaseline().fit(cs.train)
        results = {
            f"{CHURN_MODEL} v{churn_version}": churn_metrics(y, churn.predict_proba(cs.valid)),
            "churn recency rule": baseline_churn_metrics(rule, cs.valid),
        }
        validation = cs.cutoffs.validation
        del cs  # before the conversion pairs are built
        vs = sets.pop("conversion")()
    results[f"{CONVERSION_MODEL} v{conv_version}"] = pair_ranking_metrics(
        vs.valid, conv.predict_proba(vs.valid), k=k
    )
    for name, scores in product_baselines(vs.valid).items():
        results[f"conversion {name}"] = pair_ranking_metrics(
            vs.valid, scores["score"].to_numpy(), k=k
        )
    print(f"validation cut-off {validation.date()}")
    for who, metrics in results.items():
        print(f"{who:40s} " + "  ".join(f"{k} {v:.4f}" for k, v in metrics.items() if k != "n"))
    return 0
