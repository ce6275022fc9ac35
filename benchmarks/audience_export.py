"""Benchmark: count and export a 1,000,000-customer audience (query, opt-out, matched_because, CSV and Parquet).

Run: .venv/bin/python -m benchmarks.audience_export [N_CUSTOMERS]. Prints a table, writes benchmarks/results/audience_export.json.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from experiments.audience import run_audience, write_audience

AS_OF = pd.Timestamp("2026-02-01").as_unit("ns")
QUERY = "(total_assets >= 0 or did login in last 30 days) and did not invest_success in last 7 days"


def synthetic(n: int, *, seed: int = 0) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """A portrait of n customers and ~3n events; the shape of the real tables, not their statistics."""
    rng = np.random.default_rng(seed)
    ids = pd.array([f"C{i:08d}" for i in range(n)], dtype="str")
    portrait = pd.DataFrame(
        {
            "customer_id": ids,
            "signup_at": AS_OF - pd.to_timedelta(rng.integers(1, 900, n), unit="D"),
            "total_assets": rng.gamma(1.0, 20000.0, n),
            "channel": pd.array(
                rng.choice(["web", "app_store", "wechat", "branch"], n), dtype="str"
            ),
            "marketing_opt_out": rng.random(n) < 0.05,
        }
    )
    m = 3 * n
    events = pd.DataFrame(
        {
            "customer_id": ids[rng.integers(0, n, m)],
            "ts": AS_OF - pd.to_timedelta(rng.integers(1, 90 * 86400, m), unit="s"),
            "event": pd.array(
                rng.choice(["login", "page_view", "invest_success"], m, p=[0.5, 0.45, 0.05]),
                dtype="str",
            ),
            "page": pd.array([None] * m, dtype="str"),
            "product_id": pd.array([None] * m, dtype="str"),
            "properties": pd.array([None] * m, dtype="str"),
        }
    )
    customers = portrait[["customer_id", "channel"]].assign(
        phone=pd.array([f"1{i:010d}" for i in range(n)], dtype="str")
    )
    return {"customers": customers, "events": events, "transactions": events.iloc[:0]}, portrait


def main(n: int) -> dict[str, float]:
    """Time each step and return the timings."""
    tables, portrait = synthetic(n)
    timings: dict[str, float] = {"customers": n, "events": len(tables["events"])}
    started = time.perf_counter()
    counted = run_audience(
        QUERY, tables=tables, portrait=portrait, as_of=AS_OF, limit=0, explain=False
    )
    timings["count_s"] = time.perf_counter() - started
    started = time.perf_counter()
    result = run_audience(QUERY, tables=tables, portrait=portrait, as_of=AS_OF)
    timings["evaluate_and_explain_s"] = time.perf_counter() - started
    timings["exported_rows"] = len(result.frame)
    timings["opted_out_excluded"] = result.opted_out_excluded
    assert counted.count == len(result.frame)
    with tempfile.TemporaryDirectory() as tmp:
        for suffix in ("parquet", "csv"):
            started = time.perf_counter()
            write_audience(result, Path(tmp) / f"audience.{suffix}")
            timings[f"write_{suffix}_s"] = time.perf_counter() - started
    return timings


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    timings = main(n)
    width = max(map(len, timings))
    for key, value in timings.items():
        shown = f"{value:,.2f}" if key.endswith("_s") else f"{int(value):,}"
        print(f"{key:<{width}}  {shown:>12}")
    out = Path(__file__).parent / "results" / "audience_export.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(timings, indent=2))
    print(f"written {out}")
