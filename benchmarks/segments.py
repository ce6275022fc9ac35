"""Segments: time to fit and assign at 20k and 200k customers, and adjusted Rand vs planted personas.

**Timing** (default): the portrait is a 3,000-customer demo bank, resampled with replacement (and
new ids, with a little seeded jitter on the numbers) up to each size, so the shape of the data
stays realistic without simulating 200k customers. Writes benchmarks/results/segments.json.

    .venv/bin/python -m benchmarks.segments [--sizes 20000 200000]

**Personas** (``--truth``): for each configuration (``default`` and ``alt``,
features/demo_bank/profiles.py) and seed, a 5,000-customer bank is generated and the active
customers at the demo cut-off are clustered by:

- ``portrait``: the segments stage's clustering (life stage, engagement and product interests);
- ``no_interests``: the same model without the product-interest mix (ablation);
- ``before``: the clustering of branch ``merge`` (``git show merge:training/segments/model.py``),
  when git has that branch;
- ``reference``: the issue's peer, plain KMeans on each customer's share of buys and of product
  views per product plus scaled age and risk level, given the true number of personas.

Writes benchmarks/results/segment_truth.json.

    nice .venv/bin/python -m benchmarks.segments --truth [--customers 5000] [--seeds 1 2]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score
from sklearn.preprocessing import StandardScaler

from features.demo_bank import DEMO_AS_OF, generate_demo_bank
from features.portrait import build_features
from portrait.settings import SegmentSettings
from training.segments.build import interest_frame, with_interests
from training.segments.model import (
    CLUSTER_FEATURES,
    SIGNUP_FEATURES,
    SegmentationModel,
    assign_segment,
    segmentation_model,
)

RESULTS = Path(__file__).parent / "results" / "segments.json"
TRUTH_RESULTS = Path(__file__).parent / "results" / "segment_truth.json"


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


def bank_frames(profile: str, *, seed: int, n: int) -> tuple[dict, pd.DataFrame, pd.Series]:
    """Tables, portrait and persona per portrait row of one generated bank."""
    bank = generate_demo_bank(n_customers=n, seed=seed, profile=profile)
    tables = {
        name: t.astype({c: "datetime64[us]" for c in t.columns if str(t[c].dtype).startswith("datetime")})
        for name, t in bank.tables.items()
    }  # fmt: skip
    portrait = build_features(tables, as_of=DEMO_AS_OF)
    personas = bank.truth["customers"].set_index("customer_id")["persona"]
    return tables, portrait, portrait["customer_id"].map(personas)


def reference_labels(tables: dict, active: pd.DataFrame, *, k: int, seed: int) -> np.ndarray:
    """The issue's peer: KMeans on per-product shares of buys and of views, plus age and risk level."""
    tx, ev = tables["transactions"], tables["events"]
    buys = tx.loc[(tx["ts"] < DEMO_AS_OF) & tx["type"].eq("buy") & tx["product_id"].notna()]
    views = ev.loc[(ev["ts"] < DEMO_AS_OF) & ev["product_id"].notna()]
    blocks = [
        pd.crosstab(rows["customer_id"], rows["product_id"], normalize="index")
        .reindex(active["customer_id"]).fillna(0.0).to_numpy()
        for rows in (buys, views)
    ]  # fmt: skip
    life = active[["age", "risk_level"]].astype(float)
    life = StandardScaler().fit_transform(life.fillna(life.median()))
    design = np.hstack([*blocks, life])
    return KMeans(n_clusters=k, n_init=4, random_state=seed).fit_predict(design)


def before_model(seed: int):
    """The segmentation estimator of branch ``merge`` (None when git does not have it)."""
    try:
        source = subprocess.run(
            ["git", "show", "merge:training/segments/model.py"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    path = Path(tempfile.mkdtemp()) / "segments_before.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("segments_before", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SegmentationModel(random_state=seed)


def measure(profile: str, *, seed: int, n: int) -> dict:
    """ARI vs personas of every method on one bank (active customers at the demo cut-off)."""
    tables, portrait, personas = bank_frames(profile, seed=seed, n=n)
    settings = SegmentSettings()
    full = with_interests(
        portrait, interest_frame(tables, portrait, as_of=DEMO_AS_OF, settings=settings)
    )
    active = full["is_active"].astype(bool).to_numpy()
    truth = personas[active].to_numpy()
    row = {"profile": profile, "seed": seed, "customers": n, "active": int(active.sum()),
           "personas": int(pd.Series(truth).nunique())}  # fmt: skip
    fitted = {"portrait": segmentation_model(settings).fit(full.loc[active])}
    fitted["no_interests"] = segmentation_model(settings).fit(portrait.loc[active])
    old = before_model(settings.seed)
    if old is not None:
        fitted["before"] = old.fit(portrait.loc[active])
    for name, model in fitted.items():
        frame = full if name == "portrait" else portrait
        row[f"{name}_ari"] = adjusted_rand_score(truth, model.predict(frame.loc[active]))
        row[f"{name}_k"] = int(model.k_)
    reference = reference_labels(
        tables, portrait.loc[active], k=row["personas"], seed=settings.seed
    )
    row["reference_ari"] = adjusted_rand_score(truth, reference)
    row["portrait_names"] = list(fitted["portrait"].names_.values())
    row["portrait_stability_ari"] = fitted["portrait"].stability_ari_
    return row


def run_truth(args: argparse.Namespace) -> None:
    """Every configuration and seed: print the ARI table, write the JSON."""
    rows = [measure(p, seed=s, n=args.customers) for p in args.profiles for s in args.seeds]
    table = pd.DataFrame(rows).drop(columns="portrait_names")
    print(table.to_string(index=False, float_format="{:.3f}".format))
    for row in rows:
        print(f"{row['profile']} seed {row['seed']}: {'; '.join(row['portrait_names'])}")
    TRUTH_RESULTS.parent.mkdir(parents=True, exist_ok=True)
    TRUTH_RESULTS.write_text(json.dumps({"benchmark": "segment_truth", "rows": rows}, indent=2))


def main() -> None:
    """Run the benchmark, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 200_000])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--truth", action="store_true", help="ARI vs planted personas instead")
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--profiles", nargs="+", default=["default", "alt"])
    args = parser.parse_args()
    if args.truth:
        run_truth(args)
        return
    portrait = base_portrait(args.seed)
    rows = [time_size(portrait, n=n, seed=args.seed) for n in args.sizes]
    table = pd.DataFrame(rows)
    print(table.to_string(index=False, float_format="{:.2f}".format))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"benchmark": "segments", "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
