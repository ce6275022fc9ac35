"""The service's state on the session's demo run (tests/e2e/conftest.py builds the run once).

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
from tests.e2e.conftest import build_demo_run
from training import registry, tracking


def latest_model(name: str):
    """The latest registered version of a model, champion or not."""
    versions = MlflowClient().search_model_versions(f"name='{name}'")
    latest = max(int(v.version) for v in versions)
    return mlflow.pyfunc.load_model(f"models:/{name}/{latest}").unwrap_python_model().model


@pytest.fixture(scope="session")
def state(tmp_path_factory):
    """The demo run's state with the churn champion and the latest conversion model."""
    demo = build_demo_run(tmp_path_factory.getbasetemp() / "demo-run")
    cfg = load_settings(None, {"tracking.tracking_uri": demo.tracking_uri})
    tracking.configure(cfg.tracking)
    churn, version = registry.require_champion(registry.CHURN_MODEL)
    models = {"churn": churn, "conversion": latest_model(registry.CONVERSION_MODEL)}
    return load_state(demo.run_dir, cfg, models=(models, f"churn:v{version},conversion:latest"))


@pytest.fixture(scope="session")
def state_without_model(state):
    """The same state without a conversion model: rules, session views and popularity only."""
    inputs = state.recommend_inputs
    candidates = build_candidate_index(
        portrait=inputs.portrait, products=state.products, holdings=inputs.holdings,
        segments=inputs.segments, context=state.pair_context, model=None,
        rule_base=state.rule_base,
    )  # fmt: skip
    models = {"churn": state.models["churn"], "conversion": None}
    return dataclasses.replace(state, models=models, candidates=candidates)
