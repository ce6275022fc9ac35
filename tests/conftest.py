"""Shared fixtures: a tiny hand-made bank with typed tables, exactly as validation outputs them;
one demo-bank run and one real `portrait serve` per session for the e2e and UI tests."""

from __future__ import annotations

import os

# As the CLI does (portrait/cli.py): LightGBM's OpenMP threads sleep at barriers, not spin;
# set before anything loads LightGBM.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from collections.abc import Iterator  # noqa: E402

import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from tests.e2e.conftest import DemoRun, Server, build_demo_run, serve_demo_run  # noqa: E402

T = pd.Timestamp


def _s(values):
    return pd.array(values, dtype="string")


def make_tables() -> dict[str, pd.DataFrame]:
    """Three customers, three products, a handful of transactions, events, balances and contacts."""
    customers = pd.DataFrame(
        {
            "customer_id": _s(["A", "B", "C"]),
            "signup_at": [T("2024-01-01"), T("2024-06-01"), T("2024-12-15")],
            "birth_year": pd.array([1980, 1990, None], dtype="Int64"),
            "gender": _s(["F", "M", "U"]),
            "occupation": _s(["engineer", None, "teacher"]),
            "income_band": pd.array([3, None, 1], dtype="Int64"),
            "city_tier": pd.array([1, 2, 3], dtype="Int64"),
            "channel": _s(["web", "app_store", None]),
            "risk_level": pd.array([3, None, 2], dtype="Int64"),
            "kyc_verified": [True, False, True],
            "marketing_opt_out": [False, True, False],
        }
    )
    products = pd.DataFrame(
        {
            "product_id": _s(["P1", "P2", "P3"]),
            "name": _s(["Deposit", "Equity fund", "Bond fund"]),
            "category": _s(["deposit", "equity_fund", "bond_fund"]),
            "risk_level": pd.array([1, 4, 2], dtype="Int64"),
            "min_amount": [0.0, 100.0, 10.0],
            "is_active": [True, True, True],
            "qualified_only": [False, False, False],
        }
    )
    transactions = pd.DataFrame(
        {
            "customer_id": _s(["A", "A", "A", "B", "A", "B", "A"]),
            "product_id": _s([None, "P1", "P2", None, "P1", "P3", "P3"]),
            "ts": [
                T("2024-02-01"),
                T("2024-02-02"),
                T("2024-03-01"),
                T("2024-07-01"),
                T("2024-12-20"),
                T("2025-01-10"),
                T("2025-01-20"),
            ],
            "type": _s(["deposit", "buy", "buy", "deposit", "sell", "buy", "buy"]),
            "amount": [1000.0, 500.0, 300.0, 50.0, 520.0, 40.0, 100.0],
        }
    )
    events = pd.DataFrame(
        {
            "customer_id": _s(["A", "A", "B", "C", "C", "A"]),
            "ts": [
                T("2024-12-20"),
                T("2024-12-28"),
                T("2024-07-01"),
                T("2024-12-15"),
                T("2024-12-16"),
                T("2025-01-05"),
            ],
            "event": _s(["login", "page_view", "register", "register", "real_name_auth", "login"]),
            "page": _s([None, "credit_report", None, None, None, None]),
            "product_id": _s([None, None, None, None, None, None]),
            "properties": _s([None, None, None, None, None, None]),
        }
    )
    balances = pd.DataFrame(
        {
            "customer_id": _s(["A", "A", "A"]),
            "date": [T("2024-09-30"), T("2024-10-31"), T("2024-12-31")],
            "total_assets": [1000.0, 1100.0, 1200.0],
        }
    )
    interactions = pd.DataFrame(
        {
            "customer_id": _s(["A", "A", "B"]),
            "ts": [T("2024-11-01"), T("2024-12-01"), T("2024-08-01")],
            "kind": _s(["complaint", "survey", "survey"]),
            "score": [None, 8.0, 3.0],
        }
    )
    return {
        "customers": customers,
        "products": products,
        "transactions": transactions,
        "events": events,
        "balances": balances,
        "interactions": interactions,
    }


@pytest.fixture
def tiny_tables() -> dict[str, pd.DataFrame]:
    return make_tables()


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """The session's demo run, shared by tests/e2e and tests/ui."""
    return build_demo_run(tmp_path_factory.getbasetemp() / "demo-run")


@pytest.fixture(scope="session")
def server(demo_run: DemoRun, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One `portrait serve` on the session's demo run, shared by tests/e2e and tests/ui."""
    yield from serve_demo_run(demo_run, tmp_path_factory)
