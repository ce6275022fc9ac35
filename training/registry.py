"""Model logging, the MLflow model registry and the quality gate (the one place for registry calls).

A model is logged as an MLflow pyfunc that wraps the whole fitted object (booster, calibrator,
feature list, categories), with a signature and an input example. A run's models are registered
and gated together once both are trained, under a file lock per tracking store
(`promote_together`), so two runs never both win and no alias moves half-way through a run; the
service reads the champion pair under the same lock. The alias `champion` moves only when the
gate passes:
strictly better than the current champion on the primary metric, re-scored on the SAME
validation frame, and strictly better than every baseline. Otherwise the alias stays where it is
and the decision says why. Primary metrics: churn PR AUC (churners are a minority and the
retention team works the top of the list; PR AUC rewards exactly that), conversion MAP@k.
"""

from __future__ import annotations

import fcntl
import hashlib
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
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
PAIR_TAG = "portrait.champion_pair"  # on each champion version: the pair it was promoted into


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


def load_version(name: str, version: str) -> Any:
    """The full model object of one registered version."""
    return mlflow.pyfunc.load_model(f"models:/{name}/{version}").unwrap_python_model().model


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


@dataclass(frozen=True)
class Candidate:
    """A trained model logged to MLflow (not yet registered), its score and what it must beat."""

    name: str
    model: Any
    model_uri: str
    metric: str
    score: Callable[[Any], float]
    candidate_score: float
    baselines: dict[str, float]


def prepare(
    model: Any,
    *,
    name: str,
    metric: str,
    score: Callable[[Any], float],
    baselines: dict[str, float],
    frame: pd.DataFrame,
    scored: float | None = None,
) -> Candidate:
    """Score the candidate and log it into the active run; nothing is registered yet.

    `scored`: `score(model)` when the caller computed it already (the champion is still scored
    by `score` at the gate)."""
    candidate_score = score(model) if scored is None else float(scored)
    uri = log_model(model, name=name.removeprefix("portrait-"), frame=frame)
    return Candidate(name, model, uri, metric, score, candidate_score, baselines)


def gate(candidate: Candidate) -> GateDecision:
    """The gate decision of a candidate against the champion of now, re-scored on its data."""
    current = load_champion(candidate.name)
    champion_score = None
    if current is not None:
        try:
            champion_score = candidate.score(current[0])
        except (KeyError, ValueError) as exc:  # the old champion cannot read today's features
            champion_score = float("-inf")
            warnings.warn(
                f"champion {candidate.name} v{current[1]} cannot score the validation data: {exc}",
                stacklevel=2,
            )
    return quality_gate(
        metric=candidate.metric, candidate=candidate.candidate_score, champion=champion_score,
        baselines=candidate.baselines,
    )  # fmt: skip


def promotion_lock_path(uri: str) -> Path:
    """The lock file of a tracking store: beside a sqlite file or inside a file store; for a
    remote server, one per store in ~/.portrait (it serialises the runs of this machine only)."""
    if uri.startswith("sqlite:///"):
        return Path(uri.removeprefix("sqlite:///") + ".promote.lock")
    if uri.startswith("file://") or "://" not in uri:
        return Path(uri.removeprefix("file://")) / ".promote.lock"
    digest = hashlib.sha256(uri.encode()).hexdigest()[:16]
    return Path.home() / ".portrait" / f"promote-{digest}.lock"


@contextmanager
def promotion_lock() -> Iterator[None]:
    """Held while champions are read as a pair or gated and moved: one run at a time per store."""
    path = promotion_lock_path(mlflow.get_tracking_uri())
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def promote_together(candidates: list[Candidate]) -> dict[str, tuple[GateDecision, str]]:
    """Gate every candidate of a run against the champions of now, register them all, and move
    the aliases of those that pass, in one step under the store's lock: two runs never both
    win, and no alias moves before every model of the run is trained and gated. A candidate
    whose gate fails keeps its previous champion. Each champion is tagged with the pair."""
    with promotion_lock():
        decisions = {c.name: gate(c) for c in candidates}  # any error here: nothing moves
        versions = {c.name: register(c.model_uri, name=c.name) for c in candidates}
        for name, decision in decisions.items():
            if decision.passed:
                promote(name, versions[name])
        pair = ",".join(f"{n}:v{champion_version(n)}" for n in sorted(decisions))
        client = MlflowClient()
        for name in decisions:
            if (version := champion_version(name)) is not None:
                client.set_model_version_tag(name, version, PAIR_TAG, pair)
    return {name: (decisions[name], versions[name]) for name in decisions}


def champion_pair(names: list[str]) -> dict[str, str | None]:
    """The champion version of each model, read together under the lock (never a torn pair)."""
    with promotion_lock():
        return {name: champion_version(name) for name in names}


def gate_and_register(model: Any, **candidate: Any) -> tuple[GateDecision, str]:
    """One model: log it (`prepare`'s keyword arguments), then gate, register and promote it
    under the lock."""
    return promote_together([prepare(model, **candidate)])[candidate["name"]]
