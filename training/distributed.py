"""Segments, rules and LightGBM models on a Dask cluster, built on the embedded public functions.

- **Models**: ``lightgbm.dask.DaskLGBMClassifier`` trains data-parallel on the workers, then
  ``to_local()`` gives a plain ``lightgbm.LGBMClassifier``: the saved and served model is the
  same kind of object as the embedded one.
- **Segments**: ``SegmentationModel`` (scikit-learn KMeans, training/segments/model.py) is fitted on the
  per-customer table or a seeded sample of it, and every partition is assigned with
  ``map_partitions(assign_segment)``. dask-ml's KMeans is not used: its ``inertia_`` is wrong in
  the current release.
- **Rules**: baskets stay on the cluster, partitioned by customer so no basket spans two
  partitions. Item counts and itemset counts are summed over partitions level by level (pairs as
  ``X.T @ X`` of each partition's one-hot matrix), the frequent itemsets with their supports are
  handed to mlxtend's ``association_rules`` and tidied by the embedded code, so the rules are
  those ``mine_rules`` finds on the same baskets.
"""

from __future__ import annotations

import math
from itertools import combinations
from typing import Any

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
from mlxtend.frequent_patterns import association_rules

from features.contract import CUSTOMER_ID, SEGMENT_ID
from portrait.settings import RuleSettings, SegmentSettings
from training.rules import mining as rl
from training.segments.model import SegmentationModel, assign_segment, segmentation_model

# --- models -------------------------------------------------------------------------------


def categorical_frame(frame: Any, categories: dict[str, list[str]]) -> Any:
    """Categorical columns with fixed, known categories (Dask needs them known to train on)."""
    return frame.astype({c: pd.CategoricalDtype(v) for c, v in categories.items()})


def fit_classifier_distributed(
    x: dd.DataFrame, y: dd.Series, *, params: dict[str, Any], client: Any = None
) -> Any:
    """Train ``DaskLGBMClassifier(**params)`` on the cluster and return the local LGBMClassifier."""
    from lightgbm.dask import DaskLGBMClassifier

    model = DaskLGBMClassifier(client=client, **params)
    return model.fit(x, y).to_local()


LABEL, WEIGHT = "__label__", "__weight__"  # carried next to the features so partitions align


def fit_booster_distributed(
    fit: tuple[pd.DataFrame, np.ndarray, np.ndarray | None], *, params: dict[str, Any],
    client: Any, npartitions: int,
) -> Any:  # fmt: skip
    """``DaskLGBMClassifier(**params)`` on (features, labels, weights) held here: the plain Booster."""
    frame = fit[0].reset_index(drop=True).assign(**{LABEL: fit[1]})
    if fit[2] is not None:
        frame[WEIGHT] = fit[2]
    # At least ~200 rows per partition: a worker with a handful of rows cannot bin features.
    data = dd.from_pandas(frame, npartitions=max(1, min(npartitions, len(frame) // 200)))
    x = data[list(fit[0].columns)]
    weight = data[WEIGHT] if fit[2] is not None else None
    from lightgbm.dask import DaskLGBMClassifier

    model = DaskLGBMClassifier(client=client, **params)
    return model.fit(x, data[LABEL], sample_weight=weight).to_local().booster_


def logloss_curve(
    booster: Any, valid: tuple[pd.DataFrame, np.ndarray, np.ndarray | None]
) -> np.ndarray:
    """Binary logloss on ``valid`` after each tree (LightGBM's metric: weighted mean, clipped).

    One ``pred_leaf`` pass, then tree by tree the leaf values are added to the margin (the
    first tree carries the average LightGBM starts from), so no predict call per tree.
    """
    x, y, w = valid
    leaves = np.asarray(booster.predict(x, pred_leaf=True), dtype=np.int64).reshape(len(x), -1)
    margin, curve = np.zeros(len(x)), np.empty(leaves.shape[1])
    for t in range(leaves.shape[1]):  # a loop over trees, vectorised over rows
        values = np.array(
            [booster.get_leaf_output(t, leaf) for leaf in range(leaves[:, t].max() + 1)]
        )
        margin += values[leaves[:, t]]
        p = np.clip(1.0 / (1.0 + np.exp(-margin)), 1e-15, 1 - 1e-15)
        curve[t] = np.average(-(y * np.log(p) + (1 - y) * np.log(1 - p)), weights=w)
    return curve


def early_stopping_iteration(curve: np.ndarray, *, patience: int) -> int:
    """Best iteration (1-based) by ``lgb.early_stopping``'s rule: stop ``patience`` rounds after the best."""
    best = 0
    for i, value in enumerate(curve):
        if value < curve[best]:
            best = i
        elif i - best >= patience:
            break
    return best + 1


# --- segments -----------------------------------------------------------------------------


def fit_segments_distributed(
    portrait: dd.DataFrame, settings: SegmentSettings, *, fit_rows: int = 0
) -> SegmentationModel:
    """Fit on the whole per-customer table, or on a seeded sample of about ``fit_rows`` customers.

    ``fit_rows=0`` computes the portrait and fits exactly as the embedded run does (same segments).
    A sample keeps the fit on one machine for tens of millions of customers; KMeans centres from
    a sample of 10^5..10^6 customers move little, and assignment still covers every customer.
    """
    n = len(portrait)
    if fit_rows and n > fit_rows:
        portrait = portrait.sample(frac=fit_rows / n, random_state=settings.seed)
    frame = portrait.compute().sort_values(CUSTOMER_ID, kind="stable").reset_index(drop=True)
    return segmentation_model(settings).fit(frame)


def assign_segments_distributed(model: SegmentationModel, portrait: dd.DataFrame) -> dd.DataFrame:
    """``assign_segment`` on every partition: customer_id, segment_id, segment_name, assigned_by."""
    meta = assign_segment(model, portrait._meta_nonempty).iloc[:0]
    return portrait.map_partitions(assign_segment_part, model, meta=meta)


def assign_segment_part(part: pd.DataFrame, model: SegmentationModel) -> pd.DataFrame:
    """One partition's segments (an empty partition gives an empty frame)."""
    if part.empty:
        return assign_segment(model, part).iloc[:0]
    return assign_segment(model, part)


# --- rules --------------------------------------------------------------------------------


CANDIDATE_BLOCK = 64  # itemsets of size 3+ counted per block (bounds a partition's memory)


def _pairs(part: pd.DataFrame) -> pd.DataFrame:
    return part[[rl.BASKET_ID, rl.ITEM]].drop_duplicates()


def _item_counts(part: pd.DataFrame) -> tuple[int, pd.Series]:
    pairs = _pairs(part)
    return pairs[rl.BASKET_ID].nunique(), pairs[rl.ITEM].value_counts()


def _onehot(part: pd.DataFrame, items: list[str]) -> np.ndarray:
    pairs = _pairs(part)
    pairs = pairs.loc[pairs[rl.ITEM].isin(items)]
    rows, _ = pd.factorize(pairs[rl.BASKET_ID])
    cols = pd.Index(items).get_indexer(pairs[rl.ITEM])
    matrix = np.zeros((rows.max() + 1 if len(rows) else 0, len(items)), dtype=bool)
    matrix[rows, cols] = True
    return matrix


def _level_counts(part: pd.DataFrame, items: list[str], candidates: np.ndarray) -> np.ndarray:
    """Baskets of this partition holding every item of each candidate (rows of item positions)."""
    x = _onehot(part, items)
    if candidates.shape[1] == 2:  # every pair at once; float32 counts are exact below 2**24 rows
        x = x.astype(np.float32)
        co = x.T @ x
        return co[candidates[:, 0], candidates[:, 1]].astype(np.int64)
    # Blocks of candidates: x[:, all candidates] is rows x candidates x size bytes at once.
    return np.concatenate(
        [np.logical_and.reduce(x[:, candidates[i : i + CANDIDATE_BLOCK]], axis=2).sum(axis=0)
         for i in range(0, len(candidates), CANDIDATE_BLOCK)]
    )  # fmt: skip


def _next_candidates(frequent: list[tuple[int, ...]], size: int) -> np.ndarray:
    """Apriori: sets of ``size`` items whose every subset of ``size - 1`` is frequent."""
    known = set(frequent)
    items = sorted({i for s in frequent for i in s})
    found = [
        c for c in combinations(items, size) if all(s in known for s in combinations(c, size - 1))
    ]
    return np.array(found, dtype=int).reshape(-1, size)


def count_items(baskets: dd.DataFrame) -> tuple[int, pd.Series]:
    """Number of baskets and baskets per item, summed over partitions on the cluster."""
    counted = dask.compute(*[dask.delayed(_item_counts)(p) for p in baskets.to_delayed()])
    n = int(sum(c[0] for c in counted))
    counts = pd.concat([c[1] for c in counted]).groupby(level=0).sum().sort_index()
    return n, counts


def frequent_itemsets_distributed(
    baskets: dd.DataFrame, *, n: int, item_counts: pd.Series, min_support: float, max_len: int
) -> pd.DataFrame:
    """Frequent itemsets with supports, as fpgrowth returns them, counted level by level on the cluster."""
    parts = baskets.to_delayed()
    floor = math.ceil(min_support * n)  # fpgrowth's own threshold on counts
    keep = item_counts[(item_counts / max(n, 1) >= min_support) & (item_counts >= floor)]
    items = [str(i) for i in keep.index]
    found = {(i,): int(c) for i, c in enumerate(keep.to_numpy())}
    level = list(found)
    for size in range(2, max_len + 1):
        candidates = _next_candidates(level, size)
        if not len(candidates):
            break
        totals = sum(
            dask.compute(*[dask.delayed(_level_counts)(p, items, candidates) for p in parts])
        )
        level = [tuple(c) for c, t in zip(candidates.tolist(), totals, strict=True) if t >= floor]
        found.update(
            {
                s: int(t)
                for s, t in zip(map(tuple, candidates.tolist()), totals, strict=True)
                if t >= floor
            }
        )
    return pd.DataFrame(
        {
            "support": [c / n for c in found.values()],
            "itemsets": [frozenset(items[i] for i in s) for s in found],
        }
    )


def mine_rules_distributed(
    baskets: dd.DataFrame, *, settings: RuleSettings, kind: str, segment_id: str | None = None
) -> pd.DataFrame:
    """The rules ``training.rules.mining.mine_rules`` gives on the same baskets, counted on the cluster."""
    if kind not in rl.KINDS:
        raise rl.RulesError(f"rule kind must be one of {', '.join(rl.KINDS)}, got {kind!r}")
    n, item_counts = count_items(baskets)
    # basket_problem reads only emptiness and the distinct items: the item list stands in.
    problem = rl.basket_problem(pd.DataFrame({rl.ITEM: item_counts.index}))
    if problem:
        where = "all customers" if segment_id is None else f"segment {segment_id}"
        raise rl.RulesError(
            f"cannot mine {kind} rules for {where}: {problem}; check the transactions table and as_of"
        )
    settings = rl.kind_settings(settings, kind, n_baskets=n)
    if int((item_counts / n >= settings.min_support).sum()) < 2:
        return rl.empty_rules()
    itemsets = frequent_itemsets_distributed(
        baskets, n=n, item_counts=item_counts, min_support=settings.min_support,
        max_len=settings.max_len,
    )  # fmt: skip
    if not (itemsets["itemsets"].map(len) >= 2).any():
        return rl.empty_rules()
    raw = association_rules(
        itemsets, num_itemsets=n, metric="confidence",
        min_threshold=settings.min_confidence, return_metrics=rl.METRICS,
    )  # fmt: skip
    # _tidy is the embedded run's own filtering and naming: one code path for the rule table.
    return rl._tidy(raw, kind=kind, segment_id=segment_id, n_baskets=n, min_lift=settings.min_lift)


def holding_baskets_distributed(transactions: dd.DataFrame, *, as_of: pd.Timestamp) -> dd.DataFrame:
    """Holding baskets built per customer partition (transactions must be shuffled on customer_id)."""
    meta = rl.build_holding_baskets(transactions._meta, as_of=as_of)
    return transactions.map_partitions(rl.build_holding_baskets, as_of=as_of, meta=meta)


def transition_baskets_distributed(
    transactions: dd.DataFrame, *, as_of: pd.Timestamp, settings: RuleSettings
) -> dd.DataFrame:
    """Transition baskets built per customer partition (transactions shuffled on customer_id)."""
    kwargs = {"as_of": as_of, "window_days": settings.transition_window_days,
              "n_windows": settings.transition_windows}  # fmt: skip
    meta = rl.build_transition_baskets(transactions._meta, **kwargs)
    return transactions.map_partitions(rl.build_transition_baskets, **kwargs, meta=meta)


def mine_segment_rules_distributed(
    baskets: dd.DataFrame, segments: pd.DataFrame, *, settings: RuleSettings, kind: str
) -> tuple[pd.DataFrame, list[str]]:
    """The rules ``training.rules.mining.mine_segment_rules`` gives: per segment, counted on the cluster."""
    tags = segments[[CUSTOMER_ID, SEGMENT_ID]].astype({SEGMENT_ID: str})
    meta = _tag_part(baskets._meta, tags.iloc[:0])
    tagged = baskets.map_partitions(_tag_part, tags, meta=meta).persist()
    frames, skipped = [rl.empty_rules()], []
    for seg in sorted(tagged[SEGMENT_ID].unique().compute()):  # groupby(sort=True) order
        group = tagged[tagged[SEGMENT_ID] == seg]
        n, items = count_items(group)
        if n < settings.min_segment_baskets or rl.basket_problem(
            pd.DataFrame({rl.ITEM: items.index})
        ):
            skipped.append(f"{seg} ({n} baskets)")
            continue
        frames.append(mine_rules_distributed(group, settings=settings, kind=kind, segment_id=seg))
    rules = pd.concat([f for f in frames if len(f)] or frames, ignore_index=True)
    return rl.sort_rules(rules), skipped


def _tag_part(part: pd.DataFrame, tags: pd.DataFrame) -> pd.DataFrame:
    tags = tags.astype({CUSTOMER_ID: part[CUSTOMER_ID].dtype})
    return part.merge(tags, on=CUSTOMER_ID, how="inner")
