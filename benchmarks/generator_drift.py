"""Benchmark: which candidate generator ranks best at each cut-off of a bank (why a ranker can lose).

The conversion ranker learns from the training cut-offs and is gated on the validation one; it
can only beat the generators it reads (EASE^R, item-item, popularity, recent and decayed
popularity) if what they are worth is about the same at every cut-off. For each cut-off the
models use (training, validation) and for as_of (the purchases after it, as in
benchmarks/next_best.py), this prints the customers known there, the buyers and their
purchases in the horizon, and each generator's MAP@k over the buyers' candidate lists, with the
best one named. Writes benchmarks/results/generator_drift.json. Not a test:

    nice .venv/bin/python -m benchmarks.generator_drift [--banks ...] [--customers 5000]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.next_best import BANKS, bank  # noqa: E402
from features.contract import CUSTOMER_ID  # noqa: E402
from features.portrait import build_features  # noqa: E402
from portrait.settings import TimeSettings  # noqa: E402
from training.models.baselines import product_baselines  # noqa: E402
from training.models.cutoffs import history, history_start, model_cutoffs  # noqa: E402
from training.models.datasets import conversion_pairs  # noqa: E402
from training.models.modelling import pair_ranking_metrics  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "generator_drift.json"
GENERATORS = ("ease", "item_item", "popularity", "recent_popularity", "decayed_popularity")


def buyers_only(block: pd.DataFrame, _: int) -> pd.DataFrame:
    """Every pair of the customers who bought in the horizon (all that MAP@k reads)."""
    return block.loc[block.groupby(CUSTOMER_ID)["converted"].transform("max") > 0]


def at_cutoff(tables, cutoff: pd.Timestamp, *, role: str, time_: TimeSettings, k: int) -> dict:
    """Known customers, buyers, purchases and each generator's MAP@k at one cut-off."""
    past = history(tables, as_of=cutoff + pd.Timedelta(days=time_.conversion_horizon_days))
    portrait = build_features(history(past, as_of=cutoff), as_of=cutoff,
                              active_days=time_.active_days)  # fmt: skip
    pairs, _ = conversion_pairs(past, portrait, cutoff=cutoff, keep=buyers_only,
                                horizon_days=time_.conversion_horizon_days)  # fmt: skip
    row = {"cut-off": str(cutoff.date()), "role": role, "known": len(portrait),
           "buyers": int(pairs[CUSTOMER_ID].nunique()), "purchases": int(pairs["converted"].sum())}  # fmt: skip
    scores = product_baselines(pairs)
    for name in GENERATORS:
        row[name] = pair_ranking_metrics(pairs, scores[name]["score"].to_numpy(), k=k)[f"map@{k}"]
    return row | {"best": max(GENERATORS, key=row.get)}


def measure(name: str, *, customers: int) -> list[dict]:
    """Generator MAP@k at every training cut-off, the validation cut-off and as_of of one bank."""
    tables, as_of, k = bank(name, customers=customers)
    time_ = TimeSettings()
    cuts = model_cutoffs(as_of, horizon_days=time_.conversion_horizon_days,
                         n_training=time_.training_cutoffs,
                         start=history_start(history(tables, as_of=as_of)))  # fmt: skip
    roles = [(c, "training") for c in cuts.training]
    roles += [(cuts.validation, "validation"), (cuts.scoring, "after as_of")]
    return [{"bank": name, "metric": f"map@{k}"} | at_cutoff(tables, c, role=r, time_=time_, k=k)
            for c, r in roles]  # fmt: skip


def main() -> None:
    """Measure every bank, print the table and write the JSON."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--banks", nargs="+", default=list(BANKS[:3]), choices=BANKS)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    rows = [r for b in args.banks for r in measure(b, customers=args.customers)]
    table = pd.DataFrame(rows).set_index(["bank", "cut-off"])
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.to_string(float_format="{:.3f}".format))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"results": rows}, indent=2, default=str))


if __name__ == "__main__":
    main()
