"""Serving throughput and latency with `wrk`, side by side with the floor, in one run.

The floor is the same run's recommendations.parquet as a dict on bare Starlette + uvicorn (no
policy, no reasons, no access control: benchmarks/_floor.py). `portrait serve` (its default
workers, API keys on) and the floor take turns at each level (10, 50, 100 concurrent; one wrk
thread; POST /recommend cycling over 2,000 known customers) after a warm-up, so both see the
same machine. Then a reload phase: wrk runs while /admin/reload loads the run again on every
worker, counting non-2xx answers. Prints req/s, p50, p99 and the ratio to the floor per level,
the load average and each worker's memory; writes benchmarks/results/serve.json.

    python -m benchmarks.serve [--run RUN --tracking-uri URI] [--customers 5000] [--seconds 15]
        [--answer-memo 0 --out serve-computed.json]   # every answer computed
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pandas as pd
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e.conftest import PORTRAIT, _check, free_port, make_keys, wait_ready  # noqa: E402

LEVELS = (10, 50, 100)
CUSTOMERS_CYCLED = 2000
DONE_LUA = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests": %d, "duration_us": %d, "non2xx": %d, "socket_errors": %d,'
    .. ' "timeouts": %d, "p50_us": %d, "p99_us": %d}\\n', summary.requests, summary.duration,
    e.status, e.connect + e.read + e.write + e.timeout, e.timeout, latency:percentile(50),
    latency:percentile(99)))
end
"""


def build_run(base: Path, customers: int) -> tuple[Path, str]:
    """A demo bank of `customers` and one `portrait run` on it (reused when already there)."""
    run_dir, uri = base / "run", f"sqlite:///{base / 'mlflow.db'}"
    if not (run_dir / "quality.json").is_file():
        data = base / "data"
        _check([*PORTRAIT, "demo-data", str(data), "--customers", str(customers)], base)
        _check([*PORTRAIT, "run", "--data", str(data), "--as-of", "2025-11-01", "--out",
                str(run_dir), "--set", f"tracking.tracking_uri={uri}"], base)  # fmt: skip
    return run_dir, uri


def lua_script(path: Path, customer_ids: list[str], key: str) -> Path:
    """A wrk script POSTing /recommend bodies that cycle over `customer_ids` with `key`."""
    bodies = ",\n".join(json.dumps(json.dumps({"customer_id": c, "k": 5})) for c in customer_ids)
    path.write_text(
        f"local bodies = {{\n{bodies}\n}}\nlocal n = 0\nwrk.method = 'POST'\n"
        "wrk.headers['Content-Type'] = 'application/json'\n"
        f"wrk.headers['Authorization'] = 'Bearer {key}'\n"
        "request = function()\n  n = n % #bodies + 1\n"
        "  return wrk.format(nil, '/recommend', nil, bodies[n])\nend\n" + DONE_LUA,
        encoding="utf-8",
    )
    return path


def wrk(url: str, script: Path, *, connections: int, seconds: float, service=None) -> dict:
    """One wrk run (one thread): requests, req/s, p50/p99 ms, non-2xx and socket errors; with
    `service`, how many of wrk's connections each worker holds (2 s in)."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{int(seconds)}s", "-s", str(script), url]
    run = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    spread = None
    if service is not None:
        time.sleep(2)
        spread = connections_per_worker(service, int(url.rsplit(":", 1)[1]))
    out, _ = run.communicate()
    if run.returncode:
        raise subprocess.CalledProcessError(run.returncode, command, out)
    raw = json.loads(out.strip().splitlines()[-1])
    return {
        "connections_per_worker": spread,
        "concurrency": connections,
        "requests": raw["requests"],
        "rps": raw["requests"] / (raw["duration_us"] / 1e6),
        "p50_ms": raw["p50_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "non2xx": raw["non2xx"],
        "socket_errors": raw["socket_errors"],
        "load_avg_1m": os.getloadavg()[0],
    }


def start(
    command: list[str], log: Path, url: str, *, cwd: Path, env: dict | None = None
) -> subprocess.Popen:
    """Start a server in its own process group and wait until /readyz answers 200."""
    process = subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT,
                               start_new_session=True, cwd=cwd, env=env)  # fmt: skip
    try:
        wait_ready(url, process, timeout=900)
    except BaseException:
        stop(process)
        raise
    return process


def stop(process: subprocess.Popen) -> None:
    """Stop a server's process group (never leave one behind)."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(process.pid, signal.SIGKILL)


def workers_of(process: subprocess.Popen) -> list[psutil.Process]:
    """The BentoML worker processes under a `portrait serve`."""
    children = psutil.Process(process.pid).children(recursive=True)
    return [c for c in children if "_bentoml_impl.worker" in " ".join(c.cmdline())]


def worker_memory(process: subprocess.Popen) -> list[dict]:
    """RSS and USS (memory only that worker holds) of each BentoML worker, in MB."""
    out = []
    for child in workers_of(process):
        info = child.memory_full_info()
        out.append({"pid": child.pid, "rss_mb": info.rss / 2**20, "uss_mb": info.uss / 2**20})
    return out


def connections_per_worker(process: subprocess.Popen, port: int) -> list[int]:
    """Established connections to `port` that each worker holds."""
    return sorted(
        sum(c.status == "ESTABLISHED" and c.laddr.port == port for c in w.net_connections("tcp"))
        for w in workers_of(process)
    )


def wait_idle(process: subprocess.Popen, *, timeout: float) -> float:
    """Wait until the workers are idle (each explains its likely answers' reasons after
    loading, in the background); the seconds waited."""
    started, workers = time.monotonic(), workers_of(process)
    for worker in workers:
        worker.cpu_percent()
    while time.monotonic() - started < timeout:
        time.sleep(3)
        if sum(w.cpu_percent() for w in workers) < 10:
            break
    return time.monotonic() - started


def reload_under_load(url: str, script: Path, admin_key: str, *, seconds: float) -> dict:
    """wrk at 50 concurrent for `seconds` while /admin/reload runs; non-2xx counted."""
    load = subprocess.Popen(["wrk", "-t1", "-c50", f"-d{int(seconds)}s", "-s", str(script), url],
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    time.sleep(2)
    started = time.perf_counter()
    answer = httpx.post(f"{url}/admin/reload", json={}, timeout=120,
                        headers={"Authorization": f"Bearer {admin_key}"})  # fmt: skip
    took = time.perf_counter() - started
    raw = json.loads(load.communicate()[0].strip().splitlines()[-1])
    return {"reload_status": answer.status_code, "reload": answer.json(), "reload_s": took,
            "requests": raw["requests"], "non2xx": raw["non2xx"],
            "socket_errors": raw["socket_errors"], "timeouts": raw["timeouts"],
            "p99_ms": raw["p99_us"] / 1000}  # fmt: skip


def measure(args: argparse.Namespace, work: Path) -> dict:
    """Start the floor and the service, run every level on both, then the reload phase."""
    run_dir, uri = (args.run, args.tracking_uri) if args.run else build_run(work, args.customers)
    ids = pd.read_parquet(run_dir / "recommendations.parquet")["customer_id"].astype(str)
    ids = ids.drop_duplicates().head(CUSTOMERS_CYCLED).tolist()
    keys = make_keys(work / "keys.json")
    script = lua_script(work / "recommend.lua", ids, keys["app"])
    floor_port, port = free_port(), free_port()
    floor = start([sys.executable, "-m", "benchmarks._floor", str(run_dir), str(floor_port)],
                  work / "floor.log", f"http://127.0.0.1:{floor_port}", cwd=ROOT)  # fmt: skip
    serve = [*PORTRAIT, "serve", "--run", str(run_dir), "--port", str(port), "--keys",
             str(work / "keys.json"), "--set", f"tracking.tracking_uri={uri}"]  # fmt: skip
    if args.answer_memo is not None:  # 0: every answer computed (serving/answer_memo.py)
        serve += ["--set", f"serving.answer_memo={args.answer_memo}"]
    env = dict(os.environ)
    if args.workers:  # BentoML's own override of the service's configuration
        env["BENTOML_CONFIG_OPTIONS"] = f"services.portrait.workers={args.workers}"
    try:
        service = start(serve, work / "service.log", f"http://127.0.0.1:{port}", cwd=work,
                        env=env)  # fmt: skip
        try:
            return run_levels(args, script, floor_port, port, keys, service)
        finally:
            stop(service)
    finally:
        stop(floor)


def run_levels(args, script, floor_port: int, port: int, keys: dict, service) -> dict:
    """Warm both, then floor and service in turns at each level, then the reload phase."""
    floor_url, url = f"http://127.0.0.1:{floor_port}", f"http://127.0.0.1:{port}"
    settled = wait_idle(service, timeout=args.settle)
    for target in (floor_url, url):
        wrk(target, script, connections=10, seconds=args.seconds)
    levels = []
    for c in LEVELS:
        floor = wrk(floor_url, script, connections=c, seconds=args.seconds)
        ours = wrk(url, script, connections=c, seconds=args.seconds, service=service)
        levels.append({"concurrency": c, "floor": floor, "service": ours,
                       "ratio": ours["rps"] / floor["rps"]})  # fmt: skip
    reload = reload_under_load(url, script, keys["admin"], seconds=args.seconds + 10)
    return {"levels": levels, "reload": reload, "memory": worker_memory(service),
            "workers": len(workers_of(service)), "settled_s": settled}  # fmt: skip


def report(result: dict) -> None:
    """Print the table, the reload phase and the workers' memory."""
    print(f"{'conc':>4} | {'floor req/s':>11} {'p50':>6} {'p99':>6} | {'service req/s':>13} "
          f"{'p50':>6} {'p99':>6} {'non2xx':>6} | {'ratio':>5} | load | conns/worker")  # fmt: skip
    for row in result["levels"]:
        f, s = row["floor"], row["service"]
        print(f"{row['concurrency']:>4} | {f['rps']:>11.0f} {f['p50_ms']:>6.1f} {f['p99_ms']:>6.1f} | "
              f"{s['rps']:>13.0f} {s['p50_ms']:>6.1f} {s['p99_ms']:>6.1f} "
              f"{s['non2xx'] + s['socket_errors']:>6} | {row['ratio']:>5.2f} | "
              f"{f['load_avg_1m']:.1f}/{s['load_avg_1m']:.1f} | {s['connections_per_worker']}")  # fmt: skip
    r = result["reload"]
    print(f"reload under load (50 concurrent): HTTP {r['reload_status']} in {r['reload_s']:.1f} s, "
          f"{r['reload'].get('workers')}/{r['reload'].get('of_workers')} workers; "
          f"{r['requests']} requests, {r['non2xx']} non-2xx, {r['socket_errors']} socket "
          f"errors ({r['timeouts']} wrk timeouts, 2 s), p99 {r['p99_ms']:.0f} ms")  # fmt: skip
    for w in result["memory"]:
        print(f"worker {w['pid']}: RSS {w['rss_mb']:.0f} MB, USS {w['uss_mb']:.0f} MB")
    print(f"{result['workers']} workers, idle {result['settled_s']:.0f} s after ready; "
          f"load average (1, 5, 15 min) at the end: {result['load_avg']}")  # fmt: skip


def main() -> int:
    """Run the benchmark and write benchmarks/results/serve.json."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run", type=Path, help="existing run directory (with --tracking-uri)")
    parser.add_argument("--tracking-uri", help="MLflow store of --run")
    parser.add_argument("--customers", type=int, default=5000, help="demo run size (5000)")
    parser.add_argument("--seconds", type=int, default=15, help="wrk seconds per level (15)")
    parser.add_argument(
        "--settle",
        type=float,
        default=600,
        help="at most this long for the workers to go idle after ready (600)",
    )
    parser.add_argument("--workers", type=int, help="override the service's worker count")  # fmt: skip
    parser.add_argument("--answer-memo", type=int, help="serving.answer_memo (0: compute all)")
    parser.add_argument("--out", default="serve.json", help="file name in benchmarks/results")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed: `make bench` installs it (apt-get install wrk)")
        return 1
    work = Path(tempfile.mkdtemp(prefix="portrait-serve-bench-"))
    result = measure(args, work)
    result["load_avg"] = [round(x, 2) for x in os.getloadavg()]
    report(result)
    out = ROOT / "benchmarks" / "results" / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
