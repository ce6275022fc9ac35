"""What serves the next best product when no conversion model is champion: the best baseline.

The models stage picks the baseline with the best gate metric on the validation fold
(`Outcome.extra["serving_baseline"]`), ranks the batch with it and writes its name to
next_best_fallback.json in the run directory, so the service ranks with the same baseline.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from training.models.baselines import FALLBACK_FILE, BaselineRanker


def fallback_ranker(trained: Any) -> BaselineRanker | None:
    """The baseline that won this run's validation fold (None when no conversion set was built)."""
    if getattr(trained, "conversion", None) is None:
        return None
    return BaselineRanker(trained.conversion.extra["serving_baseline"])


def fallback_files(ranker: BaselineRanker | None) -> dict[str, str | None]:
    """next_best_fallback.json's text, the baseline serving without a champion (None: remove it)."""
    return {FALLBACK_FILE: None if ranker is None else json.dumps({"baseline": ranker.name})}


def read_fallback(run_dir: Path) -> BaselineRanker | None:
    """The run's serving baseline from next_best_fallback.json (None when the run has none)."""
    path = Path(run_dir) / FALLBACK_FILE
    if not path.is_file():
        return None
    return BaselineRanker(json.loads(path.read_text())["baseline"])


def usable(champion: tuple[Any, str] | None, portrait: pd.DataFrame) -> tuple[Any, str] | None:
    """The champion when it can read this portrait (a model of other data may need other columns)."""
    if champion is None:
        return None
    needs = set(getattr(champion[0], "features", ())) - set(
        getattr(champion[0], "extra_inputs", ())
    )
    from features.pairs import CUSTOMER_FEATURES, PAIR_FEATURES

    known = set(portrait.columns) | set(PAIR_FEATURES) | set(CUSTOMER_FEATURES)
    return champion if needs <= known else None
