"""Cold start: a plan for a customer the portrait does not know, from similar new customers.

The request's sign-up attributes place the customer in a segment (the segmentation model's
sign-up classifier, `training.segments.model.assign_segment`); the candidates are the products most
held by that segment's new customers (the whole segment when it has too few new customers).
When there is no segmentation, or sign-up attributes do not place held-out customers in their
segment better than the largest segment alone (`cold_start_informative_`), the candidates are
the products most bought in the last horizon. The policy then applies as for anyone else: an
unassessed customer gets risk-1 products only, and nobody new is a qualified investor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from features.contract import CUSTOMER_ID, PRODUCT_ID, SEGMENT_ID
from features.policy import policy_facts

MIN_NEW_HOLDERS = 20  # fewer new customers with holdings in a segment: use the whole segment
POPULARITY_COLUMNS = [SEGMENT_ID, PRODUCT_ID, "share", "basis"]
OPT_OUT_TEMPLATE = "non-personalised: held by {:.0%} of all customers (marketing opt-out)"
RECENT_TEMPLATE = (
    "cold start: bought by {{:.0%}} of the customers who bought in the last {days} days"
)


@dataclass(frozen=True, eq=False)
class Popularity:
    """Share of customers holding each product: per segment (new customers first) and overall;
    and of the last `recent_days` days' buyers buying it."""

    by_segment: pd.DataFrame  # segment_id, product_id, share, basis
    overall: pd.DataFrame  # product_id, share
    recent: pd.DataFrame  # product_id, share
    recent_days: int


def build_popularity(
    holdings: pd.DataFrame, portrait: pd.DataFrame, segments: pd.DataFrame | None, *,
    new_days: int, recent_buys: pd.DataFrame, recent_days: int,
) -> Popularity:  # fmt: skip
    """Product popularity overall and per segment, preferring customers at most `new_days` old;
    `recent_buys` ([customer_id, product_id], the last `recent_days` days) give the recent list."""
    held = holdings[[CUSTOMER_ID, PRODUCT_ID]].drop_duplicates().astype(str)
    held_all = _shares(held, pd.Series(0, index=portrait[CUSTOMER_ID].astype(str)))
    buys = recent_buys[[CUSTOMER_ID, PRODUCT_ID]].dropna().drop_duplicates().astype(str)
    recent = _shares(buys, pd.Series(0, index=pd.Index(buys[CUSTOMER_ID].unique())))
    overall = held_all.drop(columns=SEGMENT_ID)
    everyone = (recent.drop(columns=SEGMENT_ID), recent_days)
    if segments is None or segments.empty:
        return Popularity(held_all.iloc[0:0].assign(basis=""), overall, *everyone)
    seg = segments.set_index(segments[CUSTOMER_ID].astype(str))[SEGMENT_ID].astype(int)
    tenure = portrait.set_index(portrait[CUSTOMER_ID].astype(str))["tenure_days"]
    new = seg.loc[seg.index.intersection(tenure.index[tenure.le(new_days)])]
    new_shares = _shares(held, new).assign(basis="new customers")
    holders = held.loc[held[CUSTOMER_ID].isin(new.index)].merge(
        new.rename(SEGMENT_ID), left_on=CUSTOMER_ID, right_index=True
    )
    enough = holders.groupby(SEGMENT_ID)[CUSTOMER_ID].nunique().loc[lambda s: s >= MIN_NEW_HOLDERS]
    all_shares = _shares(held, seg).assign(basis="all customers")
    by_segment = pd.concat(
        [
            new_shares.loc[new_shares[SEGMENT_ID].isin(enough.index)],
            all_shares.loc[~all_shares[SEGMENT_ID].isin(enough.index)],
        ],
        ignore_index=True,
    )
    return Popularity(by_segment[POPULARITY_COLUMNS], overall, *everyone)


def _shares(held: pd.DataFrame, segment_of: pd.Series) -> pd.DataFrame:
    """Per (segment, product): share of the segment's customers (in `segment_of`) holding it."""
    sizes = segment_of.value_counts()
    pairs = held.merge(segment_of.rename(SEGMENT_ID), left_on=CUSTOMER_ID, right_index=True)
    counts = pairs.groupby([SEGMENT_ID, PRODUCT_ID]).size().rename("holders").reset_index()
    counts["share"] = counts["holders"] / counts[SEGMENT_ID].map(sizes).astype(float)
    return counts.sort_values(
        [SEGMENT_ID, "share", PRODUCT_ID], ascending=[True, False, True], kind="stable"
    )[[SEGMENT_ID, PRODUCT_ID, "share"]].reset_index(drop=True)


def newcomer_frame(customer_id: str, attributes: dict[str, Any]) -> pd.DataFrame:
    """One portrait-like row from request attributes: what the policy and the segment model read."""
    risk = attributes.get("risk_level")
    return pd.DataFrame(
        {
            CUSTOMER_ID: [customer_id],
            "age": [attributes.get("age")],
            "occupation": [attributes.get("occupation")],
            "income_band": [attributes.get("income_band")],
            "city_tier": [attributes.get("city_tier")],
            "channel": [attributes.get("channel")],
            "risk_level": [np.nan if risk is None else float(risk)],
            "kyc_verified": [False],
            "total_assets": [0.0],
            "marketing_opt_out": [bool(attributes.get("marketing_opt_out", False))],
        }
    )


def newcomer_facts(frame: pd.DataFrame, *, qualified_min_assets: float) -> dict[str, Any]:
    """The policy facts of a newcomer row (THE policy's `policy_facts`, nothing re-implemented)."""
    facts = policy_facts(
        risk_level=frame["risk_level"].to_numpy(dtype=float),
        kyc_verified=frame["kyc_verified"].to_numpy(dtype=bool),
        total_assets=frame["total_assets"].to_numpy(dtype=float),
        qualified_min_assets=qualified_min_assets,
    )
    return {name: values[0] for name, values in facts.items()} | {
        "marketing_opt_out": bool(frame["marketing_opt_out"].iloc[0])
    }


@dataclass(frozen=True, eq=False)
class PopularityLists:
    """Popularity as product positions and shares, most held first: overall and per segment."""

    overall: tuple[np.ndarray, np.ndarray]
    by_segment: dict[int, tuple[np.ndarray, np.ndarray, str]]  # positions, shares, basis
    recent: tuple[np.ndarray, np.ndarray, str]  # positions, shares, reason template


def popularity_lists(popularity: Popularity, position: Callable[[str], int]) -> PopularityLists:
    """Index `popularity` by product position once, so a cold start does no frame work."""

    def arrays(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        ids = rows[PRODUCT_ID].astype(str)
        return np.array([position(p) for p in ids], dtype=np.int64), rows["share"].to_numpy(float)

    by_segment = {
        int(seg): (*arrays(rows), str(rows["basis"].iloc[0]))
        for seg, rows in popularity.by_segment.groupby(SEGMENT_ID, sort=False)
    }
    recent = (*arrays(popularity.recent), RECENT_TEMPLATE.format(days=popularity.recent_days))
    return PopularityLists(arrays(popularity.overall), by_segment, recent)


def newcomer_candidates(
    lists: PopularityLists, segment: dict[str, Any] | None, *, opted_out: bool
) -> tuple[np.ndarray, np.ndarray, str]:
    """Product positions, shares and the reason template of a newcomer's candidates.

    The segment's products held by similar new customers; the products most bought lately when
    there is no segment (or it holds nothing; everyone's most held when nobody bought lately),
    and the marked non-personalised list on opt-out.
    """
    if opted_out:
        return (*lists.overall, OPT_OUT_TEMPLATE)
    found = None if segment is None else lists.by_segment.get(int(segment["segment_id"]))
    if found is None or len(found[0]) == 0:
        if len(lists.recent[0]):
            return lists.recent
        return (*lists.overall, "cold start: held by {:.0%} of all customers")
    product, share, basis = found
    template = f"cold start: held by {{:.0%}} of {basis} in segment '{segment['segment_name']}'"
    return product, share, template
