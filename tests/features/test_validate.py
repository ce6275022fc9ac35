"""Unit tests for features.load and features.validate: small hand-made frames, exact values."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from features.load import read_dataset
from features.quality import TooManyBadRows, format_quality_table, write_quality, write_quarantine
from features.validate import load_dataset, validate_tables
from portrait.errors import ContractError

ALL_BAD_OK = 1.0  # rule tests look at the quarantine, not at the threshold


def raw_tables() -> dict[str, pd.DataFrame]:
    """A clean dataset as read from CSV: every column text, empty = missing."""
    customers = {
        "customer_id": ["C1", "C2", "C3", "C4"],
        "signup_at": ["2024-01-01T09:00:00", "2024-01-02", "2024-01-03", "2024-01-04"],
        "birth_year": ["1980", None, "1990", "1975"],
        "gender": ["F", "M", "U", "F"],
        "occupation": ["it", None, "NA", "teacher"],
        "income_band": ["1", "2", None, "5"],
        "city_tier": ["1", "2", "3", "4"],
        "channel": ["web", "app_store", None, "branch"],
        "risk_level": ["3", None, "5", "1"],
        "kyc_verified": ["true", "False", "1", "no"],
        "marketing_opt_out": ["0", "YES", "false", "TRUE"],
    }
    products = {
        "product_id": ["P1", "P2", "P3"],
        "name": ["Cash", "Bond", "Stock"],
        "category": ["deposit", "bond_fund", "stock_portfolio"],
        "risk_level": ["1", "2", "5"],
        "min_amount": ["0", "100.5", "1000"],
        "is_active": ["true", "true", "false"],
        "qualified_only": ["false", "false", "true"],
    }
    transactions = {
        "customer_id": ["C1", "C2", "C3", "C4"],
        "product_id": ["P1", None, "P2", "P3"],
        "ts": ["2024-02-01T10:00:00", "2024-02-02", "2024-02-03", "2024-02-04"],
        "type": ["buy", "deposit", "sell", "income"],
        "amount": ["100", "5.5", "20", "1"],
    }
    events = {
        "customer_id": ["C1", "C1", "C2", "C3"],
        "ts": ["2024-02-01", "2024-02-01", "2024-02-02", "2024-02-03"],
        "event": ["login", "p2p_view_product", "page_view", "invest_success"],
        "page": ["home", None, "fund", None],
        "product_id": [None, "P1", None, "P2"],
        "properties": [None, '{"a": 1}', None, None],
    }
    frames = {"customers": customers, "products": products, "transactions": transactions}
    frames["events"] = events
    return {name: pd.DataFrame(cols, dtype="str") for name, cols in frames.items()}


def with_value(table: str, column: str, row: int, value: str | None) -> dict[str, pd.DataFrame]:
    raw = raw_tables()
    raw[table].loc[row, column] = value
    return raw


def test_clean_data_is_typed_and_nothing_quarantined():
    data = validate_tables(raw_tables())
    customers = data.tables["customers"]
    assert customers["customer_id"].dtype == pd.StringDtype("pyarrow")
    assert customers["signup_at"].dtype == "datetime64[ns]"
    assert customers["birth_year"].tolist() == [1980, pd.NA, 1990, 1975]
    assert customers["birth_year"].dtype == "Int64"
    assert customers["risk_level"].tolist() == [3, pd.NA, 5, 1]  # empty = not assessed
    assert customers["kyc_verified"].dtype == bool
    assert customers["kyc_verified"].tolist() == [True, False, True, False]
    assert customers["marketing_opt_out"].tolist() == [False, True, False, True]
    assert customers["occupation"].tolist() == ["it", pd.NA, "NA", "teacher"]
    assert data.tables["products"]["min_amount"].tolist() == [0.0, 100.5, 1000.0]
    assert data.tables["products"]["min_amount"].dtype == np.float64
    assert data.tables["transactions"]["product_id"].isna().tolist() == [False, True, False, False]
    assert {n: len(q) for n, q in data.quarantine.items()} == dict.fromkeys(data.tables, 0)
    assert list(data.quarantine["events"].columns)[-2:] == ["row", "reason"]


@pytest.mark.parametrize(
    ("table", "column", "row", "value", "reason"),
    [
        (
            "customers",
            "signup_at",
            1,
            "not-a-date",
            "unparseable timestamp in signup_at: 'not-a-date'",
        ),
        ("customers", "signup_at", 1, None, "missing required value in signup_at"),
        ("customers", "risk_level", 2, "7", "risk_level out of range 1..5: 7"),
        ("customers", "birth_year", 0, "1980.5", "non-integer value in birth_year: 1980.5"),
        ("customers", "income_band", 0, "abc", "unparseable integer in income_band: 'abc'"),
        ("customers", "gender", 3, "X", "gender not one of F/M/U: 'X'"),
        ("customers", "kyc_verified", 0, "maybe", "unparseable boolean in kyc_verified: 'maybe'"),
        ("products", "min_amount", 1, "-1", "negative min_amount: -1.0"),
        ("transactions", "amount", 2, "-5", "negative or zero amount: -5.0"),
        ("transactions", "amount", 2, "0", "negative or zero amount: 0.0"),
        ("transactions", "amount", 2, "lots", "unparseable number in amount: 'lots'"),
        ("transactions", "customer_id", 3, "C999", "unknown customer_id: 'C999'"),
        ("transactions", "product_id", 0, "P77", "unknown product_id: 'P77'"),
        (
            "transactions",
            "type",
            1,
            "gift",
            "type not one of deposit/withdraw/buy/sell/income: 'gift'",
        ),
        ("events", "event", 2, "Log In", "event not snake_case: 'Log In'"),
        ("events", "customer_id", 0, None, "missing required value in customer_id"),
    ],
)
def test_row_rule_quarantines_the_row_with_its_reason(table, column, row, value, reason):
    data = validate_tables(with_value(table, column, row, value), max_bad_fraction=ALL_BAD_OK)
    quarantine = data.quarantine[table]
    assert quarantine["reason"].tolist() == [reason]
    assert quarantine["row"].tolist() == [row]
    expected = raw_tables()[table].loc[row].drop(column).astype(object).tolist()
    assert quarantine.drop(columns=[column, "row", "reason"]).iloc[0].astype(object).tolist() == [
        pd.NA if v is np.nan or v is None else v for v in expected
    ]
    assert data.quality[table].quarantined == 1
    assert data.quality[table].reasons == {reason.split(": ")[0]: 1}
    assert len(data.tables[table]) == len(raw_tables()[table]) - 1


def test_duplicate_key_keeps_first_and_quarantines_later():
    raw = raw_tables()
    raw["customers"] = pd.concat([raw["customers"], raw["customers"].iloc[[1]]], ignore_index=True)
    raw["customers"].loc[4, "gender"] = "F"
    data = validate_tables(raw, max_bad_fraction=ALL_BAD_OK)
    assert data.quarantine["customers"]["reason"].tolist() == ["duplicate customer_id: 'C2'"]
    assert data.quarantine["customers"]["row"].tolist() == [4]
    assert data.tables["customers"]["gender"].tolist() == ["F", "M", "U", "F"]


def test_duplicate_after_a_bad_first_copy_is_kept():
    raw = raw_tables()
    raw["customers"] = pd.concat([raw["customers"], raw["customers"].iloc[[1]]], ignore_index=True)
    raw["customers"].loc[1, "signup_at"] = "never"
    data = validate_tables(raw, max_bad_fraction=ALL_BAD_OK)
    assert data.quarantine["customers"]["row"].tolist() == [1]
    assert data.tables["customers"]["customer_id"].tolist() == ["C1", "C3", "C4", "C2"]


def test_composite_duplicate_key_in_optional_table():
    raw = raw_tables()
    raw["balances"] = pd.DataFrame(
        {"customer_id": ["C1", "C1", "C1"], "date": ["2024-01-31", "2024-02-29", "2024-01-31"]}
        | {"total_assets": ["10", "20", "30"]},
        dtype="str",
    )
    data = validate_tables(raw, max_bad_fraction=ALL_BAD_OK)
    assert data.quarantine["balances"]["reason"].tolist() == [
        "duplicate (customer_id, date): ('C1', '2024-01-31')"
    ]
    assert data.tables["balances"]["date"].dtype == "datetime64[ns]"


def test_rows_of_a_quarantined_customer_are_quarantined_too():
    data = validate_tables(with_value("customers", "gender", 1, "?"), max_bad_fraction=ALL_BAD_OK)
    assert data.quarantine["transactions"]["reason"].tolist() == [
        "customer_id of a quarantined customers row: 'C2'"
    ]
    assert data.quarantine["events"]["reason"].tolist() == [
        "customer_id of a quarantined customers row: 'C2'"
    ]
    assert "C2" not in data.tables["events"]["customer_id"].tolist()


def test_a_row_with_several_problems_gets_the_first_reason():
    raw = with_value("transactions", "amount", 0, "-1")
    raw["transactions"].loc[0, "type"] = "gift"
    raw["transactions"].loc[0, "customer_id"] = "C999"
    data = validate_tables(raw, max_bad_fraction=ALL_BAD_OK)
    assert data.quarantine["transactions"]["reason"].tolist() == [
        "type not one of deposit/withdraw/buy/sell/income: 'gift'"
    ]


def test_timezones_are_converted_to_naive_utc():
    raw = raw_tables()
    raw["events"]["ts"] = [
        "2024-02-01T10:00:00+08:00",
        "2024-02-01T10:00:00Z",
        "2024-02-01T10:00:00",
        "2024-02-01T10:00:00.250-05:00",
    ]
    ts = validate_tables(raw).tables["events"]["ts"]
    assert ts.dtype == "datetime64[ns]"
    assert ts.tolist() == [
        pd.Timestamp("2024-02-01 02:00:00"),
        pd.Timestamp("2024-02-01 10:00:00"),
        pd.Timestamp("2024-02-01 10:00:00"),
        pd.Timestamp("2024-02-01 15:00:00.250"),
    ]


def test_missing_required_table_is_a_contract_error():
    raw = raw_tables()
    del raw["events"]
    with pytest.raises(ContractError, match=r"required table 'events' is missing"):
        validate_tables(raw)


def test_missing_column_is_a_contract_error():
    raw = raw_tables()
    raw["transactions"] = raw["transactions"].drop(columns="amount")
    with pytest.raises(ContractError) as err:
        validate_tables(raw)
    assert str(err.value).startswith(
        "table 'transactions' has no column 'amount' (columns found: customer_id, product_id, ts, type)"
    )


def test_mostly_unparseable_column_is_a_type_break():
    raw = raw_tables()
    raw["events"]["ts"] = ["yesterday", "today", "2024-01-01", "now"]  # pandas alone reads "now"
    with pytest.raises(ContractError) as err:
        validate_tables(raw, max_bad_fraction=ALL_BAD_OK)
    assert str(err.value).startswith(
        "table 'events', column 'ts': 3 of 4 values (75%) cannot be parsed as timestamp, "
        "e.g. 'yesterday'; the column has the wrong type"
    )


def test_too_many_bad_rows_stops_with_the_table_fraction_and_top_reason():
    with pytest.raises(TooManyBadRows) as err:
        validate_tables(with_value("transactions", "amount", 2, "-5"), max_bad_fraction=0.2)
    assert isinstance(err.value, ContractError)
    assert str(err.value) == (
        "table 'transactions': 1 of 4 rows (25.00%) are bad, above validation.max_bad_fraction"
        " = 20.00%; top reason: 'negative or zero amount' (1 rows). Inspect "
        "quarantine/transactions.parquet and fix the extract, or raise validation.max_bad_fraction"
    )
    assert err.value.data.quarantine["transactions"]["row"].tolist() == [2]


def test_counts_add_up_and_summary_is_json_ready(tmp_path):
    raw = with_value("events", "event", 0, "LOGIN")
    data = validate_tables(raw, max_bad_fraction=ALL_BAD_OK)
    for q in data.quality.values():
        assert q.read == q.kept + q.quarantined
    assert data.summary()["events"] == {
        "read": 4,
        "kept": 3,
        "quarantined": 1,
        "reasons": {"event not snake_case": 1},
    }
    path = write_quality(
        data, tmp_path / "run" / "quality.json", extra={"churn": {"auc": np.float64(0.5)}}
    )
    written = json.loads(path.read_text())
    assert written["tables"]["events"]["quarantined"] == 1
    assert written["churn"] == {"auc": 0.5}
    paths = write_quarantine(data, tmp_path / "run")
    assert paths == [tmp_path / "run" / "quarantine" / "events.parquet"]
    back = pd.read_parquet(paths[0])
    assert back["reason"].tolist() == ["event not snake_case: 'LOGIN'"]
    assert back["row"].tolist() == [0]
    lines = format_quality_table(data).splitlines()
    assert lines[0].split() == ["table", "read", "kept", "quarantined", "bad", "%", "top", "reason"]
    assert lines[5].split() == ["events", "4", "3", "1", "25.00%", "event", "not", "snake_case"]


def test_extra_columns_are_kept():
    raw = raw_tables()
    raw["customers"]["vip_note"] = ["a", "b", None, "d"]
    data = validate_tables(raw)
    assert data.tables["customers"]["vip_note"].tolist() == ["a", "b", np.nan, "d"]
    assert list(data.tables["customers"].columns)[-1] == "vip_note"


def test_csv_round_trip(tmp_path):
    for name, frame in raw_tables().items():
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
    read = read_dataset(tmp_path)
    assert set(read) == {"customers", "products", "transactions", "events"}
    assert read["customers"]["occupation"].tolist() == ["it", np.nan, "NA", "teacher"]
    expected = validate_tables(raw_tables())
    loaded = load_dataset(tmp_path)
    for name, frame in expected.tables.items():
        pd.testing.assert_frame_equal(loaded.tables[name], frame)


def test_parquet_round_trip_with_native_types(tmp_path):
    raw = raw_tables()
    for name, frame in raw.items():
        frame.to_parquet(tmp_path / f"{name}.parquet", index=False)
    native = raw["events"].assign(
        ts=pd.to_datetime(raw["events"]["ts"]).dt.tz_localize("Asia/Shanghai")
    )
    native.to_parquet(tmp_path / "events.parquet", index=False)
    raw["products"].assign(
        risk_level=[1, 2, 5], min_amount=[0.0, 100.5, 1000.0], is_active=[True, True, False]
    ).to_parquet(tmp_path / "products.parquet", index=False)
    loaded = load_dataset(tmp_path)
    expected = validate_tables(raw_tables())
    pd.testing.assert_frame_equal(loaded.tables["products"], expected.tables["products"])
    assert (
        loaded.tables["events"]["ts"].tolist()
        == (expected.tables["events"]["ts"] - pd.Timedelta(hours=8)).tolist()
    )
    assert loaded.tables["events"]["ts"].dtype == "datetime64[ns]"


def test_missing_table_file_and_double_file_are_contract_errors(tmp_path):
    for name, frame in raw_tables().items():
        if name != "events":
            frame.to_csv(tmp_path / f"{name}.csv", index=False)
    with pytest.raises(ContractError, match=rf"required table 'events' is missing in {tmp_path}"):
        read_dataset(tmp_path)
    raw_tables()["events"].to_csv(tmp_path / "events.csv", index=False)
    raw_tables()["events"].to_parquet(tmp_path / "events.parquet", index=False)
    with pytest.raises(
        ContractError, match=r"table 'events' is given twice .*events.parquet and events.csv"
    ):
        read_dataset(tmp_path)


def test_all_offset_timestamps_and_out_of_range_years():
    raw = raw_tables()
    raw["transactions"]["ts"] = [
        "2024-02-01T10:00:00+08:00",
        "2024-02-01T10:00:00Z",
        "2024-02-01T00:30:00-01:00",
        "2024-02-01T10:00:00+00:00",
    ]
    txns = validate_tables(raw).tables["transactions"]  # kept in time order
    assert dict(zip(txns["customer_id"], txns["ts"], strict=True)) == {
        "C1": pd.Timestamp("2024-02-01 02:00:00"),
        "C2": pd.Timestamp("2024-02-01 10:00:00"),
        "C3": pd.Timestamp("2024-02-01 01:30:00"),
        "C4": pd.Timestamp("2024-02-01 10:00:00"),
    }
    data = validate_tables(with_value("events", "ts", 3, "3000-01-01"), max_bad_fraction=ALL_BAD_OK)
    assert data.quarantine["events"]["reason"].tolist() == [
        "unparseable timestamp in ts: '3000-01-01'"
    ]


def test_behaviour_tables_are_kept_in_time_order_and_ties_keep_the_extracts_order():
    raw = raw_tables()
    raw["events"] = raw["events"].iloc[[3, 1, 2, 0]].reset_index(drop=True)  # C1's two at one time
    raw["events"].loc[0, "ts"] = "2024-02-03x"  # a bad row is quarantined, not sorted in
    data = validate_tables(raw, max_bad_fraction=ALL_BAD_OK)
    events = data.tables["events"]
    assert events["ts"].is_monotonic_increasing and list(events.index) == [0, 1, 2]
    assert events["event"].tolist() == ["p2p_view_product", "login", "page_view"]
    assert data.quarantine["events"]["event"].tolist() == ["invest_success"]
    assert data.tables["customers"]["customer_id"].tolist() == ["C1", "C2", "C3", "C4"]
