"""Benchmark: public real data converted to the contract, the whole `portrait run`, against peers.

Two datasets ship inside wheels on the package index; `pip download --no-deps` fetches the
wheel (no install) into benchmarks/cache/ (gitignored) and the file is read from the zip:

- CDNOW (lifetimes==0.11.3, lifetimes/datasets/CDNOW_master.txt): 23,570 customers of one CD
  retailer, 1997-01..1998-06; converted as one product, every purchase a `buy`, no events.
  Churn at as_of 1998-04-01 (no purchase in the next 60 days, among customers the pipeline
  scores) is measured as ROC AUC of churn_scores.parquet against BG/NBD (Fader, Hardie & Lee
  2005; its likelihood fitted here with scipy, as lifetimes does) and the recency rule.
- MovieLens 100K (recbole==1.2.1, recbole/dataset_example/ml-100k): 943 users x 1,682 movies;
  every rating a `buy` of the movie and a `view_product` event; movies risk level 1. Next best
  product at as_of 1998-02-20 is measured as MAP@10 of recommendations.parquet on the movies
  each user rated in the next 60 days and had not rated before, against popularity, popularity
  over the last 30 days and EASE^R (Steck 2019), each over the same users and unrated movies:
  all judged users, those known at as_of (the batch list) and the newcomers (the service's
  cold start from age and occupation).

The pipeline runs with default settings except models.k = 10 (MAP@10 needs ten products).
Prints a table and writes benchmarks/results/real_data.json. Not a test; run it nice'd:

    nice .venv/bin/python benchmarks/real_data.py [--only cdnow|movielens]
"""

from __future__ import annotations

import argparse
import io
import json
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.real_data_peers import repeat_summary, top_k  # noqa: E402
from features.candidates import ease_weights, generator_scores  # noqa: E402
from portrait.pipeline import run_pipeline  # noqa: E402
from portrait.report import report_words  # noqa: E402
from portrait.settings import load_settings  # noqa: E402
from training.models.bgnbd import BGNBD  # noqa: E402
from training.models.metrics import (  # noqa: E402
    average_precision_at_k,
    paired_difference,
    ranking_metrics,
    roc_auc,
)

CACHE = ROOT / "benchmarks" / "cache"
RESULTS = ROOT / "benchmarks" / "results" / "real_data.json"
WHEELS = {"cdnow": "lifetimes==0.11.3", "movielens": "recbole==1.2.1"}
HORIZON = pd.Timedelta(days=60)
K = 10


def wheel(spec: str) -> Path | None:
    """The cached wheel of `spec`, downloaded once with pip; None (and a message) when unreachable."""
    name = spec.split("==")[0].lower()
    found = [p for p in CACHE.glob("*.whl") if p.name.lower().startswith(name)]
    if found:
        return found[0]
    CACHE.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", spec, "-d", str(CACHE)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    found = [p for p in CACHE.glob("*.whl") if p.name.lower().startswith(name)]
    if done.returncode != 0 or not found:
        print(f"skipped {spec}: the package index is unreachable ({done.stderr.strip()[-200:]})")
        return None
    return found[0]


def read_member(path: Path, member: str) -> bytes:
    """One file out of a wheel (a zip)."""
    with zipfile.ZipFile(path) as archive:
        return archive.read(member)


def customers_frame(ids: pd.Series, signup: pd.Series, **columns) -> pd.DataFrame:
    """The contract's customers table: unknown demographics empty, nobody assessed or opted out."""
    n = len(ids)
    frame = pd.DataFrame({
        "customer_id": ids.astype(str).to_numpy(), "signup_at": signup.to_numpy(),
        "birth_year": pd.array([pd.NA] * n, dtype="Int64"), "gender": "U", "occupation": None,
        "income_band": pd.array([pd.NA] * n, dtype="Int64"),
        "city_tier": pd.array([pd.NA] * n, dtype="Int64"), "channel": None,
        "risk_level": pd.array([pd.NA] * n, dtype="Int64"), "kyc_verified": True,
        "marketing_opt_out": False,
    })  # fmt: skip
    for name, values in columns.items():
        frame[name] = np.asarray(values)
    return frame


def cdnow_tables(raw: bytes) -> tuple[dict[str, pd.DataFrame], int]:
    """CDNOW as one product: every purchase a buy of 'CD'; purchases of $0 are dropped (counted)."""
    rows = pd.read_csv(io.BytesIO(raw), sep=r"\s+", header=0,
                       names=["customer_id", "date", "cds", "dollars"], dtype={"customer_id": str})  # fmt: skip
    rows["ts"] = pd.to_datetime(rows["date"].astype(str), format="%Y%m%d")
    paid = rows.loc[rows["dollars"] > 0]
    first = rows.groupby("customer_id")["ts"].min()
    return {
        "customers": customers_frame(first.index.to_series(), first),
        "products": pd.DataFrame(
            {
                "product_id": ["CD"],
                "name": ["CDs"],
                "category": ["music"],
                "risk_level": [1],
                "min_amount": [0.0],
                "is_active": [True],
                "qualified_only": [False],
            }
        ),  # fmt: skip
        "transactions": pd.DataFrame(
            {
                "customer_id": paid["customer_id"],
                "product_id": "CD",
                "ts": paid["ts"],
                "type": "buy",
                "amount": paid["dollars"],
            }
        ),  # fmt: skip
        "events": pd.DataFrame(
            columns=["customer_id", "ts", "event", "page", "product_id", "properties"]
        ),  # fmt: skip
    }, int(len(rows) - len(paid))


def movielens_tables(wheel_path: Path) -> dict[str, pd.DataFrame]:
    """MovieLens 100K: ratings as buys and product views; users with their age, gender, occupation."""
    base = "recbole/dataset_example/ml-100k/ml-100k"
    inter = pd.read_csv(io.BytesIO(read_member(wheel_path, f"{base}.inter")), sep="\t")
    items = pd.read_csv(io.BytesIO(read_member(wheel_path, f"{base}.item")), sep="\t")
    users = pd.read_csv(io.BytesIO(read_member(wheel_path, f"{base}.user")), sep="\t")
    inter.columns = [c.split(":")[0] for c in inter.columns]
    items.columns = [c.split(":")[0] for c in items.columns]
    users.columns = [c.split(":")[0] for c in users.columns]
    inter["ts"] = pd.to_datetime(inter["timestamp"], unit="s")
    inter = inter.assign(
        customer_id=inter["user_id"].astype(str), product_id=inter["item_id"].astype(str)
    )
    first = inter.groupby("customer_id")["ts"].min()
    users = (
        users.assign(customer_id=users["user_id"].astype(str))
        .set_index("customer_id")
        .reindex(first.index)
    )
    customers = customers_frame(first.index.to_series(), first)
    customers["birth_year"] = (1998 - users["age"].astype(int)).to_numpy()
    customers["gender"] = users["gender"].to_numpy()
    customers["occupation"] = users["occupation"].to_numpy()
    genre = items["class"].fillna("unknown").str.split(" ").str[0].str.lower()
    products = pd.DataFrame({"product_id": items["item_id"].astype(str), "name": items["movie_title"].fillna("untitled"),
                             "category": genre, "risk_level": 1, "min_amount": 0.0, "is_active": True,
                             "qualified_only": False})  # fmt: skip
    buys = pd.DataFrame({"customer_id": inter["customer_id"], "product_id": inter["product_id"], "ts": inter["ts"],
                         "type": "buy", "amount": inter["rating"].astype(float)})  # fmt: skip
    events = pd.DataFrame({"customer_id": inter["customer_id"], "ts": inter["ts"], "event": "view_product",
                           "page": None, "product_id": inter["product_id"], "properties": None})  # fmt: skip
    return {"customers": customers, "products": products, "transactions": buys, "events": events}


def run(
    tables: dict[str, pd.DataFrame], name: str, *, as_of: pd.Timestamp, out: Path
) -> tuple[Path, float]:
    """Write the tables, run the pipeline (defaults, models.k = 10); the run directory and seconds."""
    data = out / name / "data"
    data.mkdir(parents=True, exist_ok=True)
    for table, frame in tables.items():
        frame.to_parquet(data / f"{table}.parquet", index=False)
    settings = load_settings(overrides={"models.k": K,
                                        "tracking.tracking_uri": f"sqlite:///{out / name / 'mlflow.db'}"})  # fmt: skip
    started = time.perf_counter()
    run_pipeline(data, as_of=as_of, out_dir=out / name / "run", settings=settings, echo=True)
    return out / name / "run", time.perf_counter() - started


def report_nan_count(run_dir: Path) -> int:
    """How often the word "nan" shows in report.html's text (images and tags left out): must be 0."""
    words = report_words(run_dir / "report.html")
    return len(re.findall(r"\bnan\b", words, flags=re.IGNORECASE))


def stage_statuses(run_dir: Path) -> dict[str, str]:
    """Stages that did not simply run, with their reasons."""
    stages = json.loads((run_dir / "quality.json").read_text())["stages"]
    return {k: f"{v['status']}: {v['reason']}" for k, v in stages.items() if v["status"] != "ran"}


def cdnow_benchmark(path: Path, out: Path) -> dict:
    """CDNOW churn: the pipeline's churn_probability against BG/NBD and recency, ROC AUC."""
    tables, zero = cdnow_tables(read_member(path, "lifetimes/datasets/CDNOW_master.txt"))
    as_of = pd.Timestamp("1998-04-01")
    run_dir, seconds = run(tables, "cdnow", as_of=as_of, out=out)
    scores = pd.read_parquet(run_dir / "churn_scores.parquet")
    tx = tables["transactions"]
    later = tx.loc[(tx["ts"] >= as_of) & (tx["ts"] < as_of + HORIZON), "customer_id"].unique()
    y = (~scores["customer_id"].isin(later)).astype(int).to_numpy()
    summary = repeat_summary(tx.loc[tx["ts"] < as_of], as_of=as_of)
    bgnbd = BGNBD(stream="txn").fit(summary)
    expected = pd.Series(bgnbd.expected(summary, days=HORIZON.days), index=summary.index)
    expected = expected.reindex(scores["customer_id"])
    recency = summary["days_since_last"].reindex(scores["customer_id"])
    return {
        "dataset": "CDNOW (one product)", "customers": len(tables["customers"]),
        "zero_dollar_rows_dropped": zero, "scored": len(scores), "churn_rate": float(y.mean()) if len(y) else None,
        "metric": "churn ROC AUC", "portrait": roc_auc(y, scores["churn_probability"]) if len(y) else None,
        "BG/NBD": roc_auc(y, -expected.to_numpy()), "recency rule": roc_auc(y, recency.to_numpy()),
        "bgnbd_params": dict(zip(("r", "alpha", "a", "b"), bgnbd.params_, strict=True)), "seconds": round(seconds, 1), "stages": stage_statuses(run_dir),
        "report_nan": report_nan_count(run_dir),
    }  # fmt: skip


def movielens_benchmark(path: Path, out: Path) -> dict:
    """MovieLens 100K next best product: MAP@10 against popularity, recent popularity and EASE^R."""
    tables = movielens_tables(path)
    as_of = pd.Timestamp("1998-02-20")
    run_dir, seconds = run(tables, "movielens", as_of=as_of, out=out)
    tx = tables["transactions"]
    past, future = (
        tx.loc[tx["ts"] < as_of],
        tx.loc[(tx["ts"] >= as_of) & (tx["ts"] < as_of + HORIZON)],
    )
    users = pd.Index(sorted(tables["customers"]["customer_id"]))
    items = pd.Index(sorted(tables["products"]["product_id"]))
    held = np.zeros((len(users), len(items)))
    held[users.get_indexer(past["customer_id"]), items.get_indexer(past["product_id"])] = 1.0
    relevant = future[["customer_id", "product_id"]].drop_duplicates()
    was_held = (
        held[users.get_indexer(relevant["customer_id"]), items.get_indexer(relevant["product_id"])]
        > 0
    )
    relevant = relevant.loc[~was_held]
    judged = pd.Index(relevant["customer_id"].unique())
    recent = past.loc[past["ts"] >= as_of - pd.Timedelta(days=30)]
    held_sparse = sparse.csr_matrix(held)
    peers = {
        "popularity": np.tile(held.sum(axis=0), (len(users), 1)),
        "popularity 30d": np.tile(
            np.bincount(items.get_indexer(recent["product_id"]), minlength=len(items)),
            (len(users), 1),
        ).astype(float),  # fmt: skip
        "EASE^R": generator_scores(held_sparse, ease_weights(held_sparse)),
    }
    ours = pd.read_parquet(run_dir / "recommendations.parquet")
    out_row = {"dataset": "MovieLens 100K", "customers": len(users), "products": len(items),
               "judged_users": len(judged), "metric": f"MAP@{K}",
               "portrait": ranking_metrics(ours, relevant, k=K, users=judged)[f"map@{K}"]}  # fmt: skip
    # users with no rating before as_of are not in the run's portrait (no recommendations): the
    # peers' scores for them are an arbitrary order; MAP over the users known at as_of compares
    # like with like
    known = judged.intersection(users[held.sum(axis=1) > 0])
    newcomers = judged.difference(ours["customer_id"].unique())  # the service's cold starts
    out_row |= {"judged_known_users": len(known),
                "portrait (known)": ranking_metrics(ours, relevant, k=K, users=known)[f"map@{K}"]}  # fmt: skip
    ranked_by = {}
    for name, scores in peers.items():
        ranked = ranked_by[name] = top_k(scores, held, users, items, k=K)
        out_row[name] = ranking_metrics(ranked, relevant, k=K, users=judged)[f"map@{K}"]
        for who, group in (("known", known), ("newcomers", newcomers)):
            out_row[f"{name} ({who})"] = ranking_metrics(ranked, relevant, k=K, users=group)[
                f"map@{K}"
            ]
    # what the service answers every judged user: the batch list when the portrait knows them,
    # else its cold start from the sign-up attributes (the same plan an app would get)
    cold = cold_start_answers(run_dir, out / "movielens", tables, newcomers)
    answered = pd.concat([ours, cold])
    out_row |= {"judged_newcomers": len(newcomers), "portrait (service)":
                ranking_metrics(answered, relevant, k=K, users=judged)[f"map@{K}"],
                "portrait (newcomers)": ranking_metrics(cold, relevant, k=K, users=newcomers)[f"map@{K}"]}  # fmt: skip
    out_row["gaps"] = gaps({"service": answered, "batch": ours}, ranked_by, relevant,
                           groups={"judged": judged, "known": known, "newcomers": newcomers})  # fmt: skip
    out_row |= {"seconds": round(seconds, 1), "stages": stage_statuses(run_dir),
                "report_nan": report_nan_count(run_dir)}  # fmt: skip
    return out_row


def gaps(
    ours: dict[str, pd.DataFrame], peers: dict[str, pd.DataFrame], relevant: pd.DataFrame, *,
    groups: dict[str, pd.Index],
) -> list[dict]:  # fmt: skip
    """Our MAP@K minus each peer's on the same users, with a 95% bootstrap interval over users:
    the service on every group, the batch on the users known at as_of."""
    rows = []
    for who, group in groups.items():
        mine = ours["batch" if who == "known" else "service"]
        ap = average_precision_at_k(mine, relevant, k=K, users=group)
        for name, ranked in peers.items():
            peer = average_precision_at_k(ranked, relevant, k=K, users=group)
            rows.append({"users": who, "peer": name, **paired_difference(ap, peer)})
    return rows


def cold_start_answers(
    run_dir: Path, base: Path, tables: dict[str, pd.DataFrame], ids: pd.Index
) -> pd.DataFrame:
    """[customer_id, product_id, rank] of the service's cold-start answer for each of `ids`."""
    from serving.answers import recommend_answer
    from serving.schemas import RecommendRequest
    from serving.state import load_state

    settings = load_settings(overrides={"tracking.tracking_uri": f"sqlite:///{base / 'mlflow.db'}"})
    state = load_state(run_dir, settings)
    people = tables["customers"].set_index("customer_id").reindex(ids)
    rows = []
    for cid, person in people.iterrows():  # a few hundred requests, as an app would send them
        age = int(1998 - person["birth_year"])  # the service takes adults' ages only (16..120)
        attributes = {"age": age if 16 <= age <= 120 else None, "occupation": person["occupation"]}
        request = RecommendRequest(customer_id=str(cid), attributes=attributes, k=K)
        items = recommend_answer(state, request)[0]["items"]
        rows += [{"customer_id": str(cid), "product_id": i["product_id"], "rank": i["rank"],
                  "score": i["score"]} for i in items]  # fmt: skip
    return pd.DataFrame(rows, columns=["customer_id", "product_id", "rank", "score"])


def main() -> None:
    """Fetch (cached), convert, run and compare; print the table and write the JSON."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=sorted(WHEELS))
    parser.add_argument("--out", type=Path, default=CACHE / "runs")
    args = parser.parse_args()
    results = []
    for name, bench in (("cdnow", cdnow_benchmark), ("movielens", movielens_benchmark)):
        if args.only and name != args.only:
            continue
        path = wheel(WHEELS[name])
        if path is not None:
            results.append(bench(path, args.out))
            print(json.dumps(results[-1], indent=1, default=str), file=sys.stderr, flush=True)
    columns = ["dataset", "metric", "portrait", "portrait (service)", "BG/NBD", "recency rule", "popularity", "popularity 30d",
               "EASE^R", "portrait (known)", "popularity (known)", "popularity 30d (known)",
               "EASE^R (known)", "portrait (newcomers)", "popularity (newcomers)",
               "popularity 30d (newcomers)", "EASE^R (newcomers)", "seconds", "report_nan"]  # fmt: skip
    table = pd.DataFrame(results).reindex(columns=columns)
    print("\n" + table.to_string(index=False, na_rep="", float_format="{:.4f}".format))
    for row in results:
        if row.get("gaps"):
            print(
                f"\n{row['dataset']}: portrait minus peer, MAP@{K}, 95% bootstrap interval over users"
            )
            print(pd.DataFrame(row["gaps"]).to_string(index=False, float_format="{:+.4f}".format))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"results": results}, indent=2, default=str))


if __name__ == "__main__":
    main()
