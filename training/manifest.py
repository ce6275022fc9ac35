"""The run manifest: every file a `portrait run` wrote, with its sha256, and the model versions.

`portrait run` writes RUN/manifest.json at its end and records the manifest's own sha256 on its
MLflow run (tag `portrait.manifest_sha256`), so a manifest is trusted only when the project's
tracking store vouches for it. The service loads a run (and unpickles its files) only after
`verify_run` passed, and reads pickles from the verified bytes (never re-reading the file).
Messages name files relative to the run, never server paths.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from portrait.errors import PortraitError

MANIFEST = "manifest.json"
TAG = "portrait.manifest_sha256"
SKIPPED = ("audit/",)  # written by the service after the run, never loaded
REQUIRED = ("quality.json", "features.parquet", "segments.parquet", "segmentation.pkl",
            "churn_scores.parquet", "rule_base/")  # fmt: skip


class ManifestError(PortraitError):
    """A run that is not verifiably the project's own; the message says what is wrong."""


def sha256_bytes(data: bytes) -> str:
    """The sha256 hex digest of `data`."""
    return hashlib.sha256(data).hexdigest()


def run_files(run_dir: Path) -> dict[str, str]:
    """Every file under `run_dir` (relative posix path -> sha256), the manifest and audit/ aside."""
    run_dir = Path(run_dir)
    files = sorted(p for p in run_dir.rglob("*") if p.is_file() and not p.is_symlink())
    named = {p.relative_to(run_dir).as_posix(): p for p in files}
    return {
        name: sha256_bytes(path.read_bytes())
        for name, path in named.items()
        if name != MANIFEST and not name.startswith(SKIPPED)
    }


def write_manifest(run_dir: Path, *, run_id: str, models: dict[str, Any]) -> str:
    """Write RUN/manifest.json; return its sha256 (to record on the MLflow run)."""
    body = {"version": 1, "run_id": run_id, "models": models, "files": run_files(run_dir)}
    data = json.dumps(body, indent=1, sort_keys=True).encode("utf-8")
    (Path(run_dir) / MANIFEST).write_bytes(data)
    return sha256_bytes(data)


def record_manifest(run_dir: Path, *, run_id: str, models: dict[str, Any]) -> str:
    """Write the manifest and tag the MLflow run with its sha256 (the end of `portrait run`)."""
    from mlflow import MlflowClient

    digest = write_manifest(run_dir, run_id=run_id, models=models)
    MlflowClient().set_tag(run_id, TAG, digest)
    return digest


def read_manifest(run_dir: Path) -> tuple[dict[str, Any], str]:
    """The manifest of a run and its sha256; ManifestError when missing or malformed."""
    path = Path(run_dir) / MANIFEST
    if not path.is_file():
        raise ManifestError(
            f"run {Path(run_dir).name!r} has no {MANIFEST}; only runs written by `portrait run` "
            "(this version or later) can be served"
        )
    data = path.read_bytes()
    try:
        manifest = json.loads(data)
        files = manifest["files"]
        assert isinstance(files, dict) and isinstance(manifest["run_id"], str)
    except (ValueError, KeyError, AssertionError, TypeError) as exc:
        raise ManifestError(f"the {MANIFEST} of run {Path(run_dir).name!r} is malformed") from exc
    return manifest, sha256_bytes(data)


def verify_run(run_dir: Path, *, vouched: Any = None) -> dict[str, Any]:
    """The manifest, once every listed file matches its sha256, every required part is listed
    and `vouched(run_id)` (the tracking store's tag, when given) equals the manifest's digest."""
    manifest, digest = read_manifest(run_dir)
    if vouched is not None and vouched(manifest["run_id"]) != digest:
        raise ManifestError(
            f"the manifest of run {Path(run_dir).name!r} is not the one its MLflow run "
            f"{manifest['run_id'][:12]} recorded; refusing to load it"
        )
    files = manifest["files"]
    missing = [p for p in REQUIRED if not any(n == p or n.startswith(p) for n in files)]
    if missing:
        raise ManifestError(f"run {Path(run_dir).name!r} lacks {', '.join(missing)}; "
                            "re-run `portrait run` so every part is written")  # fmt: skip
    for name, expected in files.items():
        path = Path(run_dir) / name
        if not path.is_file() or path.is_symlink() or sha256_bytes(path.read_bytes()) != expected:
            raise ManifestError(f"{name} of run {Path(run_dir).name!r} is missing or changed "
                                "since `portrait run` wrote it; refusing to load the run")  # fmt: skip
    return manifest


def verified_bytes(run_dir: Path, name: str, manifest: dict[str, Any]) -> bytes:
    """The bytes of a listed file, checked against the manifest (read once: no swap after check)."""
    expected = manifest["files"].get(name)
    if expected is None:
        raise ManifestError(f"{name} is not in the manifest of run {Path(run_dir).name!r}")
    data = (Path(run_dir) / name).read_bytes()
    if sha256_bytes(data) != expected:
        raise ManifestError(f"{name} of run {Path(run_dir).name!r} changed after verification")
    return data


def mlflow_vouched(run_id: str) -> str | None:
    """The manifest digest the tracking store recorded for an MLflow run (None if none)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        return MlflowClient().get_run(run_id).data.tags.get(TAG)
    except MlflowException:
        return None
