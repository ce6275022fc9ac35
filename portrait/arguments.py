"""The arguments of every `portrait` command, and the parsing they share (dates, --set).

Kept apart from the commands so that building the parser (`portrait --help`) imports neither
MLflow nor LightGBM nor BentoML.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from portrait.errors import PortraitError
from portrait.settings import Settings, load_settings


def parse_as_of(text: str) -> pd.Timestamp:
    """A cut-off date from the command line, with a clear error when it is not a date."""
    try:
        return (
            pd.Timestamp(text).tz_localize(None)
            if pd.Timestamp(text).tzinfo
            else pd.Timestamp(text)
        )
    except (ValueError, TypeError) as exc:
        raise PortraitError(f"--as-of {text!r} is not a date; use YYYY-MM-DD") from exc


def settings_from(args: argparse.Namespace) -> Settings:
    """Settings from --config and --set KEY=VALUE overrides."""
    overrides = {}
    for item in args.set or []:
        key, sep, value = item.partition("=")
        if not sep or "." not in key:
            raise PortraitError(
                f"--set {item!r} must look like section.name=value, e.g. models.k=10"
            )
        overrides[key] = value
    return load_settings(args.config, overrides)


def whole(text: str) -> int:
    """A whole number, also written as MLflow passes typed floats ("10.0")."""
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from exc
    if not value.is_integer():
        raise argparse.ArgumentTypeError(f"{text!r} must be a whole number")
    return int(value)


def data_args(p: argparse.ArgumentParser) -> None:
    """The arguments of `portrait validate`."""
    p.add_argument(
        "data_dir",
        type=Path,
        help="dataset directory with one file per table (see DATA_CONTRACT.md)",
    )


def demo_args(p: argparse.ArgumentParser) -> None:
    """The arguments of `portrait demo`."""
    p.add_argument("out_dir", type=Path, help="directory to write the tables (and truth/) into")
    p.add_argument(
        "--customers", type=int, default=20000, help="number of customers (default 20000)"
    )
    p.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    p.add_argument(
        "--bad-rows", type=float, default=0.0, help="fraction of bad rows to inject (default 0)"
    )
    p.add_argument(
        "--exit-style",
        choices=["silent", "sellout"],
        default="silent",
        help="how leavers go: silent (stop, holdings stay; default) or sellout (sell everything, "
        "withdraw all cash, then stop)",
    )
    p.add_argument(
        "--profile",
        choices=["default", "alt"],
        default="default",
        help="demo configuration: default, or alt (six other personas, product mixes and event "
        "rates; features/demo_bank/profiles.py)",
    )
    p.add_argument(
        "--format",
        choices=["parquet", "csv"],
        default="parquet",
        help="file format (default parquet)",
    )


def features_args(p: argparse.ArgumentParser) -> None:
    """The arguments of `portrait features`."""
    p.add_argument("data_dir", type=Path, help="dataset directory")
    p.add_argument("--as-of", required=True, help="cut-off date: features see only rows before it")
    p.add_argument("--out", type=Path, required=True, help="output file (.parquet or .csv)")


def run_args(p: argparse.ArgumentParser) -> None:
    """The arguments of `portrait run`."""
    p.add_argument("--data", type=Path, required=True, help="dataset directory")
    p.add_argument("--as-of", required=True, help="cut-off date (YYYY-MM-DD)")
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        help="run directory for report.html, quality.json and tables",
    )
    # Both are settings (engine.engine, engine.scheduler): appended to --set, so a flag wins over --config.
    p.add_argument(
        "--engine",
        dest="set",
        action="append",
        type=lambda v: f"engine.engine={v}",
        metavar="{pandas,dask}",
        help="compute engine: pandas on this machine (default) or dask",
    )
    p.add_argument(
        "--scheduler",
        dest="set",
        action="append",
        type=lambda v: f"engine.scheduler={v}",
        metavar="ADDRESS",
        help="dask scheduler to connect to, e.g. tcp://10.0.0.5:8786 (default: start a LocalCluster)",
    )


def serve_args(p: argparse.ArgumentParser) -> None:
    """The arguments of `portrait serve`."""
    p.add_argument("--run", type=Path, help="run directory (default: the latest `portrait run`)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=3000, help="port (default 3000)")
    p.add_argument("--audit-log", type=Path, help="audit log (default RUN/audit/exclusions.jsonl)")
    p.add_argument("--keys", type=Path, help="API key file (`portrait keys add` writes it)")
    p.add_argument(
        "--insecure-local",
        action="store_true",
        help="serve without keys (every route open), bound to 127.0.0.1 only; for a laptop",
    )


def keys_args(p: argparse.ArgumentParser) -> None:
    """The arguments of `portrait keys`."""
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="make a key; it is printed once, as the last line")
    add.add_argument("name", help="who or what uses the key, e.g. mobile-app or alice")
    add.add_argument(
        "--role", action="append", required=True, choices=["app", "staff", "marketer", "admin"],
        help="a role of the key (repeat for more)",
    )  # fmt: skip
    actions.add_parser("list", help="names, roles and creation times (never the keys)")
    revoke = actions.add_parser("revoke", help="remove a key; the service refuses it at once")
    revoke.add_argument("name")
    for sub in actions.choices.values():
        sub.add_argument("--keys", type=Path, default=argparse.SUPPRESS, help="key file")
    p.add_argument("--keys", type=Path, help="key file (default serving.keys_file, else keys.json)")


def audience_args(p: argparse.ArgumentParser) -> None:
    """The arguments of `portrait audience`."""
    p.add_argument("query", help="audience query, or a ready-made name (see experiments/README.md)")
    p.add_argument("--data", type=Path, required=True, help="dataset directory")
    p.add_argument(
        "--as-of", required=True, help="cut-off date: the query sees only rows before it"
    )
    p.add_argument("--run", type=Path, help="run directory with segments / churn / uplift scores")
    out = p.add_mutually_exclusive_group()
    out.add_argument(
        "--count", action="store_true", help="print the count only (the default without --out)"
    )
    out.add_argument("--out", type=Path, help="export file (.csv or .parquet)")
    p.add_argument("--limit", type=int, help="export at most this many customers")


def campaign_args(p: argparse.ArgumentParser) -> None:
    """The arguments of `portrait campaign`."""
    p.add_argument("campaign_id", help="campaign_id in the campaigns table")
    p.add_argument("--data", type=Path, required=True, help="dataset directory")
    p.add_argument(
        "--window-days", type=int, default=30, help="conversion window after sent_at (default 30)"
    )
    p.add_argument(
        "--run", type=Path, help="run directory with segments.parquet for the per-segment breakdown"
    )


def model_args(p: argparse.ArgumentParser) -> None:
    """--data, --as-of, --trials and --seed of train, tune and evaluate."""
    p.add_argument("--data", required=True, help="dataset directory")
    p.add_argument("--as-of", required=True, help="scoring date; training uses only rows before it")
    p.add_argument("--trials", type=whole, help="Optuna trials (default: models.n_trials)")
    p.add_argument("--seed", type=whole, help="random seed (default: models.seed)")
