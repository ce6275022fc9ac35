"""Training sets over cut-offs: exact cut-offs, negative subsampling, and no leakage across time."""

from __future__ import annotations

import weakref

import numpy as np
import pandas as pd
import pytest

from features.demo_bank import DEMO_AS_OF, generate_demo_bank
from features.engagement import active_customers
from features.labels import build_churn_labels
from features.portrait import build_features
from portrait.errors import PortraitError
from portrait.settings import EngagementSettings, TimeSettings
from tests.conftest import make_tables
from training.models import datasets, run_sets
from training.models.cutoffs import history, model_cutoffs
from training.models.datasets import (
    ConversionSampling,
    campaign_pairs,
    churn_training_set,
    conversion_training_set,
    label_pairs,
    sample_customers,
    subsample_negatives,
)
from training.models.run_sets import training_sets

T = pd.Timestamp
TIME = TimeSettings(training_cutoffs=1)


def test_model_cutoffs_step_back_one_horizon():
    cuts = model_cutoffs(T("2025-11-01"), horizon_days=60, n_training=2)
    assert cuts.validation == T("2025-09-02")
    assert cuts.training == (T("2025-05-05"), T("2025-07-04"))
    assert cuts.scoring == T("2025-11-01")
    assert cuts.labelled[-1] == cuts.validation


def test_history_keeps_only_rows_before_as_of():
    tables = make_tables()
    past = history(tables, as_of=T("2025-01-01"))
    assert past["transactions"]["ts"].max() < T("2025-01-01")
    assert len(past["transactions"]) == 5  # the two January 2025 rows are cut
    assert len(past["customers"]) == 3
    assert past["products"] is tables["products"]


def test_history_slices_time_ordered_tables_without_copying_them():
    """A behaviour table in time order is cut by position: the same rows as a mask, no copy."""
    tables = make_tables()
    ordered = tables["transactions"].sort_values("ts", kind="stable", ignore_index=True)
    cut = history({**tables, "transactions": ordered}, as_of=T("2025-01-01"))["transactions"]
    pd.testing.assert_frame_equal(cut, ordered.loc[ordered["ts"] < T("2025-01-01")])
    assert np.shares_memory(cut["amount"].to_numpy(), ordered["amount"].to_numpy())
    shuffled = ordered.iloc[::-1]  # out of order: masked, the same rows
    masked = history({**tables, "transactions": shuffled}, as_of=T("2025-01-01"))["transactions"]
    pd.testing.assert_frame_equal(masked, shuffled.loc[shuffled["ts"] < T("2025-01-01")])


def test_subsample_negatives_keeps_positives_and_weights():
    pairs = pd.DataFrame({"converted": [1, 0, 0, 0, 0, 0, 0, 0, 0, 1]})
    out = subsample_negatives(pairs, rate=0.5, seed=3)
    assert out["converted"].sum() == 2
    assert set(out.loc[out["converted"] == 0, "weight"]) == {2.0}
    assert set(out.loc[out["converted"] == 1, "weight"]) == {1.0}
    again = subsample_negatives(pairs, rate=0.5, seed=3)
    pd.testing.assert_frame_equal(out, again)


def test_too_little_history_is_a_clear_error():
    with pytest.raises(PortraitError, match="both classes are needed"):
        churn_training_set(make_tables(), as_of=T("2025-02-01"), time=TIME)


@pytest.fixture(scope="module")
def bank_tables():
    return generate_demo_bank(n_customers=1000, seed=11).tables


def _future_noise(tables: dict[str, pd.DataFrame], start: pd.Timestamp) -> dict[str, pd.DataFrame]:
    """Every other customer logs in and buys a product at and after `start`."""
    ids = tables["customers"]["customer_id"].iloc[::2]
    out = dict(tables)
    events = tables["events"].head(len(ids)).copy()
    events["customer_id"] = ids.to_numpy()
    events["ts"] = start
    txns = tables["transactions"].head(len(ids)).copy()
    txns["customer_id"] = ids.to_numpy()
    txns["ts"] = start + pd.Timedelta(days=1)
    txns["type"] = "buy"
    txns["product_id"] = "P05"
    out["events"] = pd.concat([tables["events"], events], ignore_index=True)
    out["transactions"] = pd.concat([tables["transactions"], txns], ignore_index=True)
    return out


def test_rows_at_or_after_as_of_never_reach_training_sets(bank_tables):
    as_of = DEMO_AS_OF
    clean = churn_training_set(bank_tables, as_of=as_of, time=TIME)
    noisy = churn_training_set(_future_noise(bank_tables, as_of), as_of=as_of, time=TIME)
    pd.testing.assert_frame_equal(clean.train, noisy.train)
    pd.testing.assert_frame_equal(clean.valid, noisy.valid)
    conv = conversion_training_set(bank_tables, as_of=as_of, time=TIME, negative_rate=0.3, seed=1)
    conv_noisy = conversion_training_set(
        _future_noise(bank_tables, as_of), as_of=as_of, time=TIME, negative_rate=0.3, seed=1
    )
    pd.testing.assert_frame_equal(conv.valid, conv_noisy.valid)


def test_features_at_a_cutoff_ignore_rows_after_it(bank_tables):
    """Rows inside the validation label window change labels, never the validation features."""
    as_of = DEMO_AS_OF
    clean = churn_training_set(bank_tables, as_of=as_of, time=TIME)
    start = clean.cutoffs.validation
    noisy = churn_training_set(_future_noise(bank_tables, start), as_of=as_of, time=TIME)
    features = [c for c in clean.valid.columns if c != "churned"]
    pd.testing.assert_frame_equal(clean.valid[features], noisy.valid[features])
    assert noisy.valid["churned"].sum() < clean.valid["churned"].sum()
    conv = conversion_training_set(bank_tables, as_of=as_of, time=TIME, negative_rate=0.3, seed=1)
    conv_noisy = conversion_training_set(
        _future_noise(bank_tables, start), as_of=as_of, time=TIME, negative_rate=0.3, seed=1
    )
    # the fold keeps buyers and a sample of the others, so new buyers add rows: compare pairs
    keys = ["customer_id", "product_id"]
    both = conv.valid.merge(conv_noisy.valid, on=keys, suffixes=("", "_noisy"))
    assert len(both) == len(conv.valid)
    for col in [c for c in conv.valid.columns if c not in (*keys, "converted", "weight")]:
        pd.testing.assert_series_equal(
            both[col], both[f"{col}_noisy"], check_names=False, obj=f"pair feature {col}"
        )
    assert conv_noisy.valid["converted"].sum() > conv.valid["converted"].sum()


def test_training_rows_come_from_earlier_cutoffs(bank_tables):
    data = churn_training_set(bank_tables, as_of=DEMO_AS_OF, time=TimeSettings(training_cutoffs=2))
    assert set(data.train["cutoff"]) == set(data.cutoffs.training)
    assert set(data.valid["cutoff"]) == {data.cutoffs.validation}
    assert data.cutoffs.validation + pd.Timedelta(days=60) == DEMO_AS_OF


def test_campaign_pushes_reaching_the_horizon_are_not_labels():
    campaigns = pd.DataFrame(
        {
            "customer_id": ["A", "B", "C", "D"],
            "product_id": ["P1", "P1", None, "P1"],
            "sent_at": [T("2025-05-20"), T("2025-07-10"), T("2025-07-10"), T("2025-03-01")],
        }
    )
    hit = campaign_pairs(
        {"campaigns": campaigns}, cutoff=T("2025-06-01"), horizon_days=60, window_days=30
    )
    # A: sent 12 days before the cut-off (window still open); B: inside the horizon;
    # C: no product; D: its window closed before the cut-off
    assert hit.values.tolist() == [["A", "P1"], ["B", "P1"]]
    pairs = pd.DataFrame({"customer_id": ["A", "A", "B", "E"], "product_id": ["P1", "P2"] * 2})
    labels = pd.DataFrame({"customer_id": ["A", "E"], "product_id": ["P1", "P2"], "converted": 1})
    out = label_pairs(pairs, labels, hit)
    assert out.values.tolist() == [["A", "P2", 0], ["E", "P2", 1]]  # A-P1 and B-P1 were pushed
    assert campaign_pairs({}, cutoff=T("2025-06-01"), horizon_days=60, window_days=30).empty


def test_sample_customers_keeps_every_buyer_pair():
    pairs = pd.DataFrame(
        {
            "customer_id": [f"C{i // 2}" for i in range(400)],
            "converted": [1 if i in (0, 7) else 0 for i in range(400)],
        }
    )
    out = sample_customers(pairs, rate=0.25)
    assert {"C0", "C3"} <= set(out["customer_id"])
    assert (out.loc[out["customer_id"].isin(["C0", "C3"]), "weight"] == 1.0).all()
    others = out.loc[~out["customer_id"].isin(["C0", "C3"])]
    assert (others["weight"] == 4.0).all()
    assert 0.1 < others["customer_id"].nunique() / 198 < 0.4
    assert (out.groupby("customer_id").size() == 2).all()  # whole customers, never single pairs


@pytest.fixture(scope="module")
def sellout_tables():
    return generate_demo_bank(n_customers=1500, seed=5, exit_style="sellout").tables


def test_every_fold_is_the_population_scored_at_as_of(sellout_tables):
    """Each cut-off's rows are exactly its active customers by the scoring rule; none departed."""
    data = churn_training_set(sellout_tables, as_of=DEMO_AS_OF, time=TIME)
    past = history(sellout_tables, as_of=DEMO_AS_OF)
    for cutoff, fold in [*data.train.groupby("cutoff"), (data.cutoffs.validation, data.valid)]:
        expected = active_customers(past, as_of=cutoff, active_days=TIME.active_days)
        assert sorted(fold["customer_id"]) == list(expected)
        assert not fold["is_departed"].any() and fold["is_active"].all()
    # the sell-out bank has customers who already left at the validation cut-off: left out
    at_valid = build_features(past, as_of=data.cutoffs.validation)
    departed = set(at_valid.loc[at_valid["is_departed"], "customer_id"])
    assert departed and not departed & set(data.valid["customer_id"])
    # and the same rule picks who is scored at as_of
    scored = build_features(past, as_of=DEMO_AS_OF)
    expected = active_customers(past, as_of=DEMO_AS_OF, active_days=TIME.active_days)
    assert sorted(scored.loc[scored["is_active"], "customer_id"]) == list(expected)


def test_engagement_settings_reach_the_training_set(sellout_tables):
    """Counting every transaction as engagement (the old rule) brings departed customers back."""
    old = EngagementSettings(
        transaction_types=("deposit", "withdraw", "buy", "sell", "income"), departed=False
    )
    new = churn_training_set(sellout_tables, as_of=DEMO_AS_OF, time=TIME)
    wide = churn_training_set(sellout_tables, as_of=DEMO_AS_OF, time=TIME, engagement=old)
    assert len(wide.valid) > len(new.valid)
    assert set(new.valid["customer_id"]) <= set(wide.valid["customer_id"])


def test_training_sets_build_each_portrait_once_and_equal_each_models_own(bank_tables, monkeypatch):
    """Both models' sets from one portrait per cut-off (freed after use) are the sets each
    model's own builder gives; a model the history cannot train says why, the other trains."""
    time = TimeSettings(training_cutoffs=2)
    sampling = ConversionSampling(negative_rate=0.3, seed=1)
    built, alive = [], []
    real = run_sets.build_features

    def build(*args, **kwargs):
        assert not [p for p in alive if p() is not None], "an earlier portrait was not freed"
        built.append(kwargs["as_of"])
        portrait = real(*args, **kwargs)
        alive.append(weakref.ref(portrait))
        return portrait

    monkeypatch.setattr(run_sets, "build_features", build)
    sets = training_sets(bank_tables, as_of=DEMO_AS_OF, time=time,
                         engagement=EngagementSettings(), sampling=sampling)  # fmt: skip
    assert sorted(built) == sorted(set(built)) and len(built) == 3  # 2 training + validation
    mine = {name: make() for name, make in sets.items()}  # the pairs from the kept columns
    assert len(built) == 3  # building the sets builds no portrait again
    monkeypatch.undo()  # each model's own builder below keeps all its portraits at once
    churn = churn_training_set(bank_tables, as_of=DEMO_AS_OF, time=time)
    conv = conversion_training_set(bank_tables, as_of=DEMO_AS_OF, time=time, negative_rate=0.3,
                                   seed=1)  # fmt: skip
    for name, theirs in (("churn", churn), ("conversion", conv)):
        pd.testing.assert_frame_equal(mine[name].train, theirs.train)
        pd.testing.assert_frame_equal(mine[name].valid, theirs.valid)
    short = training_sets(bank_tables, as_of=DEMO_AS_OF, engagement=EngagementSettings(),
                          sampling=sampling,
                          time=TimeSettings(churn_horizon_days=400))  # fmt: skip
    with pytest.raises(PortraitError, match="history starts"):
        short["churn"]()
    assert len(short["conversion"]().valid)


def test_pair_inputs_hold_every_column_the_pairs_read(bank_tables):
    """Pairs from the kept columns equal pairs from the whole portrait, firm columns included."""
    past = history(bank_tables, as_of=DEMO_AS_OF)
    cutoff = DEMO_AS_OF - pd.Timedelta(days=60)
    portrait = build_features(past, as_of=cutoff).assign(extra_segment_code=lambda f: f["age"] % 3)
    slim = run_sets.pair_inputs(portrait)
    assert len(slim.columns) < len(portrait.columns) / 2 and "extra_segment_code" in slim
    whole, _ = datasets.conversion_pairs(past, portrait, cutoff=cutoff, horizon_days=60)
    kept, _ = datasets.conversion_pairs(past, slim, cutoff=cutoff, horizon_days=60)
    pd.testing.assert_frame_equal(kept, whole)


def test_churn_rows_take_the_portraits_active_customers(sellout_tables):
    """The labels' population read from the portrait is the one active_customers finds."""
    past = history(sellout_tables, as_of=DEMO_AS_OF)
    cutoff = DEMO_AS_OF - pd.Timedelta(days=60)
    portrait = build_features(past, as_of=cutoff, active_days=TIME.active_days)
    rows = datasets.churn_rows(past, portrait, cutoff=cutoff, time=TIME)
    labels = build_churn_labels(past, as_of=cutoff, active_days=TIME.active_days)
    assert sorted(rows["customer_id"]) == sorted(labels["customer_id"])
    merged = rows.merge(labels, on="customer_id", suffixes=("", "_own"))
    assert (merged["churned"] == merged["churned_own"]).all() and merged["churned"].any()
