"""The quality gate: promotion only when strictly better than champion and baselines; champion kept otherwise."""

from __future__ import annotations

import mlflow
import pytest

from features.demo_bank import DEMO_AS_OF, generate_demo_bank
from portrait.settings import TimeSettings, TrackingSettings
from training import tracking
from training.models.churn import ChurnModel, churn_features
from training.models.datasets import churn_training_set
from training.models.metrics import pr_auc
from training.registry import (
    CHURN_MODEL,
    champion_version,
    gate_and_register,
    load_champion,
    quality_gate,
)


def test_gate_passes_only_when_strictly_better_than_everything():
    ok = quality_gate(metric="pr_auc", candidate=0.5, champion=0.4, baselines={"rule": 0.3})
    assert ok.passed and "beats champion 0.4000" in ok.reason
    first = quality_gate(metric="pr_auc", candidate=0.5, champion=None, baselines={"rule": 0.3})
    assert first.passed and "no champion yet" in first.reason


@pytest.mark.parametrize(
    ("champion", "baselines", "why"),
    [
        (0.5, {"rule": 0.3}, "does not beat the champion's 0.5000"),
        (0.6, {"rule": 0.3}, "does not beat the champion's 0.6000"),
        (None, {"rule": 0.5}, "does not beat baseline(s) rule 0.5000"),
        (0.1, {"rule": 0.2, "pop": 0.7}, "does not beat baseline(s) pop 0.7000"),
    ],
)
def test_gate_refuses_with_a_reason(champion, baselines, why):
    decision = quality_gate(metric="pr_auc", candidate=0.5, champion=champion, baselines=baselines)
    assert not decision.passed
    assert why in decision.reason


def test_gate_refuses_nan():
    assert not quality_gate(metric="x", candidate=float("nan"), champion=None, baselines={}).passed


@pytest.fixture(scope="module")
def churn_data():
    tables = generate_demo_bank(n_customers=2000, seed=5).tables
    return churn_training_set(tables, as_of=DEMO_AS_OF, time=TimeSettings(training_cutoffs=1))


@pytest.fixture
def store(tmp_path):
    previous = mlflow.get_tracking_uri()
    tracking.configure(TrackingSettings(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}"))
    yield
    mlflow.set_tracking_uri(previous)


def _register(model, data):
    y = data.valid["churned"].to_numpy()
    with tracking.start_run("gate test"):
        return gate_and_register(
            model,
            name=CHURN_MODEL,
            metric="pr_auc",
            score=lambda m: pr_auc(y, m.predict_proba(data.valid)),
            baselines={"recency_rule": 0.05},
            frame=data.valid,
        )


def test_worse_model_is_not_promoted_and_champion_stays(store, churn_data):
    good = ChurnModel(features=churn_features(churn_data.train), seed=1).fit(churn_data.train)
    decision, version = _register(good, churn_data)
    assert decision.passed and champion_version(CHURN_MODEL) == version == "1"

    # deliberately worse: two weak features and a single tree
    worse = ChurnModel(features=["age", "income_band"], seed=1, num_boost_round=1)
    worse.fit(churn_data.train)
    decision, version = _register(worse, churn_data)
    assert version == "2"
    assert not decision.passed
    assert decision.champion > decision.candidate
    assert "does not beat the champion" in decision.reason
    assert champion_version(CHURN_MODEL) == "1"
    loaded, loaded_version = load_champion(CHURN_MODEL)
    assert loaded_version == "1"
    assert loaded.features == good.features
    assert (loaded.predict_proba(churn_data.valid) == good.predict_proba(churn_data.valid)).all()


def test_crashing_retrain_leaves_the_champion(store, churn_data):
    good = ChurnModel(features=churn_features(churn_data.train), seed=1).fit(churn_data.train)
    _register(good, churn_data)

    def broken(model):
        raise RuntimeError("scoring failed half-way")

    with pytest.raises(RuntimeError), tracking.start_run("crash"):
        gate_and_register(
            good,
            name=CHURN_MODEL,
            metric="pr_auc",
            score=broken,
            baselines={},
            frame=churn_data.valid,
        )
    assert champion_version(CHURN_MODEL) == "1"
