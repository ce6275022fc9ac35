"""Propensity per product across customers ("who will buy P"): scores at as_of and their evaluation.

The conversion model's calibrated probability of every allowed (customer, product) pair is
written as propensity.parquet. Per product it is evaluated on the validation fold, among the
customers not holding the product: ROC AUC and recall in the top TOP_SHARE of customers by
score, next to a logistic regression per product fitted on the same numeric columns of the
same training pairs (the baseline a marketer's analyst would fit).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from features.contract import CUSTOMER_ID, PRODUCT_ID
from features.holdings import build_holdings
from features.pairs import build_pair_context, build_pairs
from features.policy import apply_policy, customer_policy
from portrait.settings import Settings
from training.models.conversion import LABEL, product_rows, trainable_products
from training.models.cutoffs import history
from training.models.metrics import roc_auc

TOP_SHARE = 0.2
COLUMNS = [CUSTOMER_ID, PRODUCT_ID, "probability"]


def recall_at_top(y: np.ndarray, score: np.ndarray, *, share: float = TOP_SHARE) -> float:
    """Share of the positives found in the top `share` of rows by score (NaN without positives)."""
    y = np.asarray(y, dtype=float)
    if y.sum() == 0:
        return float("nan")
    top = np.argsort(-np.asarray(score, dtype=float), kind="stable")[: int(np.ceil(share * len(y)))]
    return float(y[top].sum() / y.sum())


def score_propensity(model: Any, portrait: pd.DataFrame, context: Any, *, block: int,
                     policy_customers: pd.DataFrame, products: pd.DataFrame,
                     holdings: pd.DataFrame) -> pd.DataFrame:  # fmt: skip
    """customer_id, product_id, probability (calibrated) of every pair the policy allows."""

    def scored() -> Iterator[pd.DataFrame]:
        for start in range(0, len(portrait), block):  # blocks of customers, bounded memory
            pairs = build_pairs(portrait.iloc[start : start + block], context)
            if len(pairs):
                yield pairs[[CUSTOMER_ID, PRODUCT_ID]].assign(
                    probability=model.predict_proba(pairs)
                )

    return allowed_propensity(scored(), policy_customers=policy_customers, products=products,
                              holdings=holdings)  # fmt: skip


def allowed_propensity(scored: Iterable[pd.DataFrame], *, policy_customers: pd.DataFrame,
                       products: pd.DataFrame, holdings: pd.DataFrame) -> pd.DataFrame:  # fmt: skip
    """The pairs of each `scored` block (customer_id, product_id, probability) that the policy
    allows, as one frame. The models stage passes the candidate index's pairs when the champion
    scored them (one scoring pass for the recommendations and this table)."""
    parts = [
        apply_policy(block, customers=policy_customers, products=products, holdings=holdings,
                     personalised=True).kept[COLUMNS]
        for block in scored
    ]  # fmt: skip
    if not parts:
        return pd.DataFrame(
            {c: pd.Series(dtype=float if c == "probability" else str) for c in COLUMNS}
        )
    return pd.concat(parts, ignore_index=True).astype({CUSTOMER_ID: str, PRODUCT_ID: str})


def _logistic(rows: pd.DataFrame, columns: list[str], seed: int) -> Any:
    weight = rows["weight"].to_numpy(dtype=float) if "weight" in rows else None
    model = make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True),
                          StandardScaler(), LogisticRegression(max_iter=300, random_state=seed))  # fmt: skip
    return model.fit(rows[columns].astype(float), rows[LABEL].to_numpy(dtype=int),
                     logisticregression__sample_weight=weight)  # fmt: skip


def evaluate_propensity(model: Any, train: pd.DataFrame, valid: pd.DataFrame, *,
                        seed: int = 42, score: np.ndarray | None = None,
                        ) -> dict[str, dict[str, float]]:  # fmt: skip
    """Mean per-product ROC AUC and recall in the top 20% of the model and of a per-product LR.

    Products count when they have MIN_PRODUCT_POSITIVES buyers in training and both buyers and
    non-buyers on the validation fold. `score`: the model's scores of `valid` when already known.
    """
    columns = [
        c for c in model_features(model) if c in train and pd.api.types.is_numeric_dtype(train[c])
    ]
    score = model.predict_proba(valid) if score is None else score
    rows: dict[str, list[float]] = {"model.roc_auc": [], "model.recall_top20": [],
                                    "logistic.roc_auc": [], "logistic.recall_top20": []}  # fmt: skip
    trained_on, by_product = product_rows(train), product_rows(valid)
    for product in trainable_products(train):  # loop over products
        at = by_product.get(product)
        if at is None or not 0 < valid[LABEL].iloc[at].sum() < len(at):
            continue
        y = valid[LABEL].to_numpy()[at]
        lr = _logistic(train.iloc[trained_on[product]], columns, seed)
        lr_score = lr.predict_proba(valid.iloc[at][columns].astype(float))[:, 1]
        for who, s in (("model", score[at]), ("logistic", lr_score)):
            rows[f"{who}.roc_auc"].append(roc_auc(y, s))
            rows[f"{who}.recall_top20"].append(recall_at_top(y, s))
    out: dict[str, dict[str, float]] = {"model": {}, "logistic": {}}
    for key, values in rows.items():
        who, metric = key.split(".")
        out[who][metric] = float(np.nanmean(values)) if values else float("nan")
        out[who]["products"] = float(len(values))
    return out


def model_features(model: Any) -> list[str]:
    """The feature list of a conversion model (the pair model's for a per-product model)."""
    features = getattr(model, "features", None) or getattr(model.fallback_, "features", [])
    return list(features)


@dataclass(frozen=True)
class AsOfInputs:
    """What scoring at as_of reads: the pair context, holdings and policy facts, built once for
    the recommendations and the propensity table."""

    context: Any
    holdings: pd.DataFrame
    policy: pd.DataFrame


def as_of_inputs(
    tables: dict[str, pd.DataFrame], portrait: pd.DataFrame, *, as_of: pd.Timestamp,
    settings: Settings, segments: pd.DataFrame | None,
) -> AsOfInputs:  # fmt: skip
    """The pair context, holdings and customer policy at as_of."""
    past = history(tables, as_of=as_of)
    context = build_pair_context(
        past, portrait, cutoff=as_of, window_days=settings.time.conversion_horizon_days,
        segments=segments,
    )  # fmt: skip
    return AsOfInputs(
        context,
        build_holdings(past["transactions"], as_of=as_of),
        customer_policy(portrait, qualified_min_assets=settings.policy.qualified_min_assets),
    )
