"""Churn and conversion labels on a hand-made timeline, and cut-offs that never reach past as_of."""

from __future__ import annotations

import pandas as pd

from features.labels import (
    build_churn_labels,
    build_conversion_labels,
    stack_cutoffs,
    training_cutoffs,
)

T = pd.Timestamp


def test_churn_label_on_hand_made_timeline(tiny_tables):
    labels = build_churn_labels(tiny_tables, as_of=T("2025-01-01"), active_days=90, horizon_days=60)
    labels = labels.set_index("customer_id")["churned"].to_dict()
    # A: active (Dec events), acts again in January -> stays. B: last seen July -> not active, no label.
    # C: registered mid-December, nothing after the cut-off -> churned.
    assert labels == {"A": 0, "C": 1}


def test_churn_horizon_is_half_open():
    tables = {
        "events": pd.DataFrame(
            {
                "customer_id": ["X", "X", "Y", "Y"],
                "ts": [T("2024-12-01"), T("2025-03-02"), T("2024-12-01"), T("2025-03-01 23:59")],
            }
        ),
        "transactions": pd.DataFrame(
            {
                "customer_id": pd.Series([], dtype=str),
                "ts": pd.Series([], dtype="datetime64[ns]"),
                "type": pd.Series([], dtype=str),
                "amount": pd.Series([], dtype=float),
            }
        ),
    }
    labels = build_churn_labels(tables, as_of=T("2025-01-01"), active_days=90, horizon_days=60)
    # The window is [2025-01-01, 2025-03-02): X's next event is at its end (excluded), Y's just inside.
    assert labels.set_index("customer_id")["churned"].to_dict() == {"X": 1, "Y": 0}


def test_conversion_labels_exclude_products_already_held(tiny_tables):
    labels = build_conversion_labels(tiny_tables, as_of=T("2025-01-01"), horizon_days=60)
    # A buys P3 (new) in January; B buys P3 (new). A held P2 - not bought again anyway.
    assert labels[["customer_id", "product_id"]].values.tolist() == [["A", "P3"], ["B", "P3"]]
    held_again = build_conversion_labels(tiny_tables, as_of=T("2025-01-15"), horizon_days=60)
    assert held_again[["customer_id", "product_id"]].values.tolist() == [["A", "P3"]]


def test_training_cutoffs_close_their_horizon_before_as_of():
    cutoffs = training_cutoffs(T("2025-11-01"), horizon_days=60, n=3)
    assert cutoffs == [T("2025-05-05"), T("2025-07-04"), T("2025-09-02")]
    assert all(c + pd.Timedelta(days=60) <= T("2025-11-01") for c in cutoffs)


def test_stack_cutoffs_tags_each_frame():
    stacked = stack_cutoffs(
        [T("2025-01-01"), T("2025-02-01")], lambda c: pd.DataFrame({"x": [c.month]})
    )
    assert stacked["cutoff"].tolist() == [T("2025-01-01"), T("2025-02-01")]
    assert stacked["x"].tolist() == [1, 2]
