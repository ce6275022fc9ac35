"""`portrait audience | campaign`: read inputs, call the experiments package, print."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from experiments.audience import load_run_extras, run_audience, write_audience
from experiments.campaign import evaluate_campaign
from features.portrait import build_features
from features.validate import load_dataset
from portrait.arguments import parse_as_of
from portrait.errors import PortraitError
from portrait.settings import Settings


def audience(
    *, settings: Settings, query: str, data: Path, as_of: str, run: Path | None, out: Path | None,
    limit: int | None,
) -> int:  # fmt: skip
    """Print the count (and opted-out count); with --out export every matching customer."""
    cutoff = parse_as_of(as_of)
    if out is not None and out.suffix not in (".csv", ".parquet"):
        raise PortraitError(f"--out {out} must end in .csv or .parquet")
    extras = load_run_extras(run)
    tables = _tables(data, settings)
    portrait = build_features(
        tables, as_of=cutoff, active_days=settings.time.active_days,
        engagement_rule=settings.engagement,
    )  # fmt: skip
    export = out is not None
    result = run_audience(
        query,
        tables=tables,
        portrait=portrait,
        extras=extras,
        as_of=cutoff,
        limit=limit if export else 0,
        explain=export,
    )
    print(f"query:    {result.query}")
    print(f"as of:    {cutoff.date()}  ({result.eligible:,} customers signed up before it)")
    print(f"matched:  {result.matched:,}")
    print(
        f"audience: {result.count:,}  ({result.opted_out_excluded:,} opted out of marketing, never exported)"
    )
    if export:
        path = write_audience(result, out)
        print(f"exported: {len(result.frame):,} customers to {path}")
    return 0


def campaign(
    *, settings: Settings, campaign_id: str, data: Path, window_days: int, run: Path | None
) -> int:
    """Print the campaign result table, the SRM check and the per-segment breakdown."""
    extras = load_run_extras(run)
    tables = _tables(data, settings)
    result = evaluate_campaign(
        tables,
        campaign_id=campaign_id,
        window_days=window_days,
        segments=extras.get("segments"),
        expected_share=settings.experiments.expected_treatment_share,
    )
    print(result.statement())
    srm = result.srm
    print(
        f"sample ratio: {srm['observed_share']:.3f} treated (planned {srm['expected_share']:.3f}), p = {srm['p_value']:.3g}"
    )
    with pd.option_context(
        "display.width", 200, "display.max_columns", 30, "display.float_format", "{:.4f}".format
    ):
        print(result.overall.drop(columns="breakdown").to_string(index=False))
        if not result.breakdown.empty:
            print(result.breakdown.to_string(index=False))
    return 0


def _tables(data_dir, settings: Settings) -> dict[str, pd.DataFrame]:
    return load_dataset(data_dir, max_bad_fraction=settings.validation.max_bad_fraction).tables
