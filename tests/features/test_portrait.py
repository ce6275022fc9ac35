"""Point-in-time portrait: hand-computed values and the leakage guarantee."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.portrait import build_features, model_feature_columns

AS_OF = pd.Timestamp("2025-01-01")


def row(portrait: pd.DataFrame, cid: str) -> pd.Series:
    return portrait.set_index("customer_id").loc[cid]


def test_one_row_per_customer_signed_up_before_as_of(tiny_tables):
    portrait = build_features(tiny_tables, as_of=AS_OF)
    assert list(portrait["customer_id"]) == ["A", "B", "C"]
    early = build_features(tiny_tables, as_of=pd.Timestamp("2024-07-01"))
    assert list(early["customer_id"]) == ["A", "B"]


def test_hand_computed_values(tiny_tables):
    a = row(build_features(tiny_tables, as_of=AS_OF), "A")
    assert a["age"] == 45
    assert a["tenure_days"] == 366
    assert a["total_assets"] == 1200.0
    assert a["assets_90d_ago"] == 1000.0
    # P1 bought then fully sold before the cut-off; P2 still held; P3 bought after the cut-off.
    assert a["n_products_held"] == 1
    assert a["holds_equity_fund"] == 1 and a["holds_deposit"] == 0
    assert a["max_risk_held"] == 4
    assert a["n_buys_total"] == 2
    assert a["investment_cycle_days"] == 28  # 2024-02-02 -> 2024-03-01
    assert a["days_to_first_buy"] == 32
    assert a["events_7d"] == 1 and a["events_30d"] == 2
    assert a["credit_report_views_30d"] == 1
    assert a["days_since_last_event"] == 4
    assert a["complaints_90d"] == 1 and a["survey_score_last"] == 8.0
    assert a["funnel_stage"] == 4
    assert bool(a["is_active"])


def test_funnel_and_unassessed(tiny_tables):
    portrait = build_features(tiny_tables, as_of=AS_OF)
    assert row(portrait, "C")["funnel_stage"] == 2
    assert row(portrait, "B")["risk_assessed"] == 0
    assert np.isnan(row(portrait, "B")["risk_level"])


def test_model_columns_exclude_identity_and_consent(tiny_tables):
    columns = model_feature_columns(build_features(tiny_tables, as_of=AS_OF))
    assert "customer_id" not in columns and "marketing_opt_out" not in columns
    assert "total_assets" in columns


@pytest.mark.parametrize("shift_days", [0, 1, 30])
def test_rows_at_or_after_as_of_change_no_feature(tiny_tables, shift_days):
    before = build_features(tiny_tables, as_of=AS_OF)
    at = AS_OF + pd.Timedelta(days=shift_days)
    future = {name: frame.copy() for name, frame in tiny_tables.items()}
    for name, column in (("transactions", "ts"), ("events", "ts"), ("interactions", "ts")):
        extra = future[name].iloc[[0, 1]].copy()
        extra[column] = at
        future[name] = pd.concat([future[name], extra], ignore_index=True)
    extra_balance = future["balances"].iloc[[0]].assign(date=at, total_assets=1e9)
    future["balances"] = pd.concat([future["balances"], extra_balance], ignore_index=True)
    # Changing a row after the cut-off must not matter either.
    late = future["transactions"]["ts"] >= AS_OF
    future["transactions"].loc[late, "amount"] = 12345.0
    after = build_features(future, as_of=AS_OF)
    pd.testing.assert_frame_equal(before, after)


def test_funnel_stage_reads_only_steps_before_as_of_of_known_customers():
    """Every event's furthest step by brute force, against the lookup of funnel rows only."""
    from features.behaviour import funnel_features
    from features.contract import FUNNEL_STEPS
    from features.demo_bank import DEMO_AS_OF, generate_demo_bank

    tables = generate_demo_bank(n_customers=400, seed=5).tables
    as_of = DEMO_AS_OF - pd.Timedelta(days=200)
    ids = tables["customers"]["customer_id"].astype(str)
    index = pd.Index(ids.iloc[::2].tolist() + ["nobody"], name="customer_id")  # some unknown
    got = funnel_features(tables, index, as_of=as_of)["funnel_stage"]
    events, txns = tables["events"], tables["transactions"]
    name = events["event"].astype(str).str.replace(r"^(p2p|forex|stock)_", "", regex=True)
    step = name.map({s: i + 1 for i, s in enumerate(FUNNEL_STEPS)}).fillna(0)
    seen = events.loc[events["ts"] < as_of].assign(step=step)
    want = seen.groupby(seen["customer_id"].astype(str))["step"].max().reindex(index).fillna(0)
    bought = txns.loc[(txns["ts"] < as_of) & (txns["type"] == "buy"), "customer_id"].astype(str)
    want[want.index.isin(bought)] = len(FUNNEL_STEPS)
    assert (got.to_numpy() == want.to_numpy()).all()
    assert 0 < (got > 0).sum() < len(got) - 1  # some steps reached, some not
    assert got.loc["nobody"] == 0


def test_event_counts_by_name_equal_a_count_of_every_event():
    """Each event test is run once per distinct name and read off the codes: the counts must be
    those of testing every event (names with business-line prefixes, missing pages)."""
    from features.behaviour import event_features
    from features.demo_bank import DEMO_AS_OF, generate_demo_bank

    tables = generate_demo_bank(n_customers=300, seed=8).tables
    as_of = DEMO_AS_OF - pd.Timedelta(days=100)
    index = pd.Index(tables["customers"]["customer_id"].astype(str), name="customer_id")
    got = event_features(tables, index, as_of=as_of)
    ev = tables["events"].loc[tables["events"]["ts"] < as_of]
    ev = ev.loc[(as_of - ev["ts"]) <= pd.Timedelta(days=30)]
    name = ev["event"].astype(str)
    tests = {
        "logins": name == "login",
        "page_views": name == "page_view",
        "product_views": name.str.replace(r"^(p2p|forex|stock)_", "", regex=True) == "view_product",
        "credit_report_views": (name == "page_view") & (ev["page"] == "credit_report"),
        "shares": name == "share",
    }
    for label, hit in tests.items():
        want = ev.loc[hit.fillna(False).to_numpy(), "customer_id"].astype(str).value_counts()
        want = want.reindex(index, fill_value=0).to_numpy()
        assert (got[f"{label}_30d"].to_numpy() == want).all(), label
        assert want.sum() > 0, label
    lines = ev.loc[(as_of - ev["ts"]) <= pd.Timedelta(days=30)]
    stock = lines.loc[lines["event"].astype(str).str.startswith("stock_"), "customer_id"]
    assert got["stock_events_90d"].sum() >= stock.shape[0] > 0
