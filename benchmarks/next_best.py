"""Benchmark: next best product and per-product propensity on demo banks, against the baselines.

For each demo configuration (default `silent` leavers, and `sellout`) at N customers: the
conversion training set with default time settings, the tuned model, and every baseline the
code reports (popularity, recent / decayed popularity, item-item, EASE^R, rules, segment
popularity), all scored by MAP@k on the validation fold; then the per-product propensity
(mean ROC AUC and recall in the top 20% of customers) against a logistic regression per
product. Works on older code too (it prints what that code reports). Not a test; run nice'd:

    nice .venv/bin/python benchmarks/next_best.py [--customers 5000] [--trials 5]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from features.demo_bank import DEMO_AS_OF, generate_demo_bank  # noqa: E402
from portrait.settings import ModelSettings, TimeSettings  # noqa: E402
from training.models.cutoffs import history  # noqa: E402
from training.models.datasets import conversion_training_set  # noqa: E402
from training.models.modelling import train_conversion  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "next_best.json"


def measure(style: str, *, customers: int, trials: int) -> dict:
    """MAP@k of the model and every baseline, and propensity against LR, on one demo bank."""
    start = time.perf_counter()
    tables = generate_demo_bank(n_customers=customers, seed=7, exit_style=style).tables
    settings = ModelSettings(n_trials=trials, seed=42, k=5)
    data = conversion_training_set(history(tables, as_of=DEMO_AS_OF), as_of=DEMO_AS_OF,
                                   time=TimeSettings(), negative_rate=0.15, seed=42)  # fmt: skip
    outcome = train_conversion(data, settings=settings, log=False)
    row = {"bank": f"demo {style} {customers}", "gate_metric": outcome.primary}
    row |= {who.removeprefix("baseline:"): m.get("map@5") for who, m in outcome.metrics.items()}
    for who, values in outcome.extra.get("propensity", {}).items():
        row |= {f"propensity {who} {m}": v for m, v in values.items()}
    row["serving_baseline"] = outcome.extra.get("serving_baseline")
    row["seconds"] = round(time.perf_counter() - start, 1)
    return row


def main() -> None:
    """Measure both configurations, print the table and write the JSON."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--styles", nargs="+", default=["silent", "sellout"])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    rows = [measure(s, customers=args.customers, trials=args.trials) for s in args.styles]
    for row in rows:
        print(json.dumps(row, indent=1, default=str), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"results": rows}, indent=2, default=str))


if __name__ == "__main__":
    main()
