"""The service's state on the session's `demo_run` (tests/conftest.py), built once per session.

The small demo's quality gate may keep the conversion model off `champion`; the state here
serves the latest registered conversion model anyway, so the model path is always exercised,
and `state_without_model` serves rules and popularity only.
"""

from __future__ import annotations

import dataclasses

import mlflow
import pytest
from mlflow import MlflowClient

from portrait.settings import load_settings
from serving.recommend_index import build_candidate_index
from serving.state import load_state
from training import registry, tracking


def latest_model(name: str):
    """The latest registered version of a model, champion or not."""
    versions = MlflowClient().search_model_versions(f"name='{name}'")
    latest = max(int(v.version) for v in versions)
    return mlflow.pyfunc.load_model(f"models:/{name}/{latest}").unwrap_python_model().model


def candidate_index(state, model):
    """A new candidate index of the state's inputs scored by `model` (None: no model), with no
    pair explained yet."""
    inputs = state.recommend_inputs
    return build_candidate_index(
        portrait=inputs.portrait, products=state.products, holdings=inputs.holdings,
        segments=inputs.segments, context=state.pair_context, model=model,
        rule_base=state.rule_base,
    )  # fmt: skip


@pytest.fixture(scope="session")
def state(demo_run):
    """The demo run's state with the churn champion and the latest conversion model."""
    demo = demo_run
    cfg = load_settings(None, {"tracking.tracking_uri": demo.tracking_uri})
    tracking.configure(cfg.tracking)
    churn, version = registry.require_champion(registry.CHURN_MODEL)
    models = {"churn": churn, "conversion": latest_model(registry.CONVERSION_MODEL)}
    return load_state(demo.run_dir, cfg, models=(models, f"churn:v{version},conversion:latest"))


@pytest.fixture(scope="session")
def state_without_model(state):
    """The same state without a conversion model: rules, session views and popularity only."""
    models = {"churn": state.models["churn"], "conversion": None}
    return dataclasses.replace(state, models=models, candidates=candidate_index(state, None))


@pytest.fixture(scope="session")
def state_with_baseline(state):
    """The state as served without a champion: the best validation baseline ranks (recent popularity)."""
    from training.models.baselines import BaselineRanker

    ranker = BaselineRanker("recent_popularity")
    models = {"churn": state.models["churn"], "conversion": ranker}
    return dataclasses.replace(state, models=models, candidates=candidate_index(state, ranker))
