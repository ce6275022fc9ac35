"""Training and batch-scoring time and peak memory of the churn and conversion models at 20k and 200k.

Not a test: prints a table and writes benchmarks/results/train.json.
    .venv/bin/python -m benchmarks.train [--sizes 20000 200000] [--trials 1] [--data-root /tmp]
Each size runs in its own process, so peak memory (max RSS) is that size's alone. A bank is
read from DATA_ROOT/m{size//1000}k when `portrait demo-data` wrote one there (the 200k bank
holds ~38M events and takes minutes to generate), else generated in memory (seed 7).
`train_s` is portraits + training sets + both models; `score_s` is churn scores for every
active customer plus top-k recommendations (policy applied) for every customer.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.table import print_table  # noqa: E402
from features.demo_bank import DEMO_AS_OF, generate_demo_bank  # noqa: E402
from features.holdings import build_holdings  # noqa: E402
from features.pairs import build_pair_context  # noqa: E402
from features.policy import customer_policy  # noqa: E402
from features.validate import load_dataset  # noqa: E402
from portrait.settings import ModelSettings, TimeSettings  # noqa: E402
from portrait.stages.models import NEGATIVE_RATE  # noqa: E402
from serving.recommend_all import score_every_customer  # noqa: E402
from serving.recommend_index import customer_facts, product_facts  # noqa: E402
from serving.recommend_one import recommend_one  # noqa: E402
from training.models.churn import score_churn  # noqa: E402
from training.models.cutoffs import history, model_cutoffs, stamp  # noqa: E402
from training.models.datasets import churn_training_set, conversion_training_set, portraits_at  # noqa: E402
from training.models.modelling import train_churn, train_conversion  # noqa: E402

MEMORY_CAP_GB = 12  # the machine is shared: a run that passes this stops itself


def _watchdog(cap_gb: float) -> None:
    """Stop this process when its resident memory passes `cap_gb` (checked twice a second)."""
    me = psutil.Process()

    def watch() -> None:
        while True:
            if me.memory_info().rss > cap_gb * 2**30:
                print(f"stopped: resident memory passed {cap_gb} GB", flush=True)
                os._exit(3)
            time.sleep(0.5)

    threading.Thread(target=watch, daemon=True).start()


def _timed(fn, *args, **kw):
    """Run one step; print its name, seconds and the peak memory so far (progress of a long run)."""
    started = time.perf_counter()
    value = fn(*args, **kw)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"  {fn.__name__}: {seconds:.1f} s, peak {peak:.2f} GB", flush=True)
    return value, seconds


def _tables(n: int, data_root: Path):
    folder = data_root / f"m{n // 1000}k"
    if (folder / "customers.parquet").is_file():
        return load_dataset(folder, max_bad_fraction=0.01).tables
    return generate_demo_bank(n_customers=n, seed=7).tables


def bench(n: int, *, trials: int, data_root: Path) -> dict[str, float]:
    """Seconds per step and peak memory for one bank size."""
    tables, _ = _timed(_tables, n, data_root)
    rss_data = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    as_of, time_s = stamp(DEMO_AS_OF), TimeSettings()
    settings = ModelSettings(n_trials=trials)
    cuts = model_cutoffs(as_of, horizon_days=60, n_training=time_s.training_cutoffs)
    past = history(tables, as_of=as_of)
    portraits, t_features = _timed(portraits_at, past, [*cuts.labelled, as_of], active_days=90)
    churn_set, t_churn_set = _timed(
        churn_training_set, past, as_of=as_of, time=time_s, portraits=portraits
    )
    conv_set, t_conv_set = _timed(
        conversion_training_set, past, as_of=as_of, time=time_s,
        negative_rate=NEGATIVE_RATE, seed=1, portraits=portraits,
    )  # fmt: skip
    churn, t_churn = _timed(train_churn, churn_set, settings=settings, log=False)
    conv, t_conv = _timed(train_conversion, conv_set, settings=settings, log=False)
    portrait = portraits[as_of]
    scores, t_score_churn = _timed(score_churn, churn.model, portrait)
    context, t_context = _timed(build_pair_context, past, portrait, cutoff=as_of, window_days=60)
    policy = customer_policy(portrait, qualified_min_assets=3e6)
    (recs, index), t_recommend = _timed(
        score_every_customer, portrait=portrait, products=tables["products"],
        holdings=build_holdings(past["transactions"], as_of=as_of), policy=policy,
        segments=None, context=context, model=conv.model, rule_base=None, k=5,
    )  # fmt: skip
    one_id = str(portrait["customer_id"].iloc[len(portrait) // 2])
    facts = (
        product_facts(tables["products"], index.products),
        customer_facts(policy, index.customers),
    )
    one = dict(k=5, session_products=[], model=conv.model)
    recommend_one(index, *facts, one_id, **one)  # warm: the pair's reasons are explained once
    _, t_one = _timed(recommend_one, index, *facts, one_id, **one)
    train_s = t_features + t_churn_set + t_conv_set + t_churn + t_conv
    return {
        "customers": n,
        "events": len(tables["events"]),
        "training_pairs": len(conv_set.train),
        "train_s": train_s,
        "of_which_features_s": t_features,
        "of_which_pairs_s": t_conv_set,
        "score_s": t_score_churn + t_context + t_recommend,
        "one_customer_ms": 1000 * t_one,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "data_rss_gb": rss_data,
        "churn_pr_auc": churn.metrics["model"]["pr_auc"],
        "conversion_map5": conv.metrics["model"]["map@5"],
        "scored_rows": len(scores) + len(recs),
    }


def main() -> None:
    """Run every size in its own process, print the table and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 200_000])
    parser.add_argument("--trials", type=int, default=1)
    parser.add_argument("--data-root", type=Path, default=Path("/tmp"))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _watchdog(MEMORY_CAP_GB)
        row = bench(args.sizes[0], trials=args.trials, data_root=args.data_root)
        print("ROW " + json.dumps(row), flush=True)
        return
    rows = []
    for n in args.sizes:
        cmd = [sys.executable, "-m", "benchmarks.train", "--child", "--sizes", str(n),
               "--trials", str(args.trials), "--data-root", str(args.data_root)]  # fmt: skip
        lines = []
        with subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True) as child:
            for line in child.stdout:  # the child's progress, as it comes
                print(line, end="", flush=True)
                lines.append(line)
        if child.returncode:
            raise SystemExit(f"size {n} failed (exit {child.returncode})")
        rows.append(json.loads(next(x for x in lines if x.startswith("ROW "))[4:]))
        print(json.dumps(rows[-1]), flush=True)
    print_table(rows, width=18)
    out = ROOT / "benchmarks" / "results" / "train.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"trials": args.trials, "rows": rows}, indent=2))
    print(f"written {out}")


if __name__ == "__main__":
    main()
