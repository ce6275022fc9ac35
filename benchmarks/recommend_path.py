"""The recommend path in process (no HTTP): service start-up, per-request time, batch scoring.

Times, on one run directory and its MLflow store: `serving.state.load_state` (what the service
does at start-up and reload), POST /recommend's work (`serving.answers.recommend_answer`) for known
customers without and with products viewed in this visit (first pass: reasons explained on
demand; repeat pass: kept), and batch scoring of every customer. `--code DIR` times another
checkout's code (e.g. `--code /work/main --label before`), so before and after sit side by side.
Results go to benchmarks/results/recommend_path.json under `--label`; the table shows every label.

    .venv/bin/python benchmarks/recommend_path.py --run RUN --tracking-uri sqlite:///DB --label after
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")  # as `portrait serve` runs the service (launch.py)
ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "recommend_path.json"


def requests(state, n: int, *, views: int, seed: int = 7) -> list:
    """n requests (k=5) cycling over known customers; `views` product views in each visit."""
    from serving.schemas import RecommendRequest

    rng = np.random.default_rng(seed)
    ids = list(state.portrait.index)
    on_sale = list(state.products.index[state.products["is_active"].astype(bool).to_numpy()])
    out = []
    for i in range(n):
        viewed = rng.choice(on_sale, size=views).tolist() if views else []
        events = [{"event": "view_product", "product_id": p} for p in viewed]
        out.append(RecommendRequest(customer_id=ids[i % len(ids)], k=5, session_events=events))
    return out


def per_request(state, parsed: list) -> dict:
    """Mean, p50 and p95 wall and mean CPU microseconds of `recommend_answer` per request, first
    pass and repeat (CPU time is the steadier figure on a shared machine)."""
    from serving.answers import recommend_answer

    out = {}
    for name in ("first", "repeat"):
        times, cpu = [], time.process_time()
        for request in parsed:
            started = time.perf_counter()
            recommend_answer(state, request)
            times.append(time.perf_counter() - started)
        us = np.array(times) * 1e6
        out[name] = {"mean_us": float(us.mean()), "p50_us": float(np.percentile(us, 50)),
                     "p95_us": float(np.percentile(us, 95)),
                     "cpu_us": (time.process_time() - cpu) * 1e6 / len(parsed)}  # fmt: skip
    return out


def batch_seconds(state) -> float:
    """Seconds to score every customer of the state in batch (whichever recommender the code has)."""
    started = time.perf_counter()
    try:
        from serving.recommend_all import recommend_all

        recommend_all(state.candidates, state.product_facts, state.customer_facts, k=5,
                      model=state.models.get("conversion"))  # fmt: skip
    except ImportError:  # before: the pandas recommender over the state's frames
        from serving.recommend import recommend

        inputs = state.recommend_inputs
        recommend(inputs.portrait, portrait=inputs.portrait, products=state.products,
                  holdings=inputs.holdings, conversion_model=state.models.get("conversion"),
                  rule_base=state.rule_base, segments=inputs.segments,
                  policy_customers=inputs.policy_customers, k=5, context=state.pair_context)  # fmt: skip
    return time.perf_counter() - started


def index_seconds(state) -> dict:
    """Seconds to get the candidate index: read from the run (after) and scored at load."""
    from serving.recommend_index import build_candidate_index

    out = {}
    try:
        from serving.index_files import read_index, scorer_name
        from training.manifest import read_manifest

        manifest = read_manifest(state.run_dir)[0]
        version = state.model_version.rsplit("conversion:v", 1)[-1]
        started = time.perf_counter()
        found = read_index(state.run_dir, manifest, holdings=state.holdings,
                           scored_by=scorer_name(state.models.get("conversion"), version),
                           model=state.models.get("conversion"), customers=state.portrait.index)  # fmt: skip
        if found is not None:
            out["index_read_s"] = time.perf_counter() - started
    except ImportError:  # before: no index in the run
        pass
    context = state.pair_context  # built at load before; on first use after (timed apart)
    started = time.perf_counter()
    build_candidate_index(portrait=state.portrait, products=state.products,
                          holdings=state.holdings, segments=state.segments, context=context,
                          model=state.models.get("conversion"), rule_base=state.rule_base)  # fmt: skip
    return out | {"index_scored_s": time.perf_counter() - started}


def measure(run_dir: Path, tracking_uri: str, n: int) -> dict:
    """Start-up seconds, per-request microseconds (plain, 3 viewed products) and batch seconds."""
    import mlflow.pyfunc  # noqa: F401  (imports warm: the service has them before it loads)

    from portrait.settings import load_settings
    from serving.state import load_state

    settings = load_settings(None, {"tracking.tracking_uri": tracking_uri})
    started = time.perf_counter()
    state = load_state(run_dir, settings)
    load_s = time.perf_counter() - started
    return index_seconds(state) | {
        "customers": len(state.portrait),
        "load_s": load_s,
        "plain": per_request(state, requests(state, n, views=0)),
        "viewed": per_request(state, requests(state, n, views=3)),
        "batch_s": batch_seconds(state),
    }


def table(results: dict) -> list[dict]:
    """One row per label: start-up (and the candidate index read / scored), plain and viewed
    per-request times, batch seconds."""
    return [
        {"label": label, "customers": r["customers"], "start-up s": r["load_s"],
         "index read s": r.get("index_read_s", float("nan")), "index score s": r["index_scored_s"],
         "plain 1st us": r["plain"]["first"]["mean_us"],
         "plain us": r["plain"]["repeat"]["mean_us"], "plain p95 us": r["plain"]["repeat"]["p95_us"],
         "plain cpu us": r["plain"]["repeat"].get("cpu_us", float("nan")),
         "viewed 1st us": r["viewed"]["first"]["mean_us"],
         "viewed us": r["viewed"]["repeat"]["mean_us"],
         "viewed p95 us": r["viewed"]["repeat"]["p95_us"],
         "viewed cpu us": r["viewed"]["repeat"].get("cpu_us", float("nan")), "batch s": r["batch_s"]}
        for label, r in results.items()
    ]  # fmt: skip


def main() -> int:
    """Measure one checkout's code on one run; print every label's row; write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="run directory")
    parser.add_argument("--tracking-uri", required=True, help="the run's MLflow store")
    parser.add_argument("--label", default="after", help="name of this measurement")
    parser.add_argument("--code", type=Path, default=ROOT, help="checkout whose code to time")
    parser.add_argument("--requests", type=int, default=1000, help="requests per kind")
    args = parser.parse_args()
    sys.path.insert(0, str(args.code.resolve()))
    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    import serving.state  # from --code: say which checkout was timed

    results[args.label] = measure(args.run, args.tracking_uri, args.requests) | {
        "code": str(Path(serving.state.__file__).parent.parent), "load": os.getloadavg()[0],
    }  # fmt: skip
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1))
    sys.path.insert(0, str(ROOT))
    from benchmarks.table import print_table

    print_table(table(results), width=13)
    print(f"written {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
