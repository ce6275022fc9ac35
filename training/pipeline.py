"""`portrait run`: validate -> features -> segments, rules, models, audiences -> report, quality.json, MLflow.

Each stage is a function of the run context; later parts add their stage to `STAGES`.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from experiments.stage import experiments_stage
from features.validate import ValidatedData, load_dataset, write_quality, write_quarantine
from portrait.errors import ContractError
from portrait.settings import Settings
from training import tracking
from training.engine import build_portrait, distribute, engine_session, training_on
from training.manifest import record_manifest
from training.models_stage import models_stage
from training.report import Section, write_report
from training.rules_stage import rules_stage
from training.segments_stage import segments_stage
from training.statistics import quality_section, statistics_section


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
    ctx.sections.append(quality_section(ctx.data.summary()))


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
        "feature_columns": ctx.portrait.shape[1] - 1,
    }


Stage = Callable[[RunContext], None]
STAGES: list[tuple[str, Stage]] = [
    ("validate", validate_stage),
    ("features", features_stage),
    ("segments", segments_stage),  # ctx.results["segments"], ctx.results["segment_model"]
    ("rules", rules_stage),  # uses ctx.results["segments"] when a segments stage ran before it
    ("models", models_stage),  # churn_scores.parquet, recommendations.parquet, champions
    ("experiments", experiments_stage),  # keep last: reads segments and churn scores when present
]


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
        for i, (name, stage) in enumerate(STAGES, start=1):
            started = time.perf_counter()
            _say(echo, f"[{i}/{len(STAGES)}] {name} ...")
            with training_on(ctx.results.get("cluster")):  # models train where the data is
                stage(ctx)
            _say(echo, f"[{i}/{len(STAGES)}] {name} done in {time.perf_counter() - started:.1f}s")
        report, quality = _write_outputs(ctx)
        tracking.log_params({"data_fingerprint": tracking.data_fingerprint(ctx.tables)})
        for stage_name, values in ctx.metrics.items():
            tracking.log_metrics(values, prefix=f"{stage_name}.")
        tracking.log_artifact(report)
        tracking.log_artifact(quality)
        run_id = run.info.run_id
    record_manifest(out_dir, run_id=run_id, models=ctx.results.get("champions", {}))
    return RunResult(out_dir, report, quality, run_id, uri)


def _write_outputs(ctx: RunContext) -> tuple[Path, Path]:
    quality = ctx.out_dir / "quality.json"
    write_quality(
        ctx.data,
        quality,
        extra={
            "as_of": str(ctx.as_of.date()),
            "data_dir": str(ctx.data_dir.resolve()),
            "metrics": _jsonable(ctx.metrics),
        },
    )
    report = write_report(
        ctx.sections,
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
