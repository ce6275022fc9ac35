"""Uplift: a LightGBM T-learner trained on campaign history, Qini / AUUC on held-out customers, persuadables.

Features come from the portrait at each campaign's send time (point in time); the split holds out
whole customers, so no customer is both trained on and measured.
"""

from __future__ import annotations

from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd

from experiments.campaign import campaign_outcomes
from features.contract import CUSTOMER_ID
from features.policy import exportable
from features.portrait import build_features, model_feature_columns
from portrait.errors import PortraitError

MIN_PER_ARM = 50  # fewer converting or non-converting customers per arm cannot train a model


def uplift_training_set(
    tables: dict[str, pd.DataFrame],
    *,
    window_days: int,
    active_days: int = 90,
    campaign_id: str | None = None,
) -> pd.DataFrame:
    """Every campaign customer with the portrait at the send time, `treated` and `converted` (one campaign or all)."""
    campaigns = tables.get("campaigns")
    if campaigns is None or campaigns.empty:
        raise PortraitError("uplift needs a campaigns table with treatment and control customers")
    ids = [campaign_id] if campaign_id else sorted(campaigns["campaign_id"].unique())
    frames = []
    for cid in ids:  # one portrait per campaign (a handful), never per customer
        outcomes = campaign_outcomes(tables, campaign_id=cid, window_days=window_days)
        portrait = build_features(tables, as_of=outcomes["sent_at"].min(), active_days=active_days)
        rows = outcomes[["campaign_id", CUSTOMER_ID, "group", "converted"]].merge(
            portrait, on=CUSTOMER_ID
        )
        frames.append(rows.assign(treated=(rows["group"] == "treatment").astype(int)))
    return pd.concat(frames, ignore_index=True)


class TLearner:
    """Two LightGBM classifiers, one per arm; uplift = P(convert | treated) - P(convert | control)."""

    def __init__(
        self,
        *,
        seed: int = 42,
        n_estimators: int = 200,
        learning_rate: float = 0.03,
        num_leaves: int = 15,
    ):
        self.seed, self.n_estimators, self.learning_rate, self.num_leaves = (
            seed,
            n_estimators,
            learning_rate,
            num_leaves,
        )

    def _model(self) -> lgb.LGBMClassifier:
        return lgb.LGBMClassifier(
            n_estimators=self.n_estimators, learning_rate=self.learning_rate, num_leaves=self.num_leaves,
            min_child_samples=30, subsample=0.8, subsample_freq=1, colsample_bytree=0.8, reg_lambda=1.0,
            random_state=self.seed, deterministic=True, force_row_wise=True, n_jobs=1, verbose=-1,
        )  # fmt: skip

    def fit(self, X: pd.DataFrame, treated: np.ndarray, converted: np.ndarray) -> TLearner:
        """Learn one outcome model per arm on the same feature columns."""
        self.columns_ = list(X.columns)
        self.categories_ = {
            c: sorted(X[c].dropna().astype("str").unique()) for c in X.columns if not _numeric(X[c])
        }
        data = self._prepare(X)
        for arm in (0, 1):
            y = converted[treated == arm]
            if min(int(y.sum()), int((1 - y).sum())) < MIN_PER_ARM // 5:
                raise PortraitError(
                    f"the {'treatment' if arm else 'control'} arm has too few conversions to learn uplift"
                )
        self.treated_model_ = self._model().fit(data.loc[treated == 1], converted[treated == 1])
        self.control_model_ = self._model().fit(data.loc[treated == 0], converted[treated == 0])
        return self

    def predict_uplift(self, X: pd.DataFrame) -> pd.DataFrame:
        """p_treated, p_control and uplift per row of X."""
        data = self._prepare(X)
        p_t = self.treated_model_.predict_proba(data)[:, 1]
        p_c = self.control_model_.predict_proba(data)[:, 1]
        return pd.DataFrame(
            {"p_treated": p_t, "p_control": p_c, "uplift": p_t - p_c}, index=X.index
        )

    def _prepare(self, X: pd.DataFrame) -> pd.DataFrame:
        data = X[self.columns_].copy()
        for c, cats in self.categories_.items():
            data[c] = pd.Categorical(data[c].astype("str").where(data[c].notna()), categories=cats)
        return data.astype({c: "float64" for c in self.columns_ if c not in self.categories_})


def _numeric(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)


def qini_curve(converted: np.ndarray, treated: np.ndarray, score: np.ndarray) -> pd.DataFrame:
    """Qini and uplift curves over customers ranked by `score` (highest first), with the random line."""
    order = np.lexsort((np.arange(len(score)), -np.asarray(score, dtype=float)))
    y, t = np.asarray(converted, float)[order], np.asarray(treated, int)[order]
    n_t, n_c = np.cumsum(t), np.cumsum(1 - t)
    y_t, y_c = np.cumsum(y * t), np.cumsum(y * (1 - t))
    with np.errstate(divide="ignore", invalid="ignore"):
        qini = y_t - np.where(n_c > 0, y_c * n_t / n_c, 0.0)
        uplift = np.where((n_t > 0) & (n_c > 0), y_t / n_t - y_c / n_c, 0.0) * (n_t + n_c)
    fraction = np.arange(1, len(y) + 1) / len(y)
    curve = pd.DataFrame({"fraction": fraction, "qini": qini, "uplift_gain": uplift})
    curve["qini_random"] = fraction * qini[-1]
    curve["uplift_random"] = fraction * uplift[-1]
    return pd.concat([pd.DataFrame({c: [0.0] for c in curve.columns}), curve], ignore_index=True)


def qini_metrics(curve: pd.DataFrame) -> dict[str, float]:
    """Qini coefficient (area between the Qini curve and random, per customer) and AUUC against random."""
    n = len(curve) - 1
    area = lambda col: float(np.trapezoid(curve[col], curve["fraction"]))  # noqa: E731
    return {
        "qini_coefficient": (area("qini") - area("qini_random")) / n,
        "auuc": area("uplift_gain") / n,
        "auuc_random": area("uplift_random") / n,
        "incremental_conversions": float(curve["qini"].iloc[-1]),
    }


@dataclass(frozen=True)
class UpliftResult:
    """The fitted model, held-out scores with the Qini curve, and its metrics."""

    model: TLearner
    holdout: pd.DataFrame  # customer_id, treated, converted, uplift
    curve: pd.DataFrame
    metrics: dict[str, float]
    features: list[str]


def train_uplift(
    training: pd.DataFrame,
    *,
    holdout_share: float = 0.3,
    seed: int = 42,
    model: TLearner | None = None,
) -> UpliftResult:
    """Customer-level split, fit the T-learner on the rest, measure Qini / AUUC on the held-out customers."""
    if not 0 < holdout_share < 1:
        raise PortraitError(
            f"experiments.uplift_holdout_share must be between 0 and 1, got {holdout_share}"
        )
    customers = np.sort(training[CUSTOMER_ID].unique())
    held = np.random.default_rng(seed).permutation(customers)[
        : int(round(len(customers) * holdout_share))
    ]
    test = training[CUSTOMER_ID].isin(held).to_numpy()
    features = model_feature_columns(
        training.drop(columns=["campaign_id", "group", "converted", "treated"])
    )
    train = training.loc[~test]
    model = (model or TLearner(seed=seed)).fit(
        train[features], train["treated"].to_numpy(), train["converted"].to_numpy()
    )
    holdout = training.loc[test, [CUSTOMER_ID, "treated", "converted"]].reset_index(drop=True)
    holdout["uplift"] = model.predict_uplift(training.loc[test, features]).reset_index(drop=True)[
        "uplift"
    ]
    curve = qini_curve(
        holdout["converted"].to_numpy(), holdout["treated"].to_numpy(), holdout["uplift"].to_numpy()
    )
    metrics = qini_metrics(curve) | {
        "holdout_customers": float(len(held)),
        "train_rows": float(len(train)),
    }
    return UpliftResult(model, holdout, curve, metrics, features)


def persuadables(
    model: TLearner, portrait: pd.DataFrame, *, limit: int | None = None
) -> pd.DataFrame:
    """Customers ranked by predicted uplift (not propensity), opted-out customers left out, uplift > 0 only."""
    scores = model.predict_uplift(portrait)
    ranked = pd.concat([portrait[[CUSTOMER_ID]], scores], axis=1)
    ranked = ranked.loc[(ranked["uplift"] > 0).to_numpy() & exportable(portrait)]
    ranked = ranked.sort_values(["uplift", CUSTOMER_ID], ascending=[False, True], kind="stable")
    ranked.insert(1, "rank", np.arange(1, len(ranked) + 1))
    return (ranked if limit is None else ranked.head(limit)).reset_index(drop=True)
