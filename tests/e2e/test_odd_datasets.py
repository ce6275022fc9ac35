"""Odd but valid datasets (tests/e2e/odd_datasets.py) finish `portrait run` with report and quality.json.

One small demo bank is transformed into each shape; every run must end with report.html and
quality.json, every stage with a status (none failed), and no "nan" text in the report.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import mlflow.models
import pandas as pd
import pytest

from portrait.pipeline import STAGES, run_pipeline
from portrait.report import report_words
from portrait.settings import TrackingSettings, load_settings
from portrait.stages.status import STATUSES
from tests.e2e.odd_datasets import AS_OF, SHAPES, demo_tables, write_shape
from training import tracking

# small and quick: the shapes, not the models, are under test
FAST = {
    "models.n_trials": 1,
    "segments.k_max": 5,
    "segments.n_reseeds": 1,
    "rules.transition_windows": 4,
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory):
    """run(shape) -> run directory; each shape runs once per module, with its own MLflow store.

    Each store is a copy of one migrated empty sqlite file, and MLflow's pip-requirements
    inference (a subprocess per logged model, ~5 s) is replaced by a fixed list: the shapes,
    not MLflow, are under test.
    """
    tables, done = demo_tables(200), {}
    template = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    tracking.configure(TrackingSettings(tracking_uri=f"sqlite:///{template}"))

    def run(shape: str) -> Path:
        if shape not in done:
            base = tmp_path_factory.mktemp(shape)
            shutil.copy(template, base / "mlflow.db")
            done[shape] = run_shape(tables, shape, base)
        return done[shape]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(mlflow.models, "infer_pip_requirements", lambda *a, **k: ["portrait"])
        yield run


def stages_of(run: Path) -> dict[str, dict[str, str]]:
    """quality.json's stage statuses."""
    return json.loads((run / "quality.json").read_text())["stages"]


def run_shape(tables: dict, shape: str, base: Path) -> Path:
    """Write the shape, run the pipeline in-process into base/run and return the run directory."""
    data = write_shape(tables, shape, base / "data")
    settings = load_settings(
        overrides={**FAST, "tracking.tracking_uri": f"sqlite:///{base / 'mlflow.db'}"}
    )
    run_pipeline(data, as_of=AS_OF, out_dir=base / "run", settings=settings, echo=False)
    return base / "run"


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_odd_dataset_runs_end_to_end(runs, shape):
    run = runs(shape)
    stages = stages_of(run)
    assert {s.name for s in STAGES} <= set(stages)
    assert all(v["status"] in STATUSES and v["status"] != "failed" for v in stages.values()), stages
    assert all(v["reason"] for v in stages.values() if v["status"] != "ran"), stages
    text = report_words(run / "report.html")
    assert not re.search(r"\bnan\b", text, flags=re.IGNORECASE), re.findall(r".{60}\bnan\b", text)
    assert "Stages: what ran" in text
    for stage, output in (("segments", "segments.parquet"), ("models", "churn_scores.parquet")):
        assert (run / output).is_file() or stages[stage]["status"] == "skipped"


def test_one_product_scores_churn_and_skips_rules(runs):
    run = runs("one_product")
    stages = stages_of(run)
    assert stages["rules"]["status"] == "skipped"
    assert stages["models.churn"]["status"] in ("ran", "reduced")
    assert len(pd.read_parquet(run / "churn_scores.parquet")) > 0


def test_short_history_says_why_it_skipped_the_models(runs):
    run = runs("short_history")
    stages = stages_of(run)
    for model in ("models.churn", "models.conversion"):
        assert stages[model]["status"] == "skipped"
        assert "history starts" in stages[model]["reason"]
    assert "history starts" in report_words(run / "report.html")


def test_no_funnel_skips_the_funnel_and_keeps_the_models(runs):
    stages = stages_of(runs("no_funnel"))
    assert stages["experiments.funnel"]["status"] == "skipped"
    assert stages["models.churn"]["status"] in ("ran", "reduced")


def test_one_customer_skips_segments_with_the_count(runs):
    stages = stages_of(runs("one_customer"))
    assert stages["segments"]["status"] == "skipped"
    assert "1 active customer" in stages["segments"]["reason"]


def test_extra_customer_columns_become_features(runs):
    run = runs("extra_columns")
    quality = json.loads((run / "quality.json").read_text())
    assert quality["extra_columns"] == ["household_size", "credit_score", "region_code"]
    features = pd.read_parquet(run / "features.parquet")
    assert features["extra_region_code"].dtype == "string"
    assert features["extra_credit_score"].dtype == "float64"
