"""The Dask engine agrees with the embedded pandas run on the same data (LocalCluster, 2 workers).

One demo bank of 2,000 customers, validated once; one in-process LocalCluster for the module.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("distributed")

from distributed import Client, LocalCluster  # noqa: E402
from lightgbm import LGBMClassifier  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from features import distributed as fd  # noqa: E402
from features.contract import CUSTOMER_ID, SEGMENT_ID  # noqa: E402
from features.demo_bank import DEMO_AS_OF, generate_demo_bank, write_demo_bank  # noqa: E402
from features.labels import build_churn_labels  # noqa: E402
from features.portrait import build_features  # noqa: E402
from features.validate import load_dataset  # noqa: E402
from portrait.settings import RuleSettings, SegmentSettings, Settings, load_settings  # noqa: E402
from training import distributed as td  # noqa: E402
from training.engine import (  # noqa: E402
    RuleMiner,
    build_portrait,
    distribute,
    engine_session,
    train_booster,
)
from training.models.churn import ChurnModel, churn_features  # noqa: E402
from training.rules import mining as rl  # noqa: E402
from training.rules.build import mine_all_rules  # noqa: E402
from training.segments.build import build_segments, interest_frame  # noqa: E402
from training.segments.model import assign_segment  # noqa: E402

# Validated timestamps are datetime64[ns]; a cut-off in the same unit keeps pandas' merge_asof happy.
AS_OF = DEMO_AS_OF.as_unit("ns")
PARTITIONS = 4
# Two workers each bin their own rows, so split thresholds differ slightly from one machine's:
# on ~1,000 held-out customers the AUC's standard error is about 0.02, hence this tolerance.
AUC_TOLERANCE = 0.03


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    out = tmp_path_factory.mktemp("bank")
    write_demo_bank(generate_demo_bank(n_customers=2000, seed=7), out, fmt="csv")
    return load_dataset(out).tables


@pytest.fixture(scope="module")
def client():
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=False) as cluster,
        Client(cluster) as c,
    ):
        yield c


@pytest.fixture(scope="module")
def pandas_portrait(tables):
    return build_features(tables, as_of=AS_OF)


@pytest.fixture(scope="module")
def dask_portrait(tables, client):
    frames = fd.from_pandas(tables, npartitions=3)
    return fd.build_features_distributed(frames, as_of=AS_OF, npartitions=PARTITIONS)


def test_features_equal_the_pandas_run(pandas_portrait, dask_portrait):
    got = fd.collect_portrait(dask_portrait)
    pd.testing.assert_frame_equal(got, pandas_portrait, check_exact=False, rtol=0, atol=1e-9)


def test_every_table_is_aligned_on_customer_partitions(tables, client):
    aligned = fd.partition_by_customer(
        fd.from_pandas(tables, npartitions=3), npartitions=PARTITIONS
    )
    owner = {}
    for name in ("customers", "events", "transactions", "balances"):
        ids = (
            aligned[name][CUSTOMER_ID]
            .map_partitions(
                lambda s, partition_info=None: pd.Series(
                    partition_info["number"], index=s.to_numpy()
                ),
                meta=(None, "int64"),
            )
            .compute()
        )
        owner[name] = ids.groupby(level=0).agg(["min", "max"])
        assert (owner[name]["min"] == owner[name]["max"]).all(), (
            f"{name}: a customer in two partitions"
        )
    for name in ("events", "transactions", "balances"):
        joined = owner[name]["min"].to_frame("table").join(owner["customers"]["min"])
        assert (joined["table"] == joined["min"]).all(), name


def test_pipeline_dispatch_gives_the_same_portrait(tables, pandas_portrait, client):
    settings = load_settings(overrides={"engine.engine": "dask", "engine.partitions": 3})
    got = build_portrait(tables, as_of=AS_OF, settings=settings)
    pd.testing.assert_frame_equal(got, pandas_portrait, check_exact=False, rtol=0, atol=1e-9)


def test_read_parquet_path_equals_the_pandas_run(tmp_path, tables, pandas_portrait, client):
    for name, frame in tables.items():
        # Microsecond timestamps: features/load.py's range check overflows on datetime64[ns] input.
        stamps = {c: "datetime64[us]" for c, t in frame.dtypes.items() if t.kind == "M"}
        frame.astype(stamps).to_parquet(
            tmp_path / f"{name}.parquet", index=False, row_group_size=50_000
        )
    frames = fd.read_tables(tmp_path, blocksize="1MiB")
    assert frames["events"].npartitions > 1
    got = fd.collect_portrait(fd.build_features_distributed(frames, as_of=AS_OF, npartitions=3))
    pd.testing.assert_frame_equal(got, pandas_portrait, check_exact=False, rtol=0, atol=1e-9)


def test_same_segments_on_the_same_data(pandas_portrait, dask_portrait):
    settings = SegmentSettings(k_min=3, k_max=4, n_reseeds=0, sample_size=1000)
    embedded = td.segmentation_model(settings).fit(pandas_portrait)
    expected = assign_segment(embedded, pandas_portrait)
    model = td.fit_segments_distributed(dask_portrait, settings)
    assert model.k_ == embedded.k_
    np.testing.assert_allclose(
        model.pipeline_[-1].cluster_centers_, embedded.pipeline_[-1].cluster_centers_, atol=1e-9
    )
    got = td.assign_segments_distributed(model, dask_portrait).compute()
    got = got.sort_values(CUSTOMER_ID).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)


def test_sampled_fit_assigns_every_customer(dask_portrait, pandas_portrait):
    settings = SegmentSettings(k_min=3, k_max=3, n_reseeds=0, sample_size=500)
    model = td.fit_segments_distributed(dask_portrait, settings, fit_rows=1000)
    got = td.assign_segments_distributed(model, dask_portrait).compute()
    assert sorted(got[CUSTOMER_ID]) == sorted(pandas_portrait[CUSTOMER_ID])
    assert set(got["segment_id"]) <= set(range(model.k_))


@pytest.mark.parametrize("kind", ["holding", "transition"])
def test_rules_identical(tables, client, kind):
    settings = RuleSettings()
    txns = tables["transactions"]
    shuffled = fd.partition_by_customer({"transactions": fd.from_pandas({"t": txns}, npartitions=3)["t"]},
                                        npartitions=PARTITIONS)["transactions"]  # fmt: skip
    if kind == "holding":
        baskets = rl.build_holding_baskets(txns, as_of=AS_OF)
        lazy = td.holding_baskets_distributed(shuffled, as_of=AS_OF)
    else:
        baskets = rl.build_transition_baskets(
            txns, as_of=AS_OF, window_days=settings.transition_window_days,
            n_windows=settings.transition_windows,
        )  # fmt: skip
        lazy = td.transition_baskets_distributed(shuffled, as_of=AS_OF, settings=settings)
    expected = rl.mine_rules(baskets, settings=settings, kind=kind)
    got = td.mine_rules_distributed(lazy, settings=settings, kind=kind)
    assert len(expected) > 0
    pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-12, atol=0)


@pytest.fixture(scope="module")
def churn_frames(tables, pandas_portrait):
    """(train, test): the portrait 60 days back with its churn labels, and at AS_OF."""
    train_at = AS_OF - pd.Timedelta(days=60)
    train = build_features(tables, as_of=train_at).merge(
        build_churn_labels(tables, as_of=train_at), on=CUSTOMER_ID
    )
    test = pandas_portrait.merge(build_churn_labels(tables, as_of=AS_OF), on=CUSTOMER_ID)
    return train, test


def test_churn_model_metrics_within_tolerance(churn_frames, client):
    train, test = churn_frames
    features = [c for c in train.select_dtypes("number").columns if c not in ("churned",)]
    params = {"n_estimators": 120, "learning_rate": 0.05, "num_leaves": 15, "random_state": 42,
              "deterministic": True, "force_row_wise": True, "verbosity": -1}  # fmt: skip
    local = LGBMClassifier(**params).fit(train[features], train["churned"])
    x = fd.from_pandas({"x": train[features]}, npartitions=2)["x"]
    y = fd.from_pandas({"y": train["churned"]}, npartitions=2)["y"]
    model = td.fit_classifier_distributed(x, y, params=params, client=client)
    assert type(model) is LGBMClassifier
    auc_local = roc_auc_score(test["churned"], local.predict_proba(test[features])[:, 1])
    auc_dask = roc_auc_score(test["churned"], model.predict_proba(test[features])[:, 1])
    assert auc_local > 0.6
    assert abs(auc_dask - auc_local) <= AUC_TOLERANCE, (auc_local, auc_dask)


def test_engine_session_pandas_starts_nothing():
    with engine_session(Settings().engine) as client:
        assert client is None


# --- the stage hooks of `portrait run --engine dask` (training/engine.py) ------------------


@pytest.fixture(scope="module")
def cluster(tables, client):
    settings = load_settings(overrides={"engine.engine": "dask", "engine.partitions": PARTITIONS})
    found = distribute(tables, settings=settings)
    found.train_min_rows = 0  # every fit of these tests trains on the workers
    build_portrait(tables, as_of=AS_OF, settings=settings, cluster=found)
    return found


def test_segments_stage_hook_gives_the_pandas_segments(pandas_portrait, cluster):
    settings = SegmentSettings(k_min=3, k_max=4, n_reseeds=0, sample_size=1000)
    expected, _ = build_segments(pandas_portrait, settings=settings)
    got, _ = build_segments(pandas_portrait, settings=settings, cluster=cluster)
    pd.testing.assert_frame_equal(got, expected)


def test_segments_stage_hook_with_product_interests(tables, pandas_portrait, cluster):
    settings = SegmentSettings(k_min=3, k_max=4, n_reseeds=0, sample_size=1000)
    interests = interest_frame(tables, pandas_portrait, as_of=AS_OF, settings=settings)
    expected, model = build_segments(pandas_portrait, settings=settings, interests=interests)
    got, _ = build_segments(
        pandas_portrait, settings=settings, cluster=cluster, interests=interests
    )
    assert any(c.startswith("interest_") for c in model.features_)
    pd.testing.assert_frame_equal(got, expected)


def test_rules_stage_hook_gives_the_pandas_rules(tables, pandas_portrait, cluster):
    settings = RuleSettings()
    segments, _ = build_segments(
        pandas_portrait, settings=SegmentSettings(k_min=3, k_max=3, n_reseeds=0)
    )
    kwargs = {"as_of": AS_OF, "settings": settings, "segments": segments}
    expected, notes = mine_all_rules(tables, **kwargs)
    got, got_notes = mine_all_rules(tables, **kwargs, miner=RuleMiner(cluster))
    assert (expected[SEGMENT_ID].notna()).any() and len(expected) > 0
    assert got_notes == notes
    pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-12, atol=0)


def test_models_train_on_the_cluster_within_tolerance(churn_frames, cluster):
    train, test = churn_frames
    local = ChurnModel(features=churn_features(train), num_boost_round=200).fit(train)
    remote = ChurnModel(features=churn_features(train), num_boost_round=200).fit(
        train, cluster=cluster
    )
    assert 1 <= remote.best_iteration_ <= 200
    auc = {name: roc_auc_score(test["churned"], m.predict_proba(test))
           for name, m in (("local", local), ("dask", remote))}  # fmt: skip
    assert auc["local"] > 0.6
    assert abs(auc["dask"] - auc["local"]) <= AUC_TOLERANCE, auc


def test_early_stopping_rule_matches_lightgbm():
    rng = np.random.default_rng(0)
    x = pd.DataFrame({"a": rng.normal(size=3000), "b": rng.normal(size=3000)})
    y = (x["a"] + rng.normal(size=3000) > 0.5).to_numpy(float)
    params = {"objective": "binary", "verbosity": -1, "deterministic": True, "seed": 1,
              "force_row_wise": True, "num_threads": 1}  # fmt: skip
    fit, valid = (x[:2000], y[:2000], None), (x[2000:], y[2000:], None)
    booster, best, loss = train_booster(params, fit, valid, rounds=300, patience=20)
    curve = td.logloss_curve(booster, valid)
    assert td.early_stopping_iteration(curve, patience=20) == best
    assert curve[best - 1] == pytest.approx(loss, abs=1e-9)
