"""The products viewed in this visit: the customer's model pairs of those products scored again
with the views added to their view features, and the model's reasons of chosen pairs.

Only the changed pairs are scored again, from the index's numeric matrix of the pairs
(`PairMatrix`: the booster and calibrator on arrays, no frame per request) when the model is a
calibrated LightGBM, else through the model's own `predict_proba` on the changed rows. A changed
pair's reasons are the visit's views first, then its kept reasons (`serving.pair_reasons`):
nothing is explained again on the request path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from serving.pair_matrix import VIEW_COLUMNS
from serving.pair_reasons import EXPLAINED, explain_pairs
from serving.recommend_index import CandidateIndex
from serving.recommender import MODEL_FALLBACK_REASON, session_reason


@dataclass(frozen=True, eq=False)
class Visit:
    """One customer's pair scores with this visit's views, and the pairs the views changed."""

    score: np.ndarray  # every pair of the customer, in index order
    rows: np.ndarray  # index pair rows the views changed (ascending)
    views: np.ndarray  # the visit's views of each changed pair's product


def visit_scores(
    index: CandidateIndex, position: int, session: tuple[np.ndarray, np.ndarray], model: Any
) -> Visit | None:
    """The customer's pair scores moved by the visit (`session`: product positions, view counts);
    None when the customer has no model pairs."""
    if index.pairs is None or model is None:
        return None
    span = index.pairs.span(position)
    if span.stop == span.start:
        return None
    score = index.pairs.score[span]
    counts = np.zeros(len(index.products) + 1)
    np.add.at(counts, session[0], session[1])
    seen = counts[index.pairs.product[span]]
    columns = [c for c in VIEW_COLUMNS if c in index.pair_frame.columns]
    local = np.flatnonzero(seen)
    if not columns or len(local) == 0:
        return Visit(score, np.zeros(0, dtype=np.int64), np.zeros(0))
    rows, added = span.start + local, seen[local]
    score = score.copy()
    if index.pair_matrix is not None:
        score[local] = index.pair_matrix.score(rows, added)
    else:  # a model the matrix does not cover: its own frame path, on the changed rows only
        changed = index.pair_frame.take(rows)  # a frame, or the batch's stored pairs
        for column in columns:
            changed[column] = changed[column].to_numpy() + added
        score[local] = model.predict_proba(changed)
    return Visit(score, rows, added)


def model_reasons(
    index: CandidateIndex, model: Any, rows: np.ndarray, *, visit: Visit | None = None
) -> list[list[str]]:
    """The model's reasons (top SHAP factors) of index pair `rows`, kept in the index's memo
    (explained on first use); a pair this visit changed says so first."""
    explain = lambda missing: explain_pairs(index, model, missing)  # noqa: E731
    reasons = index.pair_reasons.reasons(rows, explain)
    if visit is not None and len(visit.rows):
        at = np.searchsorted(visit.rows, rows).clip(max=len(visit.rows) - 1)
        for i in np.flatnonzero(visit.rows[at] == rows):
            reasons[i] = [session_reason(visit.views[at[i]]), *reasons[i]][:EXPLAINED]
    return [texts or [MODEL_FALLBACK_REASON] for texts in reasons]
