"""The per-stage child of benchmarks/scale.py: peak memory, stage log, each stage on pandas or Dask.

`benchmarks/scale.py` starts this as `scale.py --child`; see its docstring for what is timed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import threading
import time
from pathlib import Path

import pandas as pd
import psutil

from features.contract import CUSTOMER_ID
from features.demo_bank import DEMO_AS_OF

AS_OF = DEMO_AS_OF.as_unit("ns")  # validated timestamps are datetime64[ns]
# Every table of the demo bank. Campaigns count: without them the demo's fund push is organic
# demand in the conversion labels, and at 20k the conversion model's lead over item-item was gone.
TABLES = (
    "customers", "products", "transactions", "events", "balances", "interactions", "campaigns",
)  # fmt: skip
FLOOR_GB = 1.5  # stop a run before the machine (shared with other work) runs out of memory
TREES = {"n_estimators": 100, "learning_rate": 0.1, "num_leaves": 31, "random_state": 42,
         "deterministic": True, "force_row_wise": True, "verbosity": -1}  # fmt: skip


# --- memory ---------------------------------------------------------------------------------


class PeakMemory:
    """Peak resident memory (GB) of a process tree while the block runs (default: this process).

    With ``cap_gb`` it is also the run's watchdog: when the tree's resident memory passes the cap,
    or the machine's available memory falls under ``FLOOR_GB`` (other sessions share it), it
    kills the tree's process group and says why in ``killed``.
    """

    def __init__(self, root: psutil.Process | None = None, *, cap_gb: float = 0) -> None:
        self.root, self.cap, self.killed = root, cap_gb * 2**30, ""

    def __enter__(self) -> PeakMemory:
        self.peak, self._stop = 0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        root = self.root or psutil.Process()
        while not self._stop.is_set():
            rss = 0
            with contextlib.suppress(psutil.Error):
                for p in [root, *root.children(recursive=True)]:
                    with contextlib.suppress(psutil.Error):
                        rss += p.memory_info().rss
            self.peak = max(self.peak, rss)
            if self.cap and not self.killed:
                self._guard(root, rss)
            time.sleep(0.1)

    def _guard(self, root: psutil.Process, rss: int) -> None:
        available = psutil.virtual_memory().available
        if rss > self.cap:
            self.killed = f"over the {self.cap / 2**30:.0f} GB memory cap"
        elif available < FLOOR_GB * 2**30:
            self.killed = (
                f"machine down to {available / 2**30:.1f} GB available at {rss / 2**30:.1f} GB"
            )
        if self.killed:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(root.pid, signal.SIGKILL)  # the child leads its own session

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.gb = round(self.peak / 2**30, 2)


class StageLog(list):
    """Stage records, rewritten to ``out`` after each change so a killed run keeps what it did."""

    def __init__(self, out: Path) -> None:
        super().__init__()
        self.out = out

    def save(self, running: str | None = None) -> None:
        self.out.write_text(json.dumps({"stages": list(self), "running": running}))


def timed(stages: StageLog, name: str, fn, *args, **kwargs):
    """Run one stage, append {stage, seconds, peak_gb}, return its result."""
    stages.save(running=name)
    with PeakMemory() as mem:
        started = time.perf_counter()
        result = fn(*args, **kwargs)
        seconds = time.perf_counter() - started
    stages.append({"stage": name, "seconds": round(seconds, 2), "peak_gb": mem.gb})
    stages.save()
    print(f"  {name:<10} {seconds:8.1f}s {mem.gb:6.2f} GB", flush=True)
    return result


# --- the two engines ------------------------------------------------------------------------


def run_pandas(data: Path, stages: StageLog) -> list[dict]:
    """Every stage with the embedded functions on whole in-memory tables."""
    from lightgbm import LGBMClassifier

    from features.labels import build_churn_labels
    from features.portrait import build_features
    from features.validate import validate_tables
    from portrait.settings import RuleSettings, SegmentSettings
    from training.distributed import segmentation_model
    from training.rules import mining as rl
    from training.segments.model import assign_segment

    def validate():
        return validate_tables({n: pd.read_parquet(data / f"{n}.parquet") for n in TABLES}).tables

    tables = timed(stages, "validate", validate)
    portrait = timed(stages, "features", build_features, tables, as_of=AS_OF)

    def segments():
        model = segmentation_model(SegmentSettings(n_reseeds=1)).fit(portrait)
        return assign_segment(model, portrait)

    timed(stages, "segments", segments)

    def rules():
        s, txns = RuleSettings(), tables["transactions"]
        holding = rl.build_holding_baskets(txns, as_of=AS_OF)
        transition = rl.build_transition_baskets(
            txns, as_of=AS_OF, window_days=s.transition_window_days, n_windows=s.transition_windows
        )
        return [
            rl.mine_rules(b, settings=s, kind=k)
            for k, b in (("holding", holding), ("transition", transition))
        ]

    timed(stages, "rules", rules)

    def churn():
        train_at = AS_OF - pd.Timedelta(days=60)
        train = build_features(tables, as_of=train_at).merge(
            build_churn_labels(tables, as_of=train_at), on=CUSTOMER_ID
        )
        x = train.select_dtypes("number").drop(columns="churned")
        return LGBMClassifier(**TREES).fit(x, train["churned"])

    timed(stages, "churn", churn)
    return stages


def run_dask(data: Path, stages: StageLog, *, workers: int, memory_limit: str) -> list[dict]:
    """Every stage on a LocalCluster: Parquet read lazily, features per customer partition."""
    import logging

    from distributed import Client, LocalCluster, wait

    from features import distributed as fd
    from training.engine import QUIET_LOGGERS

    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    with (
        LocalCluster(n_workers=workers, threads_per_worker=1, memory_limit=memory_limit) as cluster,
        Client(cluster) as client,
    ):

        def read():
            frames = fd.read_tables(data)
            n = max(2 * workers, frames["events"].npartitions)
            aligned = fd.partition_by_customer(frames, npartitions=n)
            persisted = {k: v if k == "products" else client.persist(v) for k, v in aligned.items()}
            wait([v for k, v in persisted.items() if k != "products"])
            return persisted, n

        tables, n = timed(stages, "validate", read)
        _dask_stages(client, tables, n, stages)
    return stages


def _dask_features(client, tables: dict, n: int, as_of: pd.Timestamp):
    """The portrait at `as_of` built per customer partition and persisted on the workers."""
    from distributed import wait

    from features import distributed as fd

    portrait = client.persist(
        fd.build_features_distributed(tables, as_of=as_of, npartitions=n, aligned=True)
    )
    wait(portrait)
    return portrait


def _dask_stages(client, tables: dict, n: int, stages: StageLog) -> None:
    """Features, segments, rules and one churn LightGBM on the persisted tables."""
    from distributed import wait

    from features import distributed as fd
    from features.labels import build_churn_labels
    from portrait.settings import RuleSettings, SegmentSettings
    from training import distributed as td

    portrait = timed(stages, "features", _dask_features, client, tables, n, AS_OF)

    def segments():
        model = td.fit_segments_distributed(
            portrait, SegmentSettings(n_reseeds=1), fit_rows=100_000
        )
        out = client.persist(td.assign_segments_distributed(model, portrait))
        wait(out)
        return out

    def rules():
        s, txns = RuleSettings(), tables["transactions"]
        holding = td.holding_baskets_distributed(txns, as_of=AS_OF)
        transition = td.transition_baskets_distributed(txns, as_of=AS_OF, settings=s)
        return [td.mine_rules_distributed(client.persist(b), settings=s, kind=k)
                for k, b in (("holding", holding), ("transition", transition))]  # fmt: skip

    def churn():
        train_at = AS_OF - pd.Timedelta(days=60)
        train = _dask_features(client, tables, n, train_at)
        labels = fd.map_customer_partitions(
            build_churn_labels, tables, names=("customers", "events", "transactions"),
            as_of=train_at,
        )  # fmt: skip
        joined = train.merge(labels, on=CUSTOMER_ID)
        numeric = [c for c, t in joined.dtypes.items() if t.kind in "fiub" and c != "churned"]
        return td.fit_classifier_distributed(
            joined[numeric], joined["churned"], params=TREES, client=client
        )

    for name, stage in (("segments", segments), ("rules", rules), ("churn", churn)):
        timed(stages, name, stage)


def child(args: argparse.Namespace) -> None:
    data, stages = Path(args.data), StageLog(Path(args.out))
    if args.engine == "pandas":
        run_pandas(data, stages)
    else:
        run_dask(data, stages, workers=args.workers, memory_limit=args.memory_limit)
