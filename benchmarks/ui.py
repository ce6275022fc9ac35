"""Page load times of the /ui pages against a real `portrait serve` on a demo-bank run.

Starts the service on a free port, then for each page measures (a) the server's answer time over
HTTP (median and worst of --repeats) and (b) the full load in headless Chromium (navigation to the
`load` event, styles and script included) when /usr/bin/chromium is present. Prints a table and
writes benchmarks/results/ui.json. Not a test: nothing is asserted.

    .venv/bin/python -m benchmarks.ui --run demo/run            # after `make demo`
    .venv/bin/python -m benchmarks.ui --run RUN --set tracking.tracking_uri=sqlite:///DIR/mlflow.db
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.conftest import PORTRAIT, free_port, wait_ready  # noqa: E402
from tests.ui.conftest import CHROMIUM, CHROMIUM_FLAGS  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "ui.json"


def pages(run_dir: Path) -> list[tuple[str, str, str, dict | None]]:
    """(label, method, path, form) of every page worth timing, with real ids from the run."""
    portrait = pd.read_parquet(
        run_dir / "features.parquet", columns=["customer_id", "n_products_held"]
    )
    busiest = str(portrait.sort_values("n_products_held", kind="stable")["customer_id"].iloc[-1])
    query = {"query": "high_intent_non_investors"}
    return [
        ("run overview", "GET", "/ui/", None),
        ("customer 360", "GET", f"/ui/customers/{busiest}", None),
        ("customer 360, page 3 of P2P", "GET", f"/ui/customers/{busiest}?line=p2p&page=3", None),
        ("customer not found", "GET", "/ui/customers/NO-SUCH-ID", None),
        ("audience builder", "GET", "/ui/audiences", None),
        ("audience count (JSON)", "POST", "/ui/audiences/count", query),
        ("audience CSV download", "POST", "/ui/audiences/download", {**query, "format": "csv"}),
    ]


def time_http(url: str, method: str, form: dict | None, repeats: int) -> list[float]:
    """Seconds per request (after one warm-up request)."""
    times = []
    with httpx.Client(timeout=60) as client:
        for i in range(repeats + 1):
            started = time.perf_counter()
            answer = client.request(method, url, data=form)
            if answer.status_code >= 500:
                raise RuntimeError(f"{method} {url} answered {answer.status_code}")
            if i:
                times.append(time.perf_counter() - started)
    return times


def time_browser(base: str, paths: list[str], repeats: int) -> dict[str, float]:
    """Median seconds from navigation start to the load event in headless Chromium, per GET path."""
    if not CHROMIUM.is_file():
        return {}
    from playwright.sync_api import sync_playwright

    out = {}
    with sync_playwright() as pw, tempfile.TemporaryDirectory() as profile:
        context = pw.chromium.launch_persistent_context(
            profile, executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, headless=True
        )
        page = context.new_page()
        for path in paths:
            loads = []
            for _ in range(repeats):
                page.goto(base + path, wait_until="load")
                loads.append(page.evaluate(
                    "() => { const n = performance.getEntriesByType('navigation')[0];"
                    " return (n.loadEventEnd - n.startTime) / 1000; }"
                ))  # fmt: skip
            out[path] = statistics.median(loads)
        context.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=ROOT / "demo" / "run")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if not (args.run / "quality.json").is_file():
        print(
            f"benchmarks/ui.py skipped: no run at {args.run}; run `make demo` first or pass --run"
        )
        return
    port = free_port()
    sets = [x for kv in args.set for x in ("--set", kv)]
    command = [
        *PORTRAIT,
        "serve",
        "--run",
        str(args.run),
        "--port",
        str(port),
        "--insecure-local",
        *sets,
    ]
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_ready(base, server, timeout=600)
            rows = measure(base, pages(args.run), args.repeats)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    customers = len(pd.read_parquet(args.run / "features.parquet", columns=["customer_id"]))
    report(rows, customers=customers)


def measure(base: str, targets: list, repeats: int) -> list[dict]:
    """HTTP and browser timings of every target page."""
    browser = time_browser(base, [p for _, m, p, _ in targets if m == "GET"], repeats)
    rows = []
    for label, method, path, form in targets:
        times = time_http(base + path, method, form, repeats)
        rows.append({
            "page": label, "method": method,
            "server_median_ms": 1000 * statistics.median(times), "server_max_ms": 1000 * max(times),
            "browser_load_ms": 1000 * browser[path] if path in browser else None,
        })  # fmt: skip
    return rows


def report(rows: list[dict], *, customers: int) -> None:
    """Print the table and write the JSON results."""
    print(f"UI page loads, demo bank with {customers:,} customers in the portrait")
    print(f"{'page':32} {'server median':>14} {'server max':>11} {'browser load':>13}")
    for r in rows:
        browser = "" if r["browser_load_ms"] is None else f"{r['browser_load_ms']:.0f} ms"
        print(
            f"{r['page']:32} {r['server_median_ms']:11.0f} ms {r['server_max_ms']:8.0f} ms {browser:>13}"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps({"customers": customers, "pages": rows}, indent=1), encoding="utf-8"
    )


if __name__ == "__main__":
    main()
