"""Both models' training sets of one run, from one portrait per cut-off (issue #19: memory).

`training_sets` builds each distinct cut-off's portrait once and frees it before the next:
it gives the churn rows and keeps only the columns the conversion pairs read, so a run holds
one portrait at a time and never both models' training rows (`portrait.stages.models`).
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from features.contract import CUSTOMER_ID
from features.pairs import CUSTOMER_FEATURES, LINE_SHARES, attribute_columns
from features.portrait import build_features
from portrait.errors import NotEnoughData
from portrait.settings import EngagementSettings, TimeSettings
from training.models.cutoffs import ModelCutoffs, history
from training.models.datasets import (
    ConversionSampling,
    TrainingSet,
    churn_rows,
    churn_set,
    conversion_rows,
    conversion_set,
    cutoffs_of,
)


def training_sets(
    tables: dict[str, pd.DataFrame], *, as_of: pd.Timestamp, time: TimeSettings,
    engagement: EngagementSettings, sampling: ConversionSampling,
) -> dict[str, Callable[[], TrainingSet]]:  # fmt: skip
    """Both models' training sets, "churn" and "conversion", each built when its value is
    called (NotEnoughData then when the data cannot give it): call and train one at a time.

    Each distinct cut-off's portrait is built once and freed before the next is built (at 1M
    customers each is about 1 GB): it gives the churn rows, and keeps only the columns the
    conversion pairs read (`pair_inputs`), so the pairs are built after churn has trained
    and memory never holds both models' training rows.
    """
    past = history(tables, as_of=as_of)
    plans: dict[str, ModelCutoffs | NotEnoughData] = {}
    for name, horizon in (("churn", time.churn_horizon_days),
                          ("conversion", time.conversion_horizon_days)):  # fmt: skip
        try:
            plans[name] = cutoffs_of(past, as_of, horizon, time)
        except NotEnoughData as exc:
            plans[name] = exc
    planned = {n: p for n, p in plans.items() if isinstance(p, ModelCutoffs)}
    rows: dict[str, dict[pd.Timestamp, pd.DataFrame]] = {n: {} for n in planned}
    for c in sorted({c for p in planned.values() for c in p.labelled}):
        portrait = build_features(
            past, as_of=c, active_days=time.active_days, engagement_rule=engagement
        )
        if "churn" in planned and c in planned["churn"].labelled:
            rows["churn"][c] = churn_rows(past, portrait, cutoff=c, time=time,
                                          engagement=engagement)  # fmt: skip
        if "conversion" in planned and c in planned["conversion"].labelled:
            rows["conversion"][c] = pair_inputs(portrait)
        del portrait  # before the next cut-off's is built

    def churn() -> TrainingSet:
        plan = _planned(plans["churn"])
        return churn_set(rows.pop("churn"), plan)

    def conversion() -> TrainingSet:
        plan, slim = _planned(plans["conversion"]), rows.pop("conversion")
        pairs = {c: conversion_rows(past, slim.pop(c), cutoff=c, cutoffs=plan, time=time,
                                    sampling=sampling)
                 for c in plan.labelled}  # fmt: skip
        return conversion_set(pairs, plan)

    return {"churn": churn, "conversion": conversion}


def _planned(plan: ModelCutoffs | NotEnoughData) -> ModelCutoffs:
    if isinstance(plan, NotEnoughData):
        raise plan
    return plan


def pair_inputs(portrait: pd.DataFrame) -> pd.DataFrame:
    """The portrait columns conversion pairs read (`features.pairs`: the customer features, the
    event counts their shares come from, the peer key's age and risk, the text attributes)."""
    wanted = [CUSTOMER_ID, *CUSTOMER_FEATURES, *LINE_SHARES.values(), "events_90d",
              "risk_level", "age", *attribute_columns(portrait)]  # fmt: skip
    return portrait[[c for c in dict.fromkeys(wanted) if c in portrait.columns]].copy()
