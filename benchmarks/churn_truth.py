"""Churn model: validation ROC AUC vs ROC AUC on the outcomes after as_of vs the planted truth.

Not a test: prints a table and writes benchmarks/results/churn_truth.json (or --out).
    nice -n 10 .venv/bin/python -m benchmarks.churn_truth --banks /tmp/bank_default /tmp/bank_sellout
Each bank is a `portrait demo-data` directory (with truth/). Per bank:
- `valid_auc`: the churn model (tuned as in `portrait run`) on its own validation fold;
- `after_auc`: the same model at as_of on the labels its own code builds from the data after
  as_of (the run's "truth" churn number);
- `truth_label_auc`: the model on the planted bank's realised contract labels
  (truth/customers.parquet `churn_label`, over customers it marks active), so code whose labels
  differ from the contract is judged on the same outcomes;
- `planted_auc`: p_churn_true on those realised labels (the best ranking possible);
- `planted_valid_auc`: the same at the month start of the validation cut-off (the bank simulated
  again from its truth/meta.json with `truth_at`, checked to draw the same personas and session
  rates), so `ratio_valid` compares the validation fold with the planted truth of its own cut-off;
- the recency rule and the BG/NBD baselines next to it (`*_after_auc`: on the code's own labels,
  the number that counts on a bank without planted truth, e.g. one whose events were emptied).
`--code DIR` puts another checkout first on the import path (e.g. a `git archive` of main),
so the numbers before and after a change come from the same script on the same banks.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--banks", nargs="+", type=Path, required=True)
    p.add_argument("--as-of", default="2025-11-01")
    p.add_argument("--trials", type=int, default=10)
    p.add_argument("--training-cutoffs", type=int, default=0, help="0: the settings default")
    p.add_argument("--code", type=Path, default=ROOT, help="checkout whose code is measured")
    p.add_argument("--label", default="branch", help="name of the code version in the table")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "churn_truth.json")
    return p.parse_args()


def measure(bank: Path, *, as_of, trials: int, training_cutoffs: int = 0) -> dict:
    """The four AUCs (and population sizes) of one bank."""
    import pandas as pd

    from features.contract import CUSTOMER_ID
    from features.labels import build_churn_labels
    from features.portrait import build_features
    from features.validate import load_dataset
    from portrait.settings import ModelSettings, TimeSettings
    from training.models.cutoffs import history
    from training.models.datasets import churn_training_set
    from training.models.metrics import roc_auc
    from training.models.modelling import train_churn

    time_settings = TimeSettings()
    if training_cutoffs:
        time_settings = TimeSettings(training_cutoffs=training_cutoffs)
    tables = load_dataset(bank).tables
    data = churn_training_set(tables, as_of=as_of, time=time_settings)
    outcome = train_churn(data, settings=ModelSettings(n_trials=trials), log=False)
    model, rule = outcome.model, outcome.extra["baseline"]
    portrait = build_features(history(tables, as_of=as_of), as_of=as_of)
    scored = portrait.loc[portrait["is_active"].astype(bool)]
    own = scored.merge(build_churn_labels(tables, as_of=as_of), on=CUSTOMER_ID)
    truth = pd.read_parquet(bank / "truth" / "customers.parquet")
    truth = truth.loc[truth["active_at_as_of"].astype(bool)].astype({CUSTOMER_ID: str})
    judged = scored.merge(truth[[CUSTOMER_ID, "churn_label", "p_churn_true"]], on=CUSTOMER_ID)
    y_truth = judged["churn_label"].astype(int).to_numpy()
    p_valid, p_judged = model.predict_proba(data.valid), model.predict_proba(judged)
    planted_valid = _planted_at(bank, data.cutoffs.validation)
    return {
        **planted_valid,
        "train_rows": len(data.train),
        "valid_rows": len(data.valid),
        "valid_churn_rate": float(data.valid["churned"].mean()),
        "scored_at_as_of": len(scored),
        "truth_active": len(truth),
        "scored_not_truth_active": int((~scored[CUSTOMER_ID].isin(truth[CUSTOMER_ID])).sum()),
        "valid_auc": roc_auc(data.valid["churned"], p_valid),
        "valid_auc_ci": _interval(data.valid["churned"].to_numpy(), p_valid),
        "after_auc": roc_auc(own["churned"], model.predict_proba(own)),
        "truth_label_auc": roc_auc(y_truth, p_judged),
        "truth_label_auc_ci": _interval(y_truth, p_judged),
        "planted_auc": roc_auc(truth["churn_label"].astype(int), truth["p_churn_true"]),
        "rule_valid_auc": roc_auc(data.valid["churned"], rule.rank_score(data.valid)),
        "rule_truth_label_auc": roc_auc(y_truth, rule.rank_score(judged)),
        "rule_after_auc": roc_auc(own["churned"], rule.rank_score(own)),
    } | _bgnbd(outcome, data.valid, judged, y_truth, own, roc_auc)


def _planted_at(bank: Path, cutoff) -> dict:
    """p_churn_true's ROC AUC on the realised labels at the month start of `cutoff` (the
    simulator's truth is taken at month starts; the validation cut-off is a day or two later)."""
    import pandas as pd

    from features.demo_bank import generate_demo_bank
    from training.models.metrics import roc_auc

    meta = json.loads((bank / "truth" / "meta.json").read_text())
    month = pd.Timestamp(cutoff).to_period("M").to_timestamp()
    again = generate_demo_bank(
        n_customers=meta["n_customers"], seed=meta["seed"], exit_style=meta["exit_style"],
        bad_rows=meta["bad_rows_fraction"], profile=meta.get("profile", "default"),
        activity_scale=meta.get("activity_scale", 1.0), truth_at=month,
    )  # fmt: skip
    stored = pd.read_parquet(bank / "truth" / "customers.parquet")
    drawn = again.truth["customers"]
    if not stored[["persona", "activity_rate"]].equals(drawn[["persona", "activity_rate"]]):
        raise SystemExit(f"{bank}: simulating it again from truth/meta.json gives another bank")
    truth = drawn.loc[drawn["active_at_as_of"].astype(bool)]
    return {"planted_valid_month": str(month.date()),
            "planted_valid_auc": roc_auc(truth["churn_label"].astype(int), truth["p_churn_true"])}  # fmt: skip


def _interval(y, score, *, n: int = 300, seed: int = 0) -> list[float]:
    """95% bootstrap interval of the ROC AUC (customers resampled with replacement)."""
    import numpy as np
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(y), size=(n, len(y)))
    aucs = [roc_auc_score(y[i], score[i]) for i in draws]
    return [round(float(v), 4) for v in np.percentile(aucs, [2.5, 97.5])]


def _bgnbd(outcome, valid, judged, y_truth, own, roc_auc) -> dict:
    """The BG/NBD baselines' AUCs where the measured code has them."""
    out = {}
    for name in ("bgnbd", "bgnbd_engagement"):
        if name in outcome.extra:
            b = outcome.extra[name]
            out[f"{name}_valid_auc"] = roc_auc(valid["churned"], b.rank_score(valid))
            out[f"{name}_truth_label_auc"] = roc_auc(y_truth, b.rank_score(judged))
            out[f"{name}_after_auc"] = roc_auc(own["churned"], b.rank_score(own))
    return out


def main() -> None:
    """Measure every bank, print the table and merge the rows into the JSON file."""
    args = _args()
    sys.path.insert(0, str(args.code.resolve()))
    sys.path.insert(1, str(ROOT))
    import pandas as pd

    from benchmarks.table import print_table

    rows = []
    for bank in args.banks:
        start = time.perf_counter()
        row = {"code": args.label, "bank": bank.name}
        row |= measure(
            bank, as_of=pd.Timestamp(args.as_of), trials=args.trials,
            training_cutoffs=args.training_cutoffs,
        )  # fmt: skip
        row["ratio_valid"] = row["valid_auc"] / row["planted_valid_auc"]
        row["ratio_after"] = row["truth_label_auc"] / row["planted_auc"]
        row["seconds"] = round(time.perf_counter() - start, 1)
        rows.append(row)
        print(json.dumps(row), flush=True)
    print_table([{k: r[k] for k in _SHOWN} for r in rows], width=12)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    old = json.loads(args.out.read_text()) if args.out.is_file() else []
    keep = [r for r in old if (r["code"], r["bank"]) not in {(x["code"], x["bank"]) for x in rows}]
    args.out.write_text(json.dumps(keep + rows, indent=2))
    print(f"written to {args.out}")


_SHOWN = ("code", "bank", "valid_auc", "planted_valid_auc", "ratio_valid", "after_auc",
          "truth_label_auc", "planted_auc", "ratio_after", "rule_truth_label_auc")  # fmt: skip

if __name__ == "__main__":
    main()
