"""`portrait run`: validate -> features -> segments, rules, models, audiences -> report, quality.json, MLflow.

Each stage is a function of the run context that declares what it needs (results of earlier
stages) and returns a `StageStatus` (None: it ran in full). The loop skips a stage whose needs
are missing, records a stage that raised as failed and goes on, and always writes report.html
and quality.json; a failed stage then ends the run with an error naming it.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from features.extra_columns import select_extra_columns
from features.validate import ValidatedData, load_dataset, write_quality, write_quarantine
from portrait.errors import ContractError, NotEnoughData, PortraitError
from portrait.report import Section, write_report
from portrait.settings import Settings
from portrait.stages.experiments import experiments_stage
from portrait.stages.models import models_stage
from portrait.stages.rules import rules_stage
from portrait.stages.segments import segments_stage
from portrait.stages.statistics import quality_section, statistics_section
from portrait.stages.status import FAILED, StageStatus, skipped, stages_section
from training import tracking
from training.engine import build_portrait, distribute, engine_session, training_on
from training.manifest import record_manifest


@dataclass
class RunContext:
    """What the stages share: inputs, settings, results so far and the report sections."""

    data_dir: Path
    as_of: pd.Timestamp
    out_dir: Path
    settings: Settings
    data: ValidatedData | None = None
    portrait: pd.DataFrame | None = None
    results: dict[str, Any] = field(default_factory=dict)
    sections: list[Section] = field(default_factory=list)
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    statuses: dict[str, StageStatus] = field(default_factory=dict)

    def record(self, name: str, status: StageStatus) -> None:
        """Record a stage's (or a stage part's, `stage.part`) status."""
        self.statuses[name] = status

    def has(self, need: str) -> bool:
        """True when an earlier stage gave `need` (the portrait or a key of `results`)."""
        return getattr(self, need, None) is not None or self.results.get(need) is not None

    @property
    def tables(self) -> dict[str, pd.DataFrame]:
        assert self.data is not None, "the validate stage runs first"
        return self.data.tables


@dataclass(frozen=True)
class RunResult:
    """Where a run wrote its outputs."""

    out_dir: Path
    report: Path
    quality: Path
    run_id: str
    tracking_uri: str


def validate_stage(ctx: RunContext) -> None:
    """Load and validate every table; quarantine files are written even when the run stops."""
    try:
        ctx.data = load_dataset(
            ctx.data_dir, max_bad_fraction=ctx.settings.validation.max_bad_fraction
        )
    except ContractError as exc:
        partial = getattr(exc, "data", None)
        if partial is not None:
            write_quarantine(partial, ctx.out_dir)
        raise
    write_quarantine(ctx.data, ctx.out_dir)
    customers, used = select_extra_columns(
        ctx.data.tables["customers"], settings=ctx.settings.features
    )
    ctx.data.tables["customers"] = customers
    ctx.results["extra_columns"] = used
    tracking.log_params({"features.extra_columns": ",".join(used) or "none"})
    ctx.sections.append(quality_section(ctx.data.summary()))
    if used:
        ctx.sections[-1].text(
            f"The firm's own customer columns used as features (extra_<name>): {', '.join(used)}."
        )


def features_stage(ctx: RunContext) -> None:
    """Build the point-in-time portrait and write features.parquet."""
    # dask: the tables go to the workers once; later stages reuse them through the cluster.
    cluster = ctx.results["cluster"] = distribute(ctx.tables, settings=ctx.settings)
    ctx.portrait = build_portrait(
        ctx.tables, as_of=ctx.as_of, settings=ctx.settings, cluster=cluster
    )
    if cluster is not None:
        cluster.release()
    ctx.portrait.to_parquet(ctx.out_dir / "features.parquet", index=False)
    ctx.sections.append(statistics_section(ctx.tables, ctx.portrait, as_of=ctx.as_of))
    ctx.metrics["features"] = {
        "customers": len(ctx.portrait),
        "active_customers": int(ctx.portrait["is_active"].sum()),
        "departed_customers": int(ctx.portrait.get("is_departed", pd.Series(dtype=bool)).sum()),
        "feature_columns": ctx.portrait.shape[1] - 1,
    }


StageRun = Callable[[RunContext], StageStatus | None]


@dataclass(frozen=True)
class Stage:
    """A named step of the run, what it needs from earlier stages and what it gives."""

    name: str
    run: StageRun
    needs: tuple[str, ...] = ()
    gives: tuple[str, ...] = ()


STAGES: list[Stage] = [
    Stage("validate", validate_stage, gives=("data",)),
    Stage("features", features_stage, needs=("data",), gives=("portrait",)),
    Stage("segments", segments_stage, needs=("portrait",), gives=("segments",)),
    # uses segments when the segments stage gave them
    Stage("rules", rules_stage, needs=("data",), gives=("rule_base",)),
    Stage("models", models_stage, needs=("portrait",), gives=("churn_scores", "recommendations")),
    # keep last: reads segments and churn scores when present
    Stage("experiments", experiments_stage, needs=("portrait",)),
]


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
    ctx = RunContext(Path(data_dir), pd.Timestamp(as_of), out_dir, settings)
    uri = tracking.configure(settings.tracking)
    with tracking.start_run(f"run {ctx.as_of.date()}") as run, engine_session(settings.engine):
        tracking.log_params(
            {"data_dir": str(data_dir), "as_of": str(ctx.as_of.date()), "settings": settings}
        )
        for i, stage in enumerate(STAGES, start=1):
            started = time.perf_counter()
            _say(echo, f"[{i}/{len(STAGES)}] {stage.name} ...")
            status = run_stage(ctx, stage)
            took = time.perf_counter() - started
            note = "" if status.complete else f" ({status.status}: {status.reason})"
            _say(echo, f"[{i}/{len(STAGES)}] {stage.name} done in {took:.1f}s{note}")
        report, quality = _write_outputs(ctx)
        _log_run(ctx, report, quality)
        run_id = run.info.run_id
    failed = {n: s.reason for n, s in ctx.statuses.items() if s.status == FAILED}
    if failed:  # no manifest: a run with a failed stage is never served
        raise RunIncomplete(
            "stage(s) failed: "
            + "; ".join(f"{n}: {r}" for n, r in failed.items())
            + f". report.html and quality.json are in {out_dir}; please report this bug"
        )
    record_manifest(out_dir, run_id=run_id, models=ctx.results.get("champions", {}))
    return RunResult(out_dir, report, quality, run_id, uri)


def run_stage(ctx: RunContext, stage: Stage) -> StageStatus:
    """Run one stage: skipped when a need is missing or the data cannot support it, failed on a bug.

    A validation error (broken schema, too many bad rows) stops the run: nothing else can run.
    """
    missing = [n for n in stage.needs if not ctx.has(n)]
    sections = len(ctx.sections)
    if missing:
        status = skipped(f"needs {', '.join(missing)}, which no earlier stage gave")
    else:
        try:
            with training_on(ctx.results.get("cluster")):  # models train where the data is
                status = stage.run(ctx) or StageStatus()
        except NotEnoughData as exc:
            status = skipped(str(exc))
        except Exception:  # noqa: BLE001 - one stage's bug must not lose the others' outputs
            if stage.name == "validate":  # bad input or settings: nothing else can run
                raise
            status = _failed(ctx, stage)
    ctx.record(stage.name, status)
    if not status.complete and len(ctx.sections) == sections:  # the stage said nothing itself
        ctx.sections.append(Section(stage.name.capitalize()).text(
            f"{stage.name} {status.status}: {status.reason}", css="bad"))  # fmt: skip
    return status


def _failed(ctx: RunContext, stage: Stage) -> StageStatus:
    trace = traceback.format_exc()
    with open(ctx.out_dir / "errors.log", "a", encoding="utf-8") as log:
        log.write(f"stage {stage.name}:\n{trace}\n")
    line = trace.strip().splitlines()[-1]
    return StageStatus(FAILED, f"internal error ({line}); traceback in errors.log")


def _log_run(ctx: RunContext, report: Path, quality: Path) -> None:
    if ctx.data is not None:
        tracking.log_params({"data_fingerprint": tracking.data_fingerprint(ctx.tables)})
    for stage_name, values in ctx.metrics.items():
        tracking.log_metrics(values, prefix=f"{stage_name}.")
    tracking.set_tags(
        {f"stage.{n}.status": s.status for n, s in ctx.statuses.items()}
        | {f"stage.{n}.reason": s.reason for n, s in ctx.statuses.items() if s.reason}
    )
    tracking.log_artifact(report)
    tracking.log_artifact(quality)


def _write_outputs(ctx: RunContext) -> tuple[Path, Path]:
    quality = ctx.out_dir / "quality.json"
    write_quality(
        ctx.data,
        quality,
        extra={
            "as_of": str(ctx.as_of.date()),
            "data_dir": str(ctx.data_dir.resolve()),
            "metrics": _jsonable(ctx.metrics),
            "stages": {n: s.as_dict() for n, s in ctx.statuses.items()},
            "extra_columns": ctx.results.get("extra_columns", []),
        },
    )
    at = 1 if ctx.sections else 0  # after the data quality section
    report = write_report(
        [*ctx.sections[:at], stages_section(ctx.statuses), *ctx.sections[at:]],
        ctx.out_dir / "report.html",
        title="Customer portrait report",
        subtitle=f"Data {ctx.data_dir} as of {ctx.as_of.date()}; written by portrait run.",
    )
    return report, quality


def _jsonable(value: Any) -> Any:
    return json.loads(
        json.dumps(value, default=lambda v: v.item() if hasattr(v, "item") else str(v))
    )


def _say(echo: bool, message: str) -> None:
    if echo:
        print(message, file=sys.stderr, flush=True)
