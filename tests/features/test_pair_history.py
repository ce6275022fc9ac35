"""A customer's own product history, hand-computed: view windows and shares, past purchases."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.pair_history import product_history

T = pd.Timestamp
CUTOFF = T("2025-06-01")


def _tables() -> dict[str, pd.DataFrame]:
    events = pd.DataFrame(
        {
            "customer_id": ["A", "A", "A", "A", "B", "A", "A"],
            "ts": [
                T("2025-05-20"),
                T("2025-01-10"),
                T("2024-01-01"),
                T("2025-05-30"),
                T("2025-05-01"),
                T("2025-06-01"),
                T("2025-05-25"),
            ],  # fmt: skip
            "event": [
                "view_product",
                "view_product",
                "view_product",
                "p2p_view_loan",
                "view_product",
                "view_product",
                "invest_success",
            ],  # fmt: skip
            "product_id": ["P1", "P1", "P2", "P3", "P3", "P1", "P2"],
        }
    )
    transactions = pd.DataFrame(
        {
            "customer_id": ["A", "A", "A", "B"],
            "ts": [T("2025-01-01"), T("2025-02-01"), T("2025-03-01"), T("2025-07-01")],
            "type": ["buy", "buy", "sell", "buy"],
            "product_id": ["P1", "P3", "P1", "P1"],
        }
    )
    return {"events": events, "transactions": transactions}


def test_history_by_hand():
    products = pd.DataFrame(
        {"category": ["fund", "fund", "p2p"]}, index=pd.Index(["P1", "P2", "P3"], name="product_id")
    )
    out = product_history(_tables(), pd.Index(["A", "B", "C"]), products, cutoff=CUTOFF)
    # A viewed P1 at 12 and 142 days, P2 at 517 days, P3 at 2 days (the 2025-06-01 view is
    # at the cut-off and the invest_success is no view)
    np.testing.assert_array_equal(out["views_90d"][0], [1, 0, 1])
    np.testing.assert_array_equal(out["views_365d"][0], [2, 0, 1])
    np.testing.assert_allclose(out["view_share"][0], [0.5, 0.25, 0.25])
    np.testing.assert_allclose(out["category_view_share"][0], [0.75, 0.75, 0.25])
    np.testing.assert_allclose(out["view_share"][1], [0, 0, 1])
    # A bought P1 (sold since) and P3; B's buy is after the cut-off; C has no history
    np.testing.assert_array_equal(out["bought_before"], [[1, 0, 1], [0, 0, 0], [0, 0, 0]])
    np.testing.assert_allclose(out["category_buy_share"][0], [0.5, 0.5, 0.5])
    for name, values in out.items():
        assert values.dtype == np.float32, name
        np.testing.assert_array_equal(values[2], 0.0)
