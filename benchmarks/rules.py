"""Benchmark: rule mining time and peak memory, sparse versus dense one-hot input.

Synthetic baskets (1 + Poisson(2) items each, mildly skewed product popularity, a few
planted pairs) for 100k and 1M baskets over 50 and 200 products. `seconds` is encoding plus
mining; `rank_seconds` is the ranking step (lift within 5 strata and its lower bound) after it. Each case runs in its
own process so peak memory (max RSS, minus the RSS after imports) is the case's alone.

    .venv/bin/python benchmarks/rules.py            # all cases, table + benchmarks/results/rules.json
    .venv/bin/python benchmarks/rules.py --quick    # 100k baskets only
    .venv/bin/python benchmarks/rules.py --catalogue  # large catalogues within rules.max_itemsets
    .venv/bin/python benchmarks/rules.py --confounders  # planted-affinity ranks per correction

`--catalogue` mines real-catalogue shapes with the rules stage's itemset budget
(training/rules/budget.py): 1M baskets over 2,000 products, and 750 wide baskets (~105 items)
over 1,700 products (a ratings catalogue, the shape that ran for hours before the budget). It
reports the support the budget chose, the estimate, the itemsets and rules mined and the time
of the estimate and of the mining; results in benchmarks/results/rules_catalogue.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from portrait.settings import RuleSettings  # noqa: E402
from training.rules.mining import mine_rules, one_hot  # noqa: E402
from training.rules.ranking import rank_rules  # noqa: E402

SETTINGS = RuleSettings(min_support=0.01, min_confidence=0.05, min_lift=1.2, max_len=3)
SEED = 42


def synthetic_baskets(*, n_baskets: int, n_products: int, seed: int) -> pd.DataFrame:
    """Baskets [basket_id, customer_id, item] with skewed popularity and planted pairs (i -> i+1)."""
    rng = np.random.default_rng(seed)
    popularity = rng.dirichlet(np.full(n_products, 2.0))
    sizes = 1 + rng.poisson(2.0, n_baskets)
    basket = np.repeat(np.arange(n_baskets), sizes)
    item = rng.choice(n_products, size=len(basket), p=popularity)
    planted = (item % 10 == 0) & (
        rng.random(len(item)) < 0.5
    )  # every 10th product pulls its neighbour
    basket = np.concatenate([basket, basket[planted]])
    item = np.concatenate([item, (item[planted] + 1) % n_products])
    ids = pd.Series(basket).astype(str)
    return pd.DataFrame(
        {"basket_id": ids, "customer_id": ids, "item": "P" + pd.Series(item).astype(str)}
    )


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_case(n_baskets: int, n_products: int, mode: str) -> dict:
    """Mine one case in this process and return its numbers."""
    baskets = synthetic_baskets(n_baskets=n_baskets, n_products=n_products, seed=SEED)
    base = _rss_mb()
    started = time.perf_counter()
    onehot = one_hot(baskets, min_support=SETTINGS.min_support, dense=mode == "dense")
    encode_s = time.perf_counter() - started
    rules = mine_rules(baskets, settings=SETTINGS, kind="holding", dense=mode == "dense")
    total_s = time.perf_counter() - started
    strata = pd.Series(  # five risk levels, as the rules stage ranks by default
        np.random.default_rng(SEED).integers(1, 6, n_baskets).astype(str),
        index=np.arange(n_baskets).astype(str),
    )
    ranked_at = time.perf_counter()
    rank_rules(rules, baskets, strata)
    rank_s = time.perf_counter() - ranked_at
    return {
        "baskets": n_baskets, "products": n_products, "mode": mode, "columns_kept": onehot.shape[1],
        "onehot_mb": round(onehot.memory_usage(deep=True).sum() / 2**20, 1), "rules": len(rules),
        "seconds": round(total_s, 2), "encode_seconds": round(encode_s, 2),
        "rank_seconds": round(rank_s, 2),
        "peak_rss_over_base_mb": round(_rss_mb() - base, 1),
    }  # fmt: skip


def zipf_baskets(*, n_baskets: int, n_products: int, mean_size: float, seed: int) -> pd.DataFrame:
    """Baskets whose item popularity falls as 1 / rank^0.9 (a real catalogue's long tail)."""
    rng = np.random.default_rng(seed)
    popularity = 1.0 / np.arange(1, n_products + 1) ** 0.9
    sizes = np.minimum(1 + rng.poisson(mean_size - 1, n_baskets), n_products)
    basket = np.repeat(np.arange(n_baskets), sizes)
    item = rng.choice(n_products, size=len(basket), p=popularity / popularity.sum())
    ids = pd.Series(basket).astype(str)
    frame = pd.DataFrame(
        {"basket_id": ids, "customer_id": ids, "item": "P" + pd.Series(item).astype(str)}
    )
    return frame.drop_duplicates(["basket_id", "item"])


CATALOGUE_CASES = {"2000x1M": (1_000_000, 2000, 4.0), "1700x750wide": (750, 1700, 105.0)}


def run_catalogue_case(name: str) -> dict:
    """Budget, then mine, one catalogue case; the rules stage's path (portrait.stages.rules)."""
    from training.rules.build import within_budget

    n_baskets, n_products, size = CATALOGUE_CASES[name]
    baskets = zipf_baskets(n_baskets=n_baskets, n_products=n_products, mean_size=size, seed=SEED)
    settings = RuleSettings()
    started = time.perf_counter()
    used, note = within_budget(baskets, settings, kind="holding")
    budget_s = time.perf_counter() - started
    rules = mine_rules(baskets, settings=used, kind="holding")
    total_s = time.perf_counter() - started
    return {
        "case": name, "baskets": n_baskets, "products": n_products,
        "items_per_basket": round(len(baskets) / n_baskets, 1),
        "min_support_asked": settings.min_support, "min_support_used": used.min_support,
        "max_itemsets": settings.max_itemsets, "note": note, "rules": len(rules),
        "budget_seconds": round(budget_s, 2), "seconds": round(total_s, 2),
    }  # fmt: skip


def main() -> None:
    """Run every case in a subprocess, print a table and write benchmarks/results/rules.json."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--case", help="internal: n_baskets,n_products,mode")
    parser.add_argument("--quick", action="store_true", help="100k baskets only")
    parser.add_argument(
        "--catalogue", action="store_true", help="large catalogues, with the budget"
    )
    parser.add_argument(
        "--confounders", action="store_true", help="planted-affinity ranks per correction"
    )
    parser.add_argument("--seeds", default="7,2,3", help="with --confounders")
    parser.add_argument("--customers", type=int, default=5000, help="with --confounders")
    parser.add_argument(
        "--profiles", nargs="+", default=["default", "alt"], help="with --confounders"
    )
    args = parser.parse_args()
    if args.confounders:
        from benchmarks.rules_confounders import confounders_main

        seeds = [int(s) for s in args.seeds.split(",")]
        return confounders_main(seeds=seeds, n_customers=args.customers, profiles=args.profiles)
    if args.case and args.case in CATALOGUE_CASES:
        print(json.dumps(run_catalogue_case(args.case)))
        return
    if args.catalogue:
        return catalogue_main()
    if args.case:
        n, p, mode = args.case.split(",")
        print(json.dumps(run_case(int(n), int(p), mode)))
        return
    sizes = [100_000] if args.quick else [100_000, 1_000_000]
    results = []
    for n in sizes:
        for p in (50, 200):
            for mode in ("sparse", "dense"):
                out = subprocess.run(
                    [sys.executable, __file__, "--case", f"{n},{p},{mode}"],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                results.append(json.loads(out.stdout.strip().splitlines()[-1]))
                print(f"done: {results[-1]}", file=sys.stderr, flush=True)
    table = pd.DataFrame(results)
    print("\n" + table.to_string(index=False))
    target = ROOT / "benchmarks" / "results" / "rules.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps({"settings": vars(SETTINGS), "cases": results}, indent=2))


def catalogue_main() -> None:
    """Every catalogue case in its own process; table and benchmarks/results/rules_catalogue.json."""
    results = []
    for name in CATALOGUE_CASES:
        out = subprocess.run([sys.executable, __file__, "--case", name],
                             capture_output=True, text=True, check=True)  # fmt: skip
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"done: {results[-1]}", file=sys.stderr, flush=True)
    table = pd.DataFrame(results).drop(columns="note")
    print("\n" + table.to_string(index=False))
    for r in results:
        print(f"{r['case']}: {r['note'] or 'support unchanged'}")
    target = ROOT / "benchmarks" / "results" / "rules_catalogue.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps({"cases": results}, indent=2))


if __name__ == "__main__":
    main()
