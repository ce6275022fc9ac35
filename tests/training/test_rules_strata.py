"""Rule ranking within strata: combined columns, thin strata backing off, Mantel-Haenszel by hand."""

from __future__ import annotations

import dataclasses
import math

import pandas as pd
import pytest
from scipy import stats

from portrait.settings import RuleSettings
from training.rules.build import mine_all_rules
from training.rules.mining import RulesError, mine_rules
from training.rules.ranking import rank_rules
from training.rules.strata import (
    POOLED,
    customer_strata,
    run_strata,
    signup_segment_frame,
    stratum_labels,
)

ANY = RuleSettings(min_support=0.1, min_confidence=0.0, min_lift=0.0, min_rule_baskets=1)


def baskets_of(*sets: str) -> pd.DataFrame:
    """One row per (basket, item); basket i belongs to customer c<i>."""
    rows = [(f"b{i}", f"c{i}", item) for i, s in enumerate(sets) for item in s]
    return pd.DataFrame(rows, columns=["basket_id", "customer_id", "item"])


# Stratum (risk 1, segment x): AC A C Z -> n 4, n_A 2, n_C 2, both 1.
# Stratum (risk 2, segment y): AC AC AC A C Z -> n 6, n_A 4, n_C 4, both 3.
TWO_STRATA = baskets_of("AC", "A", "C", "Z", "AC", "AC", "AC", "A", "C", "Z")
CUSTOMERS = pd.DataFrame(
    {
        "customer_id": [f"c{i}" for i in range(10)],
        "risk_level": [1] * 4 + [2] * 6,
        "segment_id": ["x"] * 4 + ["y"] * 6,
    }
)


def pick_rule(ranked: pd.DataFrame, antecedent: str, consequent: str) -> pd.Series:
    """The rule [antecedent] -> [consequent] of a ranked frame."""
    sides = zip(ranked["antecedents"].map(list), ranked["consequents"].map(list), strict=True)
    pick = [a == [antecedent] and c == [consequent] for a, c in sides]
    return ranked.loc[pick].iloc[0]


def rule_a_c(ranked: pd.DataFrame) -> pd.Series:
    return pick_rule(ranked, "A", "C")


def test_expected_and_mantel_haenszel_by_hand_on_two_combined_strata() -> None:
    rules = mine_rules(TWO_STRATA, settings=ANY, kind="holding")
    strata = customer_strata(CUSTOMERS, ("risk_level", "segment_id"))
    std = rule_a_c(rank_rules(rules, TWO_STRATA, strata, estimate="standardised"))
    expected = 2 * 2 / 4 + 4 * 4 / 6  # sum over strata of n_A * n_C / n
    assert std.lift == pytest.approx((4 / 10) / (6 / 10 * 6 / 10))  # raw lift, 1.11
    assert (std.observed, std.expected) == pytest.approx((4, expected))
    assert std.adjusted_lift == pytest.approx(4 / expected)
    assert std.lift_lower == pytest.approx(stats.chi2.ppf(0.05, 8) / 2 / expected)
    # MH: holders vs non-holders in each stratum, weights n_A * n_notA / n
    num = 1 * 2 / 4 + 3 * 2 / 6  # exposed cases x unexposed / n
    den = 1 * 2 / 4 + 1 * 4 / 6  # unexposed cases x exposed / n
    spread = (2 * 2 * 2 - 1 * 1 * 4) / 4**2 + (4 * 4 * 2 - 3 * 1 * 6) / 6**2  # Greenland-Robins
    lower = num / den * math.exp(-1.6448536 * math.sqrt(spread / (num * den)))
    mh = rule_a_c(rank_rules(rules, TWO_STRATA, strata))  # the default estimate
    assert mh.risk_ratio == pytest.approx(9 / 7)
    assert mh.lift_lower == pytest.approx(lower, rel=1e-6)
    assert mh.expected == pytest.approx(expected)  # observed / expected are still reported


def test_thin_strata_back_off_to_their_leading_column_then_pool() -> None:
    customers = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(12)],
            "risk_level": [1] * 8 + [2] * 4,
            "segment_id": ["x"] * 4 + ["y"] * 2 + ["z"] * 2 + ["x"] + ["y"] * 3,
        }
    )
    strata = customer_strata(customers, ("risk_level", "segment_id"))
    baskets = [f"c{i}" for i in range(13)]  # c12 has no customers row: "unknown"
    labels = stratum_labels(pd.Index(baskets).to_numpy(), strata, min_baskets=3).tolist()
    assert labels == ["1 x x"] * 4 + ["1"] * 4 + [POOLED] + ["2 x y"] * 3 + [POOLED]
    assert stratum_labels(pd.Index(baskets).to_numpy(), None, min_baskets=3).nunique() == 1


def test_one_thin_stratum_pools_with_the_rest_so_ranking_matches_plain_lift() -> None:
    rules = mine_rules(TWO_STRATA, settings=ANY, kind="holding")
    strata = customer_strata(CUSTOMERS, ("risk_level", "segment_id"))
    pooled = rule_a_c(rank_rules(rules, TWO_STRATA, strata, min_stratum_baskets=7))
    plain = rule_a_c(rank_rules(rules, TWO_STRATA))
    # the 4-basket stratum pools alone, the 6-basket one too: together they are one stratum
    assert pooled.expected == pytest.approx(plain.expected) == pytest.approx(6 * 6 / 10)
    assert pooled.lift_lower == pytest.approx(plain.lift_lower)


def test_a_consequent_bought_only_by_holders_gets_a_finite_risk_ratio() -> None:
    baskets = baskets_of("AC", "AC", "A", "A", "Z", "Z")  # no non-holder buys C
    ranked = rank_rules(mine_rules(baskets, settings=ANY, kind="holding"), baskets)
    rule = rule_a_c(ranked)
    assert math.isfinite(rule.risk_ratio) and rule.risk_ratio > 1
    assert 0 < rule.lift_lower < rule.risk_ratio


def test_strata_columns_take_segment_id_from_the_segments_stage_and_refuse_unknowns() -> None:
    customers = CUSTOMERS.drop(columns="segment_id")
    given = {"segment_id": CUSTOMERS[["customer_id", "segment_id"]], "signup_segment": None}
    strata, absent = run_strata(customers, given, ("risk_level", "segment_id"))
    assert (list(strata.columns), absent) == (["risk_level", "segment_id"], [])
    assert strata.loc["c0"].tolist() == ["1", "x"]
    # a stage that gave nothing (no segments, no segmentation model): left out and named
    none = {"segment_id": None, "signup_segment": None}
    strata, absent = run_strata(customers, none, ("risk_level", "segment_id", "signup_segment"))
    assert (list(strata.columns), absent) == (["risk_level"], ["segment_id", "signup_segment"])
    with pytest.raises(RulesError, match="rules.strata_columns names 'wealth'"):
        run_strata(customers, given, ("risk_level", "wealth"))


def test_signup_segments_come_from_the_models_sign_up_prediction() -> None:
    class Model:
        def predict_signup(self, frame: pd.DataFrame) -> list[int]:
            return [0 if age < 40 else 1 for age in frame["age"]]

    portrait = pd.DataFrame({"customer_id": ["c0", "c1"], "age": [30, 60]})
    frame = signup_segment_frame(Model(), portrait)
    assert frame.to_dict("list") == {"customer_id": ["c0", "c1"], "signup_segment": ["0", "1"]}
    assert signup_segment_frame(None, portrait) is None


def test_a_missing_stage_stratum_is_a_note_not_silence() -> None:
    from training.rules.build import mine_all_rules as mine

    bank = _tiny_tables()
    _, notes = mine(
        bank, as_of=pd.Timestamp("2025-06-01"), segments=None, kinds=("holding",),
        settings=RuleSettings(strata_columns=("risk_level", "segment_id")),
    )  # fmt: skip
    assert "rules ranked without the stratum segment_id: its stage gave none" in notes
    assert not any("instead" in note for note in notes)  # risk level was asked for anyway


def test_without_segments_the_default_ranks_within_risk_level_and_says_so() -> None:
    from training.rules.build import mine_all_rules as mine

    assert RuleSettings().strata_columns == ("risk_level", "segment_id")
    bank, as_of = _tiny_tables(), pd.Timestamp("2025-06-01")
    loose = RuleSettings(
        min_stratum_baskets=1, min_rule_baskets=1, min_support=0.25, min_confidence=0.0,
        min_lift=0.0, per_segment=False,
    )  # fmt: skip

    def ranked(**strata):  # noqa: ANN003, ANN202
        settings = dataclasses.replace(loose, **strata)
        return mine(bank, as_of=as_of, segments=None, kinds=("holding",), settings=settings)

    rules, notes = ranked()
    assert "rules ranked without the stratum segment_id: its stage gave none" in notes
    # asked for segments only, risk level stands in, and the run says so
    segment_only, instead = ranked(strata_columns=("segment_id",))
    assert "rules ranked within risk_level instead" in instead
    within_risk, plain = ranked(strata_columns=("risk_level",))[0], ranked(strata_columns=())[0]
    assert len(rules) > 0
    assert rules["lift_lower"].tolist() == within_risk["lift_lower"].tolist()
    assert segment_only["lift_lower"].tolist() == within_risk["lift_lower"].tolist()
    assert rules["lift_lower"].tolist() != plain["lift_lower"].tolist()


def test_an_unknown_rank_estimate_is_refused_by_name() -> None:
    with pytest.raises(RulesError, match="rules.rank_estimate must be one of"):
        mine_all_rules(
            {"transactions": pd.DataFrame(), "products": pd.DataFrame()},
            as_of=pd.Timestamp("2025-01-01"),
            settings=RuleSettings(rank_estimate="odds"),
            segments=None,
        )


def _tiny_tables() -> dict[str, pd.DataFrame]:
    """At 2025-06-01 u, v, w, x hold A; u and v hold B; u, v and w hold C. Risk levels 1, 1, 2, 2."""
    holds = {"u": "ABC", "v": "ABC", "w": "AC", "x": "A"}
    rows = [(c, p) for c, products in holds.items() for p in products]
    transactions = pd.DataFrame(rows, columns=["customer_id", "product_id"]).assign(
        ts=pd.Timestamp("2025-01-10"), type="buy", amount=100.0
    )
    products = pd.DataFrame(
        {"product_id": list("ABC"), "name": ["Fund A", "Fund B", "Fund C"], "risk_level": [1, 2, 2]}
    )
    customers = pd.DataFrame({"customer_id": list("uvwx"), "risk_level": [1, 1, 2, 2]})
    return {"transactions": transactions, "products": products, "customers": customers}


def test_signup_segments_stratify_the_stage_when_given() -> None:
    tables = _tiny_tables()
    signup = pd.DataFrame({"customer_id": list("uvwx"), "signup_segment": ["0", "0", "1", "1"]})
    settings = RuleSettings(
        strata_columns=("signup_segment",), min_stratum_baskets=1, min_rule_baskets=1,
        min_support=0.25, min_confidence=0.0, min_lift=0.0,
    )  # fmt: skip
    rules, notes = mine_all_rules(
        tables, as_of=pd.Timestamp("2025-06-01"), segments=None, kinds=("holding",),
        settings=settings, signup_segments=signup,
    )  # fmt: skip
    plain, _ = mine_all_rules(
        tables, as_of=pd.Timestamp("2025-06-01"), segments=None, kinds=("holding",),
        settings=dataclasses.replace(settings, strata_columns=()),
    )  # fmt: skip
    assert notes == []
    # B -> C: all customers n_B 2, n_C 3, n 4 -> expected 1.5; within sign-up segments
    # {u, v}: n_B 2, n_C 2, n 2 -> 2 and {w, x}: n_B 0 -> 0, so B -> C is fully explained
    b_c = pick_rule(rules, "B", "C")
    assert (b_c.observed, b_c.expected) == pytest.approx((2, 2.0))
    assert pick_rule(plain, "B", "C").expected == pytest.approx(1.5)


def test_ranking_in_chunks_of_rules_gives_the_same_numbers(monkeypatch) -> None:
    from training.rules import ranking as rules_ranking

    rules = mine_rules(TWO_STRATA, settings=ANY, kind="holding")
    strata = customer_strata(CUSTOMERS, ("risk_level", "segment_id"))
    whole = rank_rules(rules, TWO_STRATA, strata)
    monkeypatch.setattr(rules_ranking, "CHUNK_CELLS", 1)  # one rule per chunk
    chunked = rank_rules(rules, TWO_STRATA, strata)
    assert len(rules) >= 2  # so there are at least two chunks
    pd.testing.assert_frame_equal(whole, chunked)
