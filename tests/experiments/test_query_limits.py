"""The audience parser's bounds: every hostile query is a QueryError (a 400), never a crash."""

from __future__ import annotations

import pytest

from experiments.query import parse_query
from experiments.ready_made import READY_MADE
from experiments.syntax import MAX_DEPTH, MAX_TERMS, QueryError


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("(" * 1300 + "age > 1" + ")" * 1300, "more than 600"),
        ("(" * (MAX_DEPTH + 1) + "age > 1" + ")" * (MAX_DEPTH + 1), "nests"),
        ("not " * 990 + "age > 1", "more than 600"),
        ("not " * (MAX_DEPTH + 1) + "age > 1", "nests"),
        (" or ".join(["age > 1"] * (MAX_TERMS + 1)), "conditions"),
        ("did login in last 99999999999999999999 days", "too many"),
        ("did login at least 99999999999 times", "too many"),
        ("did login between 0000-00-00 and 9999-99-99", "not a calendar date"),
        ("signup_at between 2025-02-30 and 2025-03-01", "not a calendar date"),
        ("total_assets > 1e999", "out of range"),
        ("age > 30\x00", "unexpected character"),
    ],
)
def test_hostile_queries_are_query_errors(query, says):
    with pytest.raises(QueryError, match=says):
        parse_query(query)


def test_bounds_leave_real_queries_alone():
    for text in READY_MADE.values():
        parse_query(text)
    parse_query("(" * MAX_DEPTH + "age > 1" + ")" * MAX_DEPTH)
    parse_query(" or ".join(["age > 1"] * MAX_TERMS))
