"""Demo only: models, baselines and the planted true probabilities scored on the realised labels at as_of.

The demo bank writes `truth/` beside its tables; its data also covers the horizon after as_of,
so the realised churn and conversion labels at as_of are observable there. Nothing here is ever
used for training; it answers "how close do the models get to the best possible ranking?".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from features.contract import CUSTOMER_ID, PRODUCT_ID
from features.labels import build_churn_labels
from portrait.settings import Settings
from training.models.baselines import RecencyBaseline, product_baselines
from training.models.datasets import conversion_pairs
from training.models.metrics import churn_metrics
from training.models.modelling import baseline_churn_metrics, pair_ranking_metrics


def read_truth(data_dir: Path) -> dict[str, pd.DataFrame] | None:
    """truth/customers.parquet and truth/conversion.parquet when the data directory has them."""
    folder = Path(data_dir) / "truth"
    files = {name: folder / f"{name}.parquet" for name in ("customers", "conversion")}
    if not all(p.is_file() for p in files.values()):
        return None
    return {name: pd.read_parquet(p) for name, p in files.items()}


def churn_truth_metrics(
    tables, portrait, truth, *, as_of, settings: Settings, model, baseline
) -> dict[str, dict[str, float]] | None:
    """Churn metrics of model, recency rule and p_churn_true on the realised labels at as_of."""
    labels = build_churn_labels(
        tables, as_of=as_of, active_days=settings.time.active_days,
        horizon_days=settings.time.churn_horizon_days, rule=settings.engagement,
    )  # fmt: skip
    frame = portrait.merge(labels, on=CUSTOMER_ID).merge(
        truth[[CUSTOMER_ID, "p_churn_true"]].astype({CUSTOMER_ID: str}), on=CUSTOMER_ID
    )
    frame = frame.loc[frame["p_churn_true"].notna()]
    if frame.empty or frame["churned"].nunique() < 2:
        return None
    y = frame["churned"].to_numpy()
    return {
        "model": churn_metrics(y, model.predict_proba(frame)),
        "recency_rule": baseline_churn_metrics(baseline, frame),
        "truth": churn_metrics(y, frame["p_churn_true"].to_numpy(dtype=float)),
    }


def conversion_truth_metrics(
    tables, portrait, truth, *, as_of, settings: Settings, model
) -> dict[str, dict[str, float]] | None:
    """Ranking metrics of model, baselines and p_buy_true on the realised purchases after as_of."""
    horizon = settings.time.conversion_horizon_days
    known = pd.Index(truth[CUSTOMER_ID].astype(str).unique())

    def buyers(block: pd.DataFrame, _: int) -> pd.DataFrame:
        # ranking metrics average over customers who bought: the others change nothing
        block = block.loc[block[CUSTOMER_ID].isin(known)]
        return block.loc[block.groupby(CUSTOMER_ID)["converted"].transform("max") > 0]

    # the same pairs, labels and campaign rule as the validation fold, one horizon later
    pairs, _ = conversion_pairs(
        tables, portrait, cutoff=as_of, horizon_days=horizon, keep=buyers,
        campaign_window_days=settings.experiments.campaign_window_days,
    )  # fmt: skip
    pairs = pairs.merge(
        truth.astype({CUSTOMER_ID: str, PRODUCT_ID: str}), on=[CUSTOMER_ID, PRODUCT_ID]
    )
    if pairs.empty or pairs["converted"].sum() == 0:
        return None
    k = settings.models.k
    out = {"model": pair_ranking_metrics(pairs, model.predict_proba(pairs), k=k)}
    for name, scores in product_baselines(pairs).items():
        out[name] = pair_ranking_metrics(pairs, scores["score"].to_numpy(), k=k)
    out["truth"] = pair_ranking_metrics(pairs, pairs["p_buy_true"].to_numpy(dtype=float), k=k)
    return out


def truth_metrics(
    data_dir: Path,
    tables: dict[str, pd.DataFrame],
    portrait: pd.DataFrame,
    *,
    as_of: pd.Timestamp,
    settings: Settings,
    churn_model: Any,
    conversion_model: Any,
    churn_baseline: RecencyBaseline | None = None,
) -> dict[str, dict[str, dict[str, float]]] | None:
    """{"churn": {...}, "conversion": {...}} against the planted truth, or None outside the demo."""
    truth = read_truth(data_dir)
    if truth is None:
        return None
    if churn_baseline is None:
        churn_baseline = _baseline_at(tables, portrait, as_of=as_of, settings=settings)
    out = {
        "churn": churn_truth_metrics(
            tables, portrait, truth["customers"], as_of=as_of, settings=settings,
            model=churn_model, baseline=churn_baseline,
        ),
        "conversion": None if conversion_model is None else conversion_truth_metrics(
            tables, portrait, truth["conversion"], as_of=as_of, settings=settings,
            model=conversion_model,
        ),
    }  # fmt: skip
    return {k: v for k, v in out.items() if v is not None} or None


def _baseline_at(tables, portrait, *, as_of, settings: Settings) -> RecencyBaseline:
    """The recency rule calibrated at the validation cut-off (labels observed before as_of)."""
    from training.models.datasets import churn_training_set

    data = churn_training_set(
        tables, as_of=as_of, time=settings.time, engagement=settings.engagement
    )
    return RecencyBaseline().fit(data.valid)
