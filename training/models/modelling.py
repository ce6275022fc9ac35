"""Train, tune and evaluate the churn and conversion models against their baselines (pure, no I/O but MLflow).

Churn: Optuna maximises validation PR AUC; the best parameters are refitted; the recency rule and
the BG/NBD expected-purchases score (training/models/bgnbd.py; on transactions, and on every
engagement) are scored on the same fold. Conversion: Optuna maximises validation MAP@k of the pair model; the
best parameters are refitted as a pair model and as per-product models, and the better one on
validation MAP@k is kept (both numbers are reported). The gate's metric is MAP@k unless every
ranker scores 1.0 on it (a ceiling tie): then customer AUC (`separating_metric`). The best
baseline on that metric is what serves when no conversion model is champion; the per-product
propensity is evaluated against a logistic regression (training/models/propensity.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from features.contract import CUSTOMER_ID, PRODUCT_ID
from portrait.settings import ModelSettings
from training.models.baselines import RecencyBaseline, product_baselines
from training.models.bgnbd import BGNBDBaseline
from training.models.churn import LABEL as CHURN_LABEL
from training.models.churn import ChurnModel, churn_features
from training.models.conversion import DEFAULT_PARAMS as CONVERSION_DEFAULTS
from training.models.conversion import LABEL as CONVERSION_LABEL
from training.models.conversion import ConversionModel, PerProductModel
from training.models.datasets import WEIGHT, TrainingSet
from training.models.metrics import churn_metrics, pr_auc, rank_scores, ranking_metrics, roc_auc
from training.models.propensity import evaluate_propensity
from training.models.tuning import CHURN_TUNING_ROWS, TuningResult, tune, tuning_sample


@dataclass
class Outcome:
    """A trained model with its metrics next to the baselines' on the validation fold."""

    model: Any
    metrics: dict[str, dict[str, float]]
    tuning: TuningResult
    valid: pd.DataFrame
    primary: str
    extra: dict[str, Any] = field(default_factory=dict)

    def baseline_scores(self) -> dict[str, float]:
        """The primary metric of every baseline (what the gate must beat)."""
        return {k: v[self.primary] for k, v in self.metrics.items() if k.startswith("baseline:")}


def baseline_churn_metrics(baseline: RecencyBaseline, frame: pd.DataFrame) -> dict[str, float]:
    """Rule metrics: ranking metrics from the raw rule score, Brier from its calibrated form."""
    y = frame[CHURN_LABEL].to_numpy()
    out = churn_metrics(y, baseline.predict_proba(frame))
    raw = baseline.rank_score(frame)
    out |= {"roc_auc": roc_auc(y, raw), "pr_auc": pr_auc(y, raw)}
    return out


def train_churn(
    data: TrainingSet, *, settings: ModelSettings, log: bool = True, cluster: Any = None
) -> Outcome:
    """Tune, refit and evaluate the churn model and the recency baseline on the validation fold.

    `cluster` (training.engine.Cluster, None on pandas): where large training sets train."""
    features = churn_features(data.train)
    y = data.valid[CHURN_LABEL].to_numpy()
    sample = tuning_sample(data.train, max_rows=CHURN_TUNING_ROWS)
    judged = tuning_sample(data.valid)
    judged_y = judged[CHURN_LABEL].to_numpy()
    shared = ChurnModel(features=features).prepare(sample, label=CHURN_LABEL)

    def fitted(params: dict[str, Any], callbacks: list | None = None) -> ChurnModel:
        model = ChurnModel(features=features, params=params, seed=settings.seed)
        return model.fit(sample, data=shared, callbacks=callbacks, cluster=cluster)

    result = tune(
        lambda p, cb: pr_auc(judged_y, fitted(p, cb).predict_proba(judged)),
        n_trials=settings.n_trials,
        seed=settings.seed,
        name="churn",
        log_trials=log,
    )
    model = ChurnModel(features=features, params=result.best_params, seed=settings.seed)
    model = model.fit(data.train, data=shared if sample is data.train else None, cluster=cluster)
    baseline = RecencyBaseline().fit(data.train)
    metrics = {
        "model": churn_metrics(y, model.predict_proba(data.valid)),
        "baseline:recency_rule": baseline_churn_metrics(baseline, data.valid),
    }
    extra = {"baseline": baseline}
    if "txn_frequency" in data.train:  # portraits from before features/repeat.py have no inputs
        horizon = int((data.cutoffs.scoring - data.cutoffs.validation) / pd.Timedelta(days=1))
        for stream, name in (("txn", "bgnbd"), ("eng", "bgnbd_engagement")):
            bgnbd = BGNBDBaseline(stream=stream, horizon_days=horizon, seed=settings.seed)
            extra[name] = bgnbd.fit(data.train)
            metrics[f"baseline:{name}"] = baseline_churn_metrics(bgnbd, data.valid)
    return Outcome(model, metrics, result, data.valid, "pr_auc", extra)


def rank_pairs(pairs: pd.DataFrame, scores: np.ndarray) -> pd.DataFrame:
    """Ranked (customer, product, score, rank) from per-pair scores."""
    frame = pd.DataFrame(
        {CUSTOMER_ID: pairs[CUSTOMER_ID].to_numpy(), PRODUCT_ID: pairs[PRODUCT_ID].to_numpy()}
    )
    return rank_scores(frame.assign(score=scores))


def pair_ranking_metrics(pairs: pd.DataFrame, scores: np.ndarray, *, k: int) -> dict[str, float]:
    """MAP@k, NDCG@k, recall@k, precision@k, hit rate@k and customer AUC of per-pair scores."""
    relevant = pairs.loc[pairs[CONVERSION_LABEL] == 1, [CUSTOMER_ID, PRODUCT_ID]]
    out = ranking_metrics(rank_pairs(pairs, scores), relevant, k=k)
    return out | {"customer_auc": customer_auc(pairs, scores)}


def customer_auc(pairs: pd.DataFrame, scores: np.ndarray) -> float:
    """Mean over customers with a bought and a not-bought pair of the ROC AUC of their own pairs.

    It separates rankers when every one puts all of a customer's purchases in the top k
    (MAP@k of 1.0 for all: a ceiling tie says nothing about which ranker is better).
    """
    y = pairs[CONVERSION_LABEL].to_numpy(dtype=float)
    frame = pd.DataFrame({"c": pairs[CUSTOMER_ID].to_numpy(), "y": y, "s": scores})
    frame["r"] = frame.groupby("c")["s"].rank(method="average")
    g = frame.groupby("c").agg(pos=("y", "sum"), n=("y", "size"))
    g["rank_pos"] = (frame["r"] * frame["y"]).groupby(frame["c"]).sum()
    g = g.loc[(g["pos"] > 0) & (g["pos"] < g["n"])]
    if g.empty:
        return float("nan")
    neg = g["n"] - g["pos"]
    auc = (g["rank_pos"] - g["pos"] * (g["pos"] + 1) / 2) / (g["pos"] * neg)
    return float(auc.mean())


CEILING = 1.0 - 1e-9
TIE_BREAK_METRIC = "customer_auc"


def separating_metric(metrics: dict[str, dict[str, float]], primary: str) -> tuple[str, str]:
    """The gate's metric: `primary`, or customer AUC when every ranker scores 1.0 on it (and why)."""
    values = [m.get(primary, float("nan")) for m in metrics.values()]
    if values and all(v >= CEILING for v in values):
        note = (f"every ranker scores 1.0 on {primary} (a ceiling tie); the gate uses "
                f"{TIE_BREAK_METRIC}, each customer's own ROC AUC, averaged")  # fmt: skip
        return TIE_BREAK_METRIC, note
    return primary, ""


def best_baseline(metrics: dict[str, dict[str, float]], metric: str) -> str:
    """The baseline with the highest `metric` on validation (what serves without a champion)."""
    scores = {k.removeprefix("baseline:"): v.get(metric, float("nan")) for k, v in metrics.items()
              if k.startswith("baseline:")}  # fmt: skip
    scores = {k: (v if np.isfinite(v) else -np.inf) for k, v in scores.items()}
    return max(scores, key=scores.get)


def buyers(pairs: pd.DataFrame) -> pd.DataFrame:
    """The pairs of customers who bought: all that MAP@k reads (it averages over buyers), so
    tuning trials score only these rows and get the same value as on the whole fold."""
    bought = pairs.groupby(CUSTOMER_ID, sort=False)[CONVERSION_LABEL].transform("max") > 0
    return pairs.loc[bought.to_numpy()].reset_index(drop=True)


def train_conversion(
    data: TrainingSet, *, settings: ModelSettings, log: bool = True, cluster: Any = None
) -> Outcome:
    """Tune the pair model, refit pair and per-product variants, keep the better, score baselines.

    `cluster` (training.engine.Cluster, None on pandas): where large training sets train."""
    k, valid = settings.k, data.valid
    primary = f"map@{k}"

    sample, judged = tuning_sample(data.train), tuning_sample(buyers(valid))
    relevant = judged.loc[judged[CONVERSION_LABEL] == 1, [CUSTOMER_ID, PRODUCT_ID]]
    weight = WEIGHT if WEIGHT in sample else None
    shared = ConversionModel().prepare(sample, label=CONVERSION_LABEL, weight=weight)

    def fitted(params: dict[str, Any], callbacks: list | None = None) -> ConversionModel:
        model = ConversionModel(params=params, seed=settings.seed)
        return model.fit(sample, data=shared, callbacks=callbacks, cluster=cluster)

    def objective(params: dict[str, Any], callbacks: list) -> float:
        scores = fitted(params, callbacks).predict_proba(judged)
        return ranking_metrics(rank_pairs(judged, scores), relevant, k=k)[primary]

    result = tune(
        objective,
        n_trials=settings.n_trials,
        seed=settings.seed,
        name="conversion",
        log_trials=log,
        defaults=CONVERSION_DEFAULTS,
    )
    pair = ConversionModel(params=result.best_params, seed=settings.seed)
    pair = pair.fit(data.train, data=shared if sample is data.train else None, cluster=cluster)
    per_product = PerProductModel(params=result.best_params, seed=settings.seed)
    per_product = per_product.fit(data.train, fallback=pair, cluster=cluster)
    chosen = {"pair": pair.predict_proba(valid), "per_product": per_product.predict_proba(valid)}
    variants = {name: pair_ranking_metrics(valid, s, k=k) for name, s in chosen.items()}
    choice = (
        "pair" if variants["pair"][primary] >= variants["per_product"][primary] else "per_product"
    )
    model = pair if choice == "pair" else per_product
    metrics = {"model": variants[choice]}
    for name, scores in product_baselines(valid).items():
        metrics[f"baseline:{name}"] = pair_ranking_metrics(valid, scores["score"].to_numpy(), k=k)
    gate_metric, note = separating_metric(metrics, primary)
    extra = {"variants": variants, "choice": choice, "gate_note": note,
             "serving_baseline": best_baseline(metrics, gate_metric),
             "propensity": evaluate_propensity(model, data.train, valid, seed=settings.seed,
                                               score=chosen[choice])}  # fmt: skip
    return Outcome(model, metrics, result, valid, gate_metric, extra)


def flat_metrics(trained: Any, truth: dict[str, Any] | None) -> dict[str, float]:
    """Every metric of both outcomes, their gate and the truth check, as flat `model.who.metric` keys."""
    out: dict[str, float] = {}
    for name, outcome in (("churn", trained.churn), ("conversion", trained.conversion)):
        if outcome is None:
            continue
        for who, values in outcome.metrics.items():
            for metric, value in values.items():
                out[f"{name}.{who.removeprefix('baseline:')}.{metric}"] = value
        out[f"{name}.promoted"] = float(trained.decisions[name].passed)
        for who, values in outcome.extra.get("propensity", {}).items():
            out |= {f"{name}.propensity.{who}.{m}": v for m, v in values.items()}
    for name, values in (truth or {}).items():
        for who, metrics in values.items():
            for metric, value in metrics.items():
                out[f"truth.{name}.{who}.{metric}"] = value
    return {k.replace("@", "_at_"): v for k, v in out.items()}
