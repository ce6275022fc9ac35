"""Segments for a portrait: clusters, value tiers, lifecycle stages and tags, profile cards, metrics."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from features.contract import CUSTOMER_ID, PRODUCT_ID, SEGMENT_ID
from features.engagement import DEFAULT as ENGAGEMENT
from features.labels import build_churn_labels, build_conversion_labels
from portrait.errors import NotEnoughData
from portrait.settings import EngagementSettings, SegmentSettings
from training.engine import Cluster, fit_segments
from training.rules.base import product_labels
from training.segments.interest import interest_features, product_interactions
from training.segments.lifecycle import (
    STAGES,
    LifecycleRule,
    lifecycle_frame,
    lifecycle_stages,
)
from training.segments.model import SegmentationModel, design_matrix
from training.segments.tags import build_tags
from training.segments.tiers import TIERS, PotentialRule, value_tiers

SEGMENT_COLUMNS = [CUSTOMER_ID, SEGMENT_ID, "segment_name", "value_tier", "lifecycle_stage", "tags"]


def build_segments(
    portrait: pd.DataFrame, *, settings: SegmentSettings, active_days: int = 90,
    cluster: Cluster | None = None, interests: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, SegmentationModel]:  # fmt: skip
    """Fit the segmentation on active customers and give every customer segment, tier, stage and tags.

    ``interests`` (``with_interests``) are the product-interest columns the clustering adds to
    the portrait. With a Dask ``cluster`` (training/engine.py) customers are assigned on its workers.
    """
    portrait = with_interests(portrait, interests)
    active = portrait.loc[portrait["is_active"].astype(bool)]
    if active.empty:
        raise NotEnoughData(
            "segments: no customer is active at as_of (no engagement, e.g. event, deposit or buy, in the "
            f"{active_days} days before it); pick a later --as-of or check the events table"
        )
    model, assigned = fit_segments(portrait, active, settings=settings, cluster=cluster)
    tiers = value_tiers(
        portrait, top_n=settings.top_n, rule=PotentialRule(floor=settings.potential_floor)
    )
    rule = lifecycle_rule(settings, active_days=active_days)
    stages = lifecycle_stages(lifecycle_frame(portrait), rule=rule)
    segments = assigned.drop(columns="assigned_by").assign(
        value_tier=tiers["value_tier"].to_numpy(), lifecycle_stage=stages.to_numpy(),
        tags=build_tags(portrait)["tags"].to_numpy(),
    )  # fmt: skip
    return segments[SEGMENT_COLUMNS], model


def fit_run_segments(
    tables: dict[str, pd.DataFrame], portrait: pd.DataFrame, *, as_of: pd.Timestamp,
    settings: SegmentSettings, active_days: int = 90, cluster: Cluster | None = None,
) -> tuple[pd.DataFrame, SegmentationModel, pd.DataFrame, str]:  # fmt: skip
    """The segments stage's fit: segments, model, the portrait plus interests, and a k-range note.

    k is chosen over the range the active customers allow (``fitting_k_range``); the
    clustering reads the portrait plus the product-interest mix at ``as_of``.
    """
    settings, note = fitting_k_range(
        settings, n_active=int(portrait["is_active"].astype(bool).sum())
    )
    clustered = with_interests(
        portrait, interest_frame(tables, portrait, as_of=as_of, settings=settings)
    )
    segments, model = build_segments(
        clustered, settings=settings, active_days=active_days, cluster=cluster
    )
    return segments, model, clustered, note


def interest_frame(
    tables: dict[str, pd.DataFrame], portrait: pd.DataFrame, *, as_of: pd.Timestamp,
    settings: SegmentSettings,
) -> pd.DataFrame:  # fmt: skip
    """customer_id and the ``interest_*`` mix of every portrait customer (interest.py)."""
    interactions = product_interactions(tables, as_of=as_of)
    return interest_features(
        interactions, portrait[CUSTOMER_ID].astype(str),
        n_components=settings.interest_components, prior=settings.interest_prior,
        seed=settings.seed,
    )  # fmt: skip


def with_interests(portrait: pd.DataFrame, interests: pd.DataFrame | None) -> pd.DataFrame:
    """The portrait with the interest columns joined on customer_id (unchanged without any)."""
    if interests is None or interests.shape[1] <= 1:
        return portrait
    columns = interests.drop(columns=CUSTOMER_ID).set_index(interests[CUSTOMER_ID].astype(str))
    joined = columns.reindex(portrait[CUSTOMER_ID].astype(str)).fillna(0.0)
    return portrait.assign(**{c: joined[c].to_numpy() for c in columns.columns})


def lifecycle_rule(settings: SegmentSettings, *, active_days: int) -> LifecycleRule:
    """Lifecycle thresholds from the settings."""
    return LifecycleRule(
        new_days=settings.new_days, active_days=active_days, churned_days=settings.churned_days
    )


def profile_cards(
    portrait: pd.DataFrame, segments: pd.DataFrame, *, model: SegmentationModel,
    holdings: pd.DataFrame | None = None, outcomes: pd.DataFrame | None = None,
    products: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:  # fmt: skip
    """Per segment: a card (size, share, top products, outcome rates) and feature means vs population.

    `outcomes` holds customer_id plus numeric columns (e.g. churned, converted, churn_probability);
    their mean per segment goes on the card.
    """
    seg = segments.set_index(CUSTOMER_ID)[SEGMENT_ID].reindex(portrait[CUSTOMER_ID]).to_numpy()
    # Means in the features' own units; z-scores on the clustering scale (log money) so whales do not rule.
    scaled = design_matrix(portrait, model.features_)
    raw = scaled.assign(
        **{c: portrait[c].astype(float).to_numpy() for c in model.features_ if c in portrait}
    )
    means, population = raw.groupby(seg).mean(), raw.mean()
    z = (scaled.groupby(seg).mean() - scaled.mean()) / scaled.std(ddof=0).replace(0, np.nan)
    sizes = pd.Series(seg).value_counts().reindex(means.index, fill_value=0)
    cards = pd.DataFrame(
        {SEGMENT_ID: means.index, "segment_name": [model.names_[int(s)] for s in means.index],
         "customers": sizes.to_numpy(), "share": (sizes / sizes.sum()).to_numpy()}
    )  # fmt: skip
    if holdings is not None:
        labels = None if products is None else product_labels(products)
        top = _top_products(holdings, segments, labels=labels)
        cards["top_products"] = top.reindex(means.index).to_numpy()
    if outcomes is not None:
        rates = outcomes.merge(segments[[CUSTOMER_ID, SEGMENT_ID]], on=CUSTOMER_ID).drop(
            columns=CUSTOMER_ID
        )
        cards = cards.merge(
            rates.groupby(SEGMENT_ID).mean().reset_index(), on=SEGMENT_ID, how="left"
        )
    versus = pd.concat({"segment_mean": means.stack(), "z": z.stack()}, axis=1)
    versus = versus.rename_axis([SEGMENT_ID, "feature"]).reset_index()
    versus["population_mean"] = versus["feature"].map(population)
    return cards, versus


def _top_products(
    holdings: pd.DataFrame, segments: pd.DataFrame, n: int = 3, labels: pd.Series | None = None
) -> pd.Series:
    """'Gold fund (45%), Deposit (30%)': the products held by the largest share of each segment.

    `labels` maps product_id to a readable label (training.rules.base.product_labels); ids without.
    """
    held = (
        holdings[[CUSTOMER_ID, PRODUCT_ID]]
        .drop_duplicates()
        .merge(segments[[CUSTOMER_ID, SEGMENT_ID]], on=CUSTOMER_ID)
    )
    size = segments.groupby(SEGMENT_ID).size()
    share = (
        held.groupby([SEGMENT_ID, PRODUCT_ID])
        .size()
        .div(size, level=SEGMENT_ID)
        .rename("share")
        .reset_index()
    )
    share = share.sort_values([SEGMENT_ID, "share", PRODUCT_ID], ascending=[True, False, True])
    top = share.groupby(SEGMENT_ID).head(n)
    ids = top[PRODUCT_ID].astype(str)
    label = (
        (ids if labels is None else ids.map(labels).fillna(ids))
        + " ("
        + (top["share"] * 100).round().astype(int).astype(str)
        + "%)"
    )
    return label.groupby(top[SEGMENT_ID]).agg(", ".join)


def recent_outcomes(
    tables: dict[str, pd.DataFrame], *, as_of: pd.Timestamp, active_days: int, horizon_days: int,
    engagement: EngagementSettings = ENGAGEMENT,
) -> pd.DataFrame:  # fmt: skip
    """Observed churn and conversion over the last horizon (labels at as_of - horizon), per customer."""
    start = pd.Timestamp(as_of) - pd.Timedelta(days=horizon_days)
    churn = build_churn_labels(
        tables, as_of=start, active_days=active_days, horizon_days=horizon_days, rule=engagement
    )
    converted = build_conversion_labels(tables, as_of=start, horizon_days=horizon_days)[
        CUSTOMER_ID
    ].unique()
    churn["converted"] = churn[CUSTOMER_ID].isin(converted).astype(int)
    return churn.rename(
        columns={"churned": "recent_churn_rate", "converted": "recent_conversion_rate"}
    )


def fitting_k_range(settings: SegmentSettings, *, n_active: int) -> tuple[SegmentSettings, str]:
    """The settings with k_max lowered to what `n_active` customers support, and a note when lowered.

    Choosing k needs k < the customers scored (silhouette); fewer than k_min + 1 active
    customers cannot be segmented (NotEnoughData).
    """
    most = min(settings.k_max, n_active - 1, settings.sample_size - 1)
    if most >= settings.k_max:
        return settings, ""
    if most < settings.k_min:
        raise NotEnoughData(
            f"{n_active} active customer(s) at as_of; at least segments.k_min + 1 = "
            f"{settings.k_min + 1} are needed to choose between {settings.k_min} or more segments"
        )
    note = f"k chosen over {settings.k_min}..{most} instead of ..{settings.k_max}: {n_active} active customers"
    return dataclasses.replace(settings, k_max=most), note


def runner_up(criterion: dict[int, dict[str, float]], k: int) -> tuple[int, float] | None:
    """The second-best k by the selection score and its score over the chosen k's (None when
    only one k was tried). Near 1, the data support both: the report says so."""
    others = {j: v["score"] for j, v in criterion.items() if j != k}
    if not others or criterion[k]["score"] <= 0:
        return None
    best = max(others, key=lambda j: (others[j], -j))
    return best, float(others[best] / criterion[k]["score"])


def segment_metrics(
    model: SegmentationModel, segments: pd.DataFrame, potential: dict[str, float]
) -> dict[str, float]:
    """Numbers logged to MLflow and quality.json: k, criterion, stability, cold start, tier and stage counts."""
    tiers = segments["value_tier"].value_counts()
    stages = segments["lifecycle_stage"].value_counts()
    metrics: dict[str, float] = {
        "k": model.k_, "silhouette": model.criterion_[model.k_]["silhouette"],
        "reseed_ari": model.stability_ari_, "cold_start_agreement": model.cold_start_agreement_,
        "cold_start_baseline": model.cold_start_baseline_,
        "cold_start_informative": float(model.cold_start_informative_),
    }  # fmt: skip
    second = runner_up(model.criterion_, model.k_)
    if second is not None:
        metrics.update(k_runner_up=second[0], runner_up_score_ratio=second[1])
    metrics.update({f"silhouette_k{k}": v["silhouette"] for k, v in model.criterion_.items()})
    metrics.update({f"stability_k{k}": v["stability"] for k, v in model.criterion_.items()})
    metrics.update({f"tier_{t}": int(tiers.get(t, 0)) for t in TIERS})
    metrics.update({f"stage_{s}": int(stages.get(s, 0)) for s in STAGES})
    metrics.update(potential)
    return metrics
