"""Batch TreeSHAP from per-leaf tables equals LightGBM's pred_contrib (and a hand-made stump)."""

from __future__ import annotations

import pickle

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from training.models import treeshap
from training.models.gbm import CalibratedGBM
from training.models.treeshap import FAST_ROWS, FastTreeShap, float_matrix


def _frame(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame({
        "amount": rng.normal(size=rows),
        "gappy": np.where(rng.random(rows) < 0.3, np.nan, rng.normal(size=rows)),
        "zeros": np.where(rng.random(rows) < 0.4, 0.0, rng.exponential(size=rows)),
        "count": rng.integers(0, 6, rows),
        "kind": pd.Categorical(rng.choice(["a", "b", "c", "d", "e"], rows),
                               categories=["a", "b", "c", "d", "e"]),
    })  # fmt: skip
    x.loc[rng.random(rows) < 0.1, "kind"] = np.nan  # a category never seen reads as NaN
    return x


def _label(x: pd.DataFrame, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed + 1)
    logit = x["amount"] + x["gappy"].fillna(1.0) - 0.5 * x["zeros"] + (x["kind"] == "c") * 1.5
    return (rng.random(len(x)) < 1 / (1 + np.exp(-logit.to_numpy(dtype=float)))).astype(int)


@pytest.mark.parametrize("params", [
    {"max_depth": 4, "num_leaves": 15},
    {"max_depth": 7, "num_leaves": 40, "zero_as_missing": True},  # missing type Zero
    {"max_depth": 5, "num_leaves": 20, "use_missing": False},  # missing type None
])  # fmt: skip
def test_tables_equal_lightgbm_pred_contrib(params, monkeypatch):
    monkeypatch.setattr(treeshap, "PART_ROWS", 500)  # two threads take a part each
    train, test = _frame(3000, 0), _frame(2000, 1)
    booster = lgb.train({"objective": "binary", "verbosity": -1, "min_child_samples": 5,
                         "cat_smooth": 1, "min_data_per_group": 5, **params},
                        lgb.Dataset(train, _label(train, 0)), num_boost_round=40)  # fmt: skip
    tables = FastTreeShap.of(booster, num_iteration=30, n_features=train.shape[1])
    want = booster.predict(test, pred_contrib=True, num_iteration=30)[:, :-1]
    got = tables.contributions(float_matrix(test), threads=2)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)
    assert np.abs(want).max() > 0.1  # the trees split on something


def test_a_stump_by_hand():
    """One split at x <= 0 with 30 rows left (leaf 1.0) and 10 right (leaf -2.0): a row going left
    gets 1.0 - (30 * 1.0 + 10 * -2.0) / 40 = 0.75, a row going right -2.0 - 0.25 = -2.25."""
    x = pd.DataFrame({"x": np.r_[-np.ones(30), np.ones(10)], "noise": np.zeros(40)})
    booster = lgb.train({"objective": "regression", "verbosity": -1, "num_leaves": 2,
                         "min_data_in_leaf": 1, "learning_rate": 1.0, "boost_from_average": False},
                        lgb.Dataset(x, np.r_[np.ones(30), -2 * np.ones(10)]), num_boost_round=1)  # fmt: skip
    got = FastTreeShap.of(booster, num_iteration=None, n_features=2).contributions(
        float_matrix(pd.DataFrame({"x": [-5.0, 5.0], "noise": [0.0, 0.0]}))
    )
    np.testing.assert_allclose(got, [[0.75, 0.0], [-2.25, 0.0]], atol=1e-12)


def test_the_model_explains_a_batch_through_the_tables_with_lightgbms_values():
    train = _frame(3000, 2).assign(customer_id=[f"C{i}" for i in range(3000)])
    train["y"] = _label(train, 2)
    model = CalibratedGBM(features=["amount", "gappy", "zeros", "count", "kind"],
                          categorical=("kind",), num_boost_round=60).fit(train, label="y")  # fmt: skip
    batch = _frame(FAST_ROWS + 500, 3)
    assert model._shap_tables() is not None  # the batch goes through the tables
    want = model.booster_.predict(model._matrix(batch), pred_contrib=True,
                                  num_iteration=model.best_iteration_)[:, :-1]  # fmt: skip
    np.testing.assert_allclose(model.contributions(batch), want, rtol=0, atol=1e-9)
    again = pickle.loads(pickle.dumps(model))  # the compiled tables stay out of the pickle
    assert "_tables" not in again.__dict__
    np.testing.assert_allclose(again.contributions(batch.head(5)), want[:5], rtol=0, atol=1e-9)
