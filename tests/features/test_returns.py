"""Modified Dietz returns on hand-computed cases with deposits and withdrawals mid-period."""

from __future__ import annotations

import pandas as pd
import pytest

from features.returns import modified_dietz

T = pd.Timestamp


def frames(balances, flows):
    b = pd.DataFrame(balances, columns=["customer_id", "date", "total_assets"])
    t = pd.DataFrame(flows, columns=["customer_id", "ts", "type", "amount"])
    return b, t


def test_no_flows_is_simple_return():
    b, t = frames([("A", T("2024-01-01"), 100.0), ("A", T("2024-04-10"), 110.0)], [])
    r = modified_dietz(b, t, as_of=T("2024-05-01"), days=100)
    assert r["A"] == pytest.approx(0.10)


def test_deposit_mid_period_is_not_a_gain():
    # 100 at start, deposit 100 exactly half-way, ends at 210: gain 10 on an average capital of 150.
    b, t = frames(
        [("A", T("2024-01-01"), 100.0), ("A", T("2024-04-10"), 210.0)],
        [("A", T("2024-02-20"), "deposit", 100.0)],
    )
    r = modified_dietz(b, t, as_of=T("2024-05-01"), days=100)
    assert r["A"] == pytest.approx(10.0 / 150.0)


def test_withdrawal_mid_period_is_not_a_loss():
    # 200 at start, withdraw 100 at a quarter of the period (w = 0.75), ends at 105.
    b, t = frames(
        [("A", T("2024-01-01"), 200.0), ("A", T("2024-04-10"), 105.0)],
        [("A", T("2024-01-26"), "withdraw", 100.0)],
    )
    r = modified_dietz(b, t, as_of=T("2024-05-01"), days=100)
    assert r["A"] == pytest.approx(5.0 / (200.0 - 75.0))


def test_flows_outside_the_period_and_buys_are_ignored():
    b, t = frames(
        [("A", T("2024-01-01"), 100.0), ("A", T("2024-04-10"), 110.0)],
        [
            ("A", T("2023-12-01"), "deposit", 500.0),
            ("A", T("2024-02-01"), "buy", 50.0),
            ("A", T("2024-04-20"), "deposit", 500.0),
        ],
    )
    r = modified_dietz(b, t, as_of=T("2024-05-01"), days=100)
    assert r["A"] == pytest.approx(0.10)


def test_new_customer_starts_from_zero_and_empty_account_is_nan():
    b, t = frames(
        [("N", T("2024-04-10"), 105.0), ("Z", T("2024-01-01"), 0.0), ("Z", T("2024-04-10"), 0.0)],
        [("N", T("2024-04-10"), "deposit", 100.0)],
    )
    r = modified_dietz(b, t, as_of=T("2024-05-01"), days=100)
    # A deposit on the last day has weight 0, so nothing was invested over the period: undefined.
    assert pd.isna(r["N"])
    assert pd.isna(r["Z"])


def test_snapshots_at_or_after_as_of_are_not_seen():
    b, t = frames(
        [
            ("A", T("2024-01-01"), 100.0),
            ("A", T("2024-04-10"), 110.0),
            ("A", T("2024-05-01"), 999.0),
        ],
        [],
    )
    r = modified_dietz(b, t, as_of=T("2024-05-01"), days=100)
    assert r["A"] == pytest.approx(0.10)
