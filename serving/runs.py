"""Which runs the service may load (a run id or a directory under the configured run roots,
whose manifest verifies: training/manifest.py), and the latest-run pointer `portrait serve`
follows. Messages name runs, never server paths."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from portrait.errors import PortraitError
from portrait.settings import Settings

POINTER_NAME = "portrait_latest_run"
RUN_ID = re.compile(r"^[0-9a-f]{32}$")
_PATH = re.compile(r"(?:/[^\s'\"():,;]+)+")


class RunRefused(PortraitError):
    """A reload target the service will not load; the message says what to send instead."""


def verify(run_dir: Path, settings: Settings, *, vouch: bool) -> dict[str, Any]:
    """The run's verified manifest; with `vouch`, the tracking store must have recorded this
    manifest for the run (in-process tests pass their own models and skip it)."""
    from serving.state import StateError
    from training import tracking
    from training.manifest import ManifestError, mlflow_vouched, verify_run

    if vouch:
        tracking.configure(settings.tracking)
    try:
        return verify_run(run_dir, vouched=mlflow_vouched if vouch else None)
    except ManifestError as exc:
        raise StateError(str(exc)) from exc


def run_roots(settings: Settings, served: Path) -> list[Path]:
    """serving.run_roots (comma-separated), or else the directory holding the served run."""
    named = [r.strip() for r in settings.serving.run_roots.split(",") if r.strip()]
    return [Path(r).resolve() for r in named] or [Path(served).resolve().parent]


def reload_target(
    *, run_dir: str | None, run_id: str | None, roots: list[Path], served: Path
) -> Path:
    """The run directory a reload asks for: the served one, a run under a root, or a run id."""
    if run_dir and run_id:
        raise RunRefused("send run_dir or run_id, not both")
    if run_id:
        return _by_run_id(run_id, roots)
    if not run_dir:
        return served
    if "\x00" in run_dir or any(ord(c) < 32 for c in run_dir):
        raise RunRefused("run_dir holds control characters")
    path = Path(run_dir)
    candidate = (path if path.is_absolute() else roots[0] / path).resolve()
    if not any(candidate.parent == root or root in candidate.parents for root in roots):
        raise RunRefused("run_dir must name a run under serving.run_roots (or send run_id)")
    return candidate


def _by_run_id(run_id: str, roots: list[Path]) -> Path:
    if not RUN_ID.match(run_id):
        raise RunRefused("run_id must be the 32-character MLflow run id of a `portrait run`")
    for root in roots:
        for manifest in sorted(root.glob("*/manifest.json")):
            try:
                if json.loads(manifest.read_text(encoding="utf-8")).get("run_id") == run_id:
                    return manifest.parent
            except (OSError, ValueError):
                continue
    raise RunRefused(f"no run with id {run_id} under serving.run_roots")


def scrub(message: str) -> str:
    """A message with every absolute path replaced by its last part (no server paths out)."""
    return _PATH.sub(lambda m: Path(m.group()).name or "/", message)


def latest_pointer(tracking_uri: str) -> Path:
    """Where `portrait run` records its latest run: beside a sqlite store, else the working directory."""
    if tracking_uri.startswith("sqlite:///"):
        return Path(tracking_uri.removeprefix("sqlite:///")).parent / POINTER_NAME
    return Path.cwd() / POINTER_NAME


def record_latest_run(run_dir: Path, tracking_uri: str) -> Path:
    """Write the pointer `portrait serve` follows when no --run is given."""
    pointer = latest_pointer(tracking_uri)
    pointer.write_text(str(Path(run_dir).resolve()), encoding="utf-8")
    return pointer


def latest_run_dir(tracking_uri: str) -> Path:
    """The run directory recorded by the latest `portrait run` against this tracking store."""
    pointer = latest_pointer(tracking_uri)
    if not pointer.is_file():
        raise RunRefused(f"no run recorded at {pointer}; run `portrait run` or pass --run RUN_DIR")
    return Path(pointer.read_text(encoding="utf-8").strip())
