"""Training and batch-scoring time of the churn and conversion models at 20k and 200k customers.

Not a test: prints a table and writes benchmarks/results/train.json.
    .venv/bin/python benchmarks/train.py [--sizes 20000 200000] [--trials 1]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.table import print_table  # noqa: E402
from features.demo_bank import DEMO_AS_OF, generate_demo_bank  # noqa: E402
from features.holdings import build_holdings  # noqa: E402
from portrait.settings import ModelSettings, TimeSettings  # noqa: E402
from serving.policy import customer_policy  # noqa: E402
from serving.recommend import index_inputs, recommend  # noqa: E402
from training.datasets import (  # noqa: E402
    churn_training_set,
    conversion_training_set,
    history,
    model_cutoffs,
    portraits_at,
    stamp,
)
from training.modelling import train_churn, train_conversion  # noqa: E402
from training.models_stage import NEGATIVE_RATE, score_churn  # noqa: E402
from training.pairs import build_pair_context  # noqa: E402


def _timed(fn, *args, **kw):
    started = time.perf_counter()
    value = fn(*args, **kw)
    return value, time.perf_counter() - started


def bench(n: int, *, trials: int) -> dict[str, float]:
    """Seconds per step for one bank size."""
    tables = generate_demo_bank(n_customers=n, seed=7).tables
    as_of, time_s = stamp(DEMO_AS_OF), TimeSettings()
    settings = ModelSettings(n_trials=trials)
    cuts = model_cutoffs(as_of, horizon_days=60, n_training=time_s.training_cutoffs)
    past = history(tables, as_of=as_of)
    portraits, t_features = _timed(portraits_at, past, [*cuts.labelled, as_of], active_days=90)
    churn_set, t_churn_set = _timed(
        churn_training_set, tables, as_of=as_of, time=time_s, portraits=portraits
    )
    conv_set, t_conv_set = _timed(
        conversion_training_set, tables, as_of=as_of, time=time_s,
        negative_rate=NEGATIVE_RATE, seed=1, portraits=portraits,
    )  # fmt: skip
    churn, t_churn = _timed(train_churn, churn_set, settings=settings, log=False)
    conv, t_conv = _timed(train_conversion, conv_set, settings=settings, log=False)
    portrait = portraits[as_of]
    scores, t_score_churn = _timed(score_churn, churn.model, portrait)
    context, t_context = _timed(build_pair_context, past, portrait, cutoff=as_of, window_days=60)
    inputs = index_inputs(
        portrait=portrait,
        policy_customers=customer_policy(portrait, qualified_min_assets=3e6),
        holdings=build_holdings(past["transactions"], as_of=as_of),
    )
    kw = dict(
        portrait=inputs.portrait, products=tables["products"], holdings=inputs.holdings,
        conversion_model=conv.model, rule_base=None, segments=None,
        policy_customers=inputs.policy_customers, k=5, context=context,
    )  # fmt: skip
    recs, t_recommend = _timed(recommend, portrait, **kw)
    one_id = portrait["customer_id"].iloc[len(portrait) // 2]
    recommend([one_id], **kw)  # warm
    _, t_one = _timed(recommend, [one_id], **kw)
    return {
        "customers": n,
        "training_pairs": len(conv_set.train),
        "validation_pairs": len(conv_set.valid),
        "features_s": t_features,
        "training_sets_s": t_churn_set + t_conv_set,
        "train_churn_s": t_churn,
        "train_conversion_s": t_conv,
        "score_churn_s": t_score_churn,
        "score_recommend_s": t_context + t_recommend,
        "one_customer_ms": 1000 * t_one,
        "churn_pr_auc": churn.metrics["model"]["pr_auc"],
        "conversion_map5": conv.metrics["model"]["map@5"],
        "scored_rows": len(scores) + len(recs),
    }


def main() -> None:
    """Run every size, print the table and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 200_000])
    parser.add_argument("--trials", type=int, default=1)
    args = parser.parse_args()
    rows = []
    for n in args.sizes:
        rows.append(bench(n, trials=args.trials))
        print(json.dumps(rows[-1]), flush=True)
    print_table(rows, width=18)
    out = ROOT / "benchmarks" / "results" / "train.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"trials": args.trials, "rows": rows}, indent=2))
    print(f"written {out}")


if __name__ == "__main__":
    main()
