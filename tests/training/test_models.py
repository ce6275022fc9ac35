"""Churn and conversion models on a small demo bank: better than baselines, calibrated, explained, reproducible."""

from __future__ import annotations

import numpy as np
import pytest

from features.contract import PRODUCT_ID
from features.demo_bank import DEMO_AS_OF, generate_demo_bank
from portrait.settings import ModelSettings, TimeSettings
from training.models.churn import phrase
from training.models.conversion import PerProductModel
from training.models.cutoffs import history, model_cutoffs
from training.models.datasets import churn_training_set, conversion_training_set, portraits_at
from training.models.metrics import pr_auc
from training.models.modelling import pair_ranking_metrics, train_churn, train_conversion

SETTINGS = ModelSettings(n_trials=2, seed=7, k=5)
TIME = TimeSettings(training_cutoffs=2)


@pytest.fixture(scope="module")
def data():
    tables = generate_demo_bank(n_customers=2500, seed=3).tables
    cuts = model_cutoffs(DEMO_AS_OF, horizon_days=60, n_training=TIME.training_cutoffs)
    portraits = portraits_at(history(tables, as_of=DEMO_AS_OF), list(cuts.labelled), active_days=90)
    churn = churn_training_set(tables, as_of=DEMO_AS_OF, time=TIME, portraits=portraits)
    conv = conversion_training_set(
        tables, as_of=DEMO_AS_OF, time=TIME, negative_rate=0.3, seed=7, portraits=portraits
    )
    return churn, conv


@pytest.fixture(scope="module")
def churn(data):
    return train_churn(data[0], settings=SETTINGS, log=False)


@pytest.fixture(scope="module")
def conversion(data):
    return train_conversion(data[1], settings=SETTINGS, log=False)


def test_churn_model_beats_the_recency_rule(churn):
    model, rule = churn.metrics["model"], churn.metrics["baseline:recency_rule"]
    assert model["pr_auc"] > rule["pr_auc"] + 0.05
    assert model["roc_auc"] > rule["roc_auc"]
    assert model["brier"] < rule["brier"]


def test_churn_probabilities_are_calibrated(churn):
    p = churn.model.predict_proba(churn.valid)
    assert ((p >= 0) & (p <= 1)).all()
    assert abs(p.mean() - churn.valid["churned"].mean()) < 0.04


def test_churn_reasons_are_readable(churn):
    reasons = churn.model.explain(churn.valid.head(20), top=3)
    assert len(reasons) == 20
    assert all(1 <= len(r) <= 3 for r in reasons)
    flat = [text for row in reasons for text in row]
    assert all(t.endswith(("(raises risk)", "(lowers risk)")) for t in flat)
    assert not any("nan" in t for t in flat)


def test_phrases_by_hand():
    import pandas as pd

    assert phrase("days_since_last_login", pd.Series([45.0])).tolist() == ["no login for 45 days"]
    assert phrase("complaints_90d", pd.Series([3])).tolist() == ["3 complaints in 90 days"]
    assert phrase("days_since_last_login", pd.Series([np.nan])).tolist() == [
        "days since last login unknown"
    ]


def test_conversion_model_and_both_variants(conversion):
    variants = conversion.extra["variants"]
    assert set(variants) == {"pair", "per_product"}
    kept = conversion.extra["choice"]
    other = "per_product" if kept == "pair" else "pair"
    assert variants[kept]["map@5"] >= variants[other]["map@5"]
    model = conversion.metrics["model"]
    assert 0 < model["recall@5"] <= 1


def test_the_models_metric_is_the_gates_score_of_the_model(churn, conversion):
    """The models stage gives the gate `metrics["model"][primary]` as the candidate's score
    instead of scoring the validation fold again: it must be that score."""
    y = churn.valid["churned"].to_numpy()
    again = pr_auc(y, churn.model.predict_proba(churn.valid))
    assert churn.primary == "pr_auc" and churn.metrics["model"]["pr_auc"] == again
    scores = conversion.model.predict_proba(conversion.valid)
    again = pair_ranking_metrics(conversion.valid, scores, k=SETTINGS.k)[conversion.primary]
    assert conversion.metrics["model"][conversion.primary] == again


def test_conversion_model_beats_every_baseline_by_a_margin(conversion):
    """At 2,500 customers (~200 buyers in the fold) the model led segment popularity, the best of
    the first three baselines, by 2.3 points of MAP@5 with two training cut-offs (0.399 vs 0.377;
    20k customers: 8.7, 0.466 vs rules 0.378). EASE^R, a baseline since, is 0.9 points behind
    the model here (0.390): the margin asserted over it is a strict win, over the others 0.01."""
    model = conversion.metrics["model"]
    scores = conversion.baseline_scores()
    assert model["map@5"] > scores.pop("baseline:ease")
    assert model["map@5"] > max(scores.values()) + 0.01
    for name, values in conversion.metrics.items():
        if name.startswith("baseline:"):
            assert model["ndcg@5"] > values["ndcg@5"], name


def test_conversion_reasons(conversion):
    top = conversion.valid.head(10)
    reasons = conversion.model.explain(top, top=3)
    assert len(reasons) == 10 and all(len(r) <= 3 for r in reasons)


def test_same_seed_gives_identical_metrics(data, churn, conversion):
    again = train_churn(data[0], settings=SETTINGS, log=False)
    assert again.metrics == churn.metrics
    assert again.tuning.best_params == churn.tuning.best_params
    conv_again = train_conversion(data[1], settings=SETTINGS, log=False)
    assert conv_again.metrics == conversion.metrics


def test_training_threads_never_change_the_model(data, monkeypatch):
    """A fit on every core gives the same trees as on one (deterministic, row-wise histograms)."""
    from training.models import gbm
    from training.models.churn import ChurnModel, churn_features

    train = data[0].train
    features = churn_features(train)
    scores = []
    for threshold in (10**9, 1):  # one thread, then every core for this set
        monkeypatch.setattr(gbm, "PARALLEL_TRAIN_ROWS", threshold)
        model = ChurnModel(features=features, seed=7).fit(train)
        scores.append(model.predict_margin(data[0].valid))
    assert gbm.train_threads(len(train)) == 0
    np.testing.assert_array_equal(scores[0], scores[1])


def test_tuning_scores_buyers_only_with_the_whole_folds_map(conversion):
    """Trials read only the buyers' pairs: MAP@k over them equals MAP@k over the whole fold."""
    from training.models.modelling import buyers, pair_ranking_metrics

    valid = conversion.valid
    judged = buyers(valid)
    assert 0 < len(judged) < len(valid)
    assert judged.groupby("customer_id")["converted"].max().eq(1).all()
    whole = pair_ranking_metrics(valid, conversion.model.predict_proba(valid), k=5)["map@5"]
    part = pair_ranking_metrics(judged, conversion.model.predict_proba(judged), k=5)["map@5"]
    assert part == pytest.approx(whole, abs=1e-12)


def test_per_product_scores_route_each_pair_to_its_products_model(data):
    train, valid = data[1].train, data[1].valid
    model = PerProductModel(seed=7).fit(train)
    assert 0 < len(model.models_) < train[PRODUCT_ID].nunique()  # both kinds of product
    frame = valid.sample(frac=1.0, random_state=3)  # products interleaved, any row order
    got = model.predict_proba(frame)
    want = model.fallback_.predict_proba(frame)
    for product, own in model.models_.items():
        rows = np.flatnonzero(frame[PRODUCT_ID].to_numpy() == product)
        want[rows] = own.predict_proba(frame.iloc[rows])
    np.testing.assert_array_equal(got, want)
    fallback_only = frame.loc[~frame[PRODUCT_ID].isin(list(model.models_))]
    np.testing.assert_array_equal(
        model.predict_proba(fallback_only), model.fallback_.predict_proba(fallback_only)
    )
    assert len(model.predict_proba(frame.iloc[:0])) == 0
