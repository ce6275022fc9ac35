"""The parts of a run directory the service state reads, and the `champion` models.

Tables (`read_table`), segment rows, the verified segmentation pickle, the rule base, churn
scores and their reasons, and the registry's champions (`load_models`).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import joblib
import pandas as pd

from features.contract import CUSTOMER_ID
from portrait.errors import PortraitError
from portrait.settings import Settings

SEGMENT_FIELDS = ("segment_id", "segment_name", "value_tier", "lifecycle_stage", "tags")


class StateError(PortraitError):
    """A run directory or a model the service cannot load; the message says what to fix."""


def read_table(run_dir: Path, name: str, *, required: bool) -> pd.DataFrame | None:
    """A parquet table of the run (None when absent and not required)."""
    path = run_dir / name
    if not path.is_file():
        if required:
            raise StateError(
                f"run directory {run_dir} has no {name}; run `portrait run` to write it"
            )
        return None
    return pd.read_parquet(path)


def segment_rows(segments: pd.DataFrame | None) -> dict[str, dict[str, Any]]:
    """Segment fields of each customer by customer_id."""
    if segments is None:
        return {}
    cols = [c for c in SEGMENT_FIELDS if c in segments.columns]
    records = segments[cols].to_dict(orient="records")
    return {str(cid): rec for cid, rec in zip(segments[CUSTOMER_ID], records, strict=True)}


def unpickle(run_dir: Path, name: str, manifest: dict[str, Any]) -> Any:
    """A pickle of the run, from the bytes its verified manifest vouched for."""
    from training.manifest import verified_bytes

    # only the bytes the manifest vouched for, read once: nothing else is ever unpickled
    return joblib.load(io.BytesIO(verified_bytes(run_dir, name, manifest)))


def read_rule_base(run_dir: Path) -> Any:
    """The run's rule base (None when the run has none)."""
    from training.rules.base import load_rule_base
    from training.rules.mining import RulesError

    if not (run_dir / "rule_base").is_dir():
        return None
    try:
        return load_rule_base(run_dir / "rule_base")
    except RulesError as exc:
        raise StateError(str(exc)) from exc


def load_models(
    settings: Settings, *, versions: dict[str, str | None] | None = None
) -> tuple[dict[str, Any], str]:
    """The `champion` models from the MLflow registry and their versions, e.g. "churn:v3,conversion:v2".

    The churn champion is required. The conversion model may have no champion yet (the quality
    gate keeps the alias off a model that does not beat rules and popularity); the recommender
    then ranks by rules and popularity, and the version says "conversion:none". `versions`
    ({"churn": "3", "conversion": None}) pins the versions another worker loaded.
    """
    from training import registry, tracking

    tracking.configure(settings.tracking)
    names = [registry.CHURN_MODEL, registry.CONVERSION_MODEL]
    pair = (
        dict(zip(names, (versions["churn"], versions["conversion"]), strict=True))
        if versions is not None
        else registry.champion_pair(names)
    )
    churn_version, conversion_version = pair[registry.CHURN_MODEL], pair[registry.CONVERSION_MODEL]
    if churn_version is None:
        registry.require_champion(registry.CHURN_MODEL)  # raises the error that says what to do
    churn = registry.load_version(registry.CHURN_MODEL, churn_version)
    conversion = (
        registry.load_version(registry.CONVERSION_MODEL, conversion_version)
        if conversion_version
        else None
    )
    version = f"churn:v{churn_version},conversion:" + (
        f"v{conversion_version}" if conversion_version else "none"
    )
    return {"churn": churn, "conversion": conversion}, version


def churn_scores(run_dir: Path) -> dict[str, float]:
    """Churn probability by customer (reasons are explained per customer shown, see
    `ServingState.churn_reasons_of`)."""
    scores = read_table(run_dir, "churn_scores.parquet", required=False)
    if scores is None:
        return {}
    ids = scores[CUSTOMER_ID].astype(str)
    return dict(zip(ids, scores["churn_probability"].astype(float), strict=True))
