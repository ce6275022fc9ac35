"""Per-customer first and last timestamps against a groupby, with unknown customers and NaT."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.timeline import first_ts, last_ts


def test_first_and_last_timestamps_per_customer_code():
    rng = np.random.default_rng(4)
    n, rows = 50, 5_000
    codes = rng.integers(-1, n - 5, rows)  # -1: not a customer of the index; the last 5 have none
    ts = pd.Series(pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 10**6, rows), "s"))
    ts = ts.astype("datetime64[us]")  # a unit other than ns: converted, values unchanged
    ts.iloc[::97] = pd.NaT
    known = pd.DataFrame({"c": codes, "t": ts}).loc[codes >= 0]
    lo = known.groupby("c")["t"].min().reindex(range(n)).to_numpy("datetime64[ns]")
    hi = known.groupby("c")["t"].max().reindex(range(n)).to_numpy("datetime64[ns]")
    np.testing.assert_array_equal(last_ts(codes, ts, n), hi)
    # a NaT among a customer's rows reads as the earliest (int64's minimum), as it always has
    has_nat = known.loc[known["t"].isna(), "c"].unique()
    lo[has_nat] = np.datetime64("NaT")
    np.testing.assert_array_equal(first_ts(codes, ts, n), lo)
    assert np.isnat(last_ts(codes, ts, n)[-5:]).all() and len(has_nat) > 0
