"""Churn and conversion labels on a hand-made timeline, and cut-offs that never reach past as_of."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.engagement import (
    DEFAULT,
    _engagement,
    active_customers,
    departed_mask,
    engagement,
    engagement_codes,
    kept_engagement,
)
from features.labels import (
    build_churn_labels,
    build_conversion_labels,
    stack_cutoffs,
    training_cutoffs,
)
from features.timeline import before, between, customer_codes, in_time_order
from portrait.settings import EngagementSettings

T = pd.Timestamp


def test_churn_label_on_hand_made_timeline(tiny_tables):
    labels = build_churn_labels(tiny_tables, as_of=T("2025-01-01"), active_days=90, horizon_days=60)
    labels = labels.set_index("customer_id")["churned"].to_dict()
    # A: active (Dec events), acts again in January -> stays. B: last seen July -> not active, no label.
    # C: registered mid-December, nothing after the cut-off -> churned.
    assert labels == {"A": 0, "C": 1}


def test_churn_horizon_is_half_open():
    tables = {
        "events": pd.DataFrame(
            {
                "customer_id": ["X", "X", "Y", "Y"],
                "ts": [T("2024-12-01"), T("2025-03-02"), T("2024-12-01"), T("2025-03-01 23:59")],
            }
        ),
        "transactions": pd.DataFrame(
            {
                "customer_id": pd.Series([], dtype=str),
                "ts": pd.Series([], dtype="datetime64[ns]"),
                "type": pd.Series([], dtype=str),
                "amount": pd.Series([], dtype=float),
            }
        ),
    }
    labels = build_churn_labels(tables, as_of=T("2025-01-01"), active_days=90, horizon_days=60)
    # The window is [2025-01-01, 2025-03-02): X's next event is at its end (excluded), Y's just inside.
    assert labels.set_index("customer_id")["churned"].to_dict() == {"X": 1, "Y": 0}


def test_conversion_labels_exclude_products_already_held(tiny_tables):
    labels = build_conversion_labels(tiny_tables, as_of=T("2025-01-01"), horizon_days=60)
    # A buys P3 (new) in January; B buys P3 (new). A held P2 - not bought again anyway.
    assert labels[["customer_id", "product_id"]].values.tolist() == [["A", "P3"], ["B", "P3"]]
    held_again = build_conversion_labels(tiny_tables, as_of=T("2025-01-15"), horizon_days=60)
    assert held_again[["customer_id", "product_id"]].values.tolist() == [["A", "P3"]]


def test_training_cutoffs_close_their_horizon_before_as_of():
    cutoffs = training_cutoffs(T("2025-11-01"), horizon_days=60, n=3)
    assert cutoffs == [T("2025-05-05"), T("2025-07-04"), T("2025-09-02")]
    assert all(c + pd.Timedelta(days=60) <= T("2025-11-01") for c in cutoffs)


def test_stack_cutoffs_tags_each_frame():
    stacked = stack_cutoffs(
        [T("2025-01-01"), T("2025-02-01")], lambda c: pd.DataFrame({"x": [c.month]})
    )
    assert stacked["cutoff"].tolist() == [T("2025-01-01"), T("2025-02-01")]
    assert stacked["x"].tolist() == [1, 2]


# --- engagement, departed and churn per the contract (hand-made timelines) -----------------

AS_OF = T("2025-01-01")  # horizon [2025-01-01, 2025-03-02), active window from 2024-10-03


def _timeline(balances: list[tuple] | None = None) -> dict[str, pd.DataFrame]:
    """One customer per case; each case's story is in the comment beside its rows."""
    txns = [
        # S: funded, engaged in December, sells everything and withdraws inside the horizon
        ("S", "2024-10-01", "deposit", 1000.0, None), ("S", "2024-10-02", "buy", 900.0, "P1"),
        ("S", "2025-01-10", "sell", 950.0, "P1"), ("S", "2025-01-11", "withdraw", 1050.0, None),
        # D: withdrew everything in November (after a login in October), silent since
        ("D", "2024-06-01", "deposit", 1000.0, None), ("D", "2024-11-15", "withdraw", 1000.0, None),
        # W: holds 4,500; the only recent activity is a partial withdrawal
        ("W", "2024-03-01", "deposit", 5000.0, None), ("W", "2024-12-01", "withdraw", 500.0, None),
        # K: deposits only, no app events; deposits again inside the horizon
        ("K", "2024-12-15", "deposit", 300.0, None), ("K", "2025-01-20", "deposit", 100.0, None),
        # B: buys inside the horizon
        ("B", "2024-11-01", "deposit", 500.0, None), ("B", "2025-02-01", "buy", 200.0, "P1"),
        # R: withdrew everything in October but logged in again in December: not departed
        ("R", "2024-05-01", "deposit", 800.0, None), ("R", "2024-10-10", "withdraw", 800.0, None),
    ]  # fmt: skip
    events = [
        ("S", "2024-12-10", "login"), ("D", "2024-10-15", "login"), ("W", "2024-04-01", "login"),
        ("B", "2024-12-20", "login"), ("E", "2024-12-20", "login"), ("E", "2025-01-05", "push_open"),
        ("R", "2024-12-01", "login"),
    ]  # fmt: skip
    tables = {
        "transactions": pd.DataFrame(
            txns, columns=["customer_id", "ts", "type", "amount", "product_id"]
        ).astype({"ts": "datetime64[ns]"}),
        "events": pd.DataFrame(events, columns=["customer_id", "ts", "event"]).astype(
            {"ts": "datetime64[ns]"}
        ),
    }
    if balances is not None:
        tables["balances"] = pd.DataFrame(
            balances, columns=["customer_id", "date", "total_assets"]
        ).astype({"date": "datetime64[ns]"})
    return tables


def _labels(tables, rule=DEFAULT) -> dict[str, int]:
    labels = build_churn_labels(tables, as_of=AS_OF, active_days=90, horizon_days=60, rule=rule)
    return labels.set_index("customer_id")["churned"].to_dict()


def test_selling_out_inside_the_horizon_is_churn_and_departed_are_not_labelled():
    labels = _labels(_timeline())
    # S sold and withdrew in January: leaving, not staying. D already left (assets ~0, silent
    # since the withdrawal): neither labelled nor scored, though a login and the withdrawal fall
    # in the 90 days. W's withdrawal is not engagement and W has no other in 90 days: not
    # active (and not departed: 4,500 still held). K's deposit and B's buy are engagement.
    # E's event counts. R engaged after emptying the account: active, silent since -> churn.
    assert labels == {"S": 1, "K": 0, "B": 0, "E": 0, "R": 1}


def test_departed_and_active_flags_at_as_of():
    tables = _timeline()
    index = pd.Index(["S", "D", "W", "K", "B", "E", "R"])
    departed = departed_mask(tables, index, as_of=AS_OF)
    assert dict(zip(index, departed, strict=True)) == {
        "S": False, "D": True, "W": False, "K": False, "B": False, "E": False, "R": False,
    }  # fmt: skip
    # after S's sell-out (and silence) S is departed too
    later = departed_mask(tables, pd.Index(["S"]), as_of=T("2025-02-01"))
    assert later.tolist() == [True]
    active = active_customers(tables, as_of=AS_OF, active_days=90)
    assert list(active) == ["B", "E", "K", "R", "S"]


def test_balances_decide_about_zero_when_present():
    # D's October balance (1,200 after gains) is older than the withdrawal of 1,000: the net
    # flows after it leave 200, above 2% of the peak -> not departed; a November balance of 0
    # after the withdrawal -> departed.
    stale = _timeline([("D", "2024-10-31", 1200.0)])
    assert departed_mask(stale, pd.Index(["D"]), as_of=AS_OF).tolist() == [False]
    fresh = _timeline([("D", "2024-10-31", 1200.0), ("D", "2024-11-30", 0.0)])
    assert departed_mask(fresh, pd.Index(["D"]), as_of=AS_OF).tolist() == [True]
    roomy = EngagementSettings(departed_peak_share=0.2)  # 200 of a 1,200 peak is "about zero"
    assert departed_mask(stale, pd.Index(["D"]), as_of=AS_OF, rule=roomy).tolist() == [True]


def test_engagement_settings_change_the_outcome():
    tables = _timeline()
    # the old rule: every transaction is activity and nobody is departed
    everything = EngagementSettings(
        transaction_types=("deposit", "withdraw", "buy", "sell", "income"), departed=False
    )
    assert _labels(tables, everything) == {
        "S": 0, "D": 1, "W": 1, "K": 0, "B": 0, "E": 0, "R": 1,
    }  # fmt: skip
    # a push opened is not the customer coming back
    no_push = EngagementSettings(non_engagement_events=("push_open",))
    assert _labels(tables, no_push)["E"] == 1
    # deposits alone do not count: K has no engagement at all
    buys_only = EngagementSettings(transaction_types=("buy",))
    assert "K" not in _labels(tables, buys_only)


def test_labels_at_a_cutoff_read_no_row_before_it_for_status():
    # rows after as_of cannot make a customer departed or active at as_of
    tables = _timeline()
    late = pd.DataFrame(
        [("D", "2024-12-31 23:59", "login")], columns=["customer_id", "ts", "event"]
    ).astype({"ts": "datetime64[ns]"})
    tables["events"] = pd.concat([tables["events"], late], ignore_index=True)
    assert _labels(tables)["D"] == 1  # the login before as_of brings D back: active, then silent
    tables["events"].loc[tables["events"].index[-1], "ts"] = AS_OF
    assert "D" not in _labels(tables)  # the same login at as_of is in the horizon, not before


def test_engagement_is_built_once_per_tables_inside_kept_engagement_and_in_time_order():
    tables = _timeline()
    built = engagement(tables)
    assert built["ts"].is_monotonic_increasing
    assert engagement(tables) is not built  # outside the context nothing is kept
    with kept_engagement():
        kept = engagement(tables)
        assert engagement(tables) is kept
        with kept_engagement():  # a nested context (the models stage inside a run) keeps it
            assert engagement(tables) is kept
        other = EngagementSettings(transaction_types=("deposit",))
        assert engagement(tables, rule=other) is not kept  # another rule, another frame
        changed = {**tables, "events": tables["events"].iloc[:-1]}
        assert len(engagement(changed)) == len(kept) - 1  # other events, another frame
        pd.testing.assert_frame_equal(kept, built)
    assert engagement(tables) is not kept


def test_slicing_a_frame_in_time_order_equals_masking_it():
    frame = pd.DataFrame({"ts": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-02",
                                                "2024-01-05"]), "v": [1, 2, 3, 4]})  # fmt: skip
    cut, start = pd.Timestamp("2024-01-02"), pd.Timestamp("2024-01-02")
    assert before(frame, cut)["v"].tolist() == [1]
    assert between(frame, start, pd.Timestamp("2024-01-06"))["v"].tolist() == [2, 3, 4]
    shuffled = frame.iloc[[3, 1, 0, 2]]
    assert sorted(before(shuffled, cut)["v"]) == [1]
    assert sorted(between(shuffled, start, pd.Timestamp("2024-01-05"))["v"]) == [2, 3]


def test_engagement_codes_are_the_same_kept_or_not():
    """Inside kept_engagement the customers are looked up once per run and mapped per call:
    every window and index gives what the direct look-up gives."""
    tables = _timeline()
    ids = engagement(tables)["customer_id"].unique()
    indexes = [pd.Index(sorted(ids)), pd.Index(list(ids[::-1][:2]) + ["nobody"])]
    windows = [(None, AS_OF), (AS_OF - pd.Timedelta(days=100), AS_OF), (None, T("2000-01-01"))]
    want = [engagement_codes(tables, i, start=s, end=e) for i in indexes for s, e in windows]
    with kept_engagement():
        got = [engagement_codes(tables, i, start=s, end=e) for i in indexes for s, e in windows]
    for (want_codes, want_ts), (codes, ts) in zip(want, got, strict=True):
        assert codes.tolist() == want_codes.tolist()
        pd.testing.assert_series_equal(ts, want_ts)
    assert any((codes == -1).any() and (codes >= 0).any() for codes, _ in got)


def test_engagement_of_earlier_rows_is_a_slice_of_the_kept_one():
    """The rows before a cut (a history) read the kept engagement's rows before it, no copy;
    anything that is not such a cut builds its own. Values equal the direct build either way."""
    tables = {name: in_time_order(frame, "ts") for name, frame in _timeline().items()}
    cuts = [T("2024-06-01"), T("2024-12-01"), T("2024-12-20"), AS_OF, T("2030-01-01")]
    others = {  # not the rows before one time: their own engagement
        "late rows only": {name: frame.iloc[1:] for name, frame in tables.items()},
        "cut at two times": {"events": before(tables["events"], T("2024-12-02")),
                             "transactions": before(tables["transactions"], AS_OF)},
        "a copy": {name: before(frame, AS_OF).copy() for name, frame in tables.items()},
    }  # fmt: skip
    indexes = [pd.Index(sorted(engagement(tables)["customer_id"].unique())), pd.Index(["E", "S"])]
    with kept_engagement():
        whole = engagement(tables)
        engagement_codes(tables, indexes[0], end=AS_OF)  # the whole's ids are looked up first
        for cut in cuts:
            past = {name: before(frame, cut) for name, frame in tables.items()}
            got = engagement(past)
            pd.testing.assert_frame_equal(got, _built(past))
            assert np.shares_memory(got["ts"].to_numpy(), whole["ts"].to_numpy()) or got.empty
            _same_codes(past, indexes)
        for name, frame in others.items():
            got = engagement(frame)
            pd.testing.assert_frame_equal(got, _built(frame), obj=name)
            assert not np.shares_memory(got["ts"].to_numpy(), whole["ts"].to_numpy()), name
            _same_codes(frame, indexes)


def _built(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    return _engagement(tables, DEFAULT)


def _same_codes(tables: dict[str, pd.DataFrame], indexes: list[pd.Index]) -> None:
    windows = [(None, AS_OF), (AS_OF - pd.Timedelta(days=40), AS_OF), (None, T("2030-01-01"))]
    for index in indexes:
        for start, end in windows:
            codes, ts = engagement_codes(tables, index, start=start, end=end)
            rows = between(_built(tables), start, end)
            assert codes.tolist() == customer_codes(rows["customer_id"], index).tolist()
            assert ts.tolist() == rows["ts"].tolist()
