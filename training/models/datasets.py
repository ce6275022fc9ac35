"""Training sets over earlier cut-offs: features strictly before each cut-off, labels in the horizon after.

Cut-offs (DATA_CONTRACT.md, Time and labels): the validation cut-off is `as_of - horizon`, so
its labels close before `as_of`; `time.training_cutoffs` further cut-offs step back one horizon
each; scoring happens at `as_of`. Every table is first cut to rows strictly before `as_of`, so no
row at or after `as_of` can reach a training set, whatever a feature builder does.
Conversion pairs are built per block of customers and sampled as they come: negatives of the
training cut-offs by `negative_rate` (seeded, weight 1 / rate); the validation cut-off keeps
every pair of the customers who bought (ranking metrics stay exact) and a share of the others.
Pairs a campaign pushed inside the label horizon are left out (see `campaign_pairs`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.contract import CUSTOMER_ID, PRODUCT_ID
from features.engagement import DEFAULT as ENGAGEMENT
from features.labels import build_churn_labels, build_conversion_labels
from features.pairs import PairContext, build_pair_context, build_pairs
from features.portrait import build_features
from portrait.errors import NotEnoughData
from portrait.settings import EngagementSettings, TimeSettings
from training.models.cutoffs import ModelCutoffs, history, history_start, model_cutoffs

WEIGHT = "weight"
BLOCK_CUSTOMERS = 20_000
VALIDATION_OTHERS = 0.1  # share of non-buying customers kept in the validation fold


def portraits_at(
    tables: dict[str, pd.DataFrame], cutoffs: list[pd.Timestamp], *, active_days: int,
    engagement: EngagementSettings = ENGAGEMENT,
) -> dict[pd.Timestamp, pd.DataFrame]:  # fmt: skip
    """The portrait at each distinct cut-off (built once, shared by churn and conversion)."""
    return {
        c: build_features(tables, as_of=c, active_days=active_days, engagement_rule=engagement)
        for c in sorted(set(cutoffs))
    }


@dataclass(frozen=True)
class TrainingSet:
    """Time-ordered training rows, the validation fold and the cut-offs they came from."""

    train: pd.DataFrame
    valid: pd.DataFrame
    cutoffs: ModelCutoffs
    contexts: dict[pd.Timestamp, PairContext] | None = None


def _check_rows(frame: pd.DataFrame, what: str, label: str) -> None:
    if frame.empty or frame[label].nunique() < 2:
        raise NotEnoughData(
            f"{what} has {len(frame)} rows and {int(frame[label].sum()) if len(frame) else 0} "
            f"positives: both classes are needed; use more history before --as-of or fewer "
            f"time.training_cutoffs"
        )


def churn_training_set(
    tables: dict[str, pd.DataFrame],
    *,
    as_of: pd.Timestamp,
    time: TimeSettings,
    portraits: dict[pd.Timestamp, pd.DataFrame] | None = None,
    engagement: EngagementSettings = ENGAGEMENT,
) -> TrainingSet:
    """Active customers at each labelled cut-off with `churned` in the horizon after it.

    Every cut-off, the validation one included, takes the population scored at `as_of`: active
    by the same engagement rule, departed customers left out; features see rows before the
    cut-off, labels the horizon after it, and nothing reaches `as_of`.
    """
    past = history(tables, as_of=as_of)
    cutoffs = cutoffs_of(past, as_of, time.churn_horizon_days, time)
    portraits = portraits or portraits_at(
        past, list(cutoffs.labelled), active_days=time.active_days, engagement=engagement
    )
    rows = {c: churn_rows(past, portraits[c], cutoff=c, time=time, engagement=engagement)
            for c in cutoffs.labelled}  # fmt: skip
    return churn_set(rows, cutoffs)


def cutoffs_of(
    past: dict[str, pd.DataFrame], as_of: pd.Timestamp, horizon: int, time: TimeSettings
):
    return model_cutoffs(
        as_of, horizon_days=horizon, n_training=time.training_cutoffs, start=history_start(past)
    )


def churn_rows(
    past: dict[str, pd.DataFrame], portrait: pd.DataFrame, *, cutoff: pd.Timestamp,
    time: TimeSettings, engagement: EngagementSettings = ENGAGEMENT,
) -> pd.DataFrame:  # fmt: skip
    """The portrait's active customers at `cutoff` with `churned` in the horizon after it.

    `portrait` is the one at `cutoff` by `engagement` and `time.active_days`: its `is_active`
    is the labels' population (build_churn_labels would find the same customers again)."""
    active = pd.Index(portrait.loc[portrait["is_active"].to_numpy(dtype=bool), CUSTOMER_ID])
    labels = build_churn_labels(
        past, as_of=cutoff, active_days=time.active_days, horizon_days=time.churn_horizon_days,
        rule=engagement, active=active.sort_values(),
    )  # fmt: skip
    return portrait.merge(labels, on=CUSTOMER_ID, how="inner").assign(cutoff=cutoff)


def churn_set(rows: dict[pd.Timestamp, pd.DataFrame], cutoffs: ModelCutoffs) -> TrainingSet:
    """Training rows of the training cut-offs (oldest first) and the validation fold, checked."""
    train = pd.concat([rows[c] for c in cutoffs.training], ignore_index=True)
    valid = rows[cutoffs.validation].reset_index(drop=True)
    _check_rows(train, "churn training set", "churned")
    _check_rows(valid, f"churn validation fold at {cutoffs.validation.date()}", "churned")
    return TrainingSet(train, valid, cutoffs)


def campaign_pairs(
    tables: dict[str, pd.DataFrame], *, cutoff: pd.Timestamp, horizon_days: int, window_days: int
) -> pd.DataFrame:
    """(customer, product) pairs a campaign pushed with a response window reaching the label horizon.

    A push changes what its population buys for a while (the demo's fund push turned half of one
    horizon's purchases into that fund); those purchases are the campaign's outcome, measured by
    campaign evaluation, not organic demand, so they are neither positives nor negatives here.
    """
    campaigns = tables.get("campaigns")
    if campaigns is None or campaigns.empty:
        return pd.DataFrame({CUSTOMER_ID: pd.Series(dtype=str), PRODUCT_ID: pd.Series(dtype=str)})
    sent = campaigns["sent_at"]
    reach = (sent > cutoff - pd.Timedelta(days=window_days)) & (
        sent < cutoff + pd.Timedelta(days=horizon_days)
    )
    hit = campaigns.loc[reach & campaigns[PRODUCT_ID].notna(), [CUSTOMER_ID, PRODUCT_ID]]
    return hit.astype(str).drop_duplicates()


def label_pairs(pairs: pd.DataFrame, labels: pd.DataFrame, excluded: pd.DataFrame) -> pd.DataFrame:
    """`converted` from the horizon's purchases; campaign-driven pairs dropped."""
    pairs = pairs.merge(labels, on=[CUSTOMER_ID, PRODUCT_ID], how="left")
    pairs["converted"] = pairs["converted"].fillna(0).astype(np.int8)
    if len(excluded):
        gone = pairs.merge(excluded.assign(_x=True), on=[CUSTOMER_ID, PRODUCT_ID], how="left")
        pairs = pairs.loc[gone["_x"].isna().to_numpy()]
    return pairs.reset_index(drop=True)


def conversion_pairs(
    tables: dict[str, pd.DataFrame],
    portrait: pd.DataFrame,
    *,
    cutoff: pd.Timestamp,
    horizon_days: int,
    segments: pd.DataFrame | None = None,
    campaign_window_days: int = 30,
    keep: Callable[[pd.DataFrame, int], pd.DataFrame] | None = None,
) -> tuple[pd.DataFrame, PairContext]:
    """Pairs at one cut-off with `converted` = bought in [cutoff, cutoff + horizon).

    Pairs are built per block of BLOCK_CUSTOMERS customers and `keep(block, i)` (a sampler)
    runs on each block before the next is built, so memory follows the kept rows, not the
    customers x products cross product.
    """
    context = build_pair_context(
        tables, portrait, cutoff=cutoff, window_days=horizon_days, segments=segments
    )
    labels = build_conversion_labels(tables, as_of=cutoff, horizon_days=horizon_days)
    labels = labels.astype({CUSTOMER_ID: str, PRODUCT_ID: str})
    excluded = campaign_pairs(
        tables, cutoff=cutoff, horizon_days=horizon_days, window_days=campaign_window_days
    )
    blocks = []
    for i, start in enumerate(range(0, len(portrait), BLOCK_CUSTOMERS)):  # blocks, not rows
        rows = portrait.iloc[start : start + BLOCK_CUSTOMERS]
        block = label_pairs(build_pairs(rows, context), labels, excluded)
        blocks.append(block if keep is None else keep(block, i))
    pairs = pd.concat(blocks, ignore_index=True) if blocks else build_pairs(portrait, context)
    return pairs.assign(cutoff=cutoff), context


def subsample_negatives(pairs: pd.DataFrame, *, rate: float, seed: int) -> pd.DataFrame:
    """Keep every positive and a seeded `rate` share of negatives, weighted 1 / rate."""
    rng = np.random.default_rng(seed)
    negative = pairs["converted"].to_numpy() == 0
    keep = ~negative | (rng.random(len(pairs)) < rate)
    weight = np.where(negative, 1.0 / rate, 1.0).astype(np.float32)
    return pairs.assign(**{WEIGHT: weight}).loc[keep].reset_index(drop=True)


def sample_customers(pairs: pd.DataFrame, *, rate: float) -> pd.DataFrame:
    """Every pair of customers who bought; a stable `rate` share of the others, weighted 1 / rate.

    Ranking metrics average over customers who bought, so they are exact on this sample; the
    other customers keep calibration and the gate's example rows honest.
    """
    bought = pairs.groupby(CUSTOMER_ID, sort=False)["converted"].transform("max").to_numpy() > 0
    drawn = pd.util.hash_array(pairs[CUSTOMER_ID].to_numpy(dtype=object)) % 1000 < rate * 1000
    weight = np.where(bought, 1.0, 1.0 / rate).astype(np.float32)
    return pairs.assign(**{WEIGHT: weight}).loc[bought | drawn].reset_index(drop=True)


def _negative_sampler(rate: float, *, seed: int) -> Callable[[pd.DataFrame, int], pd.DataFrame]:
    return lambda block, b: subsample_negatives(block, rate=rate, seed=seed + b)


def _customer_sampler(rate: float) -> Callable[[pd.DataFrame, int], pd.DataFrame]:
    return lambda block, b: sample_customers(block, rate=rate)


def conversion_training_set(
    tables: dict[str, pd.DataFrame],
    *,
    as_of: pd.Timestamp,
    time: TimeSettings,
    negative_rate: float,
    seed: int,
    portraits: dict[pd.Timestamp, pd.DataFrame] | None = None,
    segments: pd.DataFrame | None = None,
    campaign_window_days: int = 30,
) -> TrainingSet:
    """Customer x not-held active product pairs per labelled cut-off, `converted` in the horizon.

    Training cut-offs keep a seeded `negative_rate` of negatives; the validation cut-off keeps
    every pair of customers who bought and VALIDATION_OTHERS of the other customers.
    """
    past = history(tables, as_of=as_of)
    cutoffs = cutoffs_of(past, as_of, time.conversion_horizon_days, time)
    portraits = portraits or portraits_at(
        past, list(cutoffs.labelled), active_days=time.active_days
    )
    sampling = ConversionSampling(negative_rate, seed, campaign_window_days, segments)
    rows = {c: conversion_rows(past, portraits[c], cutoff=c, cutoffs=cutoffs, time=time,
                               sampling=sampling)
            for c in cutoffs.labelled}  # fmt: skip
    return conversion_set(rows, cutoffs)


@dataclass(frozen=True)
class ConversionSampling:
    """How conversion pairs are sampled and which pairs are left out (see conversion_rows)."""

    negative_rate: float
    seed: int
    campaign_window_days: int = 30
    segments: pd.DataFrame | None = None


def conversion_rows(
    past: dict[str, pd.DataFrame], portrait: pd.DataFrame, *, cutoff: pd.Timestamp,
    cutoffs: ModelCutoffs, time: TimeSettings, sampling: ConversionSampling,
) -> pd.DataFrame:  # fmt: skip
    """The sampled, labelled pairs of one of `cutoffs.labelled`: training cut-offs keep a
    seeded share of negatives (seeded by the cut-off's position), the validation cut-off every
    pair of the customers who bought and VALIDATION_OTHERS of the others."""
    if cutoff == cutoffs.validation:
        keep = _customer_sampler(VALIDATION_OTHERS)
    else:
        i = cutoffs.labelled.index(cutoff)
        keep = _negative_sampler(sampling.negative_rate, seed=sampling.seed + 1000 * i)
    return conversion_pairs(
        past, portrait, cutoff=cutoff, horizon_days=time.conversion_horizon_days,
        segments=sampling.segments, campaign_window_days=sampling.campaign_window_days, keep=keep,
    )[0]  # fmt: skip


def conversion_set(rows: dict[pd.Timestamp, pd.DataFrame], cutoffs: ModelCutoffs) -> TrainingSet:
    """Pairs of the training cut-offs (oldest first) and the validation fold, checked."""
    train = pd.concat([rows[c] for c in cutoffs.training], ignore_index=True)
    valid = rows[cutoffs.validation]
    _check_rows(train, "conversion training set", "converted")
    _check_rows(valid, f"conversion validation fold at {cutoffs.validation.date()}", "converted")
    return TrainingSet(train, valid, cutoffs)
