"""Query language: parse errors point at the bad token; did / did not, windows at boundaries; properties."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from experiments.audience import run_audience
from experiments.query import parse_query
from experiments.syntax import QueryError
from features.portrait import build_features

T = pd.Timestamp
AS_OF = T("2025-02-01")


def _s(values):
    return pd.array(values, dtype="str")


def timeline_tables() -> dict[str, pd.DataFrame]:
    """Four customers whose events sit exactly on window boundaries around as_of 2025-02-01."""
    customers = pd.DataFrame(
        {
            "customer_id": _s(["W", "X", "Y", "Z"]),
            "signup_at": [
                T("2025-01-01"),
                T("2025-01-31 23:59"),
                T("2024-12-31 23:59"),
                T("2024-06-01"),
            ],
            "birth_year": pd.array([1980, 1990, None, 1970], dtype="Int64"),
            "gender": _s(["F", "M", "U", "F"]),
            "occupation": _s(["engineer", None, "teacher", "doctor"]),
            "income_band": pd.array([3, None, 1, 5], dtype="Int64"),
            "city_tier": pd.array([1, 2, 3, 1], dtype="Int64"),
            "channel": _s(["web", "app_store", None, "branch"]),
            "risk_level": pd.array([3, None, 2, 4], dtype="Int64"),
            "kyc_verified": [True, False, True, True],
            "marketing_opt_out": [False, False, False, True],
            "phone": _s(["100", "101", "102", "103"]),
        }
    )
    products = pd.DataFrame(
        {
            "product_id": _s(["P1"]), "name": _s(["Deposit"]), "category": _s(["deposit"]),
            "risk_level": pd.array([1], dtype="Int64"), "min_amount": [0.0], "is_active": [True],
            "qualified_only": [False],
        }
    )  # fmt: skip
    transactions = pd.DataFrame(
        {
            "customer_id": _s(["W"]), "product_id": _s(["P1"]), "ts": [T("2025-01-10")],
            "type": _s(["buy"]), "amount": [100.0],
        }
    )  # fmt: skip
    events = pd.DataFrame(
        {
            "customer_id": _s(["W", "X", "Y", "Z", "W", "Y", "X"]),
            "ts": [
                T("2025-01-02"),  # exactly as_of - 30 days: inside `in last 30 days`
                T("2025-02-01"),  # exactly as_of: never seen
                T("2025-01-01 23:59:59"),  # one second before the 30-day window
                T("2025-01-20"),
                T("2025-01-31 23:00"),
                T("2025-01-15"),
                T("2025-01-31 23:59"),
            ],
            "event": _s(
                ["login", "login", "login", "login", "page_view", "p2p_invest_success", "register"]
            ),
            "page": _s([None, None, None, None, "credit_report", None, None]),
            "product_id": _s([None] * 7),
            "properties": _s(
                [None, None, None, None, None, None, '{"variant": "B", "experiment": "x"}']
            ),
        }
    )
    return {
        "customers": customers,
        "products": products,
        "transactions": transactions,
        "events": events,
    }


@pytest.fixture(scope="module")
def bank():
    tables = timeline_tables()
    return tables, build_features(tables, as_of=AS_OF)


def ids(query: str, bank) -> list[str]:
    tables, portrait = bank
    result = run_audience(query, tables=tables, portrait=portrait, as_of=AS_OF)
    return sorted(result.frame["customer_id"]) + sorted(
        f"optout:{n}" for n in range(result.opted_out_excluded)
    )


@pytest.mark.parametrize(
    ("query", "position", "fragment"),
    [
        ("churn_probability >", 19, "expected a value after '>'"),
        ("did", 3, "expected an event name"),
        ("value_tier in (a, b", 19, "expected `,` or `)`"),
        ("did login in last x days", 18, "whole number of days"),
        ("age > 3 age < 5", 8, "unexpected 'age'"),
        ("(age > 3", 8, "expected `)`"),
        ("age ~ 3", 4, "unexpected character '~'"),
        ("age 3", 4, "expected an operator"),
        ("did login between 2025-01-01 and soon", 33, "is not a date"),
        ("", 0, "the query is empty"),
    ],
)
def test_parse_errors_point_at_the_bad_token(query, position, fragment):
    with pytest.raises(QueryError) as info:
        parse_query(query)
    assert info.value.position == position
    assert fragment in str(info.value)
    assert str(info.value).splitlines()[2] == "  " + " " * position + "^"


def test_evaluation_errors_name_the_field_and_list_available_ones(bank):
    with pytest.raises(QueryError, match="unknown field 'churn_probability'.*--run") as info:
        ids("age > 3 and churn_probability > 0.6", bank)
    assert info.value.position == 12
    assert "available fields: " in str(info.value) and "total_assets" in str(info.value)
    with pytest.raises(QueryError, match="no event named 'lgoin'"):
        ids("did lgoin", bank)
    with pytest.raises(QueryError, match="'age' is numeric; 'old' is not a number"):
        ids("age > old", bank)
    with pytest.raises(QueryError, match="'soon' is not a date") as info:
        ids("registered between 2025-01-01 and soon", bank)
    assert info.value.position == 34
    with pytest.raises(QueryError, match="needs a numeric or date field"):
        ids("channel > web", bank)


def test_did_and_did_not_see_only_events_strictly_before_as_of(bank):
    assert ids("did login", bank) == ["W", "Y", "optout:0"]  # X logged in exactly at as_of
    assert ids("did not login", bank) == ["X"]
    assert ids("did login in last 30 days", bank) == ["W", "optout:0"]  # W is exactly 30 days back
    assert ids("did not login in last 30 days", bank) == ["X", "Y"]


def test_between_dates_covers_whole_days_and_registered_is_signup_at(bank):
    assert ids("did login between 2025-01-02 and 2025-01-02", bank) == ["W"]
    assert ids("did login between 2024-12-01 and 2025-01-01", bank) == ["Y"]
    assert ids("registered between 2025-01-01 and 2025-01-31", bank) == ["W", "X"]
    assert ids("registered < 2025-01-01", bank) == ["Y", "optout:0"]
    assert ids("registered in last 31 days", bank) == ["W", "X"]


def test_filters_aliases_business_lines_and_properties(bank):
    assert ids("did view_page page=credit_report", bank) == ["W"]
    assert ids("did invest_success", bank) == ["Y"]  # p2p_invest_success counts as invest_success
    assert ids("did p2p_invest_success", bank) == ["Y"]
    assert ids("did register variant=B", bank) == ["X"]
    assert ids("did buy product_id=P1 and did not invest_success", bank) == ["W"]
    assert ids("did login at least 2 times", bank) == []


def test_matched_because_names_the_conditions_and_opted_out_are_counted_not_exported(bank):
    tables, portrait = bank
    result = run_audience(
        "did view_page page=credit_report and not (did invest_success) or age > 50",
        tables=tables, portrait=portrait, as_of=AS_OF,
    )  # fmt: skip
    assert list(result.frame.columns) == ["customer_id", "channel", "phone", "matched_because"]
    assert result.frame["customer_id"].tolist() == ["W"]
    assert result.frame["matched_because"].iloc[0] == (
        "did view_page page=credit_report (1x, last 2025-01-31); not (did invest_success)"
    )
    assert (result.matched, result.count, result.opted_out_excluded) == (2, 1, 1)


def test_same_query_same_list(bank):
    first = run_audience("did login or age > 30", tables=bank[0], portrait=bank[1], as_of=AS_OF)
    second = run_audience("did login or age > 30", tables=bank[0], portrait=bank[1], as_of=AS_OF)
    pd.testing.assert_frame_equal(first.frame, second.frame)


ATOMS = st.sampled_from(
    [
        "did login", "did login in last 30 days", "age > 40", "channel = web", "occupation in (teacher, doctor)",
        "income_band between 2 and 5", "registered between 2025-01-01 and 2025-01-31", "did view_page page=credit_report",
        "total_assets >= 0", "risk_level != 3", "did buy",
    ]
)  # fmt: skip
QUERIES = st.recursive(
    ATOMS,
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["and", "or"]), inner).map(
            lambda t: f"({t[0]}) {t[1]} ({t[2]})"
        ),
        inner.map(lambda q: f"not ({q})"),
    ),
    max_leaves=4,
)


@settings(max_examples=60, deadline=None)
@given(QUERIES)
def test_a_and_not_a_is_empty_and_a_or_not_a_is_everyone(bank, query):
    tables, portrait = bank
    none = run_audience(
        f"({query}) and not ({query})", tables=tables, portrait=portrait, as_of=AS_OF
    )
    everyone = run_audience(
        f"({query}) or not ({query})", tables=tables, portrait=portrait, as_of=AS_OF
    )
    assert none.matched == 0 and none.frame.empty
    assert everyone.matched == everyone.eligible == len(portrait)
    assert everyone.count + everyone.opted_out_excluded == len(portrait)


PROPENSITY = pd.DataFrame(
    {
        "customer_id": ["W", "X", "Y", "Z", "W"],
        "product_id": ["P1", "P1", "P1", "P1", "P2"],
        "probability": [0.5, 0.1, 0.3, 0.9, 0.05],
    }
)


def propensity_ids(query: str, bank) -> list[str]:
    tables, portrait = bank
    result = run_audience(query, tables=tables, portrait=portrait, as_of=AS_OF,
                          extras={"propensity": PROPENSITY})  # fmt: skip
    return sorted(result.frame["customer_id"]) + [f"optout:{result.opted_out_excluded}"]


def test_propensity_of_a_product_selects_customers_by_their_probability(bank):
    # Z (0.9) matches but opted out: counted, never exported
    assert propensity_ids("propensity(P1) > 0.2", bank) == ["W", "Y", "optout:1"]
    assert propensity_ids("propensity('P1') >= 0.5 and age > 0", bank) == ["W", "optout:1"]
    # X has no P2 pair (held or not allowed): a missing value never exceeds anything
    assert propensity_ids("propensity(P2) > 0.01", bank) == ["W", "optout:0"]
    assert propensity_ids("not propensity(P2) > 0.01", bank) == ["X", "Y", "optout:1"]


def test_propensity_terms_are_bounded_and_errors_name_the_product(bank):
    with pytest.raises(QueryError, match="no propensity for product 'P9'") as info:
        propensity_ids("age > 1 and propensity(P9) > 0.2", bank)
    assert info.value.position == 12
    with pytest.raises(QueryError, match="needs the run's propensity.parquet"):
        ids("propensity(P1) > 0.2", bank)
    with pytest.raises(QueryError, match="expected `\\)` after the product id"):
        parse_query("propensity(P1 > 0.2")
    with pytest.raises(QueryError, match="at most 64 characters"):
        parse_query(f"propensity({'P' * 65}) > 0.2")
    with pytest.raises(QueryError, match="more than 20 propensity"):
        parse_query(" or ".join(["propensity(P1) > 0.2"] * 21))
