"""The `portrait` command line: one sub-command per entry of COMMANDS, each a thin edge.

A command's handler is named "module:function" and imported only when that command runs, so
building the parser (`portrait --help`) stays light. Handlers take keyword arguments named as
the parsed arguments, plus `settings` (from --config and --set) and `overrides` (the --set list).
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# OpenMP threads (LightGBM's) sleep at a barrier instead of spinning: on a machine whose cores
# other work shares, spinning threads made a 2-thread LightGBM fit 3x slower than one thread;
# alone, sleeping gives 1.42x of 1.87x (benchmarks/threads.py). A dedicated machine may set
# OMP_WAIT_POLICY=ACTIVE itself: this is only a default. Read before LightGBM loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from portrait import arguments as a  # noqa: E402
from portrait.errors import PortraitError


@dataclass(frozen=True)
class Command:
    """A sub-command: its help line, its arguments and where its handler is."""

    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    handler: str  # "module:function"

    def run(self, args: argparse.Namespace) -> int:
        """Call the handler with the parsed arguments it names."""
        module, _, name = self.handler.partition(":")
        handler = getattr(importlib.import_module(module), name)
        names = inspect.signature(handler).parameters
        values: dict[str, Any] = vars(args) | {"overrides": args.set or []}
        if "settings" in names:
            values["settings"] = a.settings_from(args)
        return handler(**{p: values[p] for p in names if p in values})


COMMANDS: dict[str, Command] = {
    "validate": Command("check every table against the data contract; print and write "
                        "quality.json", a.data_args, "portrait.commands:validate"),
    "demo-data": Command("generate the demo bank: every contract table plus the planted truth "
                         "in truth/", a.demo_args, "portrait.commands:demo_data"),
    "features": Command("build the point-in-time customer portrait as of a date",
                        a.features_args, "portrait.commands:features"),
    "run": Command("the whole pipeline: validate, features, segments, rules, models, report and "
                   "MLflow", a.run_args, "portrait.commands:run"),
    "serve": Command("serve recommendations, profiles and audiences over HTTP (BentoML)",
                     a.serve_args, "portrait.commands:serve"),
    "keys": Command("add, list or revoke the API keys of the service", a.keys_args,
                    "portrait.commands:keys"),
    "audience": Command("count or export an audience described in the query language",
                        a.audience_args, "portrait.marketing_commands:audience"),
    "campaign": Command("treatment against control: conversion, lift, 95%% CI, p-value, SRM, "
                        "per segment", a.campaign_args, "portrait.marketing_commands:campaign"),
    "train": Command("train churn and conversion models (default parameters), gate, register",
                     a.model_args, "portrait.model_commands:train"),
    "tune": Command("tune both models with Optuna (--trials), refit, gate, register",
                    a.model_args, "portrait.model_commands:tune"),
    "evaluate": Command("score the champion models and baselines on the validation fold",
                        a.model_args, "portrait.model_commands:evaluate"),
}  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one sub-command per entry of COMMANDS."""
    parser = argparse.ArgumentParser(
        prog="portrait",
        description="Customer portraits, segments, product rules, churn and next-best-product models.",
    )
    parser.add_argument(
        "--debug", action="store_true", help="show the full traceback of an internal error"
    )
    subs = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, command in COMMANDS.items():
        sub = subs.add_parser(name, help=command.help, description=command.help)
        command.arguments(sub)
        sub.add_argument("--config", type=Path, help="YAML settings file")
        sub.add_argument("--set", action="append", metavar="KEY=VALUE",
                         help="override a setting, e.g. models.k=10")  # fmt: skip
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point: run a command; user errors print one clear line and exit 2, never a traceback."""
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command].run(args)
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
