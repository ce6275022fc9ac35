"""Benchmark: the service's cold start against its own alternatives, on customers who sign up after as_of.

For each demo configuration (`default`, `alt`) a bank is generated and `portrait run` with
default settings; the customers who sign up in the `time.conversion_horizon_days` after as_of
and buy in it are the newcomers. Each gets, through THE policy (`serving.recommend_one.newcomer_one`)
and the sign-up attributes an app would send (age, occupation, income band, city tier, channel,
risk level when assessed):

- `service`: what `/recommend` answers (the segment's list when the segmentation's sign-up
  classifier is informative, `cold_start_informative`, else the recent purchases);
- `segment`: the segment's list whatever the gate says;
- `recent purchases`: the products most bought in the last horizon;
- `holdings`: everyone's most held products (the cold start before 2026-12-06 without a segment);

scored by MAP@k on the products each newcomer bought in the horizon. MovieLens's newcomers are
in benchmarks/real_data.py. Prints a table and writes benchmarks/results/cold_start.json.
Not a test; run it nice'd:

    nice .venv/bin/python -m benchmarks.cold_start [--customers 20000] [--seed 7]
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from features.contract import CUSTOMER_ID, PRODUCT_ID  # noqa: E402
from features.demo_bank import DEMO_AS_OF, generate_demo_bank, write_demo_bank  # noqa: E402
from portrait.pipeline import run_pipeline  # noqa: E402
from portrait.settings import load_settings  # noqa: E402
from serving.answers import newcomer_segment, recommend_answer  # noqa: E402
from serving.cold_start import newcomer_candidates, newcomer_facts, newcomer_frame  # noqa: E402
from serving.recommend_one import newcomer_one  # noqa: E402
from serving.schemas import RecommendRequest  # noqa: E402
from serving.state import load_state  # noqa: E402
from training.models.metrics import average_precision_at_k, paired_difference  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "cold_start.json"


def newcomers(tables: dict[str, pd.DataFrame], as_of: pd.Timestamp, days: int):
    """(sign-up attributes by customer, [customer_id, product_id] bought in the horizon)."""
    end = as_of + pd.Timedelta(days=days)
    people = tables["customers"].astype({CUSTOMER_ID: str})
    people = people.loc[people["signup_at"].ge(as_of) & people["signup_at"].lt(end)]
    tx = tables["transactions"].astype({CUSTOMER_ID: str})
    bought = tx.loc[tx[CUSTOMER_ID].isin(people[CUSTOMER_ID]) & tx["type"].eq("buy")
                    & tx["ts"].lt(end), [CUSTOMER_ID, PRODUCT_ID]]  # fmt: skip
    bought = bought.dropna().astype(str).drop_duplicates()
    people = people.set_index(CUSTOMER_ID).loc[bought[CUSTOMER_ID].unique()]
    attributes = {}
    for cid, p in people.iterrows():
        age = as_of.year - int(p["birth_year"])
        one = {"age": age if 16 <= age <= 120 else None, "occupation": p["occupation"],
               "income_band": int(p["income_band"]), "city_tier": int(p["city_tier"]),
               "channel": p["channel"]}  # fmt: skip
        if pd.notna(p["risk_level"]):
            one["risk_level"] = int(p["risk_level"])
        attributes[str(cid)] = one
    return attributes, bought


def answers(state, attributes: dict[str, dict], k: int) -> dict[str, pd.DataFrame]:
    """[customer_id, product_id, rank] per way of answering, for every newcomer."""
    rows: dict[str, list] = {"service": [], "segment": [], "recent purchases": [], "holdings": []}
    lists = state.popularity_lists
    forced = copy.copy(state.segmentation)  # the segment's list whatever the gate says
    forced.cold_start_informative_ = True
    ungated = SimpleNamespace(segmentation=forced)
    for cid, given in attributes.items():
        request = RecommendRequest(customer_id=f"new-{cid}", attributes=given, k=k)
        items = recommend_answer(state, request)[0]["items"]
        rows["service"] += [(cid, i["product_id"], i["rank"]) for i in items]
        frame = newcomer_frame(request.customer_id, request.attributes.model_dump())
        facts = newcomer_facts(
            frame, qualified_min_assets=state.settings.policy.qualified_min_assets
        )
        segment = newcomer_segment(ungated, frame)
        ways = {"segment": newcomer_candidates(lists, segment, opted_out=False),
                "recent purchases": newcomer_candidates(lists, None, opted_out=False),
                "holdings": (*lists.overall, "held by {:.0%}")}  # fmt: skip
        for way, candidates in ways.items():
            one = newcomer_one(state.candidates, state.product_facts, facts, request.customer_id,
                               candidates=candidates, k=k, personalised=True)  # fmt: skip
            rows[way] += [(cid, i["product_id"], i["rank"]) for i in one.items]
    columns = [CUSTOMER_ID, PRODUCT_ID, "rank"]
    return {way: pd.DataFrame(r, columns=columns) for way, r in rows.items()}


def measure(profile: str, *, customers: int, seed: int, work: Path) -> dict:
    """Generate, run and score one configuration."""
    data, run_dir = work / profile / "data", work / profile / "run"
    write_demo_bank(generate_demo_bank(n_customers=customers, seed=seed, profile=profile), data)
    settings = load_settings(
        overrides={"tracking.tracking_uri": f"sqlite:///{work / profile / 'mlflow.db'}"}
    )
    run_pipeline(data, as_of=DEMO_AS_OF, out_dir=run_dir, settings=settings, echo=False)
    state = load_state(run_dir, settings)
    days = settings.time.conversion_horizon_days
    attributes, bought = newcomers(state.tables, state.as_of, days)
    k = settings.models.k
    ranked = answers(state, attributes, k)
    users = pd.Index(list(attributes))
    ap = {way: average_precision_at_k(r, bought, k=k, users=users) for way, r in ranked.items()}
    model = state.segmentation
    return {
        "profile": profile, "customers": customers, "seed": seed, "newcomers": len(users),
        "k": k, "informative": bool(model.cold_start_informative_),
        "agreement": model.cold_start_agreement_, "largest_segment": model.cold_start_baseline_,
        **{f"map_{way}": float(v.mean()) for way, v in ap.items()},
        "service_minus_recent": paired_difference(ap["service"], ap["recent purchases"]),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--profiles", nargs="+", default=["default", "alt"])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cold-start-") as tmp:
        rows = [measure(p, customers=args.customers, seed=args.seed, work=Path(tmp))
                for p in args.profiles]  # fmt: skip
    table = pd.DataFrame(rows).drop(columns="service_minus_recent")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    for row in rows:
        gap = row["service_minus_recent"]
        print(f"{row['profile']}: service - recent purchases {gap['diff']:+.3f} "
              f"[{gap['low']:+.3f}, {gap['high']:+.3f}] over {gap['n']} newcomers")  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
