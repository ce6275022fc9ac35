"""The real `portrait` command line: demo data, validation, the whole run, and clean errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.e2e
PORTRAIT = [sys.executable, "-m", "portrait.cli"]


def portrait(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*PORTRAIT, *args], cwd=cwd, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def bank(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    done = portrait("demo-data", str(root / "data"), "--customers", "1500", "--seed", "3", cwd=root)
    assert done.returncode == 0, done.stderr
    return root


@pytest.fixture(scope="module")
def run_dir(bank) -> Path:
    store = f"sqlite:///{bank / 'mlflow.db'}"
    done = portrait(
        "run",
        "--data",
        str(bank / "data"),
        "--as-of",
        "2025-11-01",
        "--out",
        str(bank / "run"),
        "--set",
        f"tracking.tracking_uri={store}",
        "--set",
        "models.n_trials=2",
        cwd=bank,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "report:" in done.stdout and "mlflow ui --backend-store-uri" in done.stdout
    return bank / "run"


def test_run_writes_the_contract_outputs(run_dir):
    for name in ("report.html", "quality.json", "features.parquet"):
        assert (run_dir / name).exists(), name
    quality = json.loads((run_dir / "quality.json").read_text())
    customers = quality["tables"]["customers"]
    assert customers["read"] == customers["kept"] + customers["quarantined"]
    html = (run_dir / "report.html").read_text()
    for heading in ("Data quality", "Customer statistics"):
        assert heading in html
    features = pd.read_parquet(run_dir / "features.parquet")
    assert features["customer_id"].is_unique and len(features) > 1000


def bad_bank(tmp_path: Path, fraction: str) -> subprocess.CompletedProcess:
    """A small demo bank with a fraction of injected bad rows in tmp_path/bad."""
    args = ("--customers", "600", "--seed", "5", "--bad-rows", fraction)
    return portrait("demo-data", str(tmp_path / "bad"), *args, cwd=tmp_path)


def test_validate_quarantines_bad_rows_and_counts_them(tmp_path):
    done = bad_bank(tmp_path, "0.005")
    assert done.returncode == 0, done.stderr
    checked = portrait(
        "validate", str(tmp_path / "bad"), "--set", "validation.max_bad_fraction=0.05", cwd=tmp_path
    )
    assert checked.returncode == 0, checked.stderr
    assert "quarantined" in checked.stdout
    quality = json.loads((tmp_path / "bad" / "quality.json").read_text())
    assert sum(t["quarantined"] for t in quality["tables"].values()) > 0
    quarantined = pd.read_parquet(tmp_path / "bad" / "quarantine" / "transactions.parquet")
    assert quarantined["reason"].str.len().gt(0).all()


def test_too_many_bad_rows_stops_with_one_clear_message(tmp_path):
    bad_bank(tmp_path, "0.05")
    done = portrait("validate", str(tmp_path / "bad"), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and "max_bad_fraction" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", "--data", "nowhere", "--as-of", "2025-11-01", "--out", "r"], "does not exist"),
        (["run", "--data", ".", "--as-of", "yesterday-ish", "--out", "r"], "is not a date"),
        (["validate", ".", "--set", "models.unknown=1"], "unknown setting models.unknown"),
        (["features", "nowhere", "--as-of", "2025-11-01", "--out", "f.parquet"], "nowhere"),
    ],
)
def test_bad_input_gives_a_clear_error_not_a_traceback(tmp_path, args, expected):
    done = portrait(*args, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert expected in done.stderr
    assert "Traceback" not in done.stderr


def test_help_explains_every_command(tmp_path):
    done = portrait("--help", cwd=tmp_path)
    for name in ("validate", "demo-data", "features", "run"):
        assert name in done.stdout


def test_the_command_line_starts_without_the_models_stack(tmp_path):
    """Building the parser (every `portrait` command, `--help`) imports neither MLflow nor
    LightGBM nor BentoML: those cost seconds per command and load only in the commands using them."""
    probe = (
        "import sys; from portrait.cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('mlflow', 'lightgbm', 'bentoml', 'sklearn') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_trials_and_seed_take_mlflow_floats_and_refuse_fractions(capsys):
    from portrait.cli import build_parser

    base = ["train", "--data", "d", "--as-of", "2025-11-01"]
    args = build_parser().parse_args([*base, "--trials", "10.0", "--seed", "7"])
    assert (args.trials, args.seed) == (10, 7)
    with pytest.raises(SystemExit):
        build_parser().parse_args([*base, "--trials", "2.5"])
    assert "'2.5' must be a whole number" in capsys.readouterr().err


def test_demo_data_exit_style_writes_a_sellout_bank(tmp_path, capsys):
    from portrait.cli import main

    assert main(["demo-data", str(tmp_path / "bank"), "--customers", "300", "--exit-style",
                 "sellout"]) == 0  # fmt: skip
    meta = json.loads((tmp_path / "bank" / "truth" / "meta.json").read_text())
    assert meta["exit_style"] == "sellout"
    with pytest.raises(SystemExit):
        main(["demo-data", str(tmp_path / "x"), "--exit-style", "vanish"])
    assert "invalid choice: 'vanish'" in capsys.readouterr().err
