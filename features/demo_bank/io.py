"""Write a demo bank to a dataset directory (tables) with its truth/ beside them."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from features.demo_bank.readme import TRUTH_README


def write_demo_bank(bank, out_dir: str | Path, fmt: str = "parquet") -> Path:
    """Write OUT/NAME.parquet|csv per table and OUT/truth/; CSV whenever bad rows were injected."""
    if fmt not in ("parquet", "csv"):
        raise ValueError(f"fmt must be 'parquet' or 'csv', got {fmt!r}")
    out = Path(out_dir)
    (out / "truth").mkdir(parents=True, exist_ok=True)
    bad = bank.truth["meta"].get("bad_rows_fraction", 0.0) > 0
    table_fmt = "csv" if bad else fmt
    for name, frame in bank.tables.items():
        _write(frame, out / f"{name}.{table_fmt}")
    for name, value in bank.truth.items():
        if isinstance(value, pd.DataFrame):
            value.to_parquet(out / "truth" / f"{name}.parquet", index=False)
        elif name != "meta":
            (out / "truth" / f"{name}.json").write_text(json.dumps(value, indent=2, default=str))
    (out / "truth" / "meta.json").write_text(json.dumps(bank.truth["meta"], indent=2, default=str))
    profile = bank.truth["meta"].get("profile", "default")
    note = "" if profile == "default" else PROFILE_NOTE.format(profile=profile)
    (out / "truth" / "README.md").write_text(TRUTH_README + note)
    return out


PROFILE_NOTE = """
## Configuration `{profile}` (meta.json: profile)
This bank was generated with `--profile {profile}`: the personas, their shares, product
preferences, page mix, session, deposit, decline, complaint and campaign rates are those of
features/demo_bank/profiles.py (`alt`: fx_copy_trader, money_market_saver, private_wealth,
pension_planner, index_investor, gold_hedger), not the ones listed under Personas above.
"""


def _write(frame: pd.DataFrame, path: Path) -> None:
    if path.suffix == ".csv":
        frame.to_csv(path, index=False, date_format="%Y-%m-%dT%H:%M:%S")
    else:
        frame.to_parquet(path, index=False)
