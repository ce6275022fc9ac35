"""Which engine computes a run: pandas on one machine (default) or Dask on a cluster.

``engine_session`` owns the Dask client for a whole run: with ``engine.scheduler`` set it
connects to that existing cluster, otherwise it starts a ``LocalCluster`` on this machine and
closes it afterwards. A ``LocalCluster`` with worker processes re-imports the main module in
each worker, so every script that can start one must guard its entry point with
``if __name__ == "__main__":`` (the ``portrait`` console script and the benchmarks do).

Stages ask ``build_portrait`` for the features; it dispatches on ``engine.engine`` and returns
the same pandas frame either way, so everything after the features stage is unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pandas as pd

from features.portrait import build_features
from portrait.errors import SettingsError
from portrait.settings import EngineSettings, Settings

ENGINES = ("pandas", "dask")
# The p2p shuffle logs one WARNING per shuffle start and end: normal operation, not a problem.
QUIET_LOGGERS = ("distributed.shuffle._scheduler_plugin",)


def check_engine(settings: EngineSettings) -> None:
    """Refuse an unknown engine or a scheduler address without the dask engine, naming the setting."""
    if settings.engine not in ENGINES:
        raise SettingsError(
            f"engine.engine must be one of {', '.join(ENGINES)}, got {settings.engine!r}"
        )
    if settings.scheduler and settings.engine != "dask":
        raise SettingsError(
            f"engine.scheduler={settings.scheduler!r} needs engine.engine=dask (--engine dask)"
        )
    if settings.partitions < 0:
        raise SettingsError(
            f"engine.partitions must be 0 (automatic) or more, got {settings.partitions}"
        )


@contextmanager
def engine_session(settings: EngineSettings, **cluster_kwargs: Any) -> Iterator[Any]:
    """The run's Dask client (None for pandas): connect to ``scheduler`` or start a LocalCluster."""
    check_engine(settings)
    if settings.engine == "pandas":
        yield None
        return
    from distributed import Client, LocalCluster

    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    if settings.scheduler:
        with Client(settings.scheduler) as client:
            yield client
        return
    with LocalCluster(**cluster_kwargs) as cluster, Client(cluster) as client:
        yield client


def n_workers(client: Any) -> int:
    """Number of workers the client's cluster has right now."""
    return max(1, len(client.nthreads()))


def build_portrait(
    tables: dict[str, pd.DataFrame], *, as_of: pd.Timestamp, settings: Settings
) -> pd.DataFrame:
    """The portrait from validated tables on the configured engine; the same frame either way."""
    active_days = settings.time.active_days
    if settings.engine.engine == "pandas":
        return build_features(tables, as_of=as_of, active_days=active_days)
    from distributed import default_client

    from features import distributed as fd

    client = default_client()
    npartitions = settings.engine.partitions or fd.auto_partitions(tables, n_workers(client))
    frames = fd.from_pandas(tables, npartitions=npartitions)
    portrait = fd.build_features_distributed(
        frames, as_of=as_of, active_days=active_days, npartitions=npartitions
    )
    return fd.collect_portrait(portrait)
