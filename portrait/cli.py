"""The `portrait` command line. Each command is a thin edge over pure functions in the packages."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from portrait.errors import PortraitError
from portrait.settings import Settings, load_settings

COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[..., int]]] = {}


def command(name: str, help_text: str, arguments: Callable[[argparse.ArgumentParser], None]):
    """Register a sub-command: its help line, its arguments and the function that runs it."""

    def register(run: Callable[..., int]) -> Callable[..., int]:
        COMMANDS[name] = (help_text, arguments, run)
        return run

    return register


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


def _data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "data_dir",
        type=Path,
        help="dataset directory with one file per table (see DATA_CONTRACT.md)",
    )


def _demo_args(p: argparse.ArgumentParser) -> None:
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


def _features_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("data_dir", type=Path, help="dataset directory")
    p.add_argument("--as-of", required=True, help="cut-off date: features see only rows before it")
    p.add_argument("--out", type=Path, required=True, help="output file (.parquet or .csv)")


def _run_args(p: argparse.ArgumentParser) -> None:
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


@command(
    "validate",
    "check every table against the data contract; print and write quality.json",
    _data_args,
)
def validate_cmd(args: argparse.Namespace, settings: Settings) -> int:
    from features.validate import (
        format_quality_table,
        load_dataset,
        write_quality,
        write_quarantine,
    )

    data = load_dataset(args.data_dir, max_bad_fraction=settings.validation.max_bad_fraction)
    print(format_quality_table(data))
    write_quarantine(data, args.data_dir)
    write_quality(data, args.data_dir / "quality.json")
    print(f"quality report: {args.data_dir / 'quality.json'}")
    return 0


@command(
    "demo-data",
    "generate the demo bank: every contract table plus the planted truth in truth/",
    _demo_args,
)
def demo_data_cmd(args: argparse.Namespace, settings: Settings) -> int:
    from features.demo_bank import generate_demo_bank, write_demo_bank

    if args.customers < 10:
        raise PortraitError("--customers must be at least 10")
    if not 0 <= args.bad_rows <= 0.2:
        raise PortraitError("--bad-rows must be between 0 and 0.2")
    bank = generate_demo_bank(
        n_customers=args.customers, seed=args.seed, bad_rows=args.bad_rows,
        exit_style=args.exit_style, profile=args.profile,
    )  # fmt: skip
    write_demo_bank(bank, args.out_dir, fmt=args.format)
    counts = ", ".join(f"{name} {len(frame):,}" for name, frame in bank.tables.items())
    print(f"demo bank written to {args.out_dir}: {counts}")
    return 0


@command("features", "build the point-in-time customer portrait as of a date", _features_args)
def features_cmd(args: argparse.Namespace, settings: Settings) -> int:
    from features.portrait import build_features
    from features.validate import load_dataset

    data = load_dataset(args.data_dir, max_bad_fraction=settings.validation.max_bad_fraction)
    portrait = build_features(
        data.tables, as_of=parse_as_of(args.as_of), active_days=settings.time.active_days,
        engagement_rule=settings.engagement,
    )  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.out.suffix == ".csv":
        portrait.to_csv(args.out, index=False)
    else:
        portrait.to_parquet(args.out, index=False)
    print(f"{len(portrait):,} customers x {portrait.shape[1] - 1} features written to {args.out}")
    return 0


@command(
    "run",
    "the whole pipeline: validate, features, segments, rules, models, report and MLflow",
    _run_args,
)
def run_cmd(args: argparse.Namespace, settings: Settings) -> int:
    as_of = parse_as_of(args.as_of)  # before the slow imports: a typo fails at once
    from portrait.pipeline import run_pipeline
    from training.tracking import ui_command

    result = run_pipeline(args.data, as_of=as_of, out_dir=args.out, settings=settings)
    print(f"report:   {result.report.resolve()}")
    print(f"quality:  {result.quality.resolve()}")
    print(f"MLflow:   run {result.run_id}; browse with `{ui_command(result.tracking_uri)}`")
    from serving.runs import record_latest_run

    record_latest_run(result.out_dir, result.tracking_uri)  # `portrait serve` default
    return 0


def _serve_args(p: argparse.ArgumentParser) -> None:
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


@command("serve", "serve recommendations, profiles and audiences over HTTP (BentoML)", _serve_args)
def serve_cmd(args: argparse.Namespace, settings: Settings) -> int:
    from serving.launch import serve

    overrides = dict(item.partition("=")[::2] for item in args.set or [])
    return serve(
        run_dir=args.run, settings=settings, config=args.config, overrides=overrides,
        host=args.host, port=args.port, audit_log=args.audit_log, keys=args.keys,
        insecure_local=args.insecure_local,
    )  # fmt: skip


def _keys_args(p: argparse.ArgumentParser) -> None:
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


@command("keys", "add, list or revoke the API keys of the service", _keys_args)
def keys_cmd(args: argparse.Namespace, settings: Settings) -> int:
    from serving import keys

    path = args.keys or Path(settings.serving.keys_file or "keys.json")
    if args.action == "add":
        key = keys.add_key(path, args.name, roles=args.role)
        print(f"key {args.name!r} ({', '.join(sorted(set(args.role)))}) added to {path}")
        print("store it now; it is not shown again:")
        print(key)
    elif args.action == "revoke":
        keys.revoke_key(path, args.name)
        print(f"key {args.name!r} revoked in {path}")
    else:
        for name, entry in sorted(keys.read_keys(path).items()):
            print(f"{name}\t{','.join(entry.get('roles', []))}\t{entry.get('created', '')}")
    return 0


def _audience_args(p: argparse.ArgumentParser) -> None:
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


@command("audience", "count or export an audience described in the query language", _audience_args)
def audience_cmd(args: argparse.Namespace, settings: Settings) -> int:
    from experiments.cli import audience_command

    return audience_command(args, settings, as_of=parse_as_of(args.as_of))


def _campaign_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("campaign_id", help="campaign_id in the campaigns table")
    p.add_argument("--data", type=Path, required=True, help="dataset directory")
    p.add_argument(
        "--window-days", type=int, default=30, help="conversion window after sent_at (default 30)"
    )
    p.add_argument(
        "--run", type=Path, help="run directory with segments.parquet for the per-segment breakdown"
    )


@command(
    "campaign",
    "treatment against control: conversion, lift, 95%% CI, p-value, SRM, per segment",
    _campaign_args,
)
def campaign_cmd(args: argparse.Namespace, settings: Settings) -> int:
    from experiments.cli import campaign_command

    return campaign_command(args, settings)


def _model_args(p: argparse.ArgumentParser) -> None:
    """--data, --as-of, --trials and --seed of train, tune and evaluate."""
    p.add_argument("--data", required=True, help="dataset directory")
    p.add_argument("--as-of", required=True, help="scoring date; training uses only rows before it")
    p.add_argument("--trials", type=_whole, help="Optuna trials (default: models.n_trials)")
    p.add_argument("--seed", type=_whole, help="random seed (default: models.seed)")


def _whole(text: str) -> int:
    """A whole number, also written as MLflow passes typed floats ("10.0")."""
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from exc
    if not value.is_integer():
        raise argparse.ArgumentTypeError(f"{text!r} must be a whole number")
    return int(value)


@command(
    "train", "train churn and conversion models (default parameters), gate, register", _model_args
)
def train_cmd(args: argparse.Namespace, settings: Settings) -> int:
    from portrait.model_commands import train_command

    return train_command(args, settings)


@command("tune", "tune both models with Optuna (--trials), refit, gate, register", _model_args)
def tune_cmd(args: argparse.Namespace, settings: Settings) -> int:
    from portrait.model_commands import tune_command

    return tune_command(args, settings)


@command("evaluate", "score the champion models and baselines on the validation fold", _model_args)
def evaluate_cmd(args: argparse.Namespace, settings: Settings) -> int:
    from portrait.model_commands import evaluate_command

    return evaluate_command(args, settings)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one sub-command per registered command."""
    parser = argparse.ArgumentParser(
        prog="portrait",
        description="Customer portraits, segments, product rules, churn and next-best-product models.",
    )
    parser.add_argument(
        "--debug", action="store_true", help="show the full traceback of an internal error"
    )
    subs = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (help_text, arguments, _) in COMMANDS.items():
        sub = subs.add_parser(name, help=help_text, description=help_text)
        arguments(sub)
        sub.add_argument("--config", type=Path, help="YAML settings file")
        sub.add_argument(
            "--set",
            action="append",
            metavar="KEY=VALUE",
            help="override a setting, e.g. models.k=10",
        )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point: run a command; user errors print one clear line and exit 2, never a traceback."""
    args = build_parser().parse_args(argv)
    try:
        settings = settings_from(args)
        return COMMANDS[args.command][2](args, settings)
    except PortraitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - the edge: a bug must still end with one clear line
        if args.debug:
            raise
        print(
            f"error: internal error ({type(exc).__name__}: {exc}); rerun with --debug for the traceback",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
