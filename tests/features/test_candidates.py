"""Candidate generators and the ranking tie-break against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from features.candidates import (
    decayed_popularity,
    ease_weights,
    generator_scores,
    item_item_weights,
)
from training.models.baselines import BaselineRanker, product_baselines
from training.models.modelling import customer_auc, separating_metric
from training.models.propensity import recall_at_top

# three customers x two products: (1, 1), (1, 0), (0, 1)
HELD = sparse.csr_matrix(np.array([[1, 1], [1, 0], [0, 1]], dtype=np.float32))


def test_ease_weights_match_the_closed_form():
    # G = X'X + I = [[3, 1], [1, 3]]; P = G^-1 = [[3, -1], [-1, 3]] / 8; B_ij = -P_ij / P_jj = 1/3
    weights = ease_weights(HELD, lam=1.0)
    np.testing.assert_allclose(weights, [[0.0, 1 / 3], [1 / 3, 0.0]], rtol=1e-6)
    scores = generator_scores(HELD, weights)
    np.testing.assert_allclose(scores, [[1 / 3, 1 / 3], [0.0, 1 / 3], [1 / 3, 0.0]], rtol=1e-6)


def test_item_item_is_the_cosine_of_product_columns():
    # each product held by 2 customers, 1 together: cosine 1 / (sqrt 2 * sqrt 2) = 0.5
    np.testing.assert_allclose(item_item_weights(HELD), [[0.0, 0.5], [0.5, 0.0]], rtol=1e-6)


def test_decayed_popularity_halves_each_half_life_and_ignores_the_future():
    cutoff = pd.Timestamp("2025-03-01")
    buys = pd.DataFrame({
        "product_id": ["A", "B", "B"],
        "ts": [cutoff - pd.Timedelta(days=30), cutoff - pd.Timedelta(days=60), cutoff],
    })  # fmt: skip
    share = decayed_popularity(buys, pd.Index(["A", "B", "C"]), cutoff=cutoff, half_life=30.0)
    # weights 0.5 (A) and 0.25 (B); the buy at the cut-off is not before it
    np.testing.assert_allclose(share.to_numpy(), [2 / 3, 1 / 3, 0.0])


def pairs_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "customer_id": ["c1", "c1", "c1", "c2", "c2"], "product_id": ["A", "B", "C", "A", "B"],
        "converted": [1, 0, 0, 0, 1],
        "segment_popularity": [0.1, 0.2, 0.3, 0.1, 0.2], "peer_popularity": 0.0,
        "transition_conf": 0.0, "cohold_conf": 0.0, "popularity": [0.5, 0.4, 0.1, 0.5, 0.4],
        "recent_buy_share": [0.2, 0.5, 0.3, 0.2, 0.5], "decayed_popularity": 0.1,
        "item_item_score": 0.0, "ease_score": [0.9, 0.1, 0.0, 0.2, 0.3],
    })  # fmt: skip


def test_customer_auc_averages_each_customers_own_auc():
    frame = pairs_frame()
    # c1: the bought A scores highest (AUC 1); c2: the bought B scores lower than A (AUC 0)
    assert customer_auc(frame, np.array([3.0, 2.0, 1.0, 2.0, 1.0])) == pytest.approx(0.5)
    assert customer_auc(frame, frame["ease_score"].to_numpy()) == pytest.approx(1.0)


def test_a_ceiling_tie_switches_the_gate_to_customer_auc():
    tied = {"model": {"map@5": 1.0}, "baseline:popularity": {"map@5": 1.0}}
    metric, note = separating_metric(tied, "map@5")
    assert metric == "customer_auc" and "ceiling tie" in note
    assert separating_metric(tied | {"baseline:rules": {"map@5": 0.9}}, "map@5") == ("map@5", "")


def test_baseline_ranker_scores_like_its_baseline_and_says_it_is_the_fallback():
    frame = pairs_frame()
    ranker = BaselineRanker("ease")
    expected = product_baselines(frame)["ease"]["score"].to_numpy()
    np.testing.assert_allclose(ranker.predict_proba(frame), expected)
    assert "fallback: ease" in ranker.explain(frame.iloc[:1])[0][0]
    with pytest.raises(ValueError, match="unknown product baseline 'nope'"):
        BaselineRanker("nope")


def test_recall_at_top_counts_positives_in_the_top_share():
    y = np.array([1, 0, 0, 0, 0, 1, 0, 0, 0, 0])
    score = np.arange(10, 0, -1, dtype=float)  # row 0 best, row 5 sixth
    assert recall_at_top(y, score, share=0.2) == 0.5
    assert recall_at_top(y, score, share=0.6) == 1.0


def test_candidates_are_any_generators_top_n_per_customer_with_ranks():
    from features.candidates import keep_candidates

    pairs = pd.DataFrame({
        "customer_id": ["a"] * 4 + ["b"] * 2, "product_id": ["P1", "P2", "P3", "P4", "P1", "P2"],
        "ease_score": [0.9, 0.1, 0.0, 0.5, 0.2, 0.3], "item_item_score": [0.0, 0.8, 0.1, 0.2, 0.1, 0.0],
        "decayed_popularity": [0.1, 0.2, 0.3, 0.4, 0.1, 0.2], "recent_buy_share": [0.1, 0.2, 0.3, 0.4, 0.1, 0.2],
    })  # fmt: skip
    kept = keep_candidates(pairs, per_generator=1)
    # a: EASE^R's P1, item-item's P2, both popularities' P4; b: P2 (EASE^R, popularity), P1 (item-item)
    assert list(zip(kept["customer_id"], kept["product_id"], strict=True)) == [
        ("a", "P1"), ("a", "P2"), ("a", "P4"), ("b", "P1"), ("b", "P2")
    ]  # fmt: skip
    assert kept["ease_rank"].tolist() == [1.0, 3.0, 2.0, 2.0, 1.0]
    assert len(keep_candidates(pairs, per_generator=4)) == len(pairs)
