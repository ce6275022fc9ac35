"""Where a POST /recommend's time goes inside a worker, in process (no HTTP, no uvicorn): CPU µs
per request through the floor's app (benchmarks/_floor.py), the worker's app as BentoML's worker
builds it (`Portrait.to_asgi()`: access middleware, /recommend's lane) with plain answers kept
(the default) and computed every time (`serving.answer_memo=0`), and BentoML's own stack alone
on the same route (the lane removed, as the route was served before). Each in its own process,
after the state loaded and warmed; the best of 3 passes of 3,000 requests cycling over 2,000
known customers. Prints a table, writes benchmarks/results/serve_stack.json.

    python -m benchmarks.serve_stack [--run RUN --tracking-uri URI]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
KINDS = ("floor", "worker", "worker, memo off", "bentoml stack")


def scope(body: bytes, key: str) -> dict:
    headers = [(b"host", b"127.0.0.1:3000"), (b"content-type", b"application/json"),
               (b"authorization", f"Bearer {key}".encode()),
               (b"content-length", str(len(body)).encode())]  # fmt: skip
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
            "scheme": "http", "path": "/recommend", "raw_path": b"/recommend", "query_string": b"",
            "root_path": "", "server": ("127.0.0.1", 3000), "client": ("127.0.0.1", 5555),
            "headers": headers}  # fmt: skip


async def call(app, body: bytes, key: str) -> int:
    """One request through `app`; its status."""
    sent, status = [False], [0]

    async def receive() -> dict:
        if sent[0]:
            await asyncio.sleep(3600)
        sent[0] = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict) -> None:
        status[0] = message.get("status", status[0])

    await app(scope(body, key), receive, send)
    return status[0]


async def started(app) -> None:
    """Run the app's lifespan start-up; wait until the service's state is loaded and warmed."""
    inbox, outbox = asyncio.Queue(), asyncio.Queue()
    await inbox.put({"type": "lifespan.startup"})
    lifespan = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    asyncio.get_running_loop().create_task(app(lifespan, inbox.get, outbox.put))
    await outbox.get()
    from serving.api_app import running_service

    while running_service().current_state() is None:
        await asyncio.sleep(0.5)
    await asyncio.sleep(30)  # the warming thread explains the likely pairs meanwhile


def build(kind: str, run_dir: Path):
    """The ASGI app of `kind` (environment set by `child`)."""
    if kind == "floor":
        from benchmarks._floor import floor_answers, floor_app

        return floor_app(floor_answers(run_dir))
    from serving.service import Portrait

    if kind == "bentoml stack":  # as before: a mount at "/" behind BentoML's middlewares
        from serving.access import AccessControl, access_config
        from serving.api_app import create_api_app
        from serving.service import SETTINGS

        Portrait.front.clear()
        Portrait.mount_asgi_app(create_api_app(), path="/", name="api")
        Portrait.add_asgi_middleware(AccessControl, config=access_config(SETTINGS, os.environ))
    return Portrait.to_asgi(is_main=True)


async def measure(kind: str, run_dir: Path, bodies: list[bytes], key: str) -> dict:
    app = build(kind, run_dir)
    if kind != "floor":
        await started(app)
    for body in bodies[:500]:
        assert await call(app, body, key) == 200
    passes = []
    for _ in range(3):
        cpu, wall = time.process_time(), time.perf_counter()
        for i in range(3000):
            await call(app, bodies[i % len(bodies)], key)
        passes.append(((time.process_time() - cpu) / 3000 * 1e6,
                       (time.perf_counter() - wall) / 3000 * 1e6))  # fmt: skip
    cpu, wall = min(passes)
    return {"kind": kind, "cpu_us": cpu, "wall_us": wall, "load": os.getloadavg()[0]}


def child(args: argparse.Namespace) -> int:
    """Measure one kind in this process; print its JSON line."""
    import pandas as pd

    ids = pd.read_parquet(args.run / "recommendations.parquet")["customer_id"].astype(str)
    bodies = [json.dumps({"customer_id": c, "k": 5}).encode()
              for c in ids.drop_duplicates().head(2000)]  # fmt: skip
    key = json.loads(os.environ["PORTRAIT_BENCH_KEY"])
    print(json.dumps(asyncio.run(measure(args.child, args.run, bodies, key))), flush=True)
    os._exit(0)  # the service's background threads


def run_kind(kind: str, args: argparse.Namespace, work: Path, keys: dict) -> dict:
    """One kind in its own process, with the service's environment."""
    overrides = {"tracking.tracking_uri": args.tracking_uri}
    if kind == "worker, memo off":
        overrides["serving.answer_memo"] = "0"
    env = dict(os.environ, OMP_NUM_THREADS="1", PORTRAIT_RUN_DIR=str(args.run),
               PORTRAIT_SETTINGS=json.dumps({"config": None, "overrides": overrides}),
               PORTRAIT_KEYS=str(work / "keys.json"), PORTRAIT_STATE_DIR=str(work / kind[:6]),
               PORTRAIT_BENCH_KEY=json.dumps(keys["app"]))  # fmt: skip
    command = [sys.executable, "-m", "benchmarks.serve_stack", "--run", str(args.run),
               "--tracking-uri", args.tracking_uri, "--child", kind]  # fmt: skip
    done = subprocess.run(command, env=env, cwd=work, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    """Measure every kind; print the table and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="run directory (with --tracking-uri)")
    parser.add_argument("--tracking-uri", help="MLflow store of --run")
    parser.add_argument("--child", choices=KINDS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    from benchmarks.serve import build_run
    from benchmarks.table import print_table
    from tests.e2e.conftest import make_keys

    work = Path(tempfile.mkdtemp(prefix="portrait-serve-stack-"))
    if not args.run:
        args.run, args.tracking_uri = build_run(work, 5000)
    keys = make_keys(work / "keys.json")
    rows = [run_kind(kind, args, work, keys) for kind in KINDS]
    floor = rows[0]["cpu_us"]
    print_table([{"app": r["kind"], "cpu us": r["cpu_us"], "wall us": r["wall_us"],
                  "x floor": r["cpu_us"] / floor, "load": r["load"]} for r in rows], width=16)  # fmt: skip
    out = ROOT / "benchmarks" / "results" / "serve_stack.json"
    out.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
