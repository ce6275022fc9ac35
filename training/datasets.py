"""Training sets over earlier cut-offs: features strictly before each cut-off, labels in the horizon after.

Cut-offs (DATA_CONTRACT.md, Time and labels): the validation cut-off is `as_of - horizon`, so
its labels close before `as_of`; `time.training_cutoffs` further cut-offs step back one horizon
each; scoring happens at `as_of`. Every table is first cut to rows strictly before `as_of`, so no
row at or after `as_of` can reach a training set, whatever a feature builder does.
Conversion negatives of the training cut-offs are subsampled (`negative_rate`, seeded) and carry
weight 1 / rate; the validation cut-off keeps every pair so ranking metrics are exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.contract import CUSTOMER_ID, PRODUCT_ID
from features.labels import build_churn_labels, build_conversion_labels, training_cutoffs
from features.portrait import build_features
from portrait.errors import PortraitError
from portrait.settings import TimeSettings
from training.pairs import PairContext, build_pair_context, build_pairs

TIME_COLUMNS = {
    "customers": "signup_at",
    "transactions": "ts",
    "events": "ts",
    "interactions": "ts",
    "balances": "date",
    "campaigns": "sent_at",
}
WEIGHT = "weight"


def stamp(value: pd.Timestamp | str) -> pd.Timestamp:
    """A cut-off as a nanosecond timestamp (the unit validated tables use)."""
    return pd.Timestamp(value).as_unit("ns")


@dataclass(frozen=True)
class ModelCutoffs:
    """Training cut-offs (oldest first), the validation cut-off and the scoring time."""

    training: tuple[pd.Timestamp, ...]
    validation: pd.Timestamp
    scoring: pd.Timestamp

    @property
    def labelled(self) -> tuple[pd.Timestamp, ...]:
        return (*self.training, self.validation)


def model_cutoffs(as_of: pd.Timestamp, *, horizon_days: int, n_training: int) -> ModelCutoffs:
    """`n_training` training cut-offs and the validation cut-off `as_of - horizon`."""
    cuts = [stamp(c) for c in training_cutoffs(as_of, horizon_days=horizon_days, n=n_training + 1)]
    return ModelCutoffs(tuple(cuts[:-1]), cuts[-1], stamp(as_of))


def history(tables: dict[str, pd.DataFrame], *, as_of: pd.Timestamp) -> dict[str, pd.DataFrame]:
    """Every table cut to rows strictly before `as_of` (products have no time and are kept)."""
    as_of = stamp(as_of)
    out = {}
    for name, frame in tables.items():
        column = TIME_COLUMNS.get(name)
        out[name] = frame if column is None else frame.loc[frame[column] < as_of]
    return out


def portraits_at(
    tables: dict[str, pd.DataFrame], cutoffs: list[pd.Timestamp], *, active_days: int
) -> dict[pd.Timestamp, pd.DataFrame]:
    """The portrait at each distinct cut-off (built once, shared by churn and conversion)."""
    return {
        c: build_features(tables, as_of=c, active_days=active_days) for c in sorted(set(cutoffs))
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
        raise PortraitError(
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
) -> TrainingSet:
    """Active customers at each labelled cut-off with `churned` in the horizon after it."""
    cutoffs = model_cutoffs(
        as_of, horizon_days=time.churn_horizon_days, n_training=time.training_cutoffs
    )
    past = history(tables, as_of=as_of)
    portraits = portraits or portraits_at(
        past, list(cutoffs.labelled), active_days=time.active_days
    )
    frames = {}
    for c in cutoffs.labelled:
        labels = build_churn_labels(
            past, as_of=c, active_days=time.active_days, horizon_days=time.churn_horizon_days
        )
        frames[c] = portraits[c].merge(labels, on=CUSTOMER_ID, how="inner").assign(cutoff=c)
    train = pd.concat([frames[c] for c in cutoffs.training], ignore_index=True)
    valid = frames[cutoffs.validation].reset_index(drop=True)
    _check_rows(train, "churn training set", "churned")
    _check_rows(valid, f"churn validation fold at {cutoffs.validation.date()}", "churned")
    return TrainingSet(train, valid, cutoffs)


def conversion_pairs(
    tables: dict[str, pd.DataFrame],
    portrait: pd.DataFrame,
    *,
    cutoff: pd.Timestamp,
    horizon_days: int,
    segments: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, PairContext]:
    """Pairs at one cut-off with `converted` = bought in [cutoff, cutoff + horizon)."""
    context = build_pair_context(
        tables, portrait, cutoff=cutoff, window_days=horizon_days, segments=segments
    )
    pairs = build_pairs(portrait, context)
    labels = build_conversion_labels(tables, as_of=cutoff, horizon_days=horizon_days)
    labels = labels.astype({CUSTOMER_ID: str, PRODUCT_ID: str})
    pairs = pairs.merge(labels, on=[CUSTOMER_ID, PRODUCT_ID], how="left")
    pairs["converted"] = pairs["converted"].fillna(0).astype(int)
    return pairs.assign(cutoff=cutoff), context


def subsample_negatives(pairs: pd.DataFrame, *, rate: float, seed: int) -> pd.DataFrame:
    """Keep every positive and a seeded `rate` share of negatives, weighted 1 / rate."""
    rng = np.random.default_rng(seed)
    negative = pairs["converted"].to_numpy() == 0
    keep = ~negative | (rng.random(len(pairs)) < rate)
    weight = np.where(negative, 1.0 / rate, 1.0)
    return pairs.assign(**{WEIGHT: weight}).loc[keep].reset_index(drop=True)


def conversion_training_set(
    tables: dict[str, pd.DataFrame],
    *,
    as_of: pd.Timestamp,
    time: TimeSettings,
    negative_rate: float,
    seed: int,
    portraits: dict[pd.Timestamp, pd.DataFrame] | None = None,
    segments: pd.DataFrame | None = None,
) -> TrainingSet:
    """Customer x not-held active product pairs per labelled cut-off, `converted` in the horizon."""
    horizon = time.conversion_horizon_days
    cutoffs = model_cutoffs(as_of, horizon_days=horizon, n_training=time.training_cutoffs)
    past = history(tables, as_of=as_of)
    portraits = portraits or portraits_at(
        past, list(cutoffs.labelled), active_days=time.active_days
    )
    frames, contexts = [], {}
    for i, c in enumerate(cutoffs.training):
        pairs, contexts[c] = conversion_pairs(
            past, portraits[c], cutoff=c, horizon_days=horizon, segments=segments
        )
        frames.append(subsample_negatives(pairs, rate=negative_rate, seed=seed + i))
    valid, contexts[cutoffs.validation] = conversion_pairs(
        past, portraits[cutoffs.validation], cutoff=cutoffs.validation, horizon_days=horizon,
        segments=segments,
    )  # fmt: skip
    train = pd.concat(frames, ignore_index=True)
    _check_rows(train, "conversion training set", "converted")
    _check_rows(valid, f"conversion validation fold at {cutoffs.validation.date()}", "converted")
    return TrainingSet(train, valid.assign(**{WEIGHT: 1.0}), cutoffs, contexts)
