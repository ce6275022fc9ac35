"""Tuning at scale: the trial sample, the pruner, Datasets shared by trials, threaded batch predictions."""

from __future__ import annotations

import numpy as np
import optuna
import pandas as pd
import pytest

from training.models import gbm
from training.models.gbm import PARALLEL_ROWS, CalibratedGBM, exact_float32, predict_threads
from training.models.tuning import pruning_callback, tune, tuning_sample


def _frame(n: int = 4000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    y = (x[:, 0] + 0.5 * rng.normal(size=n) > 0.3).astype(int)
    ids = [f"C{i % (n // 4):05d}" for i in range(n)]  # four rows per customer
    return pd.DataFrame({"customer_id": ids, "a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "y": y})


def test_tuning_sample_keeps_whole_customers_and_is_stable():
    frame = _frame()
    sample = tuning_sample(frame, max_rows=1000)
    assert 700 <= len(sample) <= 1300
    per_customer = sample.groupby("customer_id").size()
    assert (per_customer == 4).all()  # every row of a drawn customer, none of the others
    assert sample.equals(tuning_sample(frame, max_rows=1000))
    assert tuning_sample(frame, max_rows=len(frame)) is frame


def test_tuning_sample_is_not_the_calibration_bucket():
    from training.models.gbm import calibration_mask

    frame = _frame(n=40_000)
    sample = tuning_sample(frame, max_rows=10_000)
    share = calibration_mask(sample["customer_id"], share=0.2).mean()
    assert 0.15 < share < 0.25  # the sample holds the calibration bucket in proportion


def test_shared_fit_data_gives_the_model_a_fresh_fit_gives():
    frame = _frame()
    model = CalibratedGBM(features=["a", "b", "c"], seed=3)
    data = model.prepare(frame, label="y")
    shared = [CalibratedGBM(features=["a", "b", "c"], params=p, seed=3).fit(frame, label="y", data=data)
              for p in ({"num_leaves": 7, "min_child_samples": 200}, {"num_leaves": 15, "min_child_samples": 10})]  # fmt: skip
    fresh = CalibratedGBM(features=["a", "b", "c"], params={"num_leaves": 15, "min_child_samples": 10},
                          seed=3).fit(frame, label="y")  # fmt: skip
    assert np.array_equal(shared[1].predict_proba(frame), fresh.predict_proba(frame))
    assert not np.array_equal(shared[0].predict_proba(frame), shared[1].predict_proba(frame))


def test_hopeless_trials_are_pruned_and_the_best_is_a_finished_trial():
    frame = _frame()
    data = CalibratedGBM(features=["a", "b", "c"]).prepare(frame, label="y")
    calls = []

    def objective(params, callbacks):
        calls.append(len(calls))  # every other trial after the startup ones learns ~nothing
        slow = len(calls) > 5 and len(calls) % 2 == 0
        params = params | {"learning_rate": 0.0005 if slow else 0.1}
        model = CalibratedGBM(features=["a", "b", "c"], params=params, num_boost_round=200,
                              early_stopping_rounds=200).fit(frame, label="y", data=data,
                                                             callbacks=callbacks)  # fmt: skip
        return -model.validation_logloss_

    result = tune(objective, n_trials=10, seed=1, name="t", log_trials=False, prune=True)
    assert len(calls) == 10 and len(result.trials) < 10  # pruned trials are not reported as scored
    assert result.best_score == max(score for _, score in result.trials)


def test_no_trial_is_pruned_by_default():
    frame = _frame()
    data = CalibratedGBM(features=["a", "b", "c"]).prepare(frame, label="y")

    def objective(params, callbacks):
        assert callbacks == []
        model = CalibratedGBM(features=["a", "b", "c"], params=params, num_boost_round=50)
        return -model.fit(frame, label="y", data=data).validation_logloss_

    assert len(tune(objective, n_trials=3, seed=1, name="t", log_trials=False).trials) == 3


def test_pruning_callback_raises_when_the_pruner_says_so():
    study = optuna.create_study(
        direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=0)
    )
    trial = study.ask()
    env = type(
        "Env",
        (),
        {"iteration": 9, "evaluation_result_list": [("valid_0", "binary_logloss", 0.5, False)]},
    )
    with pytest.raises(optuna.TrialPruned):
        pruning_callback(trial)(env)


def test_batches_predict_on_every_core_and_requests_on_one():
    assert predict_threads(PARALLEL_ROWS) == 0
    assert predict_threads(3) == 1


def test_exact_float32_narrows_only_columns_it_holds_exactly_and_the_model_is_the_same(
    monkeypatch,
):
    rng = np.random.default_rng(3)
    frame = _frame(n=6000).assign(
        count=rng.integers(0, 50, 6000), big=rng.integers(2**25, 2**26, 6000) | 1,
        days=rng.integers(0, 900, 6000).astype(float), ratio=rng.random(6000),
    )  # fmt: skip
    frame.loc[::7, "days"] = np.nan
    narrow = exact_float32(frame)
    kinds = narrow.dtypes.astype(str).to_dict()
    assert kinds["count"] == kinds["days"] == "float32"
    assert kinds["big"] == "int64" and kinds["ratio"] == "float64"  # not exact: left alone
    features = [c for c in frame.columns if c not in ("customer_id", "y")]
    for col in features:
        np.testing.assert_array_equal(narrow[col].to_numpy(float), frame[col].to_numpy(float))
    fitted = CalibratedGBM(features=features, seed=1).fit(frame, label="y")  # narrows its inputs
    assert fitted._matrix(frame)["count"].dtype == np.int64  # scoring reads the frame as it is
    monkeypatch.setattr(gbm, "exact_float32", lambda x: x)
    wide = CalibratedGBM(features=features, seed=1).fit(frame, label="y")
    assert wide.booster_.model_to_string() == fitted.booster_.model_to_string()  # the same trees
    np.testing.assert_array_equal(wide.predict_proba(frame), fitted.predict_proba(frame))
