"""Churn reasons are explained for the one customer a page shows, by the served churn model."""

from __future__ import annotations

import pandas as pd

from features.contract import CUSTOMER_ID


def test_a_scored_customer_gets_the_models_reasons_for_their_own_row(state, demo_run):
    portrait = pd.read_parquet(demo_run.run_dir / "features.parquet")
    scored = pd.read_parquet(demo_run.run_dir / "churn_scores.parquet")
    assert "reasons" not in scored.columns  # the batch explains nobody
    ids = scored[CUSTOMER_ID].astype(str).iloc[[0, len(scored) // 2, -1]].tolist()
    rows = portrait.loc[portrait[CUSTOMER_ID].astype(str).isin(ids)]
    explained = state.models["churn"].explain(rows, top=3)
    expected = dict(zip(rows[CUSTOMER_ID].astype(str), explained, strict=True))
    for customer_id in ids:
        reasons = state.churn_reasons_of(customer_id)
        assert reasons == expected[customer_id]
        assert 1 <= len(reasons) <= 3 and all("risk" in r for r in reasons)


def test_an_unscored_customer_gets_no_reasons(state):
    unscored = [c for c in state.portrait.index if c not in state.churn_probability]
    assert unscored  # inactive and departed customers are not scored
    assert state.churn_reasons_of(unscored[0]) == []
    assert state.churn_reasons_of("no-such-customer") == []
