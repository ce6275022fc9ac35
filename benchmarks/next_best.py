"""Benchmark: the next-best-product model against every baseline, at any catalogue size.

Three banks, side by side: the demo bank's default and `alt` configurations (25 products) and
MovieLens 100K (1,682 movies, from the wheel benchmarks/real_data.py caches); `demo-sellout`
(the default bank with leavers who sell out) on request. For each: the
conversion training set with default time settings, the tuned model, and every baseline the
code reports (popularity, recent / decayed popularity, item-item, EASE^R, rules, segment
popularity), scored by MAP@k

- on the validation fold (what the gate sees), and
- after as_of: the pairs of the customers known at as_of who bought in the horizon after it
  (realised purchases, the same candidates and campaign rule as the validation fold),

with the model's gap to the best baseline of that fold and its 95% bootstrap interval over the
customers who bought (an interval spanning 0: this bank cannot tell them apart).

The per-product propensity (mean ROC AUC, recall in the top 20% of customers) against a
logistic regression per product is on the validation rows. It measures the model, not the
served list (real_data.py scores recommendations.parquet, cold starts included). Prints a table and writes benchmarks/results/next_best.json. Not a test:

    nice .venv/bin/python -m benchmarks.next_best [--customers 5000] [--trials 5] [--banks ...]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from features.contract import CUSTOMER_ID, PRODUCT_ID  # noqa: E402
from features.demo_bank import DEMO_AS_OF, generate_demo_bank  # noqa: E402
from features.portrait import build_features  # noqa: E402
from portrait.settings import ModelSettings, TimeSettings  # noqa: E402
from training.models.baselines import product_baselines  # noqa: E402
from training.models.cutoffs import history  # noqa: E402
from training.models.datasets import conversion_pairs, conversion_training_set  # noqa: E402
from training.models.metrics import average_precision_at_k, paired_difference  # noqa: E402
from training.models.modelling import (  # noqa: E402
    pair_ranking_metrics,
    rank_pairs,
    train_conversion,
)

RESULTS = ROOT / "benchmarks" / "results" / "next_best.json"
BANKS = ("demo-default", "demo-alt", "movielens", "demo-sellout")


def bank(name: str, *, customers: int) -> tuple[dict[str, pd.DataFrame], pd.Timestamp, int]:
    """The tables, as_of and k of one bank (MovieLens: k = 10, as in real_data.py)."""
    if name == "movielens":
        from benchmarks.real_data import WHEELS, movielens_tables, wheel

        return movielens_tables(wheel(WHEELS["movielens"])), pd.Timestamp("1998-02-20"), 10
    kind = name.removeprefix("demo-")  # a profile, or `sellout`: the default's other leavers
    style = {"exit_style": "sellout"} if kind == "sellout" else {"profile": kind}
    tables = generate_demo_bank(n_customers=customers, seed=7, **style).tables
    return tables, pd.Timestamp(DEMO_AS_OF), 5


def after_as_of(tables, *, as_of: pd.Timestamp, time_: TimeSettings) -> pd.DataFrame:
    """The pairs at as_of of the customers who bought in the horizon after it, labelled."""
    portrait = build_features(history(tables, as_of=as_of), as_of=as_of,
                              active_days=time_.active_days)  # fmt: skip

    def buyers(block: pd.DataFrame, _: int) -> pd.DataFrame:
        return block.loc[block.groupby(CUSTOMER_ID)["converted"].transform("max") > 0]

    pairs, _ = conversion_pairs(tables, portrait, cutoff=as_of,
                                horizon_days=time_.conversion_horizon_days, keep=buyers)  # fmt: skip
    return pairs


def fold_metrics(pairs: pd.DataFrame, model, *, k: int) -> dict:
    """MAP@k of the model and every baseline on one fold's pairs, and the model's gap to the
    best baseline with a 95% bootstrap interval over the customers who bought."""
    scores = {"model": model.predict_proba(pairs)}
    scores |= {name: s["score"].to_numpy() for name, s in product_baselines(pairs).items()}
    out = {who: pair_ranking_metrics(pairs, s, k=k)[f"map@{k}"] for who, s in scores.items()}
    best = max((n for n in out if n != "model"), key=out.get)
    relevant = pairs.loc[pairs["converted"] == 1, [CUSTOMER_ID, PRODUCT_ID]]
    ap = {who: average_precision_at_k(rank_pairs(pairs, scores[who]), relevant, k=k)
          for who in ("model", best)}  # fmt: skip
    gap = paired_difference(ap["model"], ap[best])
    return out | {"best baseline": best, "model - best": gap["diff"],
                  "95% interval": f"{gap['low']:+.3f}..{gap['high']:+.3f}", "buyers": gap["n"]}  # fmt: skip


def measure(name: str, *, customers: int, trials: int) -> list[dict]:
    """Validation and after-as_of MAP@k of the model and every baseline on one bank."""
    start = time.perf_counter()
    tables, as_of, k = bank(name, customers=customers)
    time_ = TimeSettings()
    data = conversion_training_set(history(tables, as_of=as_of), as_of=as_of, time=time_,
                                   negative_rate=0.15, seed=42)  # fmt: skip
    outcome = train_conversion(data, settings=ModelSettings(n_trials=trials, seed=42, k=k),
                               log=False)  # fmt: skip
    later = after_as_of(tables, as_of=as_of, time_=time_)
    seconds = round(time.perf_counter() - start, 1)
    rows = []
    for fold, pairs in (("validation", outcome.valid), ("after as_of", later)):
        row = {"bank": name, "fold": fold, "metric": f"map@{k}"}
        row |= fold_metrics(pairs, outcome.model, k=k)
        row |= {"cut-offs": len(data.cutoffs.training), "variant": outcome.extra.get("choice"),
                "gate": outcome.primary, "serving baseline": outcome.extra.get("serving_baseline"),
                "seconds": seconds}  # fmt: skip
        rows.append(row)
    for who, values in outcome.extra.get("propensity", {}).items():  # on the validation fold
        rows[0] |= {f"propensity {who} {m}": v for m, v in values.items()}
    return rows


def main() -> None:
    """Measure every bank, print the table and write the JSON."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--banks", nargs="+", default=list(BANKS[:3]), choices=BANKS)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    rows = [r for b in args.banks for r in measure(b, customers=args.customers, trials=args.trials)]
    table = pd.DataFrame(rows).set_index(["bank", "fold"])
    propensity = [c for c in table.columns if c.startswith("propensity")]
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(table.drop(columns=propensity).to_string(float_format="{:.3f}".format))
        print(table[propensity].dropna(how="all").to_string(float_format="{:.3f}".format))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"results": rows}, indent=2, default=str))


if __name__ == "__main__":
    main()
