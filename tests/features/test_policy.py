"""The recommendation policy: hand-made cases and a property test over many random customers and products."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from features.policy import EXCLUSION_REASONS, apply_policy, customer_policy

CASES = {"pairs": 0}


def portrait(rows):
    return pd.DataFrame(
        rows,
        columns=["customer_id", "risk_level", "kyc_verified", "total_assets", "marketing_opt_out"],
    )


def products(rows):
    return pd.DataFrame(rows, columns=["product_id", "risk_level", "is_active", "qualified_only"])


def all_pairs(customers, prods):
    return customers[["customer_id"]].merge(prods[["product_id"]], how="cross")


NO_HOLDINGS = pd.DataFrame(
    {"customer_id": pd.Series([], dtype=str), "product_id": pd.Series([], dtype=str)}
)


def test_each_rule_on_hand_made_cases():
    people = customer_policy(
        portrait(
            [
                ("low", 2, True, 10.0, False),
                ("unassessed", None, True, 10.0, False),
                ("rich", 5, True, 5e6, False),
                ("optout", 5, True, 5e6, True),
            ]
        ),
        qualified_min_assets=3e6,
    )
    prods = products(
        [
            ("R1", 1, True, False),
            ("R2", 2, True, False),
            ("R3", 3, True, False),
            ("OFF", 1, False, False),
            ("QO", 4, True, True),
        ]
    )
    holdings = pd.DataFrame({"customer_id": ["rich"], "product_id": ["R3"]})
    result = apply_policy(
        all_pairs(people, prods), customers=people, products=prods, holdings=holdings
    )
    kept = set(map(tuple, result.kept[["customer_id", "product_id"]].values))
    assert kept == {
        ("low", "R1"),
        ("low", "R2"),
        ("unassessed", "R1"),
        ("rich", "R1"),
        ("rich", "R2"),
        ("rich", "QO"),
    }
    reasons = result.excluded.set_index(["customer_id", "product_id"])["reason"]
    assert reasons[("low", "R3")] == "risk_above_customer"
    assert reasons[("unassessed", "R2")] == "risk_not_assessed"
    assert reasons[("low", "OFF")] == "inactive_product"
    assert reasons[("rich", "R3")] == "already_held"
    assert reasons[("low", "QO")] == "risk_above_customer"
    assert reasons[("optout", "R1")] == "marketing_opt_out"
    assert result.exclusion_counts()["marketing_opt_out"] == 4  # OFF is excluded first as inactive


def test_non_personalised_list_for_opted_out_passes_consent():
    people = customer_policy(portrait([("optout", 3, True, 10.0, True)]), qualified_min_assets=3e6)
    prods = products([("R1", 1, True, False), ("R5", 5, True, False)])
    result = apply_policy(
        all_pairs(people, prods),
        customers=people,
        products=prods,
        holdings=NO_HOLDINGS,
        personalised=False,
    )
    assert result.kept["product_id"].tolist() == ["R1"]  # suitability still applies
    assert result.excluded["reason"].tolist() == ["risk_above_customer"]


def test_unknown_customer_is_treated_most_cautiously():
    people = customer_policy(portrait([("known", 5, True, 10.0, False)]), qualified_min_assets=3e6)
    prods = products([("R1", 1, True, False), ("R2", 2, True, False)])
    candidates = pd.DataFrame({"customer_id": ["ghost", "ghost"], "product_id": ["R1", "R2"]})
    result = apply_policy(
        candidates, customers=people, products=prods, holdings=NO_HOLDINGS, personalised=False
    )
    assert result.kept["product_id"].tolist() == ["R1"]


customer_rows = st.lists(
    st.tuples(
        st.one_of(st.none(), st.integers(1, 5)),
        st.booleans(),
        st.sampled_from([0.0, 1e5, 2.9e6, 3e6, 1e7]),
        st.booleans(),
    ),
    min_size=4,
    max_size=15,
)
product_rows = st.lists(
    st.tuples(st.integers(1, 5), st.booleans(), st.booleans()), min_size=4, max_size=15
)


@settings(max_examples=500, deadline=None)
@given(customer_rows, product_rows, st.data(), st.booleans())
def test_no_kept_pair_ever_breaks_the_policy(crows, prows, data, personalised):
    people_raw = portrait([(f"C{i}", *row) for i, row in enumerate(crows)])
    prods = products([(f"P{i}", *row) for i, row in enumerate(prows)])
    pairs = all_pairs(people_raw, prods)
    held_mask = data.draw(st.lists(st.booleans(), min_size=len(pairs), max_size=len(pairs)))
    holdings = pairs.loc[held_mask]
    people = customer_policy(people_raw, qualified_min_assets=3e6)
    result = apply_policy(
        pairs, customers=people, products=prods, holdings=holdings, personalised=personalised
    )
    CASES["pairs"] += len(pairs)
    assert len(result.kept) + len(result.excluded) == len(pairs)
    assert set(result.excluded["reason"]) <= set(EXCLUSION_REASONS)
    # An independent oracle, written row by row on purpose (a test, not a pipeline).
    c = people_raw.set_index("customer_id")
    p = prods.set_index("product_id")
    held = set(map(tuple, holdings.values))
    for cid, pid in result.kept[["customer_id", "product_id"]].itertuples(index=False):
        cust, prod = c.loc[cid], p.loc[pid]
        limit = 1 if pd.isna(cust["risk_level"]) else cust["risk_level"]
        qualified = (
            bool(cust["kyc_verified"])
            and not pd.isna(cust["risk_level"])
            and cust["risk_level"] >= 4
            and cust["total_assets"] >= 3e6
        )
        assert prod["risk_level"] <= limit
        assert prod["is_active"]
        assert qualified or not prod["qualified_only"]
        assert (cid, pid) not in held
        assert not (personalised and cust["marketing_opt_out"])


def test_property_test_covered_at_least_ten_thousand_cases():
    assert CASES["pairs"] >= 10_000, CASES


def test_exportable_is_known_consent_only():
    from features.policy import exportable

    frame = pd.DataFrame({"marketing_opt_out": [False, True, None, np.nan, 0, 1]}, dtype=object)
    assert exportable(frame).tolist() == [True, False, False, False, True, False]
