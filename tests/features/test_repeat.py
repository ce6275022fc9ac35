"""Repeat-day inputs (BG/NBD frequency, recency, age) on a hand-made timeline."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.repeat import repeat_features

T = pd.Timestamp


def test_repeat_inputs_count_distinct_days_before_the_cutoff():
    tables = {
        "transactions": pd.DataFrame(
            {
                "customer_id": ["A", "A", "A", "A", "A", "B"],
                "ts": [
                    T("2024-10-01 09:00"),
                    T("2024-10-01 15:00"),
                    T("2024-11-01"),
                    T("2024-12-22"),
                    T("2025-01-02"),
                    T("2024-12-31"),
                ],
                "type": ["deposit", "buy", "withdraw", "buy", "buy", "sell"],
            }
        ),  # fmt: skip
        "events": pd.DataFrame(
            {
                "customer_id": ["B", "B"],
                "ts": [T("2024-12-01"), T("2024-12-31 23:00")],
                "event": ["login", "login"],
            }
        ),  # fmt: skip
    }
    out = repeat_features(tables, pd.Index(["A", "B", "C"]), as_of=T("2025-01-01"))
    # A's inflow days: Oct 1 (twice), Dec 22; the withdrawal and the January buy do not count
    assert out.loc["A", ["txn_frequency", "txn_recency_days", "txn_age_days"]].tolist() == [
        1.0, 82.0, 92.0,
    ]  # fmt: skip
    assert out.loc["A", ["txn_days_30d", "txn_days_365d"]].tolist() == [1, 2]
    # B has no inflow; its engagement is two logins (the sell is not engagement)
    assert np.isnan(out.loc["B", "txn_frequency"])
    assert out.loc["B", ["eng_frequency", "eng_recency_days", "eng_age_days"]].tolist() == [
        1.0, 30.0, 31.0,
    ]  # fmt: skip
    assert out.loc["C"].filter(like="days_").sum() == 0
    # B engaged on 2 of its 32 days; its last day is the day before the cut-off: 1 x 2/32 missed
    assert out.loc["B", "eng_missed_days"] == 1 * 2 / 32
    assert out.loc["A", "eng_missed_days"] == pytest.approx((92.0 - 82.0) * 2 / 93.0)
