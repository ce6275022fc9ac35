"""LightGBM training threads and OpenMP's wait policy: one core against every core, in one run.

The models stage trains sets of PARALLEL_TRAIN_ROWS rows and more on every core, and the CLI sets
OMP_WAIT_POLICY=PASSIVE (threads sleep at a barrier instead of spinning). This measures why: the
same fit (the models' parameters, --rows rows of 50 features) with 1 thread and every thread,
under OpenMP's default (spinning) and the passive policy, each in its own process (the policy is
read when LightGBM loads), taking turns so all see the same machine. Prints wall and CPU seconds
and the ratio to the 1-thread fit of the same policy, with the load average; writes
benchmarks/results/threads.json. On an idle machine every core should win; on a shared one the
spinning threads lose badly, the sleeping ones do not.

    python -m benchmarks.threads [--rows 250000] [--trees 150] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.table import print_table  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "threads.json"
CHILD = """
import json, sys, time
import numpy as np, lightgbm as lgb
from training.models.gbm import BASE_PARAMS
rows, trees, threads = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(0)
x = rng.normal(size=(rows, 50))
y = (x[:, 0] + x[:, 1] * x[:, 2] + rng.normal(size=rows) > 1).astype(float)
data = lgb.Dataset(x, y, params={"feature_pre_filter": False}).construct()
params = {**BASE_PARAMS, "num_leaves": 15, "max_depth": 4, "learning_rate": 0.05, "seed": 1,
          "num_threads": threads}
wall, cpu = time.perf_counter(), time.process_time()
lgb.train(params, data, num_boost_round=trees)
print(json.dumps({"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu}))
"""


def fit(rows: int, trees: int, threads: int, policy: str) -> dict:
    """One fit in a fresh process with OMP_WAIT_POLICY=`policy`."""
    env = {**os.environ, "OMP_WAIT_POLICY": policy}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(rows), str(trees), str(threads)],
        env=env, capture_output=True, text=True, check=True, cwd=Path(__file__).parent.parent,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=250_000)
    parser.add_argument("--trees", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    load_start = os.getloadavg()[0]
    rows = []
    for policy in ("ACTIVE", "PASSIVE"):
        runs: dict[int, list[dict]] = {1: [], 0: []}
        for _ in range(args.repeats):  # the two thread counts take turns
            for threads in (1, 0):
                runs[threads].append(fit(args.rows, args.trees, threads, policy))
        one = min(r["wall_s"] for r in runs[1])
        for threads, label in ((1, "1"), (0, f"all ({os.cpu_count()})")):
            best = min(runs[threads], key=lambda r: r["wall_s"])
            rows.append({"wait policy": policy.lower(), "threads": label,
                         "wall s": best["wall_s"], "cpu s": best["cpu_s"],
                         "speed-up vs 1": one / best["wall_s"]})  # fmt: skip
    load = {"start": load_start, "end": os.getloadavg()[0]}
    print(f"LightGBM fit, {args.rows:,} rows x 50 features, {args.trees} trees; best of "
          f"{args.repeats}; load average {load['start']:.2f} -> {load['end']:.2f}")  # fmt: skip
    print_table(rows)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"rows": rows, "load": load, "args": vars(args)}, indent=2))


if __name__ == "__main__":
    main()
