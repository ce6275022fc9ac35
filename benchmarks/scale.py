"""Scale: each stage and the whole pipeline at growing sizes, on pandas and on Dask.

Run: `.venv/bin/python benchmarks/scale.py [--sizes 20000 200000 1000000] [--timeout 3600]`.
Each (size, engine) runs in its own process group, so memory is measured per run and an
out-of-memory run fails alone: a watchdog kills a run whose resident memory (with its Dask
workers) passes --max-gb, or when the machine, shared with other work, gets under FLOOR_GB
available; the table then says so and in which stage. Dask workers have an explicit
--memory-limit each (they spill to disk from 60% of it). The stages are those of `portrait run`: validate, features,
segments (fit + assign), rules (holding and transition), churn model (LightGBM on one
training cut-off); `--full` times the whole `portrait run --engine E` instead (both models with
Optuna, recommendations, experiments, report, MLflow), per stage from its progress lines, with
the run's peak memory only. Peak memory is the highest resident memory of the process and all its
children (the Dask workers) sampled every 0.1 s during the stage. Each run also records its CPU
seconds (its processes and Dask workers) and the 1-minute load average at its start and end: on
a shared machine the wall time includes waiting for other work. The per-stage child lives in
benchmarks/scale_stages.py. Prints a table and writes benchmarks/results/scale.json. Not a
test: timings depend on the machine.

The data are demo banks written in chunks of CHUNK customers (ids prefixed per chunk), one
Parquet file per chunk in TABLE/ directories, so the largest bank never has to sit in the
generator's memory at once. The pandas run concatenates every chunk, as a user would. The
session rate is scaled by --activity-scale (default 0.25: ~53 events per customer, so 1M
customers are ~53M events; 1.0 is the demo default, ~190).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.scale_stages import AS_OF, TABLES, PeakMemory, child  # noqa: E402
from features.contract import CUSTOMER_ID  # noqa: E402
from features.demo_bank import generate_demo_bank  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "scale.json"
DATA_ROOT = Path(os.environ.get("PORTRAIT_SCALE_DATA", "/tmp/portrait_scale"))
CHUNK = 50_000
BANK_VERSION = "v2"  # v2: with the campaigns table (banks cached without it are not reused)
# Session rate x0.25: ~53 events per customer instead of ~190, so 1M customers are ~53M events.
ACTIVITY_SCALE = 0.25
MEMORY_CAP_GB = 14  # resident memory of a run (process + Dask workers) before the watchdog stops it


# --- data -----------------------------------------------------------------------------------


def write_bank(
    n_customers: int, out: Path, *, activity_scale: float = ACTIVITY_SCALE
) -> dict[str, int]:
    """Demo bank of ``n_customers`` in chunks; returns row counts per table (cached on disk)."""
    done = out / "rows.json"
    if done.exists():
        return json.loads(done.read_text())
    rows = dict.fromkeys(TABLES, 0)
    for k, start in enumerate(range(0, n_customers, CHUNK)):
        bank = generate_demo_bank(
            n_customers=min(CHUNK, n_customers - start), seed=7 + k, activity_scale=activity_scale
        )
        for name in TABLES:
            frame = bank.tables[name]
            if name == "products":
                if k:
                    continue
            else:
                frame = frame.assign(**{CUSTOMER_ID: f"K{k:03d}-" + frame[CUSTOMER_ID].astype(str)})
            # Microsecond stamps: features/load.py's range check overflows on datetime64[ns].
            stamps = {c: "datetime64[us]" for c, t in frame.dtypes.items() if t.kind == "M"}
            (out / f"{name}.parquet").mkdir(parents=True, exist_ok=True)
            frame.astype(stamps).to_parquet(
                out / f"{name}.parquet" / f"part-{k:04d}.parquet",
                index=False,
                row_group_size=1_000_000,
            )
            rows[name] += len(frame)
        del bank
    done.write_text(json.dumps(rows))
    return rows


# --- driver ---------------------------------------------------------------------------------


def measure(size: int, engine: str, args: argparse.Namespace) -> dict:
    """One (size, engine) run in a child process, bounded by ``args.timeout`` and ``args.max_gb``."""
    data = DATA_ROOT / f"{size}-a{args.activity_scale:g}-{BANK_VERSION}"
    rows = write_bank(size, data, activity_scale=args.activity_scale)
    out = DATA_ROOT / f"stages-{size}-{engine}.json"
    if args.full:
        run = DATA_ROOT / f"run-{size}-{engine}"
        for old in (
            run.parent / f"mlflow-{run.name}.db",
            run.parent / f"mlflow-{run.name}.db.promote.lock",
        ):
            old.unlink(missing_ok=True)  # a fresh registry: no earlier run's champion to beat
        cmd = full_run_command(flat_bank(data), run, engine)
    else:
        out.unlink(missing_ok=True)
        cmd = [sys.executable, __file__, "--child", "--engine", engine, "--data", str(data),
               "--out", str(out), "--workers", str(args.workers),
               "--memory-limit", args.memory_limit]  # fmt: skip
    print(f"{size:,} customers, {rows['events']:,} events on {engine}", flush=True)
    started, cpu, load = time.perf_counter(), children_cpu(), os.getloadavg()[0]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE if args.full else None,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)  # fmt: skip
    with PeakMemory(psutil.Process(proc.pid), cap_gb=args.max_gb) as mem:
        try:
            said, err = proc.communicate(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            said, err = proc.communicate()
            mem.killed = f"stopped after {args.timeout}s"
    total = time.perf_counter() - started
    if args.full:
        done = run_stages(said or "", err or "")
    else:
        done = json.loads(out.read_text()) if out.exists() else {"stages": [], "running": None}
    status = _status(proc.returncode, err, mem.killed)
    if done["running"]:
        status += f" in {done['running']}"
    return {"customers": size, "engine": engine, "events": rows["events"],
            "transactions": rows["transactions"], "status": status, "total_s": round(total, 1),
            "peak_gb": mem.gb, "cap_gb": args.max_gb, "stages": done["stages"],
            "cpu_s": round(children_cpu() - cpu, 1),
            "load_1m": [round(load, 1), round(os.getloadavg()[0], 1)]}  # fmt: skip


def children_cpu() -> float:
    """CPU seconds (user + system) of the finished child runs, their Dask workers included.

    The machine is shared: next to the wall time, a run's own CPU time and the load average
    at its start and end say how much of the wall time was waiting for other work."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def flat_bank(data: Path) -> Path:
    """The bank as DATA_CONTRACT.md asks for it, one file per table (cached in data/flat)."""
    flat = data / "flat"
    if not (flat / "done").exists():
        flat.mkdir(exist_ok=True)
        for name in TABLES:
            pd.read_parquet(data / f"{name}.parquet").to_parquet(flat / f"{name}.parquet")
        (flat / "done").touch()
    return flat


def full_run_command(data: Path, out: Path, engine: str) -> list[str]:
    """`portrait run` on the bank as a user runs it: every stage, both models, report, MLflow."""
    store = f"sqlite:///{out.parent / f'mlflow-{out.name}.db'}"
    return [sys.executable, "-m", "portrait.cli", "run", "--data", str(data), "--as-of",
            str(AS_OF.date()), "--out", str(out), "--engine", engine,
            "--set", f"tracking.tracking_uri={store}"]  # fmt: skip


STAGE_LINE = re.compile(r"\[\d+/\d+\] (\w+) (\.\.\.|done in ([\d.]+)s)")


def run_stages(stdout: str, stderr: str) -> dict:
    """Stage times from `portrait run`'s progress lines ("[2/6] features done in 8.1s"); the
    memory of a stage is not separable there, only the run's peak."""
    stages, running = [], None
    for name, _what, seconds in STAGE_LINE.findall(stdout + stderr):
        if seconds:
            stages.append({"stage": name, "seconds": float(seconds), "peak_gb": None})
            running = None
        else:
            running = name
    return {"stages": stages, "running": running}


def _status(returncode: int, stderr: str, killed: str) -> str:
    if killed:
        return killed
    if returncode == 0:
        return "ok"
    tail = (stderr or "").strip().splitlines()[-1:] or [f"exit {returncode}"]
    if "MemoryError" in tail[0] or returncode in (-9, 137):
        return f"out of memory ({tail[0][:80]})"
    return f"failed: {tail[0][:120]}"


def table(results: list[dict]) -> str:
    """Seconds and peak GB per stage, one row per (size, engine), with CPU seconds and load."""
    names = list(dict.fromkeys(s["stage"] for r in results for s in r["stages"]))
    head = f"{'customers':>10} {'events':>12} {'engine':<7}" + "".join(f" {n:>16}" for n in names)
    lines = [head + f" {'total':>16} {'cpu':>8} {'load':>9}  status", "-" * (len(head) + 48)]
    for r in results:
        by = {s["stage"]: s for s in r["stages"]}
        cells = "".join(_cell(by.get(n)) for n in names)
        load = "-".join(f"{x:.1f}" for x in r.get("load_1m", []))
        lines.append(f"{r['customers']:>10,} {r['events']:>12,} {r['engine']:<7}{cells}"
                     f" {r['total_s']:>8.1f}s {r['peak_gb']:>5.1f}G {r.get('cpu_s', 0):>7.0f}s"
                     f" {load:>9}  {r['status']}")  # fmt: skip
    return "\n".join(lines)


def _cell(stage: dict | None) -> str:
    if stage is None:
        return f" {'-':>16}"
    peak = "" if stage["peak_gb"] is None else f"{stage['peak_gb']:>5.1f}G"
    return f" {stage['seconds']:>8.1f}s {peak:>6}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 200_000, 1_000_000])
    parser.add_argument("--engines", nargs="+", default=["pandas", "dask"])
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per (size, engine) run")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--activity-scale", type=float, default=ACTIVITY_SCALE,
        help="demo bank session-rate multiplier (1.0 = ~190 events per customer)",
    )  # fmt: skip
    parser.add_argument(
        "--memory-limit",
        default="9GiB",
        help="per Dask worker (spills past 60%%; at 1M customers 5GiB stalls in the shuffle)",
    )
    parser.add_argument(
        "--max-gb",
        type=float,
        default=MEMORY_CAP_GB,
        help="stop a run whose resident memory (with its workers) passes this",
    )
    parser.add_argument("--results", type=Path, default=RESULTS, help="JSON written here")
    parser.add_argument(
        "--full",
        action="store_true",
        help="time the whole `portrait run` (both models, report, MLflow) per stage instead",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--engine", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    results = []
    for size in args.sizes:
        for engine in args.engines:
            results.append(measure(size, engine, args))
            _write(results, args.results)
    print(table(results))


def _write(results: list[dict], path: Path = RESULTS) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"machine": platform.platform(), "cpus": os.cpu_count(),
            "memory_gb": round(psutil.virtual_memory().total / 2**30, 1), "as_of": str(AS_OF.date())}  # fmt: skip
    path.write_text(json.dumps({**meta, "rows": results}, indent=2) + "\n")
    print(table(results), flush=True)


if __name__ == "__main__":  # a LocalCluster's worker processes re-import this file
    main()
