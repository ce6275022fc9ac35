"""Optuna tuning of LightGBM parameters: seeded TPE sampler, a trial budget, each trial a nested MLflow run.

Every trial fits with early stopping (on the calibration bucket, see `training.models.gbm`) and is
scored on the validation fold by the caller's objective. Trial 0 is always the default
parameters, so tuning never ends worse than no tuning. The best parameters are refitted by the
caller (the fitted trial models are not kept, to hold memory flat), on every training row:
trials fit on `tuning_sample` (whole customers, about TUNING_ROWS rows) and are scored on a
sample of the validation fold drawn the same way (the gate then scores the refit on all of it). With `prune=True` a
trial whose early-stopping log loss is among the worst tenth of the earlier trials' at the same
tree is pruned (Optuna's PercentilePruner, fed by `pruning_callback` inside `lgb.train`); it is
off by default (see PRUNER).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import optuna
import pandas as pd

from features.contract import CUSTOMER_ID
from training import tracking
from training.models.gbm import DEFAULT_PARAMS

# Trials fit on a customer sample of about this many rows. Measured at 20k customers (~300k
# conversion pairs), a 150k sample chose other parameters and cost 1.1 points of MAP@5.
TUNING_ROWS = 400_000
# Churn trials fit on fewer rows (one per customer and cut-off, not one per pair): at 200k
# customers its 10 trials on 400k rows took 240 s and spread over 0.010 of validation PR AUC,
# the defaults 0.001 below the best. At 20k, a 20k-row sample of the 51k rows cost 0.0045
# of PR AUC after the refit on all (0.527 against 0.532) and 0.0004 of ROC AUC.
CHURN_TUNING_ROWS = 150_000
SAMPLE_KEY = "portrait-tuning!"  # 16 bytes: a hash apart from the calibration bucket's
PRUNE_EVERY = 10  # trees between the reports a trial makes to the pruner
# Pruning is off by default: with 10 trials (all of them TPE's random start-up) the log loss at
# a tree disagrees with MAP@k after early stopping; at 20k customers a median pruner (3 start-up
# trials, 50 trees) and then a 90th-percentile one (5, 100) each stopped the trial that is best
# unpruned (0.480 MAP@5; the run kept 0.469 and 0.473). `tune(..., prune=True)` turns it on.
PRUNER = {"percentile": 90.0, "n_startup_trials": 5, "n_warmup_steps": 100,
          "interval_steps": PRUNE_EVERY}  # fmt: skip
Objective = Callable[[dict[str, Any], list[Callable]], float]  # params, LightGBM callbacks


def tuning_sample(train: pd.DataFrame, *, max_rows: int = TUNING_ROWS) -> pd.DataFrame:
    """Every row of a stable share of customers, about `max_rows` rows (all when fewer)."""
    if len(train) <= max_rows:
        return train
    ids = train[CUSTOMER_ID].to_numpy(dtype=object)
    drawn = pd.util.hash_array(ids, hash_key=SAMPLE_KEY) % 10_000 < max_rows / len(train) * 10_000
    return train.loc[drawn].reset_index(drop=True)


def pruning_callback(trial: optuna.Trial) -> Callable:
    """A LightGBM callback: every PRUNE_EVERY trees report minus the early-stopping log loss
    to the trial and stop the fit (optuna.TrialPruned) when the pruner says so."""

    def report(env: Any) -> None:
        step = env.iteration + 1
        if step % PRUNE_EVERY or not env.evaluation_result_list:
            return
        trial.report(-float(env.evaluation_result_list[0][2]), step=step)
        if trial.should_prune():
            raise optuna.TrialPruned(f"log loss at tree {step} among the worst of the trials")

    return report


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
    objective: Objective,
    *,
    n_trials: int,
    seed: int,
    name: str,
    log_trials: bool = True,
    defaults: dict[str, Any] | None = None,
    prune: bool = False,
) -> TuningResult:
    """Maximise `objective(params, callbacks)` over `n_trials` seeded TPE trials (pruned ones
    included); the callbacks go to `lgb.train`. Each trial is logged as a nested run."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed), study_name=name,
        pruner=optuna.pruners.PercentilePruner(**PRUNER) if prune else optuna.pruners.NopPruner(),
    )  # fmt: skip
    start = {"feature_fraction": 1.0, "bagging_fraction": 1.0, "lambda_l2": 1e-3}
    study.enqueue_trial({**start, **(defaults or DEFAULT_PARAMS)})

    def run_trial(trial: optuna.Trial) -> float:
        params, callbacks = suggest_params(trial), [pruning_callback(trial)] if prune else []
        if not log_trials:
            return objective(params, callbacks)
        with tracking.start_run(f"{name} trial {trial.number}", nested=True):
            tracking.log_params(params)
            try:
                score = objective(params, callbacks)
            except optuna.TrialPruned as pruned:  # a finished run that says why it stopped
                tracking.log_params({"pruned": str(pruned)})
                score = None
            else:
                tracking.log_metrics({"objective": score})
        if score is None:
            raise optuna.TrialPruned()
        return score

    study.optimize(run_trial, n_trials=n_trials)
    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    trials = [(t.params | {"bagging_freq": 1}, float(t.value)) for t in done]
    best = study.best_trial
    return TuningResult(best.params | {"bagging_freq": 1}, float(best.value), trials)
