"""`portrait evaluate` scores the champions on the run's own validation fold, under its settings."""

from __future__ import annotations

import dataclasses

import mlflow
import pytest

from features.demo_bank import DEMO_AS_OF, generate_demo_bank, write_demo_bank
from features.engagement import kept_engagement
from features.validate import load_dataset
from portrait import model_commands
from portrait.settings import EngagementSettings, load_settings
from portrait.stages.models import run_training_sets
from training.models.churn import LABEL
from training.models.metrics import churn_metrics
from training.registry import CHURN_MODEL, require_champion


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    out = tmp_path_factory.mktemp("evaluate")
    write_demo_bank(generate_demo_bank(n_customers=1500, seed=11), out / "bank")
    previous = mlflow.get_tracking_uri()
    settings = load_settings(None, {"tracking.tracking_uri": f"sqlite:///{out / 'mlflow.db'}"})
    model_commands.train(settings=settings, data=str(out / "bank"), as_of=str(DEMO_AS_OF.date()),
                         trials=1, seed=None)  # fmt: skip
    yield out / "bank", settings
    mlflow.set_tracking_uri(previous)


def _line(printed: str, who: str) -> str:
    return next(line for line in printed.splitlines() if line.startswith(who))


def test_evaluate_reads_the_validation_fold_of_the_runs_engagement_rule(bank, capsys):
    data, settings = bank
    custom = dataclasses.replace(settings, engagement=EngagementSettings(departed=False))
    tables = load_dataset(data).tables
    champion, version = require_champion(CHURN_MODEL)
    expected = {}
    for name, chosen in (("default", settings), ("custom", custom)):
        with kept_engagement():
            valid = run_training_sets(tables, as_of=DEMO_AS_OF, settings=chosen)["churn"]().valid
        metrics = churn_metrics(valid[LABEL].to_numpy(), champion.predict_proba(valid))
        expected[name] = f"roc_auc {metrics['roc_auc']:.4f}  pr_auc {metrics['pr_auc']:.4f}"
    assert expected["default"] != expected["custom"]  # the rule changes who churned
    capsys.readouterr()
    for name, chosen in (("default", settings), ("custom", custom)):
        model_commands.evaluate(settings=chosen, data=str(data), as_of=str(DEMO_AS_OF.date()),
                                seed=None, trials=None)  # fmt: skip
        printed = capsys.readouterr().out
        assert expected[name] in _line(printed, f"{CHURN_MODEL} v{version}")
        assert (
            "map@5" in _line(printed, "portrait-conversion") and "conversion item_item" in printed
        )
