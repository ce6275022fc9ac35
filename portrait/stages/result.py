"""What a stage of `portrait run` returns: its status and everything the run loop writes for it.

A stage computes; it does not write. It returns a `StageResult` with the outputs it gives later
stages (`gives`, names of `RunOutputs` fields it declared), the files of the run directory
(`files`), numbers (`metrics`, logged to MLflow as `<stage>.<name>` and written to quality.json),
report sections, the statuses of its parts, and what MLflow also keeps (`artifacts`, `logged`).
The run loop (portrait/pipeline.py) writes all of it, so a stage that fails writes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from portrait.report import Section
from portrait.settings import Settings
from portrait.stages.status import StageStatus


@dataclass(frozen=True)
class RunInputs:
    """What every stage reads: where the data are, the cut-off, where outputs go, the settings."""

    data_dir: Path
    as_of: pd.Timestamp
    out_dir: Path
    settings: Settings


@dataclass(frozen=True)
class StageResult:
    """A stage's outcome; see the module docstring for who writes each field."""

    status: StageStatus = field(default_factory=StageStatus)
    gives: Mapping[str, Any] = field(default_factory=dict)
    # path in the run directory -> DataFrame (parquet), bytes, str (text), None (remove), else JSON
    files: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, Any] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)
    sections: tuple[Section, ...] = ()
    parts: Mapping[str, StageStatus] = field(default_factory=dict)  # `<stage>.<part>` statuses
    artifacts: Mapping[str, str] = field(default_factory=dict)  # run-dir path -> MLflow folder
    logged: Mapping[str, Any] = field(default_factory=dict)  # MLflow-only JSON, by artifact path


def write_files(out_dir: Path, files: Mapping[str, Any]) -> list[Path]:
    """Write a stage's files under `out_dir` (see StageResult.files) and return their paths."""
    written = []
    for name, value in files.items():
        path = Path(out_dir) / name
        if value is None:
            path.unlink(missing_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(value, pd.DataFrame):
            value.to_parquet(path, index=False)
        elif isinstance(value, bytes):
            path.write_bytes(value)
        elif isinstance(value, str):
            path.write_text(value, encoding="utf-8")
        else:
            path.write_text(json.dumps(value, indent=2, default=str), encoding="utf-8")
        written.append(path)
    return written
