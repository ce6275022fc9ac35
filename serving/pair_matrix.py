"""A calibrated LightGBM's input matrix of the candidate index's pairs, built once with the index.

A visit's views change a few pairs' view features; `PairMatrix.score` scores those pairs from
the matrix (the booster and calibrator on arrays), so a request with viewed products builds no
frame and converts no categoricals. Other models score changed pairs through their own
`predict_proba` (`serving.visit`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from training.models.gbm import CalibratedGBM

VIEW_COLUMNS = ("views_7d", "views_30d")


class PairMatrix:
    """A calibrated LightGBM's input matrix of every index pair, built once: a visit's changed
    pairs are scored from it (views added to the view columns) without a frame per request."""

    def __init__(self, model: Any, frame: pd.DataFrame) -> None:
        columns = []
        for feature in model.features:
            if feature in model.categorical:  # LightGBM's codes of the training categories
                codes = pd.Categorical(frame[feature].astype(object),
                                       categories=model.categories_[feature]).codes  # fmt: skip
                columns.append(np.where(codes < 0, np.nan, codes.astype(float)))
            else:
                columns.append(frame[feature].to_numpy(dtype=float, na_value=np.nan))
        self.matrix = np.column_stack(columns) if columns else np.zeros((len(frame), 0))
        self.views = [model.features.index(c) for c in VIEW_COLUMNS if c in model.features]
        self.model = model

    def score(self, rows: np.ndarray, added: np.ndarray) -> np.ndarray:
        """Calibrated probabilities of pair `rows` with `added` views on each view column."""
        x = self.matrix[rows]
        x[:, self.views] += added[:, None]
        margin = self.model.booster_.predict(
            x, raw_score=True, num_iteration=self.model.best_iteration_
        )
        return self.model.calibrator_.predict_proba(margin.reshape(-1, 1))[:, 1]


def pair_matrix(model: Any, frame: pd.DataFrame | None) -> PairMatrix | None:
    """The matrix of `frame` for a calibrated LightGBM whose view features a visit moves (None for
    any other model: it scores changed pairs through its own `predict_proba`)."""
    if frame is None or not isinstance(model, CalibratedGBM) or not hasattr(model, "booster_"):
        return None
    return PairMatrix(model, frame)
