"""Benchmark the demo bank generator: time, rows and planted numbers per size (not a test)."""

from __future__ import annotations

import argparse
import resource
import time

from sklearn.metrics import roc_auc_score

from features.demo_bank import generate_demo_bank


def measure(n: int, seed: int) -> dict:
    """Generate one bank and summarise it."""
    start = time.perf_counter()
    bank = generate_demo_bank(n_customers=n, seed=seed)
    seconds = time.perf_counter() - start
    truth = bank.truth["customers"]
    active = truth[truth["active_at_as_of"]]
    camp = bank.truth["campaign"]
    return {
        "customers": n,
        "seconds": round(seconds, 1),
        "events": len(bank.tables["events"]),
        "transactions": len(bank.tables["transactions"]),
        "churn_rate": round(active["churn_label"].mean(), 4),
        "mean_p_churn": round(active["p_churn_true"].mean(), 4),
        "auc_p_churn": round(roc_auc_score(active["churn_label"], active["p_churn_true"]), 4),
        "campaign_base": round(camp["realised_control_rate"], 4),
        "true_ate": round(camp["true_ate"], 4),
        "realised_diff": round(camp["realised_treatment_rate"] - camp["realised_control_rate"], 4),
        "max_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2),
    }


def main() -> None:
    """Print one row per requested size."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 200_000])
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rows = [measure(n, args.seed) for n in args.sizes]
    keys = list(rows[0])
    print(" | ".join(keys))
    for row in rows:
        print(" | ".join(str(row[k]) for k in keys))


if __name__ == "__main__":
    main()
