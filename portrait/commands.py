"""`portrait validate | demo-data | features | run | serve | keys`: read inputs, call the packages, print.

Each handler takes keyword arguments named as the command's parsed arguments (plus `settings`
and `overrides`, the --set list). Heavy imports stay inside the handlers.
"""

from __future__ import annotations

from pathlib import Path

from portrait.arguments import parse_as_of
from portrait.errors import PortraitError
from portrait.settings import Settings


def validate(*, settings: Settings, data_dir: Path) -> int:
    """Check every table against the contract; print the table, write quality.json and quarantine."""
    from features.quality import format_quality_table, write_quality, write_quarantine
    from features.validate import load_dataset

    data = load_dataset(data_dir, max_bad_fraction=settings.validation.max_bad_fraction)
    print(format_quality_table(data))
    write_quarantine(data, data_dir)
    write_quality(data, data_dir / "quality.json")
    print(f"quality report: {data_dir / 'quality.json'}")
    return 0


def demo_data(
    *, out_dir: Path, customers: int, seed: int, bad_rows: float, exit_style: str, profile: str,
    format: str,  # noqa: A002 - the --format argument
) -> int:  # fmt: skip
    """Generate the demo bank: every contract table plus the planted truth in truth/."""
    from features.demo_bank import generate_demo_bank, write_demo_bank

    if customers < 10:
        raise PortraitError("--customers must be at least 10")
    if not 0 <= bad_rows <= 0.2:
        raise PortraitError("--bad-rows must be between 0 and 0.2")
    bank = generate_demo_bank(n_customers=customers, seed=seed, bad_rows=bad_rows,
                              exit_style=exit_style, profile=profile)  # fmt: skip
    write_demo_bank(bank, out_dir, fmt=format)
    counts = ", ".join(f"{name} {len(frame):,}" for name, frame in bank.tables.items())
    print(f"demo bank written to {out_dir}: {counts}")
    return 0


def features(*, settings: Settings, data_dir: Path, as_of: str, out: Path) -> int:
    """Build the point-in-time portrait as of a date and write it (.parquet or .csv)."""
    from features.portrait import build_features
    from features.validate import load_dataset

    data = load_dataset(data_dir, max_bad_fraction=settings.validation.max_bad_fraction)
    portrait = build_features(
        data.tables, as_of=parse_as_of(as_of), active_days=settings.time.active_days,
        engagement_rule=settings.engagement,
    )  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".csv":
        portrait.to_csv(out, index=False)
    else:
        portrait.to_parquet(out, index=False)
    print(f"{len(portrait):,} customers x {portrait.shape[1] - 1} features written to {out}")
    return 0


def run(*, settings: Settings, data: Path, as_of: str, out: Path) -> int:
    """The whole pipeline; prints where the report, quality.json and the MLflow run are."""
    cutoff = parse_as_of(as_of)  # before the slow imports: a typo fails at once
    from portrait.pipeline import run_pipeline
    from serving.runs import record_latest_run
    from training.tracking import ui_command

    result = run_pipeline(data, as_of=cutoff, out_dir=out, settings=settings)
    print(f"report:   {result.report.resolve()}")
    print(f"quality:  {result.quality.resolve()}")
    print(f"MLflow:   run {result.run_id}; browse with `{ui_command(result.tracking_uri)}`")
    record_latest_run(result.out_dir, result.tracking_uri)  # `portrait serve` default
    return 0


def serve(
    *, settings: Settings, config: Path | None, overrides: list[str], run: Path | None, host: str,
    port: int, audit_log: Path | None, keys: Path | None, insecure_local: bool,
) -> int:  # fmt: skip
    """Serve recommendations, profiles and audiences over HTTP (BentoML) until interrupted."""
    from serving.launch import serve as launch

    return launch(
        run_dir=run, settings=settings, config=config,
        overrides=dict(item.partition("=")[::2] for item in overrides), host=host, port=port,
        audit_log=audit_log, keys=keys, insecure_local=insecure_local,
    )  # fmt: skip


def keys(
    *, settings: Settings, action: str, keys: Path | None, name: str = "",
    role: list[str] | None = None,
) -> int:  # fmt: skip
    """Add, list or revoke the service's API keys (a new key is printed once, as the last line)."""
    from serving import keys as key_file

    path = keys or Path(settings.serving.keys_file or "keys.json")
    if action == "add":
        key = key_file.add_key(path, name, roles=role)
        print(f"key {name!r} ({', '.join(sorted(set(role or [])))}) added to {path}")
        print("store it now; it is not shown again:")
        print(key)
    elif action == "revoke":
        key_file.revoke_key(path, name)
        print(f"key {name!r} revoked in {path}")
    else:
        for who, entry in sorted(key_file.read_keys(path).items()):
            print(f"{who}\t{','.join(entry.get('roles', []))}\t{entry.get('created', '')}")
    return 0
