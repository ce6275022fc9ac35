"""A calibrated LightGBM binary classifier with per-row factor explanations (shared by churn and conversion).

Fitting: rows whose customer falls in the calibration bucket (a stable hash of customer_id,
`calibration_share` of customers) are held out of the training cut-offs; the booster early-stops
on them and a Platt scaler (logistic regression on the raw margin) is fitted on them. Platt is
strictly monotone, so calibration never changes a ranking (AUC, MAP@k stay the booster's).
Explanations are TreeSHAP values on the margin: LightGBM's `pred_contrib` for a few rows, the
same values from per-leaf tables for a batch (`training.models.treeshap`, 16x less CPU a row).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from features.contract import CUSTOMER_ID
from portrait.errors import NotEnoughData
from training.models.treeshap import FAST_ROWS, FastTreeShap, float_matrix

Part = tuple[pd.DataFrame, np.ndarray, np.ndarray | None]  # features, labels, weights

BASE_PARAMS = {
    "objective": "binary",
    "metric": "binary_logloss",
    "verbosity": -1,
    "deterministic": True,
    "force_row_wise": True,
    "num_threads": 1,
}
PARALLEL_ROWS = (
    5_000  # batch predictions this size and larger use every core (0 = OpenMP's default)
)
# Depth is capped: TreeSHAP reasons cost grows with depth squared, and serving explains every list.
DEFAULT_PARAMS = {"learning_rate": 0.05, "num_leaves": 15, "max_depth": 5, "min_child_samples": 40}


# Training sets this size and larger train on every core. LightGBM with `deterministic` and
# `force_row_wise` gives the same trees on any number of threads (tests/training/test_models.py
# checks it), so the threads never change a model; below this size starting them costs more.
PARALLEL_TRAIN_ROWS = 50_000


def train_threads(rows: int) -> int:
    """LightGBM threads for training on `rows` rows: every core for a large set, else one."""
    return 0 if rows >= PARALLEL_TRAIN_ROWS else 1


def predict_threads(rows: int) -> int:
    """LightGBM threads for predicting `rows` rows: every core for a batch, one for a request.

    Rows are independent, so the threads never change a score; below PARALLEL_ROWS starting
    them costs more than it saves (a serving request is a handful of pairs).
    """
    return 0 if rows >= PARALLEL_ROWS else 1


def calibration_mask(customer_ids: pd.Series, *, share: float) -> np.ndarray:
    """Stable per-customer split: True for customers in the calibration / early-stopping bucket."""
    hashed = pd.util.hash_array(np.asarray(customer_ids, dtype=object)) % 1000
    return hashed < int(round(share * 1000))


def exact_float32(x: pd.DataFrame) -> pd.DataFrame:
    """`x` with every number column whose values float32 holds exactly (counts, days, flags,
    round amounts) stored as float32: half the memory, the same values for LightGBM, which
    reads them as doubles. Other columns are left as they are."""
    exact = {}
    for col, dtype in x.dtypes.items():
        if dtype.kind not in "iuf" or dtype == np.float32:
            continue
        values = x[col].to_numpy()
        narrow = values.astype(np.float32)
        if np.array_equal(narrow.astype(values.dtype), values, equal_nan=dtype.kind == "f"):
            exact[col] = narrow
    return x.assign(**exact) if exact else x


@dataclass
class FitData:
    """A training frame's model inputs: fit rows, calibration rows, categories, Datasets.

    The LightGBM Datasets are built on first use and then shared by every fit on this frame
    (feature_pre_filter off: tuning trials change min_data_in_leaf on the same bins).
    """

    categories: dict[str, list[str]]
    fit: Part
    cal: Part
    in_sample: bool
    _sets: Any = field(default=None, repr=False)

    def datasets(self) -> Any:
        """The (fit, early-stopping) Dataset pair in this process, binned once."""
        from training.engine import local_datasets

        if self._sets is None:
            self._sets = local_datasets(self.fit, self.cal)
        return self._sets


class CalibratedGBM:
    """LightGBM booster + Platt calibrator + feature list and categorical handling."""

    def __init__(
        self,
        *,
        features: list[str],
        categorical: tuple[str, ...] = (),
        params: dict[str, Any] | None = None,
        seed: int = 42,
        num_boost_round: int = 600,
        early_stopping_rounds: int = 50,
        calibration_share: float = 0.2,
    ) -> None:
        self.features = list(features)
        self.categorical = tuple(c for c in categorical if c in features)
        self.params = dict(params or DEFAULT_PARAMS)
        self.seed = seed
        self.num_boost_round = num_boost_round
        self.early_stopping_rounds = early_stopping_rounds
        self.calibration_share = calibration_share

    def _matrix(self, frame: pd.DataFrame, rows: np.ndarray | None = None) -> pd.DataFrame:
        """Model inputs in training order (of `rows` only, a boolean mask, when given);
        categoricals with the categories seen in training."""
        missing = [c for c in self.features if c not in frame.columns]
        if missing:
            raise KeyError(f"frame lacks model feature(s) {', '.join(missing[:5])}")
        x = frame[self.features].copy() if rows is None else frame.loc[rows, self.features]
        for col in self.categorical:
            x[col] = pd.Categorical(x[col].astype(object), categories=self.categories_[col])
        return x

    def setup(self, train: pd.DataFrame) -> None:
        """Features and categoricals that depend on the training frame (subclasses set them)."""

    def prepare(self, train: pd.DataFrame, *, label: str, weight: str | None = None) -> FitData:
        """The frame's LightGBM inputs, for one fit or shared by many (every tuning trial)."""
        self.setup(train)
        self.categories_ = {
            c: sorted(train[c].dropna().astype(str).unique().tolist()) for c in self.categorical
        }
        y = train[label].to_numpy(dtype=float)
        w = None if weight is None else train[weight].to_numpy(dtype=float)
        if len(np.unique(y)) < 2:
            raise NotEnoughData(
                f"the training rows hold only {label} = {y[0] if len(y) else 'nothing'}: "
                "both classes are needed to train a model"
            )
        cal = self._calibration_rows(train, y)
        fit_rows = ~cal if (~cal).any() else cal
        # each part straight from the frame: no whole-frame copy next to the two parts
        part = lambda rows: (exact_float32(self._matrix(train, rows)), y[rows],  # noqa: E731
                             None if w is None else w[rows])  # fmt: skip
        return FitData(self.categories_, part(fit_rows), part(cal), self.in_sample_calibration_)

    def fit(
        self, train: pd.DataFrame, *, label: str, weight: str | None = None,
        data: FitData | None = None, callbacks: list | None = None, cluster: Any = None,
    ) -> CalibratedGBM:  # fmt: skip
        """Train on the non-calibration customers, early-stop and calibrate on the others.

        `data` (from `prepare` on the same frame) skips building the inputs again; `callbacks`
        go to `lgb.train` (a tuning trial's pruner); with a Dask `cluster` (training.engine.Cluster)
        large sets train on its workers. The cluster is an argument, never kept on the model.
        """
        if data is None:
            data = self.prepare(train, label=label, weight=weight)
        else:
            self.setup(train)
        self.categories_, self.in_sample_calibration_ = data.categories, data.in_sample
        from training.engine import train_booster  # lgb.train here, lightgbm.dask in a dask run

        params = {**BASE_PARAMS, **self.params, "seed": self.seed}
        if cluster is None:
            params["num_threads"] = train_threads(len(data.fit[0]))
        self.booster_, self.best_iteration_, self.validation_logloss_ = train_booster(
            params, data.fit, data.cal, rounds=self.num_boost_round,
            patience=self.early_stopping_rounds, datasets=data.datasets,
            callbacks=callbacks, cluster=cluster,
        )  # fmt: skip
        x_cal, y_cal, w_cal = data.cal
        margin = self.booster_.predict(x_cal, raw_score=True, num_iteration=self.best_iteration_,
                                       num_threads=predict_threads(len(x_cal)))  # fmt: skip
        self.calibrator_ = LogisticRegression(C=1e6).fit(
            margin.reshape(-1, 1), y_cal, sample_weight=w_cal
        )
        return self

    def _calibration_rows(self, train: pd.DataFrame, y: np.ndarray) -> np.ndarray:
        """The calibration bucket; every row when the bucket or the rest misses a class.

        Tiny data (a handful of positives) can put every positive on one side of the split;
        then the booster early-stops and is calibrated on its own rows (optimistic, but it runs).
        """
        cal = calibration_mask(train[CUSTOMER_ID], share=self.calibration_share)
        both = len(np.unique(y[cal])) == 2 and len(np.unique(y[~cal])) == 2
        self.in_sample_calibration_ = not both
        return cal if both else np.ones(len(y), dtype=bool)

    def predict_margin(self, frame: pd.DataFrame) -> np.ndarray:
        """Raw booster score (log-odds before calibration)."""
        return self.booster_.predict(self._matrix(frame), raw_score=True,
                                     num_iteration=self.best_iteration_,
                                     num_threads=predict_threads(len(frame)))  # fmt: skip

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated probability of the positive class, one per row."""
        if len(frame) == 0:
            return np.zeros(0)
        margin = self.predict_margin(frame).reshape(-1, 1)
        return self.calibrator_.predict_proba(margin)[:, 1]

    def contributions(self, frame: pd.DataFrame) -> np.ndarray:
        """Per-row, per-feature SHAP contributions on the margin (bias column dropped): a batch
        through the compiled trees (`training.models.treeshap`, the same values), else LightGBM."""
        x = self._matrix(frame)
        if len(x) >= FAST_ROWS and (tables := self._shap_tables()) is not None:
            threads = (os.cpu_count() or 1) if predict_threads(len(x)) == 0 else 1
            return tables.contributions(float_matrix(x), threads=threads)
        contrib = self.booster_.predict(x, pred_contrib=True,
                                        num_iteration=self.best_iteration_,
                                        num_threads=predict_threads(len(frame)))  # fmt: skip
        return np.asarray(contrib)[:, : len(self.features)]

    def _shap_tables(self) -> FastTreeShap | None:
        """The booster's trees compiled for TreeSHAP, once per model object (not pickled)."""
        if getattr(self, "_tables", False) is False:
            self._tables = FastTreeShap.of(self.booster_, num_iteration=self.best_iteration_,
                                           n_features=len(self.features))  # fmt: skip
        return self._tables

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_tables"}

    def importance(self) -> pd.Series:
        """Total gain per feature, largest first."""
        gain = self.booster_.feature_importance(
            importance_type="gain", iteration=self.best_iteration_
        )
        return pd.Series(gain, index=self.features).sort_values(ascending=False)

    def top_factors(
        self,
        frame: pd.DataFrame,
        *,
        top: int,
        phrase: Callable[[str, pd.Series], pd.Series],
        up: str,
        down: str,
        positive_only: bool = False,
    ) -> list[list[str]]:
        """The `top` largest contributions per row as readable reasons (looping over features, not rows)."""
        if len(frame) == 0:
            return []
        contrib = self.contributions(frame)
        key = contrib if positive_only else np.abs(contrib)
        order = np.argsort(-key, axis=1, kind="stable")[:, :top]
        values = frame.reset_index(drop=True)
        texts = np.full(order.shape, "", dtype=object)
        for j, feature in enumerate(self.features):
            rows, slots = np.nonzero(order == j)
            if len(rows) == 0:
                continue
            words = phrase(feature, values[feature].iloc[rows]).to_numpy(dtype=object)
            sign = np.where(contrib[rows, j] >= 0, up, down)
            texts[rows, slots] = words + " (" + sign + ")"
        picked = np.take_along_axis(key, order, axis=1) > 0
        return [list(t[m]) for t, m in zip(texts, picked, strict=True)]
