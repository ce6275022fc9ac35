"""Model logging, the MLflow model registry and the quality gate (the one place for registry calls).

A model is logged as an MLflow pyfunc that wraps the whole fitted object (booster, calibrator,
feature list, categories), with a signature and an input example. Each trained model is
registered as a new version; the alias `champion` moves to it only when the gate passes:
strictly better than the current champion on the primary metric, re-scored on the SAME
validation frame, and strictly better than every baseline. Otherwise the alias stays where it is
and the decision says why. Primary metrics: churn PR AUC (churners are a minority and the
retention team works the top of the list; PR AUC rewards exactly that), conversion MAP@k.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature

from portrait.errors import PortraitError

CHAMPION = "champion"
CHURN_MODEL = "portrait-churn"
CONVERSION_MODEL = "portrait-conversion"


class PortraitModel(mlflow.pyfunc.PythonModel):
    """pyfunc wrapper: `predict` gives calibrated probabilities; `.model` is the full object."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def predict(self, context, model_input: pd.DataFrame, params=None) -> np.ndarray:
        return self.model.predict_proba(model_input)


def _example(frame: pd.DataFrame, features: list[str], n: int = 5) -> pd.DataFrame:
    """A small input example with plain dtypes MLflow's schema inference understands."""
    example = frame[features].head(n).reset_index(drop=True)
    for col in example.columns:
        if not pd.api.types.is_numeric_dtype(example[col]):
            example[col] = example[col].astype(object).where(example[col].notna(), None)
        else:
            example[col] = example[col].astype(float)
    return example


def log_model(model: Any, *, name: str, frame: pd.DataFrame) -> str:
    """Log the fitted model into the active run with signature and input example; returns its URI."""
    features = list(model.features) if hasattr(model, "features") else list(frame.columns)
    features += [c for c in getattr(model, "extra_inputs", ()) if c not in features]
    example = _example(frame, features)
    signature = infer_signature(example, model.predict_proba(frame.head(len(example))))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        info = mlflow.pyfunc.log_model(
            name=name,
            python_model=PortraitModel(model),
            signature=signature,
            input_example=example,
        )
    return info.model_uri


def register(model_uri: str, *, name: str) -> str:
    """Register a logged model as a new version of `name`; returns the version."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return str(mlflow.register_model(model_uri, name).version)


def champion_version(name: str) -> str | None:
    """The version carrying the `champion` alias, or None when there is none yet."""
    try:
        return str(MlflowClient().get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException:
        return None


def load_champion(name: str) -> tuple[Any, str] | None:
    """The champion's full model object and its version, from `models:/NAME@champion` (None if none)."""
    version = champion_version(name)
    if version is None:
        return None
    loaded = mlflow.pyfunc.load_model(f"models:/{name}@{CHAMPION}")
    return loaded.unwrap_python_model().model, version


def require_champion(name: str) -> tuple[Any, str]:
    """Like `load_champion`, but a missing champion is a user error with what to do."""
    found = load_champion(name)
    if found is None:
        raise PortraitError(
            f"no model {name!r} carries the alias {CHAMPION!r} in {mlflow.get_tracking_uri()}; "
            f"train one with `portrait train` or `portrait run`"
        )
    return found


def promote(name: str, version: str) -> None:
    """Move the `champion` alias to `version`."""
    MlflowClient().set_registered_model_alias(name, CHAMPION, version)


@dataclass(frozen=True)
class GateDecision:
    """Whether the candidate passes, the numbers compared, and why."""

    passed: bool
    metric: str
    candidate: float
    champion: float | None
    baselines: dict[str, float]
    reason: str


def quality_gate(
    *, metric: str, candidate: float, champion: float | None, baselines: dict[str, float]
) -> GateDecision:
    """Pass only when strictly better than the champion (if any) and than every baseline."""
    if not np.isfinite(candidate):
        return GateDecision(
            False, metric, candidate, champion, baselines, f"candidate {metric} is not finite"
        )
    beaten = {k: v for k, v in baselines.items() if not candidate > v}
    if beaten:
        worst = ", ".join(f"{k} {v:.4f}" for k, v in beaten.items())
        reason = f"candidate {metric} {candidate:.4f} does not beat baseline(s) {worst}"
        return GateDecision(False, metric, candidate, champion, baselines, reason)
    if champion is not None and not candidate > champion:
        reason = f"candidate {metric} {candidate:.4f} does not beat the champion's {champion:.4f} on the same validation data"
        return GateDecision(False, metric, candidate, champion, baselines, reason)
    against = "no champion yet" if champion is None else f"champion {champion:.4f}"
    reason = f"candidate {metric} {candidate:.4f} beats {against} and every baseline"
    return GateDecision(True, metric, candidate, champion, baselines, reason)


def gate_and_register(
    model: Any,
    *,
    name: str,
    metric: str,
    score: Callable[[Any], float],
    baselines: dict[str, float],
    frame: pd.DataFrame,
) -> tuple[GateDecision, str]:
    """Log and register the candidate, re-score the champion with `score`, move the alias only on a pass."""
    candidate = score(model)
    current = load_champion(name)
    champion_score = None
    if current is not None:
        try:
            champion_score = score(current[0])
        except (KeyError, ValueError) as exc:  # the old champion cannot read today's features
            champion_score = float("-inf")
            warnings.warn(
                f"champion {name} v{current[1]} cannot score the validation data: {exc}",
                stacklevel=2,
            )
    decision = quality_gate(
        metric=metric, candidate=candidate, champion=champion_score, baselines=baselines
    )
    version = register(
        log_model(model, name=name.removeprefix("portrait-"), frame=frame), name=name
    )
    if decision.passed:
        promote(name, version)
    return decision, version
