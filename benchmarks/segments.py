"""Time to fit the segmentation and to assign segments at 20k and 200k customers.

The portrait is a 3,000-customer demo bank, resampled with replacement (and new ids, with a
little seeded jitter on the numbers) up to each size, so the shape of the data stays realistic
without simulating 200k customers. Prints a table and writes benchmarks/results/segments.json.

    .venv/bin/python -m benchmarks.segments [--sizes 20000 200000]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from features.demo_bank import DEMO_AS_OF, generate_demo_bank
from features.portrait import build_features
from training.segments import CLUSTER_FEATURES, SIGNUP_FEATURES, SegmentationModel, assign_segment

RESULTS = Path(__file__).parent / "results" / "segments.json"


def base_portrait(seed: int) -> pd.DataFrame:
    """Portrait of a 3,000-customer demo bank as of the demo cut-off."""
    bank = generate_demo_bank(n_customers=3000, seed=seed)
    tables = {
        name: t.astype(
            {c: "datetime64[us]" for c in t.columns if str(t[c].dtype).startswith("datetime")}
        )
        for name, t in bank.tables.items()
    }
    return build_features(tables, as_of=DEMO_AS_OF)


def resample(portrait: pd.DataFrame, *, n: int, seed: int) -> pd.DataFrame:
    """`n` rows drawn with replacement, fresh ids, numeric clustering features jittered by 5%."""
    rng = np.random.default_rng(seed)
    out = portrait.iloc[rng.integers(0, len(portrait), n)].reset_index(drop=True)
    out["customer_id"] = [f"B{i:07d}" for i in range(n)]
    numeric = [c for c in CLUSTER_FEATURES if c in out and c not in ("risk_level", "income_band")]
    out[numeric] = out[numeric] * rng.normal(1.0, 0.05, (n, len(numeric)))
    return out


def time_size(portrait: pd.DataFrame, *, n: int, seed: int) -> dict[str, float]:
    """Seconds to fit on the active customers, assign everyone, and assign from sign-up only."""
    frame = resample(portrait, n=n, seed=seed)
    active = frame.loc[frame["is_active"]]
    started = time.perf_counter()
    model = SegmentationModel(random_state=seed).fit(active)
    fit = time.perf_counter() - started
    started = time.perf_counter()
    assign_segment(model, frame)
    assign = time.perf_counter() - started
    started = time.perf_counter()
    assign_segment(model, frame[["customer_id", *SIGNUP_FEATURES]])
    signup = time.perf_counter() - started
    return {
        "customers": n,
        "fit_on": len(active),
        "k": model.k_,
        "fit_s": fit,
        "assign_s": assign,
        "assign_signup_s": signup,
    }


def main() -> None:
    """Run the benchmark, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 200_000])
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    portrait = base_portrait(args.seed)
    rows = [time_size(portrait, n=n, seed=args.seed) for n in args.sizes]
    table = pd.DataFrame(rows)
    print(table.to_string(index=False, float_format="{:.2f}".format))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"benchmark": "segments", "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
