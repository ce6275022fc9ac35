"""Segmentation: names, k choice, determinism, cold start, errors, and persona recovery on the demo bank."""

from __future__ import annotations

import io
from types import SimpleNamespace

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from features.demo_bank import DEMO_AS_OF, generate_demo_bank
from features.portrait import build_features
from features.quality import ValidatedData
from portrait.errors import PortraitError
from portrait.settings import SegmentSettings, Settings
from portrait.stages.result import RunInputs
from portrait.stages.segments import segments_stage
from portrait.stages.segments_report import runner_up_sentence
from training.segments.build import SEGMENT_COLUMNS, build_segments, interest_frame, runner_up
from training.segments.model import SIGNUP_FEATURES, SegmentationModel, assign_segment
from training.segments.names import name_segments, segment_name

GROUPS = {  # age, risk, events_90d, stock events, p2p events, assets, occupation, channel
    0: (26.0, 5.0, 300.0, 150.0, 0.0, 5_000.0, "student", "app_store"),
    1: (62.0, 1.0, 10.0, 0.0, 0.0, 80_000.0, "retired", "branch"),
    2: (40.0, 3.0, 60.0, 0.0, 50.0, 20_000.0, "sales", "wechat"),
}


def _blobs(n_per_group: int = 60, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Three well-separated, hand-specified customer groups with a little seeded noise."""
    rng = np.random.default_rng(seed)
    truth = np.repeat(list(GROUPS), n_per_group)
    spec = np.array([GROUPS[g][:6] for g in truth], dtype=float)
    noise = rng.normal(1.0, 0.05, spec.shape)
    frame = pd.DataFrame(
        spec * noise,
        columns=[
            "age",
            "risk_level",
            "events_90d",
            "stock_events_90d",
            "p2p_events_90d",
            "total_assets",
        ],
    )
    frame["risk_level"] = frame["risk_level"].round()
    frame.insert(0, "customer_id", [f"C{i:04d}" for i in range(len(frame))])
    frame["income_band"] = 3.0
    frame["occupation"] = pd.array([GROUPS[g][6] for g in truth], dtype="string")
    frame["channel"] = pd.array([GROUPS[g][7] for g in truth], dtype="string")
    frame["is_active"] = True
    return frame, truth


def test_segment_name_uses_the_strongest_distinguishing_features():
    z = pd.Series(
        {
            "age": -1.2,
            "n_buy_365d": 1.5,
            "stock_events_90d": 1.4,
            "events_90d": 0.9,
            "income_band": 0.1,
        }
    )
    assert segment_name(z) == "young highly engaged traders"
    z = pd.Series({"age": 1.1, "risk_level": -1.3, "holds_deposit": 1.0, "events_90d": -0.5})
    assert segment_name(z) == "older quiet savers"
    assert segment_name(pd.Series({"age": 0.1, "events_90d": -0.1})) == "typical customers"


def test_duplicate_names_are_told_apart_by_what_differs():
    profile = pd.DataFrame(
        {"age": [-1.0, -1.0, 1.0], "total_assets": [0.2, -0.2, 0.0], "events_90d": [0.0] * 3}
    )
    assert name_segments(profile) == {
        0: "young customers, affluent",
        1: "young customers, low-balance",
        2: "older customers",
    }


def test_duplicate_names_without_a_telling_feature_get_their_segment_number():
    profile = pd.DataFrame({"age": [-1.0, -1.0, 1.0], "events_90d": [0.0, 0.0, 0.0]})
    assert name_segments(profile) == {
        0: "young customers (0)",
        1: "young customers (1)",
        2: "older customers",
    }


def test_signup_attributes_serve_cold_starts_only_when_they_place_held_out_customers():
    frame, _ = _blobs()
    model = SegmentationModel(k_min=2, k_max=6, random_state=3).fit(frame)
    assert model.cold_start_agreement_ == 1.0 and model.cold_start_informative_
    # the same behaviour, sign-up attributes drawn at random: the classifier places nobody
    rng = np.random.default_rng(5)
    noise = frame.assign(
        age=rng.uniform(20, 70, len(frame)), risk_level=rng.integers(1, 6, len(frame)).astype(float),
        occupation=rng.choice(["a", "b", "c"], len(frame)), channel=rng.choice(["x", "y"], len(frame)),
    )  # fmt: skip
    model = SegmentationModel(k_min=2, k_max=6, random_state=3).fit(noise)
    assert not model.cold_start_informative_, model.cold_start_agreement_


def test_blobs_are_recovered_named_and_deterministic():
    frame, truth = _blobs()
    model = SegmentationModel(k_min=2, k_max=6, random_state=3).fit(frame)
    assert model.k_ == 3
    labels = model.predict(frame)
    assert adjusted_rand_score(truth, labels) == 1.0
    assert model.stability_ari_ == 1.0
    assert np.bincount(labels).tolist() == [60, 60, 60]
    again = SegmentationModel(k_min=2, k_max=6, random_state=3).fit(frame)
    assert again.names_ == model.names_
    assert np.array_equal(again.predict(frame), labels)
    young = model.names_[int(labels[0])]
    assert young.endswith("traders")  # the stock-trading group


def test_k_maximises_silhouette_times_half_sample_stability():
    frame, _ = _blobs()
    model = SegmentationModel(k_min=2, k_max=6, random_state=3).fit(frame)
    for score in model.criterion_.values():
        assert 0 < score["stability"] <= 1
        assert score["score"] == pytest.approx(score["silhouette"] * score["stability"])
    best = max(model.criterion_, key=lambda k: model.criterion_[k]["score"])
    assert model.k_ == best == 3
    # more clusters than groups split a blob: half samples with other seeds disagree on where
    assert model.criterion_[6]["stability"] < model.criterion_[3]["stability"]


def test_cold_start_assigns_from_signup_attributes_only():
    frame, _ = _blobs()
    model = SegmentationModel(k_min=2, k_max=4, random_state=3).fit(frame)
    newcomers = frame[["customer_id", "age", "occupation", "channel"]].iloc[[0, 60, 120]]
    assigned = assign_segment(model, newcomers)
    full = assign_segment(model, frame.iloc[[0, 60, 120]])
    assert assigned["assigned_by"].unique().tolist() == ["signup"]
    assert full["assigned_by"].unique().tolist() == ["behaviour"]
    assert assigned["segment_id"].tolist() == full["segment_id"].tolist()
    assert assigned["segment_name"].tolist() == full["segment_name"].tolist()
    assert model.cold_start_agreement_ == 1.0


def test_bad_settings_and_inputs_give_clear_errors():
    frame, _ = _blobs(n_per_group=5)
    with pytest.raises(PortraitError, match="k_min..k_max"):
        SegmentationModel(k_min=5, k_max=3).fit(frame)
    with pytest.raises(PortraitError, match="lower segments.k_max"):
        SegmentationModel(k_min=2, k_max=20).fit(frame)
    with pytest.raises(PortraitError, match="no customers"):
        SegmentationModel().fit(frame.iloc[:0])
    with pytest.raises(PortraitError, match="method"):
        SegmentationModel(method="dbscan").fit(frame)
    inactive = frame.assign(is_active=False)
    with pytest.raises(PortraitError, match="no customer is active"):
        build_segments(inactive, settings=SegmentSettings())
    model = SegmentationModel(k_min=2, k_max=3).fit(frame)
    with pytest.raises(PortraitError, match="sign-up attribute"):
        assign_segment(model, frame[["customer_id"]])
    with pytest.raises(PortraitError, match="customer_id"):
        assign_segment(model, frame.drop(columns="customer_id"))


def test_runner_up_names_the_second_best_k_and_how_close_it_came():
    """Hand-made criterion: k = 4 wins by a hair over 5; the report says so and how to fix k."""
    criterion = {k: {"score": s} for k, s in ((4, 0.1855), (5, 0.1795), (6, 0.1784), (7, 0.1346))}
    k, ratio = runner_up(criterion, 4)
    assert k == 5 and ratio == pytest.approx(0.1795 / 0.1855)
    tie = {4: {"score": 0.2}, 5: {"score": 0.1}, 6: {"score": 0.1}}
    assert (
        runner_up(tie, 4)[0] == 5
    )  # equal scores: the smaller k, as the choice itself breaks ties
    assert runner_up({5: {"score": 0.2}}, 5) is None
    model = SimpleNamespace(criterion_=criterion, k_=4)
    assert "k = 5, at 96.77%" in runner_up_sentence(model)
    assert "segments.k_min and segments.k_max to 5" in runner_up_sentence(model)
    assert "only number" in runner_up_sentence(
        SimpleNamespace(criterion_={5: {"score": 0.2}}, k_=5)
    )


# ---- integration: the demo bank -------------------------------------------------------------


def _demo(profile: str, *, n: int = 2500, seed: int = 11) -> SimpleNamespace:
    demo = generate_demo_bank(n_customers=n, seed=seed, profile=profile)
    # Validation hands features microsecond timestamps; mirror that for the raw generator output.
    tables = {
        name: t.astype(
            {c: "datetime64[us]" for c in t.columns if str(t[c].dtype).startswith("datetime")}
        )
        for name, t in demo.tables.items()
    }
    portrait = build_features(tables, as_of=DEMO_AS_OF)
    settings = SegmentSettings()
    interests = interest_frame(tables, portrait, as_of=DEMO_AS_OF, settings=settings)
    segments, model = build_segments(portrait, settings=settings, interests=interests)
    return SimpleNamespace(
        tables=tables, truth=demo.truth, portrait=portrait, segments=segments, model=model
    )


@pytest.fixture(scope="module")
def bank():
    return _demo("default")


@pytest.fixture(scope="module")
def alt_bank():
    return _demo("alt")


def _persona_ari(bank: SimpleNamespace) -> float:
    personas = bank.truth["customers"].set_index("customer_id")["persona"]
    merged = bank.segments.assign(persona=bank.segments["customer_id"].map(personas))
    active = merged["customer_id"].isin(
        bank.portrait.loc[bank.portrait["is_active"], "customer_id"]
    )
    return adjusted_rand_score(merged.loc[active, "persona"], merged.loc[active, "segment_id"])


def test_demo_clusters_recover_planted_personas(bank):
    ari = _persona_ari(bank)
    # Random labels give 0. Measured (benchmarks/segments.py --truth): 0.78 here (2,500 customers,
    # seed 11, k=5); one life-stage block of nine columns gave 0.71 here. Over seeds 1-6 at 3,000 /
    # 5,000 customers 0.60-0.82 (mean 0.78 / 0.73; 0.60 and 0.63 where k = 4 merges two personas).
    # 0.74 sits 0.04 under this bank's figure and fails a return to the one-block design.
    assert ari >= 0.74, f"ARI vs personas {ari:.3f}"
    assert bank.model.stability_ari_ >= 0.85  # measured 0.95 here, 0.92-0.97 over the seeds
    assert bank.model.cold_start_agreement_ > bank.model.cold_start_baseline_ + 0.15
    assert bank.model.cold_start_informative_
    assert any(c.startswith("interest_") for c in bank.model.features_)


def test_alt_configuration_clusters_recover_its_personas(alt_bank):
    ari = _persona_ari(alt_bank)
    # Measured: 0.755 here (2,500 customers, seed 11, k=7); over seeds 1-6 at 3,000 / 5,000
    # customers 0.71-0.77 (mean 0.75 / 0.75). Before (per-source averaged interest shares, the
    # interest mix at a fixed weight 2 against nine scaled columns) 0.22-0.29; the issue's
    # reference KMeans with the true k 0.21-0.26. 0.7 (the target) is under the lowest
    # measured figure (0.708) and far above anything the old representation reached.
    assert ari >= 0.7, f"ARI vs personas on the alt bank {ari:.3f}"
    names = list(alt_bank.model.names_.values())
    assert len(set(names)) == len(names)
    # the product interests name the alt personas' segments
    for noun in ("money-market savers", "FX copy traders", "index fund investors", "gold buyers"):
        assert any(name.endswith(noun) for name in names), (noun, names)


def test_demo_every_customer_gets_every_column(bank):
    seg = bank.segments
    assert list(seg.columns) == SEGMENT_COLUMNS
    assert len(seg) == len(bank.portrait) and seg["customer_id"].is_unique
    assert set(seg["value_tier"]) == {"top", "potential_large", "small"}
    assert (seg["value_tier"] == "top").sum() == 100
    assert set(seg["lifecycle_stage"]) <= {
        "new",
        "growing",
        "mature",
        "declining",
        "dormant",
        "churned",
    }
    assert seg["segment_name"].nunique() == bank.model.k_
    assert all(isinstance(t, list) for t in seg["tags"])


def test_demo_stage_gives_files_and_is_deterministic(bank, tmp_path):
    run = RunInputs(data_dir=tmp_path, as_of=DEMO_AS_OF, out_dir=tmp_path, settings=Settings())
    data = ValidatedData(tables=bank.tables, quarantine={}, quality={})
    result = segments_stage(run, data=data, portrait=bank.portrait, cluster=None)
    written = result.files["segments.parquet"]
    assert written["tags"].map(list).tolist() == bank.segments["tags"].tolist()
    assert written[SEGMENT_COLUMNS[:5]].equals(
        bank.segments[SEGMENT_COLUMNS[:5]]
    )  # same seed, same result
    loaded = joblib.load(io.BytesIO(result.files["segmentation.pkl"]))
    assert loaded.names_ == bank.model.names_
    signup_only = assign_segment(loaded, bank.portrait[["customer_id", *SIGNUP_FEATURES]])
    assert signup_only["segment_id"].between(0, loaded.k_ - 1).all()
    cards = result.files["segment_profiles.parquet"]
    assert cards["customers"].sum() == len(bank.portrait)
    assert {"top_products", "recent_churn_rate", "recent_conversion_rate"} <= set(cards.columns)
    assert result.metrics["k"] == bank.model.k_ and result.metrics["tier_top"] == 100
    assert result.metrics[f"stability_k{bank.model.k_}"] == bank.model.stability_ari_
    assert result.metrics["k_runner_up"] != bank.model.k_
    assert 0 < result.metrics["runner_up_score_ratio"] <= 1
    assert "segmentation/k_selection.json" in result.logged
    assert result.sections[0].title.startswith("Segments")


def test_a_standing_out_product_interest_names_the_segment():
    z = pd.Series(
        {"age": -1.0, "forex_events_90d": 2.0, "interest_forex_copy": 1.5, "interest_gold": 0.2}
    )
    assert segment_name(z) == "young FX copy traders"
    z = pd.Series({"age": 0.8, "interest_money_market": 0.9, "interest_gold": 0.6})
    assert segment_name(z) == "older money-market savers"
    z = pd.Series({"age": 0.8, "interest_svd0": 3.0, "interest_gold": 0.1})
    assert segment_name(z) == "older customers"  # compressed axes name nothing
