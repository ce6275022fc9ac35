"""MLflow logging and the report.html section of the models: metrics against baselines (and truth), plots."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_curve

from portrait.report import Section
from portrait.stages.status import StageStatus, ran, reduced, skipped
from training import tracking
from training.figures import figure
from training.models.cutoffs import ModelCutoffs
from training.models.metrics import calibration_table, lift_table
from training.models.modelling import Outcome
from training.registry import GateDecision


def _label(outcome: Outcome) -> str:
    return "churned" if outcome.primary == "pr_auc" else "converted"


def churn_figures(outcome: Outcome) -> list[tuple[Any, str]]:
    """ROC curve, calibration curve and lift chart of the churn model (and the rule's ROC)."""
    y = outcome.valid["churned"].to_numpy()
    p = outcome.model.predict_proba(outcome.valid)
    rule = outcome.extra["baseline"].rank_score(outcome.valid)
    fig, ax = figure()
    for name, s in (("model", p), ("recency rule", rule)):
        fpr, tpr, _ = roc_curve(y, s)
        ax.plot(fpr, tpr, label=name)
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
    ax.set(xlabel="false positive rate", ylabel="true positive rate")
    ax.legend()
    figs = [(fig, "ROC on the validation fold")]
    cal = calibration_table(y, p)
    fig, ax = figure()
    ax.plot(cal["predicted"], cal["observed"], marker="o")
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
    ax.set(xlabel="predicted churn probability", ylabel="observed churn rate")
    figs.append((fig, "calibration (10 bins)"))
    lift = lift_table(y, p)
    fig, ax = figure()
    ax.bar(lift["decile"], lift["lift"])
    ax.axhline(1.0, color="grey", lw=0.8)
    ax.set(xlabel="score decile (1 = highest risk)", ylabel="lift")
    figs.append((fig, "lift by decile"))
    return figs


def importance_figure(outcome: Outcome, top: int = 15) -> tuple[Any, str]:
    """Gain importance of the top features."""
    imp = outcome.model.importance().head(top)[::-1]
    fig, ax = figure(5.0, 0.25 * len(imp) + 1.0)
    ax.barh(imp.index, imp.to_numpy())
    ax.set(xlabel="total gain")
    return fig, "feature importance (gain)"


def metric_figure(outcome: Outcome, keys: list[str]) -> tuple[Any, str]:
    """Model against baselines on the given metrics."""
    frame = pd.DataFrame(outcome.metrics).T[keys]
    fig, ax = figure()
    frame.plot.bar(ax=ax, rot=20)
    ax.set(ylabel="validation")
    return fig, "model against baselines (validation fold)"


def outcome_figures(outcome: Outcome) -> list[tuple[Any, str]]:
    """Every plot of one model."""
    if outcome.primary == "pr_auc":
        figs = churn_figures(outcome)
        figs.append(metric_figure(outcome, ["roc_auc", "pr_auc"]))
    else:
        k = next(m for m in outcome.metrics["model"] if m.startswith("map@")).split("@")[1]
        figs = [metric_figure(outcome, [f"map@{k}", f"ndcg@{k}", f"recall@{k}", f"hit_rate@{k}"])]
    return [*figs, importance_figure(outcome)]


def mlflow_names(metrics: dict[str, float]) -> dict[str, float]:
    """Metric names MLflow accepts ("map@5" becomes "map_at_5")."""
    return {k.replace("@", "_at_"): v for k, v in metrics.items()}


def log_outcome(
    outcome: Outcome,
    decision: GateDecision | None,
    *,
    tables: dict[str, pd.DataFrame],
    cutoffs: ModelCutoffs,
) -> None:
    """Parameters, metrics, plots, feature list, data fingerprint and gate decision of one model
    (None: the gate is decided later, with the run's other model, and logged on the parent run)."""
    tracking.log_params(
        {
            **{f"best.{k}": v for k, v in outcome.tuning.best_params.items()},
            "training_cutoffs": [str(c.date()) for c in cutoffs.training],
            "validation_cutoff": str(cutoffs.validation.date()),
            "data_fingerprint": tracking.data_fingerprint(tables),
            "validation_rows": len(outcome.valid),
            "positives_validation": int(outcome.valid[_label(outcome)].sum()),
            "variant": outcome.extra.get("choice", "single"),
        }
    )
    for who, values in outcome.metrics.items():
        tracking.log_metrics(mlflow_names(values), prefix=f"{who.replace(':', '.')}.")
    for variant, values in outcome.extra.get("variants", {}).items():
        tracking.log_metrics(mlflow_names(values), prefix=f"variant.{variant}.")
    tracking.log_dict({"features": list(outcome.model.features)}, "features.json")
    if decision is not None:
        tracking.log_metrics({"gate_passed": float(decision.passed)})
        tracking.log_dict(decision.__dict__, "gate.json")
    for fig, caption in outcome_figures(outcome):
        tracking.log_figure(
            fig, f"plots/{caption.split(' ')[0].lower()}_{abs(hash(caption)) % 997}.png"
        )


def _metrics_table(metrics: dict[str, dict[str, float]], keys: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame(metrics).T
    return frame[[k for k in keys if k in frame.columns]].rename_axis("scored by").reset_index()


def models_section(trained, truth, *, recs: pd.DataFrame, champions: dict[str, Any]) -> Section:
    """The models part of report.html."""
    section = Section("Churn and next-best-product models")
    for name, info in champions.items():
        section.text(f"{name}: champion version {info['version']}. Gate: {info['gate']}.")
    churn, conv = trained.churn, trained.conversion
    for name, status in trained.statuses.items():
        if not status.complete:
            section.text(f"{name} model {status.status}: {status.reason}", css="bad")
    figs: list[tuple[Any, str]] = []
    if churn is not None:
        section.table(
            _metrics_table(churn.metrics, ["roc_auc", "pr_auc", "brier", "lift_top_decile", "n"]),
            caption="Churn, validation fold (labels before as_of): model against the recency rule",
        )
        figs += outcome_figures(churn)
    if conv is not None:
        k = next(m for m in conv.metrics["model"] if m.startswith("map@")).split("@")[1]
        rank_keys = [f"map@{k}", f"ndcg@{k}", f"recall@{k}", f"hit_rate@{k}", "customer_auc"]
        if conv.extra.get("gate_note"):
            section.text(conv.extra["gate_note"])
        section.table(
            _metrics_table(
                conv.metrics | {f"variant:{k_}": v for k_, v in conv.extra["variants"].items()},
                rank_keys,
            ),
            caption=f"Next best product, validation fold: model ({conv.extra['choice']} kept) "
            "against baselines",
        )
        figs += outcome_figures(conv)
        if conv.extra.get("propensity"):
            section.table(
                pd.DataFrame(conv.extra["propensity"]).T,
                caption="Propensity per product, validation fold: mean over products of ROC AUC and "
                "recall in the top 20% of customers, model against a logistic regression per product",
            )
    for name, keys in (("churn", ("roc_auc", "pr_auc", "brier")),
                       ("conversion", ("map", "ndcg", "recall", "hit_rate"))):  # fmt: skip
        if truth and truth.get(name):
            columns = pd.DataFrame(truth[name]).T.columns
            section.table(
                _metrics_table(truth[name], [c for c in columns if c.split("@")[0] in keys]),
                caption=f"Demo: {name} at as_of on realised labels, against the planted true probabilities",
            )
    if figs:
        section.figures(*figs)
    sources = recs["source"].value_counts().rename_axis("source").reset_index(name="rows")
    share = np.mean(~recs["personalised"].astype(bool)) if len(recs) else 0.0
    section.table(sources, caption=f"Recommendation sources ({share:.1%} of rows non-personalised)")
    return section


def recs_status(recs: pd.DataFrame, conv_model: Any, ranker: Any) -> StageStatus:
    """The recommendations' status: what ranked them."""
    if recs.empty:
        return skipped("no allowed product for any customer")
    if conv_model is None and ranker is not None:
        return reduced(
            f"no conversion champion: ranked by the baseline {ranker.name}, "
            "the best baseline on the validation fold"
        )
    if conv_model is None:
        return reduced("no conversion champion: ranked by rules and popularity")
    return ran()
