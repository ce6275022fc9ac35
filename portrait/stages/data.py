"""The first two stages of `portrait run`: validate the dataset, build the point-in-time portrait."""

from __future__ import annotations

import dataclasses

import pandas as pd

from features.extra_columns import select_extra_columns
from features.quality import ValidatedData, write_quarantine
from features.validate import load_dataset
from portrait.errors import ContractError
from portrait.stages.result import RunInputs, StageResult
from portrait.stages.statistics import quality_section, statistics_section
from training.engine import build_portrait, distribute


def validate_stage(run: RunInputs) -> StageResult:
    """Load and validate every table; the quarantine files are written even when the run stops."""
    try:
        data = load_dataset(run.data_dir, max_bad_fraction=run.settings.validation.max_bad_fraction)
    except ContractError as exc:
        partial = getattr(exc, "data", None)
        if partial is not None:
            write_quarantine(partial, run.out_dir)
        raise
    write_quarantine(data, run.out_dir)
    customers, used = select_extra_columns(data.tables["customers"], settings=run.settings.features)
    data = dataclasses.replace(data, tables={**data.tables, "customers": customers})
    section = quality_section(data.summary())
    if used:
        section.text(
            f"The firm's own customer columns used as features (extra_<name>): {', '.join(used)}."
        )
    return StageResult(
        gives={"data": data, "extra_columns": used},
        params={"features.extra_columns": ",".join(used) or "none"},
        sections=(section,),
    )


def features_stage(run: RunInputs, *, data: ValidatedData) -> StageResult:
    """Build the point-in-time portrait: features.parquet, the statistics section, counts."""
    # dask: the tables go to the workers once; later stages reuse them through the cluster.
    cluster = distribute(data.tables, settings=run.settings)
    portrait = build_portrait(data.tables, as_of=run.as_of, settings=run.settings, cluster=cluster)
    if cluster is not None:
        cluster.release()
    departed = portrait.get("is_departed", pd.Series(dtype=bool))
    return StageResult(
        gives={"portrait": portrait, "cluster": cluster},
        files={"features.parquet": portrait},
        sections=(statistics_section(data.tables, portrait, as_of=run.as_of),),
        metrics={
            "customers": len(portrait),
            "active_customers": int(portrait["is_active"].sum()),
            "departed_customers": int(departed.sum()),
            "feature_columns": portrait.shape[1] - 1,
        },
    )
