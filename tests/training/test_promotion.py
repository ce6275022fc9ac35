"""Registry consistency: a run's two champions move together under the store's lock, two
concurrent runs never both win, and a run that dies before promotion registers nothing."""

from __future__ import annotations

import threading

import mlflow
import pytest
from mlflow import MlflowClient

from features.demo_bank import DEMO_AS_OF, generate_demo_bank
from portrait.settings import TimeSettings, TrackingSettings
from training import tracking
from training.models.churn import ChurnModel, churn_features
from training.models.datasets import churn_training_set
from training.models.metrics import pr_auc
from training.registry import (
    CHURN_MODEL,
    CONVERSION_MODEL,
    PAIR_TAG,
    champion_pair,
    prepare,
    promote_together,
    promotion_lock_path,
)


@pytest.fixture(scope="module")
def churn_data():
    tables = generate_demo_bank(n_customers=1500, seed=5).tables
    return churn_training_set(tables, as_of=DEMO_AS_OF, time=TimeSettings(training_cutoffs=1))


@pytest.fixture(scope="module")
def model(churn_data):
    return ChurnModel(features=churn_features(churn_data.train), seed=1).fit(churn_data.train)


@pytest.fixture
def store(tmp_path):
    previous = mlflow.get_tracking_uri()
    tracking.configure(TrackingSettings(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}"))
    yield tmp_path
    mlflow.set_tracking_uri(previous)


def candidates(model, data, run: str):
    """Both candidates of one run (the churn model stands in for both kinds), logged in `run`."""
    y = data.valid["churned"].to_numpy()
    out = []
    for name in (CHURN_MODEL, CONVERSION_MODEL):
        with tracking.start_run(f"{run} {name}"):
            out.append(prepare(model, name=name, metric="pr_auc", frame=data.valid,
                               score=lambda m: pr_auc(y, m.predict_proba(data.valid)),
                               baselines={"rule": 0.0}))  # fmt: skip
    return out


def test_two_concurrent_runs_leave_one_consistent_champion_pair(store, model, churn_data):
    runs = {name: candidates(model, churn_data, name) for name in ("run-a", "run-b")}
    results, errors = {}, []

    def promote(name):
        try:
            results[name] = promote_together(runs[name])
        except Exception as exc:  # noqa: BLE001 - reported by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=promote, args=(name,)) for name in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    winners = [n for n, r in results.items() if all(d.passed for d, _ in r.values())]
    losers = [n for n, r in results.items() if not any(d.passed for d, _ in r.values())]
    assert len(winners) == 1 and len(losers) == 1  # an equal model never beats the champion
    pair = champion_pair([CHURN_MODEL, CONVERSION_MODEL])
    won = results[winners[0]]
    assert pair == {CHURN_MODEL: won[CHURN_MODEL][1], CONVERSION_MODEL: won[CONVERSION_MODEL][1]}
    client = MlflowClient()
    tags = {client.get_model_version(n, v).tags[PAIR_TAG] for n, v in pair.items()}
    assert tags == {
        f"{CHURN_MODEL}:v{pair[CHURN_MODEL]},{CONVERSION_MODEL}:v{pair[CONVERSION_MODEL]}"
    }
    assert promotion_lock_path(mlflow.get_tracking_uri()).exists()


def test_a_gate_that_fails_midway_moves_no_alias_and_registers_nothing(store, model, churn_data):
    churn, conversion = candidates(model, churn_data, "run")
    promote_together([churn])  # a churn champion exists: the next churn gate re-scores it
    broken = churn.__class__(**{**churn.__dict__, "score": _explode})
    before = champion_pair([CHURN_MODEL, CONVERSION_MODEL])
    with pytest.raises(RuntimeError):
        promote_together([conversion, broken])  # conversion passes its gate; churn's gate fails
    assert champion_pair([CHURN_MODEL, CONVERSION_MODEL]) == before
    assert not MlflowClient().search_model_versions(f"name='{CONVERSION_MODEL}'")


def test_a_run_that_dies_before_promotion_leaves_no_registered_version(store, model, churn_data):
    candidates(model, churn_data, "killed")  # trained and logged; the process dies here
    assert not MlflowClient().search_model_versions(f"name='{CHURN_MODEL}'")
    runs = mlflow.search_runs(search_all_experiments=True)
    assert (runs["status"] == "FINISHED").all()


def _explode(model):
    raise RuntimeError("scoring failed half-way")
