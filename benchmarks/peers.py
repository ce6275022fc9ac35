"""Peers: our feature and rule code against what a user would otherwise write, in one run, as ratios.

Run: `.venv/bin/python benchmarks/peers.py [--customers 20000]`. Prints a table and writes
benchmarks/results/peers.json. Compared on the same validated demo bank:

- event features: ours (`features.behaviour.event_features`, bincount over customer codes) against
  a straightforward pandas `groupby().agg` computing the same window counts and recency;
- rules: ours (`mine_rules`, sparse one-hot + fpgrowth) against mlxtend on a dense one-hot frame
  and, where Java and pyspark are available, Spark local with `pyspark.ml.fpm.FPGrowth`
  (skipped with a message otherwise).

A ratio above 1 means the peer took longer than ours. Not a test.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from features.behaviour import LINE_PREFIX, event_features  # noqa: E402
from features.contract import BUSINESS_LINES, CUSTOMER_ID, TS  # noqa: E402
from features.demo_bank import DEMO_AS_OF, generate_demo_bank  # noqa: E402
from features.validate import validate_tables  # noqa: E402
from portrait.settings import RuleSettings  # noqa: E402
from training.rules import mining as rl  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "peers.json"
AS_OF = DEMO_AS_OF.as_unit("ns")  # validated timestamps are datetime64[ns]
WINDOWS = (7, 30, 90)


def clock(fn, *args, repeat: int = 3, **kwargs) -> tuple[float, object]:
    """Best of ``repeat`` wall times and the last result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn(*args, **kwargs)
        best = min(best, time.perf_counter() - started)
    return best, result


def groupby_event_features(events: pd.DataFrame, index: pd.Index) -> pd.DataFrame:
    """The way a user writes it: filter, flag columns, one groupby().agg over customers.

    The same 25 columns as ``event_features``: six event kinds x three windows, business-line
    counts, trend, recency of any event and of a login, active days in 30 days.
    """
    ev = events.loc[events[TS] < AS_OF]
    age = (AS_OF - ev[TS]).dt.total_seconds() / 86400
    name = ev["event"]
    kinds = {
        "events": pd.Series(True, index=ev.index), "logins": name == "login",
        "page_views": name == "page_view",
        "product_views": name.str.replace(LINE_PREFIX, "", regex=True) == "view_product",
        "credit_report_views": (name == "page_view") & (ev["page"] == "credit_report"),
        "shares": name == "share",
    }  # fmt: skip
    flags = {CUSTOMER_ID: ev[CUSTOMER_ID]}
    for label, hit in kinds.items():
        for w in WINDOWS:
            flags[f"{label}_{w}d"] = hit & (age <= w)
    for line in BUSINESS_LINES:
        flags[f"{line}_events_90d"] = name.str.startswith(f"{line}_") & (age <= 90)
    counts = [c for c in flags if c != CUSTOMER_ID]
    flags.update(last=ev[TS], last_login=ev[TS].where(name == "login"),
                 day_30d=np.floor(age).where(age <= 30))  # fmt: skip
    agg = {**dict.fromkeys(counts, "sum"), "last": "max", "last_login": "max", "day_30d": "nunique"}
    out = pd.DataFrame(flags).groupby(CUSTOMER_ID).agg(agg).reindex(index)
    out[counts] = out[counts].fillna(0)
    out["events_trend"] = (out["events_30d"] + 1.0) / (
        (out["events_90d"] - out["events_30d"]) / 2.0 + 1.0
    )
    out["days_since_last_event"] = (AS_OF - out.pop("last")).dt.total_seconds() / 86400
    out["days_since_last_login"] = (AS_OF - out.pop("last_login")).dt.total_seconds() / 86400
    out["active_days_30d"] = out.pop("day_30d").fillna(0)
    return out


def spark_rules(baskets: pd.DataFrame, settings: RuleSettings) -> tuple[float | None, str]:
    """Spark local FPGrowth on the same baskets, or (None, why it was skipped)."""
    if shutil.which("java") is None:
        return None, "skipped: no Java runtime on PATH"
    try:
        from pyspark.ml.fpm import FPGrowth
        from pyspark.sql import SparkSession
    except ImportError:
        return None, "skipped: pyspark is not installed (uv sync --group peers, or make bench)"
    spark = SparkSession.builder.master("local[2]").appName("peers").getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    try:
        lists = baskets.groupby(rl.BASKET_ID)[rl.ITEM].apply(lambda s: sorted(set(s))).tolist()
        df = spark.createDataFrame([(items,) for items in lists], ["items"]).cache()
        df.count()
        growth = FPGrowth(itemsCol="items", minSupport=settings.min_support,
                          minConfidence=settings.min_confidence)  # fmt: skip
        # The first fit also warms the JVM up; the best of the following ones is compared.
        seconds, rules = clock(lambda: growth.fit(df).associationRules.count(), repeat=3)
        return seconds, f"ok ({rules} rules before our lift and per-kind filters; warm JVM)"
    finally:
        spark.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=20_000)
    args = parser.parse_args()
    bank = generate_demo_bank(n_customers=args.customers, seed=7)
    tables = {}
    for name, frame in bank.tables.items():  # us stamps: load.py's range check overflows on ns
        stamps = {c: "datetime64[us]" for c, t in frame.dtypes.items() if t.kind == "M"}
        tables[name] = frame.astype(stamps)
    tables = validate_tables(tables).tables
    index = pd.Index(tables["customers"][CUSTOMER_ID].sort_values(), name=CUSTOMER_ID)
    rows = []
    ours, mine = clock(event_features, tables, index, as_of=AS_OF)
    peer, theirs = clock(groupby_event_features, tables["events"], index)
    same = np.allclose(
        mine.loc[:, theirs.columns].to_numpy(float), theirs.to_numpy(float), equal_nan=True
    )
    rows.append({"task": "event features", "ours": "bincount per customer code",
                 "peer": "pandas groupby().agg", "ours_s": ours, "peer_s": peer,
                 "status": "same values" if same else "VALUES DIFFER"})  # fmt: skip
    settings = RuleSettings()
    baskets = rl.build_holding_baskets(tables["transactions"], as_of=AS_OF)
    ours, _ = clock(rl.mine_rules, baskets, settings=settings, kind="holding")
    dense, _ = clock(rl.mine_rules, baskets, settings=settings, kind="holding", dense=True)
    rows.append({"task": "holding rules", "ours": "fpgrowth, sparse one-hot",
                 "peer": "mlxtend fpgrowth, dense frame", "ours_s": ours, "peer_s": dense,
                 "status": "ok"})  # fmt: skip
    spark_s, status = spark_rules(baskets, settings)
    rows.append({"task": "holding rules", "ours": "fpgrowth, sparse one-hot",
                 "peer": "Spark local FPGrowth", "ours_s": ours, "peer_s": spark_s,
                 "status": status})  # fmt: skip
    print(
        f"{args.customers:,} customers, {len(tables['events']):,} events, {baskets[rl.BASKET_ID].nunique():,} baskets"
    )
    print(f"{'task':<15} {'peer':<30} {'ours s':>8} {'peer s':>8} {'peer/ours':>9}  status")
    for r in rows:
        ratio = f"{r['peer_s'] / r['ours_s']:.2f}x" if r["peer_s"] else "-"
        peer_s = f"{r['peer_s']:.3f}" if r["peer_s"] else "-"
        print(
            f"{r['task']:<15} {r['peer']:<30} {r['ours_s']:>8.3f} {peer_s:>8} {ratio:>9}  {r['status']}"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"machine": platform.platform(), "customers": args.customers,
                                   "rows": rows}, indent=2) + "\n")  # fmt: skip
    print(f"written {RESULTS}")


if __name__ == "__main__":
    main()
