"""Engagement, departed and active customers at a cut-off (DATA_CONTRACT.md, Time and labels).

Engagement is an event, or an inflow transaction (by default `deposit` and `buy`): sells and
withdrawals are how customers leave, not activity. A customer is departed when a withdrawal took
their assets to about zero and nothing engaged them since; active when not departed and engaged
in the `active_days` before the cut-off. Every function reads only rows before `as_of`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.contract import CUSTOMER_ID, TS
from features.timeline import before, between, customer_codes, in_ids, last_ts, window
from portrait.settings import EngagementSettings

DEFAULT = EngagementSettings()


def engagement(
    tables: dict[str, pd.DataFrame], *, rule: EngagementSettings = DEFAULT
) -> pd.DataFrame:
    """Every engagement as (customer_id, ts) in time order: events not excluded, inflow
    transactions (built once per tables inside `kept_engagement`)."""
    kept = _kept(tables, rule)
    return _engagement(tables, rule) if kept is None else kept.frame


def engagement_codes(
    tables: dict[str, pd.DataFrame], index: pd.Index, *, end: pd.Timestamp,
    start: pd.Timestamp | None = None, rule: EngagementSettings = DEFAULT,
) -> tuple[np.ndarray, pd.Series]:  # fmt: skip
    """The engagements in [start, end), in time order, as positions in `index` (-1: not there)
    and times.

    Inside `kept_engagement` each row's customer is looked up once per run (`_Kept.ids`) and a
    call maps only the distinct customers: the portrait, departed test and repeat inputs of
    every cut-off each looked up every event's customer id (0.9 s per 30M rows)."""
    kept = _kept(tables, rule)
    frame = _engagement(tables, rule) if kept is None else kept.frame
    at = None if kept is None else window(frame[TS], start, end)
    if at is None:
        rows = between(frame, start, end)
        return customer_codes(rows[CUSTOMER_ID], index), rows[TS]
    codes, uniques = kept.ids()
    where = customer_codes(pd.Series(uniques, copy=False), index)
    return where[codes[at]], frame[TS].iloc[at]


@dataclass
class _Kept:
    sources: tuple
    rule: EngagementSettings
    frame: pd.DataFrame
    parent: tuple[_Kept, slice] | None = None  # the kept engagement this one is the rows `at` of
    _ids: tuple[np.ndarray, pd.Index] | None = None

    def ids(self) -> tuple[np.ndarray, pd.Index]:
        """Each row's position among the distinct customer ids, and those ids (a cut of a kept
        engagement reads its parent's: the ids may include customers with no row here)."""
        if self._ids is None and self.parent is not None:
            kept, at = self.parent
            codes, uniques = kept.ids()
            self._ids = codes[at], uniques
        elif self._ids is None:
            self._ids = pd.factorize(self.frame[CUSTOMER_ID])
        return self._ids


_KEPT: list[_Kept] | None = None


def _kept(tables: dict[str, pd.DataFrame], rule: EngagementSettings) -> _Kept | None:
    """The kept engagement of these events and transactions objects (None outside the context)."""
    if _KEPT is None:
        return None
    sources = (tables.get("events"), tables.get("transactions"))
    for kept in _KEPT:
        if kept.rule == rule and all(a is b for a, b in zip(kept.sources, sources, strict=True)):
            return kept
    for kept in _KEPT:
        early = _earlier(kept, sources) if kept.rule == rule else None
        if early is not None:
            _KEPT.append(early)
            return early
    _KEPT.append(_Kept(sources, rule, _engagement(tables, rule)))
    return _KEPT[-1]


def _earlier(kept: _Kept, sources: tuple) -> _Kept | None:
    """`kept` cut to `sources` when they are its tables' rows before one time (a history of
    them, training.models.cutoffs.history, slices time-ordered tables): the engagement of the
    rows before a time is the kept engagement's rows before it (same rows, same order), a
    slice, not a second copy of every event. None when they are not such a cut.
    """
    cut = pd.Timestamp.max
    for part, whole in zip(sources, kept.sources, strict=True):
        if (part is None) != (whole is None):
            return None
        if part is None or part is whole:
            continue
        if not _leading_rows(part, whole):
            return None
        if len(part) < len(whole):
            cut = min(cut, whole[TS].iloc[len(part)])
    for part in sources:  # every part holds all of its table's rows before the cut, no later one
        if part is not None and len(part) and part[TS].iloc[-1] >= cut:
            return None
    at = window(kept.frame[TS], None, cut) if cut < pd.Timestamp.max else slice(0, len(kept.frame))
    if at is None:
        return None
    return _Kept(sources, kept.rule, kept.frame.iloc[at], parent=(kept, at))


def _leading_rows(part: pd.DataFrame, whole: pd.DataFrame) -> bool:
    """`part` is `whole`'s first rows (a positional slice of it, sharing its memory)."""
    if len(part) > len(whole) or not len(part) or list(part.columns) != list(whole.columns):
        return False
    if not whole[TS].is_monotonic_increasing:
        return False
    a, b = part[TS].to_numpy(), whole[TS].to_numpy()
    return a.__array_interface__["data"][0] == b.__array_interface__["data"][0] and (
        part[CUSTOMER_ID].iloc[-1] == whole[CUSTOMER_ID].iloc[len(part) - 1]
    )


@contextmanager
def kept_engagement() -> Iterator[None]:
    """Inside, `engagement` of the same events and transactions objects is built once: a run
    reads it for the portrait, departed customers and lifecycle at every cut-off and the churn
    labels (six times a training cut-off), and each build copies every event. The tables must
    not change in place inside. A nested context keeps what the outer one kept."""
    global _KEPT
    outer = _KEPT
    if outer is not None:
        yield
        return
    _KEPT = []
    try:
        yield
    finally:
        _KEPT = outer


def _engagement(tables: dict[str, pd.DataFrame], rule: EngagementSettings) -> pd.DataFrame:
    parts = []
    if "events" in tables:
        events = tables["events"]
        if rule.non_engagement_events:
            events = events.loc[~events["event"].isin(rule.non_engagement_events)]
        parts.append(events[[CUSTOMER_ID, TS]])
    if "transactions" in tables:
        txns = tables["transactions"]
        parts.append(txns.loc[txns["type"].isin(rule.transaction_types), [CUSTOMER_ID, TS]])
    return pd.concat(parts, ignore_index=True).sort_values(TS, kind="stable", ignore_index=True)


def last_engagement(
    tables: dict[str, pd.DataFrame], index: pd.Index, *, as_of: pd.Timestamp,
    rule: EngagementSettings = DEFAULT,
) -> np.ndarray:  # fmt: skip
    """Per customer of `index`, the latest engagement before `as_of` (NaT when none)."""
    codes, ts = engagement_codes(tables, index, end=as_of, rule=rule)
    return last_ts(codes, ts, len(index))


def assets_now_and_peak(
    tables: dict[str, pd.DataFrame], index: pd.Index, *, as_of: pd.Timestamp
) -> tuple[np.ndarray, np.ndarray]:
    """Assets just before `as_of` and their peak over all history before it, per customer.

    With balance snapshots: the last one plus the net deposits and withdrawals after it (a
    snapshot taken before the exit would still show the money). Customers without any (or no
    balances table): cumulative net external flows. The peak is the larger of both.
    """
    txns = before(tables["transactions"], as_of)
    flows = txns.loc[txns["type"].isin(["deposit", "withdraw"])].sort_values(TS, kind="stable")
    signed = flows["amount"].where(flows["type"].eq("deposit"), -flows["amount"]).astype(float)
    level = signed.groupby(flows[CUSTOMER_ID]).cumsum().clip(lower=0.0).groupby(flows[CUSTOMER_ID])
    now, peak = _aligned(level.last(), index), _aligned(level.max(), index)
    if "balances" not in tables:
        return now, peak
    snaps = before(tables["balances"], as_of, column="date").sort_values("date", kind="stable")
    by = snaps.groupby(CUSTOMER_ID, sort=False)
    last_date = by["date"].last()
    after = last_date.reindex(flows[CUSTOMER_ID]).to_numpy()
    late = ~pd.isna(after) & (flows[TS].to_numpy() > after)
    moved = signed.loc[late].groupby(flows.loc[late, CUSTOMER_ID]).sum()
    snapped = in_ids(index, last_date.index)
    from_snap = np.maximum(_aligned(by["total_assets"].last(), index) + _aligned(moved, index), 0)
    now = np.where(snapped, from_snap, now)
    # snapshots can miss money that came and went between two of them: the net flows see it
    peak = np.maximum(np.where(snapped, _aligned(by["total_assets"].max(), index), 0.0), peak)
    return now, np.maximum(peak, now)


def _aligned(values: pd.Series, index: pd.Index) -> np.ndarray:
    return values.reindex(index).fillna(0.0).to_numpy(dtype=float)


def departed_mask(
    tables: dict[str, pd.DataFrame], index: pd.Index, *, as_of: pd.Timestamp,
    rule: EngagementSettings = DEFAULT,
) -> np.ndarray:  # fmt: skip
    """True for customers whose assets a withdrawal took to about zero, with no engagement since."""
    if not rule.departed or len(index) == 0:
        return np.zeros(len(index), dtype=bool)
    now, peak = assets_now_and_peak(tables, index, as_of=as_of)
    txns = before(tables["transactions"], as_of)
    out = txns.loc[txns["type"].eq("withdraw")]
    last_out = last_ts(customer_codes(out[CUSTOMER_ID], index), out[TS], len(index))
    last_in = last_engagement(tables, index, as_of=as_of, rule=rule)
    emptied = (peak > rule.departed_floor) & (
        now <= np.maximum(rule.departed_floor, rule.departed_peak_share * peak)
    )
    # NaT compares as the smallest value in int64 form: no engagement ever is "none since"
    quiet = last_in.astype("int64") < last_out.astype("int64")
    return emptied & ~np.isnat(last_out) & quiet


def active_customers(
    tables: dict[str, pd.DataFrame], *, as_of: pd.Timestamp, active_days: int,
    rule: EngagementSettings = DEFAULT,
) -> pd.Index:  # fmt: skip
    """Customers not departed with at least one engagement in the `active_days` before `as_of`."""
    acts = between(engagement(tables, rule=rule), as_of - pd.Timedelta(days=active_days), as_of)
    engaged = pd.Index(acts[CUSTOMER_ID].unique()).sort_values()
    gone = departed_mask(tables, engaged, as_of=as_of, rule=rule)
    return engaged[~gone]
