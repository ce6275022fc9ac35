"""Feature building throughput: customers/s and events/s at 20k and 200k customers.

Run: `.venv/bin/python -m benchmarks.feature_build [--sizes 20000 200000]`. Prints a table and writes
benchmarks/results/feature_build.json. Not a test: machines are noisy.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from benchmarks.table import print_table
from features.demo_bank import DEMO_AS_OF, generate_demo_bank
from features.portrait import build_features
from features.validate import validate_tables  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "feature_build.json"


def measure(n_customers: int, seed: int = 7) -> dict:
    """Generate a bank, validate it and build features, timing each step."""
    t0 = time.perf_counter()
    bank = generate_demo_bank(n_customers=n_customers, seed=seed)
    t1 = time.perf_counter()
    data = validate_tables(bank.tables)
    t2 = time.perf_counter()
    portrait = build_features(data.tables, as_of=DEMO_AS_OF)
    t3 = time.perf_counter()
    events = len(data.tables["events"])
    return {
        "customers": n_customers,
        "events": events,
        "transactions": len(data.tables["transactions"]),
        "generate_s": round(t1 - t0, 2),
        "validate_s": round(t2 - t1, 2),
        "features_s": round(t3 - t2, 2),
        "customers_per_s": round(len(portrait) / (t3 - t2)),
        "events_per_s": round(events / (t3 - t2)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 200_000])
    args = parser.parse_args()
    rows = [measure(n) for n in args.sizes]
    print_table(rows)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"machine": platform.platform(), "rows": rows}, indent=2))
    print(f"written {RESULTS}")


if __name__ == "__main__":
    main()
