"""Which engine computes a run: pandas on one machine (default) or Dask on a cluster.

``engine_session`` owns the Dask client for a whole run: with ``engine.scheduler`` set it
connects to that existing cluster, otherwise it starts a ``LocalCluster`` on this machine and
closes it afterwards. A ``LocalCluster`` with worker processes re-imports the main module in
each worker, so every script that can start one must guard its entry point with
``if __name__ == "__main__":`` (the ``portrait`` console script and the benchmarks do).

This module is the one dispatch point between the engines. With ``engine=dask`` the features
stage calls ``distribute`` once: every per-customer table is shuffled on customer_id and
persisted on the workers (a ``Cluster``), and the portrait is built there and kept persisted.
The later stages then use the cluster through small hooks, each returning what the pandas
path returns so outputs, MLflow logging and the report do not change:

- segments: ``fit_segments`` fits the same scikit-learn estimator on the active customers in
  this process (a per-customer table fits on one machine), and assigns every customer with
  ``map_partitions`` over the persisted portrait;
- rules: ``RuleMiner`` builds baskets per customer partition and counts itemsets on the workers;
- models: ``train_booster(..., cluster=cluster)`` (called by ``training.models.gbm``) trains with
  ``lightgbm.dask`` and hands back a plain ``lightgbm.Booster``. The cluster is an argument all
  the way down (models stage -> train_churn / train_conversion -> ``fit``), never kept on the
  model objects, which are pickled into MLflow.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from features.contract import CUSTOMER_ID
from features.portrait import build_features
from portrait.errors import SettingsError
from portrait.settings import EngineSettings, RuleSettings, SegmentSettings, Settings
from training.rules import mining as rl
from training.segments.model import SegmentationModel, assign_segment, segmentation_model

ENGINES = ("pandas", "dask")
# The p2p shuffle logs one WARNING per shuffle start and end: normal operation.
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
    for name in ("partitions", "train_min_rows"):
        if getattr(settings, name) < 0:
            raise SettingsError(f"engine.{name} must be 0 or more, got {getattr(settings, name)}")


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


@dataclass
class Cluster:
    """A run's data on the Dask workers: customer-aligned tables and the portrait, persisted."""

    client: Any
    tables: dict[str, Any]
    npartitions: int
    portrait: Any = None
    kept: tuple[str, ...] = field(default=("products", "transactions"))
    train_min_rows: int = 0  # smaller LightGBM training sets fit in this process

    def release(self) -> None:
        """Drop the tables no stage after the features needs (events, balances, ...)."""
        self.tables = {k: v for k, v in self.tables.items() if k in self.kept}


def distribute(tables: dict[str, pd.DataFrame], *, settings: Settings) -> Cluster | None:
    """None for pandas; for dask the validated tables shuffled on customer_id and persisted."""
    if settings.engine.engine == "pandas":
        return None
    from distributed import default_client, wait

    from features import distributed as fd

    client = default_client()
    n = settings.engine.partitions or fd.auto_partitions(tables, n_workers(client))
    aligned = fd.partition_by_customer(fd.from_pandas(tables, npartitions=n), npartitions=n)
    persisted = {k: v if k in fd.BROADCAST else client.persist(v) for k, v in aligned.items()}
    wait([v for k, v in persisted.items() if k not in fd.BROADCAST])
    return Cluster(client, persisted, n, train_min_rows=settings.engine.train_min_rows)


def build_portrait(
    tables: dict[str, pd.DataFrame],
    *,
    as_of: pd.Timestamp,
    settings: Settings,
    cluster: Cluster | None = None,
) -> pd.DataFrame:
    """The portrait from validated tables on the configured engine; the same frame either way.

    On dask the portrait also stays persisted on the workers as ``cluster.portrait``.
    """
    active_days = settings.time.active_days
    if settings.engine.engine == "pandas":
        return build_features(
            tables, as_of=as_of, active_days=active_days, engagement_rule=settings.engagement
        )
    from features import distributed as fd

    cluster = cluster or distribute(tables, settings=settings)
    portrait = fd.build_features_distributed(
        cluster.tables, as_of=as_of, active_days=active_days,
        npartitions=cluster.npartitions, aligned=True, engagement_rule=settings.engagement,
    )  # fmt: skip
    cluster.portrait = cluster.client.persist(portrait)
    return fd.collect_portrait(cluster.portrait)


# --- segments ------------------------------------------------------------------------------


def fit_segments(
    portrait: pd.DataFrame, active: pd.DataFrame, *, settings: SegmentSettings,
    cluster: Cluster | None = None,
) -> tuple[SegmentationModel, pd.DataFrame]:  # fmt: skip
    """Fit on the active customers, assign every customer: ``assign_segment``'s frame, portrait order."""
    model = segmentation_model(settings).fit(active)
    if cluster is None or cluster.portrait is None:
        return model, assign_segment(model, portrait)
    from training import distributed as td

    # Columns the run added to the portrait (the product-interest mix) go to the workers with it.
    added = [c for c in model.features_ if c not in cluster.portrait.columns and c in portrait]
    lazy = cluster.portrait
    if added:
        lazy = lazy.merge(portrait[[CUSTOMER_ID, *added]], on=CUSTOMER_ID, how="left")
    assigned = td.assign_segments_distributed(model, lazy).compute()
    order = pd.Index(assigned[CUSTOMER_ID].astype(str)).get_indexer(
        portrait[CUSTOMER_ID].astype(str)
    )
    if (order < 0).any():
        raise AssertionError(
            "segments: the cluster's portrait lacks customers of the run's portrait"
        )
    assigned = assigned.iloc[order].reset_index(drop=True)
    assigned[CUSTOMER_ID] = portrait[CUSTOMER_ID].to_numpy()
    return model, assigned.astype(assign_segment(model, portrait.head(1)).dtypes.to_dict())


# --- rules ---------------------------------------------------------------------------------


@dataclass
class RuleMiner:
    """How the rules stage builds and mines baskets: in pandas (no cluster) or on the workers.

    ``baskets`` always returns pandas frames (the ranking reads them); on a cluster they are
    built per customer partition and also kept persisted there, and ``mine`` /
    ``mine_segments`` count the itemsets of those persisted baskets on the workers.
    """

    cluster: Cluster | None = None
    lazy: dict[str, Any] = field(default_factory=dict)

    def baskets(
        self, transactions: pd.DataFrame, *, as_of: pd.Timestamp, settings: RuleSettings,
        kinds: tuple[str, ...] = rl.KINDS,
    ) -> dict[str, pd.DataFrame]:  # fmt: skip
        """Holding and transition baskets of ``kinds``, as ``training.rules.mining`` builds them."""
        window = {"window_days": settings.transition_window_days,
                  "n_windows": settings.transition_windows}  # fmt: skip
        if self.cluster is None:
            build = {
                "holding": lambda: rl.build_holding_baskets(transactions, as_of=as_of),
                "transition": lambda: rl.build_transition_baskets(transactions, as_of=as_of, **window),
            }  # fmt: skip
            return {kind: build[kind]() for kind in kinds}
        from training import distributed as td

        txns = self.cluster.tables["transactions"]
        build = {
            "holding": lambda: td.holding_baskets_distributed(txns, as_of=as_of),
            "transition": lambda: td.transition_baskets_distributed(txns, as_of=as_of, settings=settings),
        }  # fmt: skip
        self.lazy = {kind: self.cluster.client.persist(build[kind]()) for kind in kinds}
        dtype = {CUSTOMER_ID: transactions[CUSTOMER_ID].dtype}
        return {kind: _local_baskets(lazy).astype(dtype) for kind, lazy in self.lazy.items()}

    def mine(self, baskets: pd.DataFrame, *, settings: RuleSettings, kind: str) -> pd.DataFrame:
        """Rules over all baskets (``training.rules.mining.mine_rules``, or counted on the cluster)."""
        if self.cluster is None:
            return rl.mine_rules(baskets, settings=settings, kind=kind)
        from training import distributed as td

        return td.mine_rules_distributed(self.lazy[kind], settings=settings, kind=kind)

    def mine_segments(
        self, baskets: pd.DataFrame, segments: pd.DataFrame, *, settings: RuleSettings, kind: str
    ) -> tuple[pd.DataFrame, list[str]]:
        """Rules per segment and the segments skipped (``mine_segment_rules``, or on the cluster)."""
        if self.cluster is None:
            return rl.mine_segment_rules(baskets, segments, settings=settings, kind=kind)
        from training import distributed as td

        return td.mine_segment_rules_distributed(
            self.lazy[kind], segments, settings=settings, kind=kind
        )


def _local_baskets(lazy: Any) -> pd.DataFrame:
    """Persisted baskets as one pandas frame in the embedded run's row order (by customer)."""
    local = lazy.compute()
    order = np.lexsort((np.arange(len(local)), local[CUSTOMER_ID].astype(str).to_numpy()))
    return local.iloc[order].reset_index(drop=True)


# --- models --------------------------------------------------------------------------------

Part = tuple[pd.DataFrame, np.ndarray, np.ndarray | None]  # features, labels, weights


def local_datasets(fit: Part, valid: Part) -> tuple[lgb.Dataset, lgb.Dataset]:
    """Fit and early-stopping Datasets binned once, kept for every trial (pre-filter off)."""
    keep = {"free_raw_data": False, "params": {"feature_pre_filter": False}}
    fit_set = lgb.Dataset(fit[0], fit[1], weight=fit[2], **keep)
    valid_set = lgb.Dataset(valid[0], valid[1], weight=valid[2], reference=fit_set, **keep)
    return fit_set, valid_set


def train_booster(params: dict[str, Any], fit: Part, valid: Part, *, rounds: int, patience: int,
                  datasets: Callable[[], Any] | None = None,
                  callbacks: list[Callable] | None = None,
                  cluster: Cluster | None = None) -> tuple[lgb.Booster, int, float]:  # fmt: skip
    """Booster, best iteration and its validation logloss, early-stopped on ``valid``.

    Here (``cluster`` None): ``lgb.train`` with early stopping, on ``datasets()`` when given (``local_datasets``)
    and ``callbacks`` (a trial's pruner). On a cluster: ``DaskLGBMClassifier`` for ``rounds``
    trees (lightgbm.dask has no early stopping: workers would stop apart), then the same rule
    applied to the logloss curve on ``valid`` computed here, tree by tree. Training sets under
    ``cluster.train_min_rows`` rows stay in this process.
    """
    if cluster is None or len(fit[0]) < cluster.train_min_rows:
        fit_set, valid_set = datasets() if datasets else local_datasets(fit, valid)
        booster = lgb.train(
            params, fit_set, num_boost_round=rounds, valid_sets=[valid_set],
            callbacks=[lgb.early_stopping(patience, verbose=False), *(callbacks or ())],
        )  # fmt: skip
        best = int(booster.best_iteration or booster.current_iteration())
        return booster, best, float(booster.best_score["valid_0"]["binary_logloss"])
    from training import distributed as td

    booster = td.fit_booster_distributed(
        fit, params={**params, "n_estimators": rounds}, client=cluster.client,
        npartitions=n_workers(cluster.client),
    )  # fmt: skip
    curve = td.logloss_curve(booster, valid)
    best = td.early_stopping_iteration(curve, patience=patience)
    return booster, best, float(curve[best - 1])
