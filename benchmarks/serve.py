"""Serving latency and throughput: one `portrait serve` process on 127.0.0.1, 10/50/100 concurrent clients.

Builds a demo run (or uses --run with --tracking-uri), starts the server on a free local port,
sends a bounded number of POST /recommend requests per concurrency level (mixed: known,
opted-out and cold-start customers), prints p50/p95/p99 latency and throughput, then times the
same recommend path in process (no HTTP). Writes benchmarks/results/serve.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")  # as `portrait serve` runs the service (launch.py)
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e.conftest import PORTRAIT, build_demo_run, free_port, wait_ready  # noqa: E402

LEVELS = (10, 50, 100)


def bodies(customer_ids: list[str], n: int) -> list[dict]:
    """n request bodies cycling over known customers, with every tenth a cold start."""
    out = []
    for i in range(n):
        if i % 10 == 9:
            out.append(
                {"customer_id": f"NEW-{i}", "k": 5, "attributes": {"age": 30, "risk_level": 3}}
            )
        else:
            out.append({"customer_id": customer_ids[i % len(customer_ids)], "k": 5})
    return out


async def load(url: str, requests: list[dict], concurrency: int) -> dict:
    """Send `requests` with at most `concurrency` in flight; latency per request and throughput."""
    latencies, statuses = [], []
    queue = iter(requests)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:

        async def worker() -> None:
            for body in queue:
                started = time.perf_counter()
                response = await client.post("/recommend", json=body)
                latencies.append(time.perf_counter() - started)
                statuses.append(response.status_code)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    ms = np.array(latencies) * 1000
    return {
        "concurrency": concurrency,
        "requests": len(ms),
        "errors": int(sum(s != 200 for s in statuses)),
        "p50_ms": float(np.percentile(ms, 50)),
        "p95_ms": float(np.percentile(ms, 95)),
        "p99_ms": float(np.percentile(ms, 99)),
        "throughput_rps": len(ms) / elapsed,
    }


def in_process(run_dir: Path, tracking_uri: str, requests: list[dict]) -> dict:
    """Per-request time of the recommend path without HTTP (state loaded once), on the first pass
    over the customers (the model's reasons of each pair are explained on first use) and again."""
    from portrait.settings import load_settings
    from serving.answers import recommend_answer
    from serving.schemas import RecommendRequest
    from serving.state import load_state

    started = time.perf_counter()
    state = load_state(run_dir, load_settings(None, {"tracking.tracking_uri": tracking_uri}))
    out = {"load_s": time.perf_counter() - started}
    parsed = [RecommendRequest.model_validate(body) for body in requests]
    for name in ("first", "repeat"):
        times = []
        for request in parsed:
            started = time.perf_counter()
            recommend_answer(state, request)
            times.append(time.perf_counter() - started)
        ms = np.array(times) * 1000
        out[name] = {"requests": len(ms), "mean_ms": float(ms.mean()),
                     "p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95))}  # fmt: skip
    return out


def serve(run_dir: Path, tracking_uri: str, log: Path) -> tuple[subprocess.Popen, str]:
    """Start `portrait serve` on a free 127.0.0.1 port and wait until it is ready."""
    port = free_port()
    command = [*PORTRAIT, "serve", "--run", str(run_dir), "--port", str(port), "--insecure-local",
               "--set", f"tracking.tracking_uri={tracking_uri}"]  # fmt: skip
    process = subprocess.Popen(
        command, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process, timeout=900)  # start-up scores and indexes every customer
    except BaseException:
        os.killpg(process.pid, signal.SIGTERM)  # never leave a server behind
        raise
    return process, url


def main() -> int:
    """Run the benchmark and write benchmarks/results/serve.json."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--run", type=Path, help="existing run directory (default: build a demo run)"
    )
    parser.add_argument("--tracking-uri", help="MLflow store of --run")
    parser.add_argument(
        "--requests", type=int, default=1000, help="requests per level (default 1000)"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="portrait-serve-bench-"))
    if args.run:
        run_dir, uri = args.run, args.tracking_uri
    else:
        demo = build_demo_run(work / "demo")
        run_dir, uri = demo.run_dir, demo.tracking_uri
    import pandas as pd

    ids = pd.read_parquet(run_dir / "features.parquet")["customer_id"].astype(str).tolist()[:500]
    requests = bodies(ids, args.requests)
    process, url = serve(run_dir, uri, work / "server.log")
    try:
        asyncio.run(load(url, requests[:50], 10))  # warm-up
        levels = [asyncio.run(load(url, requests, c)) for c in LEVELS]
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    local = in_process(run_dir, uri, requests[:300])
    print(
        f"{'concurrency':>11} {'requests':>8} {'errors':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'req/s':>7}"
    )
    for r in levels:
        print(f"{r['concurrency']:>11} {r['requests']:>8} {r['errors']:>6} {r['p50_ms']:>8.1f} "
              f"{r['p95_ms']:>8.1f} {r['p99_ms']:>8.1f} {r['throughput_rps']:>7.1f}")  # fmt: skip
    print(f"state load: {local['load_s']:.0f} s")
    for name in ("first", "repeat"):
        r = local[name]
        print(f"in-process recommend ({name} pass): mean {r['mean_ms']:.2f} ms, p50 {r['p50_ms']:.2f} "
              f"ms, p95 {r['p95_ms']:.2f} ms over {r['requests']} requests")  # fmt: skip
    out = ROOT / "benchmarks" / "results" / "serve.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps({"http": levels, "in_process": local, "run_dir": str(run_dir)}, indent=2)
    )
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
