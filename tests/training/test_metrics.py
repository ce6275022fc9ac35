"""Metric functions against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.models.metrics import (
    average_precision_at_k,
    brier,
    calibration_table,
    churn_metrics,
    hit_rate_at_k,
    lift_at,
    lift_table,
    map_at_k,
    ndcg_at_k,
    paired_difference,
    pr_auc,
    rank_scores,
    ranking_metrics,
    recall_at_k,
    roc_auc,
)


def test_roc_auc_counts_ordered_pairs():
    # positives 0.8 and 0.4; negatives 0.6 and 0.2: pairs (0.8>0.6, 0.8>0.2, 0.4<0.6, 0.4>0.2) = 3/4
    assert roc_auc([1, 0, 1, 0], [0.8, 0.6, 0.4, 0.2]) == pytest.approx(0.75)


def test_roc_auc_single_class_is_nan():
    assert np.isnan(roc_auc([0, 0, 0], [0.1, 0.2, 0.3]))


def test_pr_auc_is_average_precision():
    # ranking: 1 (0.8, hit), 0 (0.6), 1 (0.4, hit): AP = (1/1 + 2/3) / 2
    assert pr_auc([1, 0, 1, 0], [0.8, 0.6, 0.4, 0.2]) == pytest.approx((1 + 2 / 3) / 2)


def test_brier_by_hand():
    assert brier([1, 0], [0.8, 0.4]) == pytest.approx((0.2**2 + 0.4**2) / 2)


def test_lift_top_fraction():
    y = [1, 0, 0, 0, 1, 0, 0, 0, 0, 0]
    s = np.arange(10, 0, -1)  # first row scored highest
    assert lift_at(y, s, fraction=0.1) == pytest.approx(1.0 / 0.2)
    assert lift_at(y, s, fraction=0.5) == pytest.approx(0.4 / 0.2)


def test_lift_table_deciles():
    y = [1, 1, 0, 0]
    table = lift_table(y, [0.9, 0.8, 0.2, 0.1], groups=2)
    assert table["rate"].tolist() == [1.0, 0.0]
    assert table["lift"].tolist() == [2.0, 0.0]


def test_calibration_table_bins():
    table = calibration_table([0, 1, 1, 1], [0.05, 0.15, 0.95, 0.91], bins=10)
    assert table["bin"].tolist() == [0, 1, 9]
    assert table["observed"].tolist() == [0.0, 1.0, 1.0]
    assert table["predicted"].tolist() == pytest.approx([0.05, 0.15, 0.93])


def test_churn_metrics_keys_and_values():
    m = churn_metrics([1, 0, 1, 0], [0.8, 0.6, 0.4, 0.2])
    assert m["roc_auc"] == pytest.approx(0.75)
    assert m["positive_rate"] == 0.5
    assert set(m) == {"roc_auc", "pr_auc", "brier", "lift_top_decile", "positive_rate", "n"}


def _recs(rows):
    return pd.DataFrame(rows, columns=["customer_id", "product_id", "rank"])


RECS = _recs(
    [
        ("a", "x", 1),
        ("a", "y", 2),
        ("a", "z", 3),
        ("b", "x", 1),
        ("b", "y", 2),
        ("b", "z", 3),
        ("c", "x", 1),
    ]
)
RELEVANT = pd.DataFrame(
    {"customer_id": ["a", "a", "b", "c", "d"], "product_id": ["y", "z", "w", "x", "x"]}
)


def test_map_at_k_by_hand():
    # a: hits at 2 and 3 -> (1/2 + 2/3) / 2; b: none -> 0; c: hit at 1 -> 1; d: no list -> 0
    expected = ((1 / 2 + 2 / 3) / 2 + 0 + 1 + 0) / 4
    assert map_at_k(RECS, RELEVANT, k=3) == pytest.approx(expected)
    # at k=2 a has one hit at rank 2 over min(2 relevant, 2) = 2
    assert map_at_k(RECS, RELEVANT, k=2) == pytest.approx((0.25 + 0 + 1 + 0) / 4)


def test_ndcg_at_k_by_hand():
    a = (1 / np.log2(3) + 1 / np.log2(4)) / (1 + 1 / np.log2(3))
    assert ndcg_at_k(RECS, RELEVANT, k=3) == pytest.approx((a + 0 + 1 + 0) / 4)


def test_recall_and_hit_rate_by_hand():
    assert recall_at_k(RECS, RELEVANT, k=3) == pytest.approx((1 + 0 + 1 + 0) / 4)
    assert recall_at_k(RECS, RELEVANT, k=2) == pytest.approx((0.5 + 0 + 1 + 0) / 4)
    assert hit_rate_at_k(RECS, RELEVANT, k=1) == pytest.approx(1 / 4)


def test_users_widens_the_average():
    users = pd.Index(["a", "b", "c", "d", "e"])
    m = ranking_metrics(RECS, RELEVANT, k=3, users=users)
    assert m["hit_rate@3"] == pytest.approx(2 / 5)


def test_perfect_ranking_scores_one():
    recs = _recs([("a", "y", 1), ("a", "z", 2), ("a", "x", 3)])
    rel = pd.DataFrame({"customer_id": ["a", "a"], "product_id": ["y", "z"]})
    m = ranking_metrics(recs, rel, k=3)
    assert m["map@3"] == pytest.approx(1.0)
    assert m["ndcg@3"] == pytest.approx(1.0)


def test_rank_scores_orders_within_customer_with_ties_by_product():
    scores = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "b"],
            "product_id": ["z", "x", "y", "x"],
            "score": [0.5, 0.9, 0.5, 0.1],
        }
    )
    ranked = rank_scores(scores)
    assert list(zip(ranked["product_id"], ranked["rank"], strict=True)) == [
        ("x", 1),
        ("y", 2),
        ("z", 3),
        ("x", 1),
    ]


def test_k_must_be_positive():
    with pytest.raises(ValueError, match="k must be at least 1"):
        map_at_k(RECS, RELEVANT, k=0)


def test_average_precision_per_customer_by_hand():
    ap = average_precision_at_k(RECS, RELEVANT, k=3)
    assert ap.to_dict() == pytest.approx({"a": (1 / 2 + 2 / 3) / 2, "b": 0.0, "c": 1.0, "d": 0.0})
    assert ap.mean() == pytest.approx(map_at_k(RECS, RELEVANT, k=3))


def test_paired_difference_of_the_same_customers():
    a = pd.Series([0.5, 1.0, 0.0], index=["a", "b", "c"])
    same = paired_difference(a, a)
    assert (same["diff"], same["low"], same["high"], same["n"]) == (0.0, 0.0, 0.0, 3)
    # a constant gap is certain; only the customers both were judged on count
    shifted = paired_difference(a + 0.25, a.drop("c"))
    assert shifted["n"] == 2 and shifted["diff"] == pytest.approx(0.25)
    assert (shifted["low"], shifted["high"]) == pytest.approx((0.25, 0.25))
    # a gap that is one customer's luck: the interval spans zero
    lucky = paired_difference(pd.Series([1.0, 0, 0, 0]), pd.Series([0.0, 0, 0, 0]))
    assert lucky["low"] == 0.0 and lucky["high"] > 0.0
