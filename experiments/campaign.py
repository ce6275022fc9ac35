"""Campaign evaluation: conversion of treatment against control within a window after each send."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from experiments.stats import compare_rates, sample_ratio_mismatch
from features.contract import CUSTOMER_ID, PRODUCT_ID, TS
from features.timeline import first_ts
from portrait.errors import PortraitError

BREAKDOWN_COLUMNS = ("segment_name", "value_tier", "lifecycle_stage", "channel")


@dataclass(frozen=True)
class CampaignResult:
    """Overall comparison (one row), per-group breakdown, sample ratio check and the per-customer outcomes."""

    campaign_id: str
    window_days: int
    overall: pd.DataFrame
    breakdown: pd.DataFrame
    srm: dict[str, float | bool]
    outcomes: pd.DataFrame
    complete: bool  # False when the window runs past the newest data

    def statement(self) -> str:
        """One sentence a marketer can read: rates, lift with its interval, p-value."""
        r = self.overall.iloc[0]
        if min(r.n_treatment, r.n_control) == 0:
            return (
                f"{self.campaign_id}: {int(r.n_treatment)} treatment and {int(r.n_control)} "
                "control customers; both groups are needed to measure lift."
            )
        text = (
            f"{self.campaign_id}: treatment converted {_f(r.rate_treatment, '.2%')} ({int(r.conversions_treatment)}/"
            f"{int(r.n_treatment)}) vs control {_f(r.rate_control, '.2%')} ({int(r.conversions_control)}/{int(r.n_control)})"
            f" within {self.window_days} days; lift {_f(r.abs_lift, '+.2%')} points (95% CI {_f(r.abs_lift_low, '+.2%')} to "
            f"{_f(r.abs_lift_high, '+.2%')}), relative {_f(r.rel_lift, '+.1%')} (95% CI {_f(r.rel_lift_low, '+.1%')} to "
            f"{_f(r.rel_lift_high, '+.1%')}), p = {_f(r.p_value, '.3g')}."
        )
        if self.srm["mismatch"]:
            text += f" WARNING: sample ratio mismatch (p = {self.srm['p_value']:.2g}); the split is not as planned."
        if not self.complete:
            text += " The window is not fully observed yet; conversion is understated."
        return text


def _f(value: float, spec: str) -> str:
    """A number for a sentence; "n/a" when it is undefined (no conversions, an empty arm)."""
    return "n/a" if value is None or not np.isfinite(value) else format(value, spec)


def campaign_outcomes(
    tables: dict[str, pd.DataFrame], *, campaign_id: str, window_days: int
) -> pd.DataFrame:
    """One row per campaign customer: group, sent_at, converted (bought the campaign product in the window)."""
    if window_days < 1:
        raise PortraitError(f"--window-days must be at least 1, got {window_days}")
    campaigns = tables.get("campaigns")
    if campaigns is None or campaigns.empty:
        raise PortraitError(
            "the dataset has no campaigns table; campaign evaluation needs campaigns.parquet or .csv"
        )
    rows = campaigns.loc[(campaigns["campaign_id"] == campaign_id).to_numpy()]
    if rows.empty:
        known = ", ".join(sorted(campaigns["campaign_id"].unique())[:20])
        raise PortraitError(
            f"campaign {campaign_id!r} is not in the campaigns table; known campaigns: {known}"
        )
    rows = rows[
        ["campaign_id", CUSTOMER_ID, "sent_at", "group", PRODUCT_ID, "channel"]
    ].reset_index(drop=True)
    txns = tables["transactions"]
    buys = txns.loc[(txns["type"] == "buy").to_numpy(), [CUSTOMER_ID, PRODUCT_ID, TS]]
    pairs = rows.reset_index(names="row").merge(
        buys, on=CUSTOMER_ID, how="inner", suffixes=("", "_bought")
    )
    product_ok = pairs[PRODUCT_ID].isna() | (pairs[PRODUCT_ID] == pairs[f"{PRODUCT_ID}_bought"])
    in_window = (pairs[TS] >= pairs["sent_at"]) & (
        pairs[TS] < pairs["sent_at"] + pd.Timedelta(days=window_days)
    )
    hits = pairs.loc[(product_ok & in_window).to_numpy()]
    first = first_ts(hits["row"].to_numpy(), hits[TS], len(rows))
    return rows.assign(converted=(~np.isnat(first)).astype(int), converted_at=first)


def evaluate_campaign(
    tables: dict[str, pd.DataFrame],
    *,
    campaign_id: str,
    window_days: int = 30,
    segments: pd.DataFrame | None = None,
    expected_share: float = 0.5,
) -> CampaignResult:
    """Conversion, absolute and relative lift with 95% CIs, p-value, SRM check and per-segment breakdown."""
    outcomes = campaign_outcomes(tables, campaign_id=campaign_id, window_days=window_days)
    if segments is not None:
        extra = [
            c for c in segments.columns if c in BREAKDOWN_COLUMNS and c not in outcomes.columns
        ]
        outcomes = outcomes.merge(
            segments.drop_duplicates(CUSTOMER_ID)[[CUSTOMER_ID, *extra]], on=CUSTOMER_ID, how="left"
        )
    overall = _compare(outcomes.assign(all="all"), "all")
    by = [c for c in BREAKDOWN_COLUMNS if c in outcomes.columns]
    breakdown = (
        pd.concat([_compare(outcomes, c) for c in by], ignore_index=True)
        if by
        else overall.iloc[:0]
    )
    counts = outcomes["group"].value_counts()
    srm = sample_ratio_mismatch(
        int(counts.get("treatment", 0)),
        int(counts.get("control", 0)),
        expected_share=expected_share,
    )
    newest = tables["transactions"][TS].max()
    complete = bool((outcomes["sent_at"] + pd.Timedelta(days=window_days) <= newest).all())
    return CampaignResult(campaign_id, window_days, overall, breakdown, srm, outcomes, complete)


def _compare(outcomes: pd.DataFrame, by: str) -> pd.DataFrame:
    """compare_rates per value of `by` (missing values form their own 'unknown' group)."""
    key = outcomes[by].astype("str").fillna("unknown")
    table = (
        outcomes.groupby([key, outcomes["group"]])["converted"]
        .agg(["sum", "size"])
        .unstack("group", fill_value=0)
    )
    for g in ("treatment", "control"):
        if ("sum", g) not in table.columns:
            table[("sum", g)], table[("size", g)] = 0, 0
    result = compare_rates(
        table[("sum", "treatment")].to_numpy(), table[("size", "treatment")].to_numpy(),
        table[("sum", "control")].to_numpy(), table[("size", "control")].to_numpy(),
    )  # fmt: skip
    result.insert(0, "value", table.index.astype("str"))
    result.insert(0, "breakdown", by)
    return result
