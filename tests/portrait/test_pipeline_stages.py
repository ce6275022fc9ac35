"""The run loop: stage statuses recorded everywhere, needs checked, a raising stage never loses the outputs."""

from __future__ import annotations

import json

import pytest

from portrait import pipeline
from portrait.errors import NotEnoughData
from portrait.pipeline import RunIncomplete, Stage, run_pipeline
from portrait.settings import Settings, TrackingSettings
from portrait.stages.result import StageResult
from portrait.stages.status import combined, ran, reduced, skipped


def test_combined_status_of_parts():
    assert combined({"a": ran(), "b": ran()}).status == "ran"
    assert combined({"a": skipped("x"), "b": skipped("y")}) == skipped("a: x; b: y")
    assert combined({"a": ran(), "b": reduced("z")}) == reduced("b reduced: z")
    with pytest.raises(ValueError, match="stage status"):
        pipeline.StageStatus("maybe")


def test_a_stage_names_only_fields_of_the_run_outputs():
    with pytest.raises(ValueError, match="nothing_gave_this"):
        Stage("needy", _boom, needs=("nothing_gave_this",))


def _boom(run, **given):
    raise RuntimeError("a bug in a stage")


def _short(run, **given):
    raise NotEnoughData("two months of history; a model needs five")


def _greedy(run, **given):
    return StageResult(gives={"rule_base": object()})


def _fine(run, *, data, portrait):
    assert data is not None and portrait is None  # exactly its needs and uses, nothing else
    return StageResult(reduced("half of it"))


def test_a_raising_stage_is_recorded_and_the_outputs_are_still_written(
    tiny_tables, tmp_path, monkeypatch
):
    data = tmp_path / "data"
    data.mkdir()
    for name, frame in tiny_tables.items():
        frame.to_parquet(data / f"{name}.parquet", index=False)
    stages = [
        pipeline.STAGES[0],
        Stage("boom", _boom),
        Stage("short", _short),
        Stage("needy", lambda run, **g: StageResult(), needs=("rule_base",)),
        Stage("greedy", _greedy, gives=("segments",)),
        Stage("fine", _fine, needs=("data",), uses=("portrait",)),
    ]
    monkeypatch.setattr(pipeline, "STAGES", stages)
    settings = Settings(tracking=TrackingSettings(tracking_uri=f"sqlite:///{tmp_path / 'm.db'}"))
    with pytest.raises(RunIncomplete, match="boom: internal error \\(RuntimeError: a bug"):
        run_pipeline(
            data, as_of="2025-02-01", out_dir=tmp_path / "run", settings=settings, echo=False
        )
    quality = json.loads((tmp_path / "run" / "quality.json").read_text())
    statuses = {k: v["status"] for k, v in quality["stages"].items()}
    assert statuses == {"validate": "ran", "boom": "failed", "short": "skipped",
                        "needy": "skipped", "greedy": "failed", "fine": "reduced"}  # fmt: skip
    assert "needs rule_base" in quality["stages"]["needy"]["reason"]
    assert "gave ['rule_base'], which it did not declare" in quality["stages"]["greedy"]["reason"]
    report = (tmp_path / "run" / "report.html").read_text()
    assert "two months of history" in report and "Stages: what ran" in report
    assert "RuntimeError" in (tmp_path / "run" / "errors.log").read_text()


def test_a_conversion_champion_reads_the_portrait_plus_pair_columns(tiny_tables):
    from types import SimpleNamespace

    from features.portrait import build_features
    from training.models.conversion import FEATURES, PerProductModel
    from training.models.fallback import usable

    portrait = build_features(tiny_tables, as_of="2025-02-01")
    for model in (SimpleNamespace(features=FEATURES), PerProductModel()):
        assert usable((model, "3"), portrait) == (model, "3")
    other = SimpleNamespace(features=[*FEATURES, "extra_from_another_bank"])
    assert usable((other, "4"), portrait) is None
