"""A small set of useful customer tags by channel, attribute and behaviour (not hundreds).

Each tag has a one-line definition and a vectorised rule over the portrait; `build_tags` gives
every customer the list of tags that apply and `tag_coverage` the share of customers per tag.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from features.contract import CUSTOMER_ID

Rule = Callable[[pd.DataFrame], pd.Series]


@dataclass(frozen=True)
class Tag:
    """A tag: its name, kind (channel / attribute / behaviour), one-line definition and rule."""

    name: str
    kind: str
    definition: str
    rule: Rule


def _col(frame: pd.DataFrame, name: str) -> pd.Series:
    """A numeric column (NaN when the portrait lacks it) so rules never fail on a missing feature."""
    if name not in frame:
        return pd.Series(np.nan, index=frame.index)
    return pd.to_numeric(frame[name], errors="coerce").astype("float64")


def _is(frame: pd.DataFrame, name: str, value: str) -> pd.Series:
    if name not in frame:
        return pd.Series(False, index=frame.index)
    return frame[name].eq(value).fillna(False).astype(bool)


TAGS: tuple[Tag, ...] = (
    Tag(
        "branch_acquired",
        "channel",
        "Opened the account through a branch.",
        lambda f: _is(f, "channel", "branch"),
    ),
    Tag(
        "referred",
        "channel",
        "Came through a referral from another customer.",
        lambda f: _is(f, "channel", "referral"),
    ),
    Tag(
        "social_acquired",
        "channel",
        "Acquired through WeChat (social channel).",
        lambda f: _is(f, "channel", "wechat"),
    ),
    Tag("young_adult", "attribute", "Aged under 30.", lambda f: _col(f, "age") < 30),
    Tag("senior", "attribute", "Aged 60 or over.", lambda f: _col(f, "age") >= 60),
    Tag("high_income", "attribute", "Income band 4 or 5.", lambda f: _col(f, "income_band") >= 4),
    Tag(
        "risk_unassessed",
        "attribute",
        "Has no suitability assessment (gets risk-1 products only).",
        lambda f: _col(f, "risk_level").isna(),
    ),  # fmt: skip
    Tag(
        "frequent_trader",
        "behaviour",
        "Six or more buys and sells in the last 90 days.",
        lambda f: _col(f, "n_buy_90d") + _col(f, "n_sell_90d") >= 6,
    ),  # fmt: skip
    Tag(
        "app_regular",
        "behaviour",
        "Active on 10 or more days of the last 30.",
        lambda f: _col(f, "active_days_30d") >= 10,
    ),
    Tag(
        "funnel_stalled",
        "behaviour",
        "Registered but never invested (sign-up funnel stopped before the first investment).",
        lambda f: _col(f, "funnel_stage").between(1, 3),
    ),  # fmt: skip
    Tag(
        "credit_report_viewer",
        "behaviour",
        "Viewed the credit-report page in the last 30 days.",
        lambda f: _col(f, "credit_report_views_30d") >= 1,
    ),  # fmt: skip
    Tag(
        "multi_product",
        "behaviour",
        "Holds three or more products.",
        lambda f: _col(f, "n_products_held") >= 3,
    ),
    Tag(
        "withdrawing",
        "behaviour",
        "Withdrew at least half of the money moved in the last 90 days.",
        lambda f: _col(f, "withdraw_share_90d") >= 0.5,
    ),  # fmt: skip
    Tag(
        "recent_complainer",
        "behaviour",
        "Complained in the last 90 days.",
        lambda f: _col(f, "complaints_90d") >= 1,
    ),
)


def tag_matrix(portrait: pd.DataFrame, *, tags: tuple[Tag, ...] = TAGS) -> pd.DataFrame:
    """Boolean customer x tag matrix (index aligned with `portrait`)."""
    return pd.DataFrame(
        {t.name: t.rule(portrait).fillna(False).astype(bool).to_numpy() for t in tags},
        index=portrait.index,
    )


def build_tags(portrait: pd.DataFrame, *, tags: tuple[Tag, ...] = TAGS) -> pd.DataFrame:
    """customer_id and `tags`, a list of tag names per customer in definition order (maybe empty)."""
    matrix = tag_matrix(portrait, tags=tags).to_numpy()
    rows, cols = np.nonzero(matrix)  # row-major: each customer's tags come out in definition order
    offsets = np.concatenate([[0], np.cumsum(matrix.sum(axis=1))]).astype("int32")
    names = np.array([t.name for t in tags], dtype=object)[cols]
    lists = pa.ListArray.from_arrays(pa.array(offsets), pa.array(names, type=pa.string()))
    return pd.DataFrame({CUSTOMER_ID: portrait[CUSTOMER_ID].to_numpy(), "tags": lists.to_pylist()})


def tag_coverage(portrait: pd.DataFrame, *, tags: tuple[Tag, ...] = TAGS) -> pd.DataFrame:
    """One row per tag: name, kind, definition, customers tagged and coverage (share of customers)."""
    matrix = tag_matrix(portrait, tags=tags)
    return pd.DataFrame(
        {
            "tag": [t.name for t in tags],
            "kind": [t.kind for t in tags],
            "definition": [t.definition for t in tags],
            "customers": matrix.sum().to_numpy(),
            "coverage": matrix.mean().to_numpy() if len(matrix) else np.zeros(len(tags)),
        }
    )
