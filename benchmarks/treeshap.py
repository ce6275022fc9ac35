"""TreeSHAP for a batch: the per-leaf tables (training/models/treeshap.py) against LightGBM.

The models stage explains every recommended pair the model chose (0.93 million at 200k
customers). This fits a model the shape of the tuned conversion model (--trees trees of depth 4,
up to 15 leaves, 40 numeric features with NaNs and 3 categoricals), then explains the same
--rows rows with LightGBM's `pred_contrib` (its peer: the path-dependent algorithm in C++) and
with the tables, each on 1 thread and on every core, taking turns; prints the best of
--repeats, the ratio to LightGBM on the same threads, the largest difference between the two,
and the load average; writes benchmarks/results/treeshap.json.

    python -m benchmarks.treeshap [--rows 100000] [--trees 600] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.table import print_table  # noqa: E402
from training.models.treeshap import FastTreeShap, float_matrix  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "treeshap.json"


def frame(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(rng.normal(size=(rows, 40)), columns=[f"x{i}" for i in range(40)])
    x = x.mask(rng.random(x.shape) < 0.1)  # a tenth missing
    for i, n in enumerate((40, 8, 3)):  # a product-like, a category-like and a small code
        x[f"c{i}"] = pd.Categorical(rng.integers(0, n, rows), categories=range(n))
    return x


def model(trees: int) -> lgb.Booster:
    x = frame(100_000, 0)
    rng = np.random.default_rng(1)
    logit = x["x0"].fillna(0) * x["x1"].fillna(1) + x["x2"].fillna(0) + (x["c0"].cat.codes % 7 == 0)
    y = (rng.random(len(x)) < 1 / (1 + np.exp(-logit.to_numpy(dtype=float)))).astype(int)
    params = {"objective": "binary", "verbosity": -1, "num_leaves": 15, "max_depth": 4,
              "learning_rate": 0.04, "seed": 1, "min_child_samples": 100}  # fmt: skip
    return lgb.train(params, lgb.Dataset(x, y), num_boost_round=trees)


def timed(run) -> tuple[float, float, np.ndarray]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = run()
    return time.perf_counter() - wall, time.process_time() - cpu, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--trees", type=int, default=600)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    load_start = os.getloadavg()[0]
    booster, x = model(args.trees), frame(args.rows, 2)
    compile_s, _, tables = timed(lambda: FastTreeShap.of(booster, num_iteration=None,
                                                         n_features=x.shape[1]))  # fmt: skip
    cores = os.cpu_count() or 1
    ways = {
        "LightGBM pred_contrib": lambda t: booster.predict(x, pred_contrib=True, num_threads=t)[:, :-1],
        "per-leaf tables": lambda t: tables.contributions(float_matrix(x), threads=t),
    }  # fmt: skip
    best: dict[tuple[str, int], tuple[float, float]] = {}
    values = {}
    for _ in range(args.repeats):  # every way and thread count takes turns
        for threads in (1, cores):
            for name, run in ways.items():
                wall, cpu, values[name] = timed(lambda run=run, t=threads: run(t))
                old = best.get((name, threads))
                best[name, threads] = min(old, (wall, cpu)) if old else (wall, cpu)
    rows = [{"method": name, "threads": t, "wall s": w, "cpu s": c,
             "us per row": w / args.rows * 1e6,
             "vs LightGBM": best["LightGBM pred_contrib", t][0] / w}
            for (name, t), (w, c) in best.items()]  # fmt: skip
    diff = float(np.abs(values["per-leaf tables"] - values["LightGBM pred_contrib"]).max())
    load = {"start": load_start, "end": os.getloadavg()[0]}
    print(f"TreeSHAP of {args.rows:,} rows, {args.trees} trees of depth 4 (43 features); tables "
          f"compiled in {compile_s:.2f} s; largest difference {diff:.1e}; best of {args.repeats}; "
          f"load average {load['start']:.2f} -> {load['end']:.2f}")  # fmt: skip
    print_table(rows)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"rows": rows, "compile_s": compile_s, "max_abs_diff": diff,
                                   "load": load, "args": vars(args)}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
