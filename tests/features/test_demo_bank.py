"""Integration tests of the demo bank simulator at small size."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from features.contract import SPECS
from features.demo_bank import DEMO_AS_OF, generate_demo_bank, write_demo_bank

N = 3000
KIND_CHECK = {
    "str": pd.api.types.is_string_dtype,
    "timestamp": pd.api.types.is_datetime64_dtype,
    "int": pd.api.types.is_integer_dtype,
    "float": pd.api.types.is_float_dtype,
    "bool": pd.api.types.is_bool_dtype,
}


@pytest.fixture(scope="module")
def bank():
    return generate_demo_bank(n_customers=N, seed=11)


def test_tables_follow_the_contract(bank):
    assert set(bank.tables) == set(SPECS)
    for name, spec in SPECS.items():
        frame = bank.tables[name]
        assert list(frame.columns) == spec.names, name
        assert len(frame) > 0, name
        for col in spec.columns:
            assert KIND_CHECK[col.kind](frame[col.name]), (name, col.name, frame[col.name].dtype)
            if not col.nullable and col.name != "product_id":
                assert frame[col.name].notna().all(), (name, col.name)
            if col.allowed:
                assert set(frame[col.name].dropna()) <= set(col.allowed), (name, col.name)
    assert bank.tables["customers"]["customer_id"].is_unique
    assert (bank.tables["transactions"]["amount"] > 0).all()
    assert bank.tables["events"]["event"].str.fullmatch(r"[a-z][a-z0-9_]*").all()


def test_references_and_identifiers(bank):
    t = bank.tables
    ids = set(t["customers"]["customer_id"])
    products = set(t["products"]["product_id"])
    for name in ("transactions", "events", "balances", "campaigns", "interactions"):
        assert set(t[name]["customer_id"]) <= ids, name
    for name in ("transactions", "events", "campaigns"):
        assert set(t[name]["product_id"].dropna()) <= products, name
    assert t["customers"]["customer_id"].iloc[0] == "C000001"
    buys = t["transactions"][t["transactions"]["type"].isin(["buy", "sell", "income"])]
    assert buys["product_id"].notna().all()
    props = t["events"]["properties"].dropna().head(2000)
    assert all(isinstance(json.loads(p), dict) for p in props)


def test_products_and_customer_shares(bank):
    p, c = bank.tables["products"], bank.tables["customers"]
    assert len(p) >= 20 and (~p["is_active"]).sum() == 2 and p["qualified_only"].sum() >= 2
    assert 0.06 < c["marketing_opt_out"].mean() < 0.10
    assert 0.07 < c["risk_level"].isna().mean() < 0.13
    assert c["kyc_verified"].mean() > 0.75
    assert c["risk_level"].dropna().between(1, 5).all()


def test_same_seed_same_bank():
    a = generate_demo_bank(n_customers=400, seed=3)
    b = generate_demo_bank(n_customers=400, seed=3)
    for name in a.tables:
        pd.testing.assert_frame_equal(a.tables[name], b.tables[name])
    pd.testing.assert_frame_equal(a.truth["customers"], b.truth["customers"])
    c = generate_demo_bank(n_customers=400, seed=4)
    assert not c.tables["events"].equals(a.tables["events"])


def test_planted_affinity_is_visible(bank):
    buys = bank.tables["transactions"].query("type == 'buy'")
    buyers = buys.groupby("product_id")["customer_id"].unique()
    n = len(bank.tables["customers"])
    lifts = []
    for a, b in bank.truth["affinities"][["antecedent", "consequent"]].itertuples(index=False):
        holders = set(buyers.get(a, []))
        b_buyers = set(buyers.get(b, []))
        p_b = len(b_buyers) / n
        p_b_given_a = len(holders & b_buyers) / max(len(holders), 1)
        lifts.append(p_b_given_a / max(p_b, 1e-9))
    assert np.median(lifts) > 2.5


def test_churners_fade_and_move_money_out(bank):
    truth = bank.truth["customers"]
    left = truth.dropna(subset=["churned_at"])[["customer_id", "churned_at"]]
    ev = bank.tables["events"].merge(left, on="customer_id")
    age = (ev["churned_at"] - ev["ts"]).dt.days
    assert (age >= 0).all()  # nothing after leaving
    recent, earlier = (age < 90).sum(), ((age >= 90) & (age < 180)).sum()
    assert recent < 0.8 * earlier
    tx = bank.tables["transactions"].merge(left, on="customer_id")
    assert (tx["ts"] <= tx["churned_at"]).all()
    last = tx[(tx["churned_at"] - tx["ts"]).dt.days < 90]
    sign = last["type"].map({"deposit": 1, "withdraw": -1}).fillna(0)
    assert (sign * last["amount"]).sum() < 0


def test_p_churn_true_is_calibrated_against_the_contract_label(bank):
    truth = bank.truth["customers"]
    active = truth[truth["active_at_as_of"]]
    assert truth.loc[~truth["active_at_as_of"], "p_churn_true"].isna().all()
    rate = active["churn_label"].mean()
    assert 0.08 <= rate <= 0.20
    assert abs(active["p_churn_true"].mean() - rate) < 0.03
    assert roc_auc_score(active["churn_label"], active["p_churn_true"]) > 0.75


def test_conversion_truth_matches_realised_buys(bank):
    conv = bank.truth["conversion"]
    tx = bank.tables["transactions"]
    window = tx[
        (tx["type"] == "buy")
        & (tx["ts"] >= DEMO_AS_OF)
        & (tx["ts"] < DEMO_AS_OF + pd.Timedelta(days=60))
    ]
    bought = conv.merge(
        window[["customer_id", "product_id"]].drop_duplicates().assign(y=1), how="left"
    )
    y = bought["y"].fillna(0)
    assert abs(bought["p_buy_true"].mean() - y.mean()) < 0.3 * y.mean() + 0.001
    assert roc_auc_score(y, bought["p_buy_true"]) > 0.8


def test_campaign_difference_near_planted_ate(bank):
    camp = bank.tables["campaigns"]
    assert (
        camp["campaign_id"].eq("CMP2025_FUND_PUSH").all() and camp["channel"].eq("app_push").all()
    )
    assert 0.4 < (camp["group"] == "treatment").mean() < 0.6
    sent = camp["sent_at"].min()
    tx = bank.tables["transactions"]
    buys = tx[(tx["type"] == "buy") & (tx["product_id"] == camp["product_id"].iloc[0])
              & (tx["ts"] >= sent) & (tx["ts"] < sent + pd.Timedelta(days=30))]  # fmt: skip
    camp = camp.assign(y=camp["customer_id"].isin(buys["customer_id"]))
    rates = camp.groupby("group")["y"].mean()
    info = bank.truth["campaign"]
    assert 0.05 <= info["true_ate"] <= 0.10
    assert abs((rates["treatment"] - rates["control"]) - info["true_ate"]) < 0.04
    uplift = bank.truth["campaign_uplift"]
    assert set(uplift["customer_id"]) == set(camp["customer_id"])


def test_funnel_drop_off_is_monotone(bank):
    ev = bank.tables["events"]
    counts = [ev.loc[ev["event"] == s, "customer_id"].nunique()
              for s in ("register", "real_name_auth", "bind_card", "invest_success")]  # fmt: skip
    assert counts[0] == N
    assert counts[0] > counts[1] > counts[2]
    first = ev[ev["event"] == "invest_success"].groupby("customer_id").size()
    assert (first >= 1).all()
    reg = ev[ev["event"] == "register"]
    variants = reg["properties"].str.extract(r'"variant": "(\w)"')[0].dropna()
    assert set(variants) == {"A", "B"}


def test_new_customers_keep_signing_up(bank):
    signup = bank.tables["customers"]["signup_at"]
    months = signup.dt.to_period("M").value_counts()
    assert len(months) == 24 and months.min() > 0
    assert months[pd.Period("2025-01")] > months[pd.Period("2025-02")]


def test_bad_rows_inject_documented_kinds(tmp_path):
    b = generate_demo_bank(n_customers=300, seed=5, bad_rows=0.05)
    bad = b.truth["bad_rows"]
    kinds = set(bad["kind"])
    assert {"unknown_customer_id", "unknown_product_id", "negative_amount", "unparseable_timestamp",
            "duplicate_customer_id", "risk_level_out_of_range", "bad_transaction_type"} <= kinds  # fmt: skip
    tx = b.tables["transactions"]
    rows = bad[(bad["table"] == "transactions") & (bad["kind"] == "negative_amount")]["row_index"]
    assert (tx.iloc[rows.to_numpy()]["amount"].astype(float) < 0).all()
    assert not b.tables["customers"]["customer_id"].is_unique
    out = write_demo_bank(b, tmp_path / "bank")
    assert (out / "transactions.csv").exists() and not (out / "transactions.parquet").exists()
    written = pd.read_csv(out / "transactions.csv")
    assert (written["ts"] == "not-a-date").sum() == (
        (bad["table"] == "transactions") & (bad["kind"] == "unparseable_timestamp")
    ).sum()


def test_write_demo_bank_parquet(tmp_path, bank):
    out = write_demo_bank(bank, tmp_path / "bank")
    for name in SPECS:
        assert (out / f"{name}.parquet").exists()
    for name in ("customers", "affinities", "conversion", "campaign_uplift"):
        assert (out / "truth" / f"{name}.parquet").exists()
    meta = json.loads((out / "truth" / "meta.json").read_text())
    assert meta["demo_as_of"] == str(DEMO_AS_OF.date())
    assert "p_churn_true" in (out / "truth" / "README.md").read_text()
    back = pd.read_parquet(out / "events.parquet")
    assert len(back) == len(bank.tables["events"])


@pytest.fixture(scope="module")
def sellout():
    return generate_demo_bank(n_customers=N, seed=11, exit_style="sellout")


def test_sellout_leavers_sell_everything_withdraw_and_go_silent(sellout):
    truth = sellout.truth["customers"]
    left = truth.dropna(subset=["churned_at"])[["customer_id", "churned_at"]]
    tx = sellout.tables["transactions"].merge(left, on="customer_id")
    exit_rows = tx[tx["ts"] >= tx["churned_at"]]
    # the exit is sells and one withdrawal per funded leaver, and nothing engages them after it
    assert set(exit_rows["type"]) == {"sell", "withdraw"}
    out = exit_rows.loc[exit_rows["type"] == "withdraw"].groupby("customer_id")["ts"].max()
    ev = sellout.tables["events"].merge(out.rename("exit_at"), on="customer_id")
    assert len(ev) and (ev["ts"] < ev["exit_at"]).all()
    funded = left["customer_id"].isin(exit_rows["customer_id"])
    gone = truth.set_index("customer_id").loc[left.loc[funded, "customer_id"]]
    assert (gone["assets_at_end"] <= 1.0).all()  # withdrawals of 1 or less are not made
    # who left with money before as_of is departed: neither active nor given a probability
    before = gone[gone["churned_at"] < DEMO_AS_OF]
    assert len(before) > 50 and before["departed_at_as_of"].all()
    assert not before["active_at_as_of"].any() and before["p_churn_true"].isna().all()


def test_sellout_truth_is_calibrated_and_the_silent_bank_is_unchanged(sellout, bank):
    truth = sellout.truth["customers"]
    active = truth[truth["active_at_as_of"]]
    rate = active["churn_label"].mean()
    assert abs(active["p_churn_true"].mean() - rate) < 0.03
    assert roc_auc_score(active["churn_label"], active["p_churn_true"]) > 0.75
    assert sellout.truth["meta"]["exit_style"] == "sellout"
    assert bank.truth["meta"]["exit_style"] == "silent"
    with pytest.raises(ValueError, match="exit_style"):
        generate_demo_bank(n_customers=10, exit_style="vanish")


def test_alt_profile_is_another_bank_and_leaves_the_default_alone():
    from features.demo_bank import catalog

    default = generate_demo_bank(n_customers=400, seed=5)
    alt = generate_demo_bank(n_customers=400, seed=5, profile="alt")
    personas = set(alt.truth["customers"]["persona"])
    assert personas == {"fx_copy_trader", "money_market_saver", "private_wealth",
                        "pension_planner", "index_investor", "gold_hedger"}  # fmt: skip
    assert alt.truth["meta"]["profile"] == "alt" and "profile" not in default.truth["meta"]
    assert catalog.PERSONAS[0] == "young_active_trader"  # the overrides were restored
    again = generate_demo_bank(n_customers=400, seed=5)
    for name, table in default.tables.items():
        pd.testing.assert_frame_equal(again.tables[name], table)
    buys = alt.tables["transactions"].query("type == 'buy'")
    assert not buys.empty and len(buys) != (default.tables["transactions"]["type"] == "buy").sum()
    with pytest.raises(ValueError, match="profile must be one of"):
        generate_demo_bank(n_customers=50, profile="nope")


def test_truth_at_moves_only_the_truth():
    """The truth of an earlier month start: the same tables, labels over that month's horizon,
    calibrated there too; the catalogue's clock is restored afterwards."""
    from features.demo_bank import catalog
    from features.labels import build_churn_labels

    stock = generate_demo_bank(n_customers=1500, seed=5)
    early = generate_demo_bank(n_customers=1500, seed=5, truth_at=pd.Timestamp("2025-09-01"))
    for name, table in stock.tables.items():
        pd.testing.assert_frame_equal(early.tables[name], table)
    assert catalog.DEMO_AS_OF == DEMO_AS_OF and early.truth["meta"]["demo_as_of"] == "2025-09-01"
    active = early.truth["customers"].loc[lambda t: t["active_at_as_of"]]
    labels = build_churn_labels(early.tables, as_of=pd.Timestamp("2025-09-01"))
    mine = labels.set_index("customer_id")["churned"].reindex(active["customer_id"])
    assert (
        mine.to_numpy() == active["churn_label"].to_numpy()
    ).all()  # the contract's labels there
    assert abs(active["p_churn_true"].mean() - active["churn_label"].mean()) < 0.03
    assert not active["p_churn_true"].equals(
        stock.truth["customers"].loc[lambda t: t["active_at_as_of"], "p_churn_true"]
    )
    again = generate_demo_bank(n_customers=1500, seed=5, truth_at=DEMO_AS_OF)
    pd.testing.assert_frame_equal(again.truth["customers"], stock.truth["customers"])
    with pytest.raises(ValueError, match="truth_at must be a month start"):
        generate_demo_bank(n_customers=50, truth_at=pd.Timestamp("2025-09-02"))
