"""The `portrait audience` and `portrait campaign` commands: read inputs, call the pure functions, print."""

from __future__ import annotations

import argparse

import pandas as pd

from experiments.audience import load_run_extras, run_audience, write_audience
from experiments.campaign import evaluate_campaign
from features.portrait import build_features
from features.validate import load_dataset
from portrait.errors import PortraitError
from portrait.settings import Settings


def audience_command(args: argparse.Namespace, settings: Settings, *, as_of: pd.Timestamp) -> int:
    """Print the count (and opted-out count); with --out export every matching customer."""
    if args.out is not None and args.out.suffix not in (".csv", ".parquet"):
        raise PortraitError(f"--out {args.out} must end in .csv or .parquet")
    extras = load_run_extras(args.run)
    tables = _tables(args.data, settings)
    portrait = build_features(
        tables, as_of=as_of, active_days=settings.time.active_days,
        engagement_rule=settings.engagement,
    )  # fmt: skip
    export = args.out is not None
    result = run_audience(
        args.query,
        tables=tables,
        portrait=portrait,
        extras=extras,
        as_of=as_of,
        limit=args.limit if export else 0,
        explain=export,
    )
    print(f"query:    {result.query}")
    print(f"as of:    {as_of.date()}  ({result.eligible:,} customers signed up before it)")
    print(f"matched:  {result.matched:,}")
    print(
        f"audience: {result.count:,}  ({result.opted_out_excluded:,} opted out of marketing, never exported)"
    )
    if export:
        path = write_audience(result, args.out)
        print(f"exported: {len(result.frame):,} customers to {path}")
    return 0


def campaign_command(args: argparse.Namespace, settings: Settings) -> int:
    """Print the campaign result table, the SRM check and the per-segment breakdown."""
    extras = load_run_extras(args.run)
    tables = _tables(args.data, settings)
    result = evaluate_campaign(
        tables,
        campaign_id=args.campaign_id,
        window_days=args.window_days,
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
