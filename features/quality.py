"""The outcome of validation: kept and quarantined rows with counts per table, quality.json, quarantine files."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from portrait.errors import ContractError


@dataclass(frozen=True)
class TableQuality:
    """Counts for one table: rows read, kept and quarantined, and quarantined rows per rule."""

    name: str
    read: int
    kept: int
    quarantined: int
    reasons: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "kept": self.kept,
            "quarantined": self.quarantined,
            "reasons": dict(self.reasons),
        }


@dataclass(frozen=True)
class ValidatedData:
    """Typed kept rows, quarantined rows (with ``reason`` and ``row``) and counts, per table."""

    tables: dict[str, pd.DataFrame]
    quarantine: dict[str, pd.DataFrame]
    quality: dict[str, TableQuality]

    def summary(self) -> dict[str, dict[str, Any]]:
        """Per table ``{read, kept, quarantined, reasons}``, ready for quality.json."""
        return {name: q.as_dict() for name, q in self.quality.items()}


class TooManyBadRows(ContractError):
    """Too many rows of a table were quarantined; ``data`` holds what was validated."""

    def __init__(self, message: str, data: ValidatedData) -> None:
        super().__init__(message)
        self.data = data


def write_quarantine(data: ValidatedData, run_dir: str | Path) -> list[Path]:
    """Write ``run_dir/quarantine/TABLE.parquet`` for every table with quarantined rows."""
    paths = []
    for name, frame in data.quarantine.items():
        if len(frame):
            path = Path(run_dir) / "quarantine" / f"{name}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            frame.to_parquet(path, index=False)
            paths.append(path)
    return paths


def write_quality(
    data: ValidatedData, path: str | Path, extra: dict[str, Any] | None = None
) -> Path:
    """Write quality.json: ``{"tables": data.summary(), **extra}`` (extra: e.g. model metrics)."""
    content: dict[str, Any] = {"tables": data.summary(), **(extra or {})}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content, indent=2, default=_json_default) + "\n", encoding="utf-8")
    return path


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (pd.Timestamp, Path)):
        return str(value)
    raise TypeError(f"quality.json cannot hold {type(value).__name__}: {value!r}")


def format_quality_table(data: ValidatedData) -> str:
    """A printable table of read / kept / quarantined rows and the top reason per table."""
    header = f"{'table':<13} {'read':>11} {'kept':>11} {'quarantined':>11} {'bad %':>7}  top reason"
    lines = [header, "-" * len(header)]
    for q in data.quality.values():
        top = max(q.reasons.items(), key=lambda kv: kv[1])[0] if q.reasons else ""
        share = q.quarantined / q.read if q.read else 0.0
        lines.append(
            f"{q.name:<13} {q.read:>11,} {q.kept:>11,} {q.quarantined:>11,} {share:>7.2%}  {top}"
        )
    return "\n".join(lines)
