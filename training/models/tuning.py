"""Optuna tuning of LightGBM parameters: seeded TPE sampler, a trial budget, each trial a nested MLflow run.

Every trial fits with early stopping (on the calibration bucket, see `training.models.gbm`) and is
scored on the validation fold by the caller's objective. Trial 0 is always the default
parameters, so tuning never ends worse than no tuning. The best parameters are refitted by the
caller (the fitted trial models are not kept, to hold memory flat).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import optuna

from training import tracking
from training.models.gbm import DEFAULT_PARAMS


@dataclass(frozen=True)
class TuningResult:
    """Best parameters, their validation score, and every trial's (params, score)."""

    best_params: dict[str, Any]
    best_score: float
    trials: list[tuple[dict[str, Any], float]]


def suggest_params(trial: optuna.Trial) -> dict[str, Any]:
    """The search space (depth capped so TreeSHAP reasons stay cheap)."""
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.04, 0.2, log=True),
        "num_leaves": trial.suggest_int("num_leaves", 7, 31),
        "max_depth": trial.suggest_int("max_depth", 3, 6),
        "min_child_samples": trial.suggest_int("min_child_samples", 10, 400, log=True),
        "feature_fraction": trial.suggest_float("feature_fraction", 0.5, 1.0),
        "bagging_fraction": trial.suggest_float("bagging_fraction", 0.5, 1.0),
        "bagging_freq": 1,
        "lambda_l2": trial.suggest_float("lambda_l2", 1e-3, 10.0, log=True),
    }


def tune(
    objective: Callable[[dict[str, Any]], float],
    *,
    n_trials: int,
    seed: int,
    name: str,
    log_trials: bool = True,
    defaults: dict[str, Any] | None = None,
) -> TuningResult:
    """Maximise `objective(params)` over `n_trials` seeded TPE trials; each trial logged as a nested run."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed), study_name=name
    )
    start = {"feature_fraction": 1.0, "bagging_fraction": 1.0, "lambda_l2": 1e-3}
    study.enqueue_trial({**start, **(defaults or DEFAULT_PARAMS)})

    def run_trial(trial: optuna.Trial) -> float:
        params = suggest_params(trial)
        if not log_trials:
            return objective(params)
        with tracking.start_run(f"{name} trial {trial.number}", nested=True):
            tracking.log_params(params)
            score = objective(params)
            tracking.log_metrics({"objective": score})
        return score

    study.optimize(run_trial, n_trials=n_trials)
    trials = [(t.params | {"bagging_freq": 1}, float(t.value)) for t in study.trials]
    best = study.best_trial
    return TuningResult(best.params | {"bagging_freq": 1}, float(best.value), trials)
