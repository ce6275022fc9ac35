"""`portrait run`: validate -> features -> segments, rules, models, experiments -> report, quality.json, MLflow.

Each stage declares what it needs (outputs of earlier stages it cannot run without), what it
uses when present, and what it gives; it receives exactly those as keyword arguments and returns
a `StageResult`. The loop skips a stage whose needs are missing, records a stage that raised as
failed and goes on, writes each stage's files, logs its metrics to MLflow and assembles
report.html and quality.json; a failed stage then ends the run with an error naming it.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from features.engagement import kept_engagement
from features.quality import ValidatedData, write_quality
from portrait.errors import ContractError, NotEnoughData, PortraitError
from portrait.report import Section, write_report
from portrait.settings import Settings
from portrait.stages.data import features_stage, validate_stage
from portrait.stages.experiments import experiments_stage
from portrait.stages.models import models_stage
from portrait.stages.result import RunInputs, StageResult, write_files
from portrait.stages.rules import rules_stage
from portrait.stages.segments import segments_stage
from portrait.stages.status import FAILED, StageStatus, skipped, stages_section
from training import tracking
from training.engine import Cluster, engine_session
from training.manifest import record_manifest
from training.rules.base import RuleBase
from training.segments.model import SegmentationModel


@dataclass
class RunOutputs:
    """What stages give one another, one typed field each (None until a stage gave it)."""

    data: ValidatedData | None = None
    extra_columns: list[str] | None = None  # the firm's own customer columns used as features
    cluster: Cluster | None = None  # the Dask engine's data; None on pandas
    portrait: pd.DataFrame | None = None
    segments: pd.DataFrame | None = None
    segment_model: SegmentationModel | None = None
    rule_base: RuleBase | None = None
    churn_scores: pd.DataFrame | None = None
    recommendations: pd.DataFrame | None = None
    champions: dict[str, Any] | None = None


OUTPUTS = frozenset(f.name for f in dataclasses.fields(RunOutputs))
StageRun = Callable[..., StageResult]


@dataclass(frozen=True)
class Stage:
    """A named step of the run: what it needs, what it uses when present, what it gives."""

    name: str
    run: StageRun
    needs: tuple[str, ...] = ()
    uses: tuple[str, ...] = ()
    gives: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        unknown = set(self.needs + self.uses + self.gives) - OUTPUTS
        if unknown:
            raise ValueError(f"stage {self.name}: {sorted(unknown)} are not RunOutputs fields")


STAGES: list[Stage] = [
    Stage("validate", validate_stage, gives=("data", "extra_columns")),
    Stage("features", features_stage, needs=("data",), gives=("portrait", "cluster")),
    Stage(
        "segments",
        segments_stage,
        needs=("data", "portrait"),
        uses=("cluster",),
        gives=("segments", "segment_model"),
    ),
    Stage(
        "rules",
        rules_stage,
        needs=("data", "portrait"),
        uses=("cluster", "segments", "segment_model"),
        gives=("rule_base",),
    ),
    Stage(
        "models",
        models_stage,
        needs=("data", "portrait"),
        uses=("segments", "rule_base", "cluster"),
        gives=("churn_scores", "recommendations", "champions"),
    ),
    Stage(
        "experiments",
        experiments_stage,
        needs=("data", "portrait"),
        uses=("segments", "churn_scores"),
    ),
]


@dataclass
class RunRecord:
    """What the loop collected from the stages for quality.json, MLflow and the report."""

    sections: list[Section] = field(default_factory=list)
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    statuses: dict[str, StageStatus] = field(default_factory=dict)


@dataclass(frozen=True)
class RunResult:
    """Where a run wrote its outputs."""

    out_dir: Path
    report: Path
    quality: Path
    run_id: str
    tracking_uri: str


class RunIncomplete(PortraitError):
    """A stage failed; report.html and quality.json were still written."""


def run_pipeline(
    data_dir: Path, *, as_of: pd.Timestamp, out_dir: Path, settings: Settings, echo: bool = True
) -> RunResult:
    """Run every stage, write report.html and quality.json, and log the run to MLflow."""
    if not Path(data_dir).is_dir():
        raise ContractError(
            f"data directory {data_dir} does not exist; create one with `portrait demo-data`"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    inputs = RunInputs(Path(data_dir), pd.Timestamp(as_of), out_dir, settings)
    outputs, record = RunOutputs(), RunRecord()
    uri = tracking.configure(settings.tracking)
    with (
        tracking.start_run(f"run {inputs.as_of.date()}") as run,
        engine_session(settings.engine),
        kept_engagement(),  # every stage's cut-offs read the same engagement frame
    ):
        tracking.log_params({"data_dir": str(data_dir), "as_of": str(inputs.as_of.date()),
                             "settings": settings})  # fmt: skip
        for i, stage in enumerate(STAGES, start=1):
            started = time.perf_counter()
            _say(echo, f"[{i}/{len(STAGES)}] {stage.name} ...")
            status = run_stage(stage, inputs, outputs, record)
            note = "" if status.complete else f" ({status.status}: {status.reason})"
            took = time.perf_counter() - started
            _say(echo, f"[{i}/{len(STAGES)}] {stage.name} done in {took:.1f}s{note}")
        report, quality = _write_outputs(inputs, outputs, record)
        _log_run(outputs, record, report, quality)
        run_id = run.info.run_id
    failed = {n: s.reason for n, s in record.statuses.items() if s.status == FAILED}
    if failed:  # no manifest: a run with a failed stage is never served
        raise RunIncomplete(
            "stage(s) failed: " + "; ".join(f"{n}: {r}" for n, r in failed.items())
            + f". report.html and quality.json are in {out_dir}; please report this bug"
        )  # fmt: skip
    record_manifest(out_dir, run_id=run_id, models=outputs.champions or {})
    return RunResult(out_dir, report, quality, run_id, uri)


def run_stage(
    stage: Stage, inputs: RunInputs, outputs: RunOutputs, record: RunRecord
) -> StageStatus:
    """Run one stage and keep what it returned: skipped when a need is missing or the data cannot
    support it, failed on a bug. A validation error (broken schema, too many bad rows) stops the
    run: nothing else can run."""
    missing = [n for n in stage.needs if getattr(outputs, n) is None]
    if missing:
        result = StageResult(skipped(f"needs {', '.join(missing)}, which no earlier stage gave"))
    else:
        try:
            result = _call(stage, inputs, outputs)
        except NotEnoughData as exc:
            result = StageResult(skipped(str(exc)))
        except Exception:  # noqa: BLE001 - one stage's bug must not lose the others' outputs
            if stage.name == "validate":  # bad input or settings: nothing else can run
                raise
            result = StageResult(_failed(inputs.out_dir, stage))
    _keep(stage, result, inputs, outputs, record)
    return result.status


def _call(stage: Stage, inputs: RunInputs, outputs: RunOutputs) -> StageResult:
    given = {n: getattr(outputs, n) for n in (*stage.needs, *stage.uses)}
    result = stage.run(inputs, **given)
    extra = set(result.gives) - set(stage.gives)
    if extra:
        raise TypeError(f"stage {stage.name} gave {sorted(extra)}, which it did not declare")
    return result


def _keep(stage: Stage, result: StageResult, inputs: RunInputs, outputs: RunOutputs,
          record: RunRecord) -> None:  # fmt: skip
    for name, value in result.gives.items():
        setattr(outputs, name, value)
    write_files(inputs.out_dir, result.files)
    for path, folder in result.artifacts.items():
        log = tracking.log_artifacts if (inputs.out_dir / path).is_dir() else tracking.log_artifact
        log(inputs.out_dir / path, folder=folder)
    for path, value in result.logged.items():
        tracking.log_dict(value, path)
    if result.metrics:
        record.metrics[stage.name] = dict(result.metrics)
    record.params |= result.params
    record.statuses[stage.name] = result.status
    record.statuses |= {f"{stage.name}.{part}": s for part, s in result.parts.items()}
    record.sections += result.sections
    if not result.status.complete and not result.sections:  # the stage said nothing itself
        record.sections.append(Section(stage.name.capitalize()).text(
            f"{stage.name} {result.status.status}: {result.status.reason}", css="bad"))  # fmt: skip


def _failed(out_dir: Path, stage: Stage) -> StageStatus:
    trace = traceback.format_exc()
    with open(out_dir / "errors.log", "a", encoding="utf-8") as log:
        log.write(f"stage {stage.name}:\n{trace}\n")
    line = trace.strip().splitlines()[-1]
    return StageStatus(FAILED, f"internal error ({line}); traceback in errors.log")


def _log_run(outputs: RunOutputs, record: RunRecord, report: Path, quality: Path) -> None:
    if outputs.data is not None:
        tracking.log_params({"data_fingerprint": tracking.data_fingerprint(outputs.data.tables)})
    tracking.log_params(record.params)
    for stage_name, values in record.metrics.items():
        tracking.log_metrics(values, prefix=f"{stage_name}.")
    tracking.set_tags(
        {f"stage.{n}.status": s.status for n, s in record.statuses.items()}
        | {f"stage.{n}.reason": s.reason for n, s in record.statuses.items() if s.reason}
    )
    tracking.log_artifact(report)
    tracking.log_artifact(quality)


def _write_outputs(inputs: RunInputs, outputs: RunOutputs, record: RunRecord) -> tuple[Path, Path]:
    quality = inputs.out_dir / "quality.json"
    write_quality(outputs.data, quality, extra={
        "as_of": str(inputs.as_of.date()), "data_dir": str(inputs.data_dir.resolve()),
        "metrics": _jsonable(record.metrics),
        "stages": {n: s.as_dict() for n, s in record.statuses.items()},
        "extra_columns": outputs.extra_columns or [],
    })  # fmt: skip
    sections = record.sections
    at = 1 if sections else 0  # after the data quality section
    report = write_report(
        [*sections[:at], stages_section(record.statuses), *sections[at:]],
        inputs.out_dir / "report.html",
        title="Customer portrait report",
        subtitle=f"Data {inputs.data_dir} as of {inputs.as_of.date()}; written by portrait run.",
    )
    return report, quality


def _jsonable(value: Any) -> Any:
    return json.loads(
        json.dumps(value, default=lambda v: v.item() if hasattr(v, "item") else str(v))
    )


def _say(echo: bool, message: str) -> None:
    if echo:
        print(message, file=sys.stderr, flush=True)
