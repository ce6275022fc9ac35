"""Product rules: hand-computed metrics, transition baskets, rule base, candidates, reasons, the stage."""

from __future__ import annotations

import dataclasses
import math

import pandas as pd
import pytest

from features.quality import ValidatedData
from portrait.settings import RuleSettings, Settings, TrackingSettings
from portrait.stages.result import RunInputs, write_files
from portrait.stages.rules import rules_stage
from training.engine import build_portrait
from training.rules.base import (
    build_rule_base,
    candidates_from_rules,
    load_rule_base,
    rule_base_files,
    rule_reasons,
)
from training.rules.budget import budget_settings, estimate_itemsets
from training.rules.build import mine_all_rules
from training.rules.mining import (
    RULE_COLUMNS,
    RulesError,
    basket_matrix,
    build_holding_baskets,
    build_transition_baskets,
    mark_risk,
    mine_rules,
    mine_segment_rules,
)
from training.rules.ranking import rank_rules, top_rules
from training.segments.build import fit_run_segments

T = pd.Timestamp
LOOSE = RuleSettings(min_support=0.25, min_confidence=0.0, min_lift=1.2, min_rule_baskets=1)


def baskets_of(*sets: str, prefix: str = "b") -> pd.DataFrame:
    """Baskets from strings like "AB": one row per (basket, item); customer = basket."""
    rows = [(f"{prefix}{i}", item) for i, s in enumerate(sets) for item in s]
    frame = pd.DataFrame(rows, columns=["basket_id", "item"])
    return frame.assign(customer_id=frame["basket_id"])


def as_pairs(rules: pd.DataFrame) -> dict[tuple[str, str], pd.Series]:
    return {
        ("".join(r.antecedents), "".join(r.consequents)): r for r in rules.itertuples(index=False)
    }


# {A,B} {A,B,C} {A} {B,C}: sup A = B = 3/4, C = 1/2, AB = BC = 1/2, AC = ABC = 1/4.
HAND = baskets_of("AB", "ABC", "A", "BC")


def test_hand_made_baskets_give_hand_computed_metrics() -> None:
    rules = mine_rules(HAND, settings=LOOSE, kind="holding")
    pairs = as_pairs(rules)
    assert set(pairs) == {
        ("C", "B"),
        ("AC", "B"),
        ("B", "C"),
        ("B", "AC"),
    }  # lift 4/3 each; others <= 1
    c_b, b_c = pairs[("C", "B")], pairs[("B", "C")]
    assert (c_b.support, c_b.confidence, c_b.lift, c_b.leverage) == pytest.approx(
        (0.5, 1.0, 4 / 3, 0.125)
    )
    assert math.isinf(c_b.conviction)
    assert (b_c.support, b_c.confidence, b_c.lift, b_c.conviction) == pytest.approx(
        (0.5, 2 / 3, 4 / 3, 1.5)
    )
    ac_b = pairs[("AC", "B")]
    assert (ac_b.support, ac_b.antecedent_support, ac_b.confidence) == pytest.approx(
        (0.25, 0.25, 1.0)
    )
    assert list(rules.columns) == RULE_COLUMNS
    assert rules["n_baskets"].eq(4).all() and rules["segment_id"].isna().all()


def test_sparse_and_dense_input_give_the_same_rules() -> None:
    sparse_rules = mine_rules(HAND, settings=LOOSE, kind="holding")
    dense_rules = mine_rules(HAND, settings=LOOSE, kind="holding", dense=True)
    pd.testing.assert_frame_equal(sparse_rules, dense_rules)


def test_thresholds_filter_support_confidence_and_lift() -> None:
    strict = RuleSettings(min_support=0.5, min_confidence=0.9, min_lift=1.2, min_rule_baskets=1)
    assert set(as_pairs(mine_rules(HAND, settings=strict, kind="holding"))) == {("C", "B")}
    none = mine_rules(
        HAND,
        settings=RuleSettings(min_support=0.5, min_lift=2.0, min_rule_baskets=1),
        kind="holding",
    )
    two_baskets = RuleSettings(
        min_support=0.25, min_confidence=0.0, min_lift=1.2, min_rule_baskets=2
    )
    assert set(as_pairs(mine_rules(HAND, settings=two_baskets, kind="holding"))) == {
        ("C", "B"),
        ("B", "C"),
    }
    assert none.empty and list(none.columns) == RULE_COLUMNS


def test_empty_or_one_product_baskets_raise_a_clear_error() -> None:
    with pytest.raises(RulesError, match="no baskets"):
        mine_rules(HAND.iloc[0:0], settings=LOOSE, kind="holding")
    with pytest.raises(RulesError, match="only 1 distinct product"):
        mine_rules(baskets_of("A", "A", "A"), settings=LOOSE, kind="holding")
    with pytest.raises(RulesError, match="rule kind"):
        mine_rules(HAND, settings=LOOSE, kind="bundle")


def _txn(rows: list[tuple[str, str, str, str]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["customer_id", "product_id", "ts", "type"])
    return frame.assign(ts=pd.to_datetime(frame["ts"]), amount=100.0)


# Cut-offs at 2025-01-01 and 2025-03-02 (two 60-day windows before as_of 2025-05-01).
TXNS = _txn(
    [
        ("x", "A", "2024-12-01", "buy"), ("x", "B", "2025-01-10", "buy"),  # held A -> bought B
        ("y", "A", "2024-12-05", "buy"), ("y", "A", "2025-01-20", "buy"),  # re-buying a held product is not new
        ("z", "C", "2024-11-01", "buy"), ("z", "B", "2025-03-10", "buy"),
        ("w", "B", "2025-02-01", "buy"),  # held nothing at the first cut-off: no basket there
        ("x", "D", "2025-05-02", "buy"),  # after as_of: never used
    ]
)  # fmt: skip


def test_transition_baskets_pair_holdings_with_new_buys_in_the_next_window() -> None:
    baskets = build_transition_baskets(TXNS, as_of=T("2025-05-01"), window_days=60, n_windows=2)
    got = baskets.groupby("basket_id")["item"].agg(lambda s: ",".join(sorted(s))).to_dict()
    assert got == {
        "x@2025-01-01": "bought:B,held:A",
        "y@2025-01-01": "held:A",
        "z@2025-01-01": "held:C",
        "w@2025-03-02": "held:B",
        "x@2025-03-02": "held:A,held:B",
        "y@2025-03-02": "held:A",
        "z@2025-03-02": "bought:B,held:C",
    }


def test_transition_rules_keep_only_held_to_bought_and_strip_prefixes() -> None:
    baskets = build_transition_baskets(TXNS, as_of=T("2025-05-01"), window_days=60, n_windows=2)
    settings = RuleSettings(
        transition_min_support=0.1, transition_min_confidence=0.0, min_lift=0.0, min_rule_baskets=1
    )
    pairs = as_pairs(mine_rules(baskets, settings=settings, kind="transition"))
    # 7 baskets; held:A in 4, bought:B in 2, both in 1; held:C in 2, with bought:B in 1.
    assert set(pairs) == {("A", "B"), ("C", "B")}
    a_b, c_b = pairs[("A", "B")], pairs[("C", "B")]
    assert (a_b.support, a_b.confidence, a_b.lift) == pytest.approx(
        (1 / 7, 1 / 4, (1 / 4) / (2 / 7))
    )
    assert (c_b.support, c_b.confidence, c_b.lift) == pytest.approx(
        (1 / 7, 1 / 2, (1 / 2) / (2 / 7))
    )


def test_holding_baskets_are_point_in_time() -> None:
    baskets = build_holding_baskets(TXNS, as_of=T("2025-01-15"))
    assert sorted(zip(baskets["customer_id"], baskets["item"], strict=True)) == [
        ("x", "A"), ("x", "B"), ("y", "A"), ("z", "C"),
    ]  # fmt: skip


# Stratum "hi": A and B in every basket; stratum "lo": neither. Raw lift of A -> B is 2, yet
# within each stratum A and B are independent, so the adjusted lift is 1.
STRATIFIED = baskets_of("AB", "AB", "AB", "AB", "C", "C", "C", "C")
STRATA = pd.Series(["hi"] * 4 + ["lo"] * 4, index=[f"b{i}" for i in range(8)])
POISSON_LOWER_4 = 1.36632  # exact one-sided 95% lower bound of a Poisson count of 4


def test_adjusted_lift_removes_the_lift_the_strata_explain() -> None:
    rules = mine_rules(STRATIFIED, settings=LOOSE, kind="holding")
    a_b = as_pairs(rank_rules(rules, STRATIFIED, STRATA, estimate="standardised"))[("A", "B")]
    assert (a_b.lift, a_b.observed, a_b.expected, a_b.adjusted_lift) == pytest.approx(
        (2.0, 4, 4.0, 1.0)
    )
    assert a_b.lift_lower == pytest.approx(POISSON_LOWER_4 / 4, abs=1e-4)
    with pytest.raises(RulesError, match="baskets they were mined from"):
        rank_rules(rules, baskets_of("AC", "C"))
    plain = as_pairs(rank_rules(rules, STRATIFIED, estimate="standardised"))[
        ("A", "B")
    ]  # one stratum: plain lift
    assert (plain.expected, plain.adjusted_lift) == pytest.approx((2.0, 2.0))
    assert plain.lift_lower == pytest.approx(POISSON_LOWER_4 / 2, abs=1e-4)


def test_ranking_counts_transition_items_and_agrees_with_mined_support() -> None:
    baskets = build_transition_baskets(TXNS, as_of=T("2025-05-01"), window_days=60, n_windows=2)
    settings = RuleSettings(
        transition_min_support=0.1, transition_min_confidence=0.0, min_lift=0.0, min_rule_baskets=1
    )
    ranked = rank_rules(mine_rules(baskets, settings=settings, kind="transition"), baskets)
    assert ranked["observed"].tolist() == pytest.approx((ranked["support"] * 7).tolist())
    assert ranked["adjusted_lift"].tolist() == pytest.approx(ranked["lift"].tolist())
    # the same lift on twice the baskets: a lower bound closer to the lift
    double = pd.concat([HAND, baskets_of("AB", "ABC", "A", "BC", prefix="c")])
    few = rank_rules(
        mine_rules(HAND, settings=LOOSE, kind="holding"), HAND, estimate="standardised"
    )
    many = rank_rules(
        mine_rules(double, settings=LOOSE, kind="holding"), double, estimate="standardised"
    )
    assert few["lift"].tolist() == pytest.approx(many["lift"].tolist())
    assert (few["lift_lower"].to_numpy() < many["lift_lower"].to_numpy()).all()


PRODUCTS = pd.DataFrame(
    {
        "product_id": ["A", "B", "C"],
        "name": ["Money market fund A", "Short bond fund", "Equity fund"],
        "risk_level": [1, 2, 4],
    }
)


def _rules(rows: list[tuple]) -> pd.DataFrame:
    cols = ["rule_id", "kind", "segment_id", "antecedents", "consequents", "confidence", "lift"]
    return pd.DataFrame(rows, columns=cols).assign(
        segment_id=lambda f: f["segment_id"].astype("str"), support=0.1, antecedent_support=0.2,
        consequent_support=0.1, leverage=0.01, conviction=1.5, n_baskets=100,
    )  # fmt: skip


RULES = _rules(
    [
        ("r1", "transition", None, ["A"], ["B"], 0.31, 4.2),
        ("r2", "holding", None, ["A"], ["C"], 0.20, 1.5),
        ("r3", "holding", None, ["A", "C"], ["B"], 0.50, 2.0),
        ("r4", "transition", "s1", ["B"], ["C"], 0.40, 3.0),
    ]
)


def test_reason_text_names_products_confidence_and_lift() -> None:
    reasons = rule_reasons(RULES, PRODUCTS).tolist()
    assert (
        reasons[0]
        == "holders of Money market fund A often add Short bond fund next: confidence 0.31, lift 4.2"
    )
    assert reasons[2] == (
        "holders of Money market fund A and Equity fund often also hold Short bond fund: confidence 0.50, lift 2.0"
    )
    assert (
        reasons[3]
        == "in segment s1, holders of Short bond fund often add Equity fund next: confidence 0.40, lift 3.0"
    )
    assert rule_reasons(RULES).iloc[0].startswith("holders of A often add B next")


def test_mark_risk_keeps_riskier_rules_and_marks_them() -> None:
    marked = mark_risk(RULES, PRODUCTS)
    assert marked["max_risk_level"].tolist() == [2, 4, 2, 4]
    assert marked["risk_step_up"].tolist() == [True, True, False, True]


def test_candidates_fire_when_all_antecedents_are_held_and_skip_held_products() -> None:
    holdings = pd.DataFrame(
        {"customer_id": ["u", "v", "v", "w"], "product_id": ["A", "A", "C", "B"]}
    )
    got = candidates_from_rules(holdings, RULES, 5)
    assert list(got.columns) == ["customer_id", "product_id", "score", "rule_id", "reason"]
    rows = list(
        zip(got["customer_id"], got["product_id"], got["score"], got["rule_id"], strict=True)
    )
    # u: A -> B (r1, 0.31), A -> C (r2); v holds A and C: B via r3 (0.50 beats r1's 0.31), C held;
    # w: only the segment rule r4 would fire, and no segments were given.
    assert rows == [("u", "B", 0.31, "r1"), ("u", "C", 0.20, "r2"), ("v", "B", 0.50, "r3")]
    assert got["reason"].iloc[0].startswith("holders of A often add B next")
    top1 = candidates_from_rules(holdings, RULES, 1)
    assert list(zip(top1["customer_id"], top1["product_id"], strict=True)) == [
        ("u", "B"),
        ("v", "B"),
    ]


def test_segment_rules_apply_only_inside_their_segment() -> None:
    holdings = pd.DataFrame({"customer_id": ["w", "t"], "product_id": ["B", "B"]})
    segments = pd.DataFrame({"customer_id": ["w", "t"], "segment_id": ["s1", "s2"]})
    got = candidates_from_rules(holdings, RULES, 3, segments=segments)
    assert list(zip(got["customer_id"], got["product_id"], got["rule_id"], strict=True)) == [
        ("w", "C", "r4")
    ]
    with pytest.raises(RulesError, match="at least 1"):
        candidates_from_rules(holdings, RULES, 0)
    with pytest.raises(RulesError, match="product_id"):
        candidates_from_rules(holdings[["customer_id"]], RULES, 3)


def test_rule_base_round_trips_and_refuses_edited_files(tmp_path) -> None:
    rules = mark_risk(mine_rules(HAND, settings=LOOSE, kind="holding"), PRODUCTS)
    base = build_rule_base(rules, params={"min_support": 0.25}, created_at=T("2025-01-01"))
    again = build_rule_base(rules, params={"min_support": 0.25}, created_at=T("2026-01-01"))
    assert base.version == again.version and base.counts()["holding_rules"] == 4
    write_files(tmp_path / "rb", rule_base_files(base))
    loaded = load_rule_base(tmp_path / "rb")
    assert loaded.version == base.version and loaded.created_at == "2025-01-01T00:00:00"
    assert loaded.rules["antecedents"].tolist() == rules["antecedents"].tolist()
    edited = loaded.rules.assign(lift=loaded.rules["lift"] * 2)
    edited.to_parquet(tmp_path / "rb" / "rules.parquet", index=False)
    with pytest.raises(RulesError, match="edited"):
        load_rule_base(tmp_path / "rb")
    with pytest.raises(RulesError, match="no rules.parquet"):
        load_rule_base(tmp_path / "missing")


# --- integration on a small demo bank -------------------------------------------------------


def demo_bank_of(n_customers: int, profile: str = "default"):
    """(demo bank, as_of) for seed 7 at `n_customers`."""
    demo_bank = pytest.importorskip("features.demo_bank")
    bank = demo_bank.generate_demo_bank(n_customers=n_customers, seed=7, profile=profile)
    return bank, demo_bank.DEMO_AS_OF


@pytest.fixture(scope="module")
def bank():
    return demo_bank_of(3000)


def test_every_planted_affinity_is_the_top_transition_rule_for_its_antecedent(bank) -> None:
    demo, as_of = bank
    settings = RuleSettings()
    baskets = build_transition_baskets(
        demo.tables["transactions"],
        as_of=as_of,
        window_days=60,
        n_windows=settings.transition_windows,
    )
    rules = mine_rules(baskets, settings=settings, kind="transition")
    single = rules.loc[rules["antecedents"].map(len).eq(1) & rules["consequents"].map(len).eq(1)]
    top = single.assign(
        a=single["antecedents"].str[0], c=single["consequents"].str[0]
    ).drop_duplicates("a")
    best = dict(zip(top["a"], top["c"], strict=True))
    per_basket = baskets.groupby("basket_id")["item"].agg(set)
    checked = []
    for a, c, _ in demo.truth["affinities"].itertuples(index=False):
        evidence = int(per_basket.map(lambda s, a=a, c=c: {f"held:{a}", f"bought:{c}"} <= s).sum())
        if evidence < 5:  # P22 (qualified-only margin) has a handful of buyers at this size
            continue
        checked.append((a, c))
        assert best.get(a) == c, f"planted {a} -> {c} is not the top rule by lift for {a}"
    assert len(checked) >= 5


def run_segments(demo, as_of: pd.Timestamp) -> pd.DataFrame:
    """[customer_id, segment_id] as a run's segments stage gives them (the default stratum)."""
    settings = Settings()
    portrait = build_portrait(demo.tables, as_of=as_of, settings=settings)
    segments, *_ = fit_run_segments(demo.tables, portrait, as_of=as_of, settings=settings.segments)
    return segments[["customer_id", "segment_id"]]


def planted_ranks(
    demo, as_of: pd.Timestamp, segments: pd.DataFrame | None = None, **settings
) -> dict[tuple[str, str], int | None]:
    """Rank of each planted affinity among the report's transition pair rules (None: not mined)."""
    rules, _ = mine_all_rules(
        demo.tables, as_of=as_of, settings=RuleSettings(**settings), segments=segments,
        kinds=("transition",),
    )  # fmt: skip
    pairs = top_rules(rules, kind="transition", n=len(rules))
    order = list(zip(pairs["antecedents"].str[0], pairs["consequents"].str[0], strict=True))
    return {
        (a, c): order.index((a, c)) + 1 if (a, c) in order else None
        for a, c in demo.truth["affinities"][["antecedent", "consequent"]].itertuples(index=False)
    }


def test_segment_strata_run_through_the_stage(bank) -> None:
    demo, as_of = bank
    personas = demo.truth["customers"][["customer_id", "persona"]]
    rules, _ = mine_all_rules(
        demo.tables, as_of=as_of, segments=personas.rename(columns={"persona": "segment_id"}),
        settings=RuleSettings(strata_columns=("risk_level", "segment_id"), per_segment=False),
        kinds=("transition",),
    )  # fmt: skip
    alone, _ = mine_all_rules(
        demo.tables, as_of=as_of, segments=None, kinds=("transition",),
        settings=RuleSettings(strata_columns=("risk_level",), per_segment=False),
    )  # fmt: skip
    assert rules["rule_id"].tolist() != alone["rule_id"].tolist()  # the strata changed the order
    assert sorted(rules["rule_id"]) == sorted(alone["rule_id"])  # not the rules


@pytest.fixture(scope="module")
def bank_5k():
    demo, as_of = demo_bank_of(5000)
    return demo, as_of, run_segments(demo, as_of)


@pytest.fixture(scope="module")
def alt_bank_5k():
    demo, as_of = demo_bank_of(5000, profile="alt")
    return demo, as_of, run_segments(demo, as_of)


def test_planted_affinities_at_5k_customers_are_in_the_top_10(bank_5k) -> None:
    # Issue 16's bar is the top 15 at 5k. Measured (Mantel-Haenszel within the run's segments,
    # the default; pair rules ~165, benchmarks/rules.py --confounders): seed 7 ranks 3, 2, 5,
    # 4, 1; seeds 2 and 3 at most 8. P12 -> P22 rests on 2-4 baskets at 5k (< min_rule_baskets):
    # not mined.
    demo, as_of, segments = bank_5k
    ranks = planted_ranks(demo, as_of, segments)
    assert [pair for pair, rank in ranks.items() if rank is None] == [("P12", "P22")]
    assert {pair: r for pair, r in ranks.items() if r is not None and r > 10} == {}
    # Raw lift (no strata) buries them: risky products look related because only high-risk
    # customers can buy them (ranks 56, 5, 3, 31, 1).
    raw = planted_ranks(demo, as_of, strata_columns=(), rank_estimate="standardised")
    assert max(r for r in raw.values() if r is not None) > 15


def test_on_the_alt_bank_segments_take_out_the_customer_type_risk_level_leaves(alt_bank_5k) -> None:
    # Alt's money-market savers hold P03 and never buy bond funds, so holding P03 marks a type
    # of customer who does not buy P05, and the planted P03 -> P05 hides. Measured ranks (seed
    # 7; seeds 2, 3): within the run's segments 4, 6, 1, 3, 2 (at most 8); within risk level
    # P03 -> P05 at 30 (45, 36). P14 -> P15 (P2P, no P2P persona here) is too rare to mine.
    demo, as_of, segments = alt_bank_5k
    ranks = planted_ranks(demo, as_of, segments)
    assert [pair for pair, rank in ranks.items() if rank is None] == [("P14", "P15")]
    assert {pair: r for pair, r in ranks.items() if r is not None and r > 10} == {}
    risk = planted_ranks(demo, as_of, strata_columns=("risk_level",))
    assert risk[("P03", "P05")] > 15


@pytest.fixture(scope="module")
def bank_20k():
    return demo_bank_of(20_000)


def test_all_six_planted_affinities_are_in_the_top_15_at_20k_customers(bank_20k) -> None:
    # P12 -> P22 rests on 22 baskets at 20k (6 at 10k, where it misses the confidence floor).
    # Without segments (fitting them here costs ~20 s) the default ranks within risk level, the
    # fallback: measured ranks (seed 7) 7, 4, 1, 5 (P12 -> P22), 3, 2; seed 2 puts P12 -> P22
    # at 12, so N = 15 holds for these banks, not for every draw. Within the run's segments
    # (the default with a segments stage; benchmarks/rules.py --confounders) 3, 5, 6, 1, 4, 2
    # and 5, 3, 6, 2, 4, 1 (alt bank: at most 14).
    demo, as_of = bank_20k
    ranks = planted_ranks(demo, as_of)
    assert all(r is not None and r <= 15 for r in ranks.values()), ranks


def test_rules_stage_writes_rule_base_parquet_report_and_mlflow(bank, tmp_path) -> None:
    demo, as_of = bank
    segments = demo.truth["customers"][["customer_id", "persona"]].rename(
        columns={"persona": "segment_id"}
    )
    settings = Settings(tracking=TrackingSettings(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db"))
    run = RunInputs(tmp_path, as_of, tmp_path, settings)
    data = ValidatedData(demo.tables, {}, {})
    result = rules_stage(run, data=data, portrait=pd.DataFrame(), cluster=None,
                         segments=segments, segment_model=None)  # fmt: skip
    write_files(tmp_path, result.files)
    written = pd.read_parquet(tmp_path / "rules.parquet")
    for column in (
        "antecedents",
        "consequents",
        "support",
        "confidence",
        "lift",
        "segment_id",
        "kind",
        "adjusted_lift",
        "lift_lower",
    ):
        assert column in written.columns
    assert written["lift_lower"].is_monotonic_decreasing  # the file is in ranking order
    # each rule, segment ones included, was ranked against the baskets it was mined from
    assert written["observed"].to_numpy() == pytest.approx(
        (written["support"] * written["n_baskets"]).to_numpy()
    )
    base = load_rule_base(tmp_path / "rule_base")
    assert base.version == result.gives["rule_base"].version
    assert result.metrics["transition_rules"] > 0 and result.metrics["segment_rules"] > 0
    assert result.artifacts == {"rule_base": "rule_base"}
    assert result.params["rules.version"] == base.version
    assert set(written["segment_id"].dropna()) <= set(segments["segment_id"])
    html = "".join(result.sections[0].parts)
    assert "Top 20 transition rules" in html and "by lift_lower" in html


def test_no_purchases_give_notes_and_no_rules_not_a_crash(bank) -> None:
    demo, as_of = bank
    tables = {**demo.tables, "transactions": demo.tables["transactions"].iloc[0:0]}
    settings = RuleSettings(strata_columns=("risk_level",))  # no notes about absent strata
    rules, notes = mine_all_rules(tables, as_of=as_of, settings=settings, segments=None)
    assert rules.empty and len(notes) == 2 and all("no baskets" in n for n in notes)


def test_segment_mining_skips_small_segments(bank) -> None:
    demo, as_of = bank
    baskets = build_holding_baskets(demo.tables["transactions"], as_of=as_of)
    segments = pd.DataFrame(
        {"customer_id": baskets["customer_id"].unique()[:50], "segment_id": "tiny"}
    )
    rules, skipped = mine_segment_rules(baskets, segments, settings=RuleSettings(), kind="holding")
    assert rules.empty and skipped == ["tiny (50 baskets)"]


def test_an_unknown_strata_column_is_refused_by_name(bank) -> None:
    demo, as_of = bank
    with pytest.raises(RulesError, match="rules.strata_columns names 'wealth'"):
        mine_all_rules(
            demo.tables,
            as_of=as_of,
            settings=RuleSettings(strata_columns=("wealth",)),
            segments=None,
        )


# --- the itemset budget (training/rules/budget.py) -------------------------------------------


def test_itemset_estimate_counts_items_pairs_and_bounds_triples() -> None:
    matrix, _ = basket_matrix(HAND)
    low = estimate_itemsets(matrix, min_support=0.25, max_len=3)
    assert (low.items, low.pairs, low.triples) == (3, 3, 1)  # A B C; AB AC BC; ABC
    high = estimate_itemsets(matrix, min_support=0.5, max_len=3)
    assert (high.items, high.pairs, high.triples) == (3, 2, 0)  # AC is 1/4: no triangle
    assert estimate_itemsets(matrix, min_support=0.25, max_len=2).triples == 0


def test_support_is_raised_just_enough_to_fit_the_budget() -> None:
    matrix, _ = basket_matrix(HAND)
    settings = dataclasses.replace(LOOSE, max_itemsets=5)
    raised, note = budget_settings(matrix, settings, kind="holding", min_support=0.25)
    assert raised.min_support == pytest.approx(0.5)
    assert "raised from 0.25 to 0.5" in note
    rules = as_pairs(mine_rules(HAND, settings=raised, kind="holding"))
    assert ("A", "C") not in rules and ("B", "C") in rules
    unchanged, none = budget_settings(matrix, LOOSE, kind="holding", min_support=0.25)
    assert unchanged == LOOSE and none == ""


def test_demo_rules_are_identical_with_the_budget_on_and_off(bank) -> None:
    demo, as_of = bank
    on, notes = mine_all_rules(demo.tables, as_of=as_of, settings=RuleSettings(), segments=None)
    off, _ = mine_all_rules(
        demo.tables, as_of=as_of, settings=RuleSettings(max_itemsets=0), segments=None
    )
    assert not any("raised" in n for n in notes)
    pd.testing.assert_frame_equal(on, off)


def test_rule_base_keeps_the_best_max_rules_and_says_so(bank) -> None:
    demo, as_of = bank
    full, _ = mine_all_rules(demo.tables, as_of=as_of, settings=RuleSettings(), segments=None)
    capped, notes = mine_all_rules(
        demo.tables, as_of=as_of, settings=RuleSettings(max_rules=10), segments=None
    )
    assert len(capped) == 10 and any("rules.max_rules" in n for n in notes)
    pd.testing.assert_frame_equal(capped, full.head(10))


def test_products_sharing_a_name_are_told_apart_by_id() -> None:
    from training.rules.base import product_labels

    products = pd.DataFrame(
        {"product_id": ["P1", "P2", "P3"], "name": ["Gold fund", "Gold fund", "Deposit"]}
    )
    assert product_labels(products).to_dict() == {
        "P1": "Gold fund (P1)", "P2": "Gold fund (P2)", "P3": "Deposit",
    }  # fmt: skip
