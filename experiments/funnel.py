"""Funnels and A/B tests from events, and page traffic (PV, UV, bounce rate) per page and business line."""

from __future__ import annotations

import numpy as np
import pandas as pd

from experiments.events import property_values
from experiments.stats import compare_rates
from features.behaviour import LINE_PREFIX, base_event
from features.contract import CUSTOMER_ID, FUNNEL_STEPS, TS
from features.timeline import before

STEP_LABELS = ("register", "real_name_auth", "bind_card", "first_investment")


def funnel_times(
    tables: dict[str, pd.DataFrame], *, as_of: pd.Timestamp, within_days: int
) -> pd.DataFrame:
    """Per registered customer: register time, variant, and the time of each later step (ordered, within the window).

    A step counts only when it happens after the previous step and within `within_days` of registering;
    a first investment is the first invest_success event (any business line) or the first buy.
    """
    events = before(tables["events"], as_of)
    step = base_event(events["event"])
    firsts = events.assign(step=step).loc[step.isin(FUNNEL_STEPS).to_numpy()]
    times = firsts.groupby([CUSTOMER_ID, "step"])[TS].min().unstack("step")
    # as timestamps even when a step (or every step) is absent from the events
    times = times.reindex(columns=list(FUNNEL_STEPS)).astype("datetime64[ns]")
    txns = before(tables["transactions"], as_of)
    first_buy = txns.loc[(txns["type"] == "buy").to_numpy()].groupby(CUSTOMER_ID)[TS].min()
    times["invest_success"] = times["invest_success"].combine(
        first_buy.reindex(times.index), np.fmin
    )
    times = times.loc[times["register"].notna()]
    times.columns = list(STEP_LABELS)
    limit = times["register"] + pd.Timedelta(days=within_days)
    previous = times["register"]
    for label in STEP_LABELS[1:]:
        ok = (times[label] >= previous) & (times[label] < limit)
        times[label] = times[label].where(ok)
        previous = times[label]
    registers = (
        events.loc[(step == "register").to_numpy()]
        .sort_values(TS, kind="stable")
        .drop_duplicates(CUSTOMER_ID)
    )
    variant = property_values(registers["properties"], "variant").set_axis(registers[CUSTOMER_ID])
    times["variant"] = variant.reindex(times.index).fillna("none")
    times["cohort"] = times["register"].dt.to_period("M").astype("str")
    return times.rename_axis(CUSTOMER_ID).reset_index()


def funnel_table(times: pd.DataFrame, *, by: str | None = None) -> pd.DataFrame:
    """Customers reaching each step and conversion from the previous step and from register, per `by` group."""
    keys = times[by] if by else pd.Series("all", index=times.index)
    reached = times[list(STEP_LABELS)].notna().groupby(keys.to_numpy()).sum()
    long = (
        reached.rename_axis(by or "group")
        .reset_index()
        .melt(id_vars=by or "group", var_name="step", value_name="customers")
    )
    long["step_index"] = long["step"].map({s: i for i, s in enumerate(STEP_LABELS)})
    long = long.sort_values([by or "group", "step_index"]).reset_index(drop=True)
    grouped = long.groupby(by or "group")["customers"]
    long["from_previous"] = long["customers"] / grouped.shift(1)
    long["from_register"] = long["customers"] / grouped.transform("first")
    return long.drop(columns="step_index")


def ab_test(times: pd.DataFrame, *, control: str = "A", treatment: str = "B") -> pd.DataFrame:
    """Per funnel step, conversion from register in variant `treatment` against `control`, with CI and p-value."""
    arms = times.loc[times["variant"].isin([control, treatment]).to_numpy()]
    reached = arms[list(STEP_LABELS)].notna().groupby(arms["variant"].to_numpy()).sum()
    if control not in reached.index or treatment not in reached.index:
        return pd.DataFrame()
    steps = list(STEP_LABELS[1:])
    result = compare_rates(
        reached.loc[treatment, steps].to_numpy(), np.repeat(reached.loc[treatment, "register"], len(steps)),
        reached.loc[control, steps].to_numpy(), np.repeat(reached.loc[control, "register"], len(steps)),
    )  # fmt: skip
    result.insert(0, "step", [f"register -> {s}" for s in steps])
    return result.rename(
        columns=lambda c: c.replace("treatment", treatment).replace("control", control)
    )


def page_traffic(
    tables: dict[str, pd.DataFrame], *, as_of: pd.Timestamp, session_gap_minutes: int = 30
) -> pd.DataFrame:
    """Page views (PV), unique visitors (UV), sessions entering on the page and bounce rate, per page and line.

    A session is a run of a customer's events with no gap over `session_gap_minutes`; it bounces when it
    holds exactly one page view. A page's business line is its name prefix (p2p_, forex_, stock_), else general.
    """
    events = before(tables["events"], as_of)[[CUSTOMER_ID, TS, "event", "page"]]
    # each customer's events in time order, sorting on integer codes, not the id strings (26 s
    # at 200k customers); then only the page views' rows are taken, in that order (taking every
    # column of every event was 14 s)
    customer = pd.factorize(events[CUSTOMER_ID])[0]
    order = np.lexsort((events[TS].to_numpy(), customer))
    ids, ts = customer[order], events[TS].to_numpy()[order]
    gap = np.timedelta64(session_gap_minutes, "m")
    new = np.ones(len(events), dtype=bool)
    new[1:] = (ids[1:] != ids[:-1]) | ((ts[1:] - ts[:-1]) > gap)
    is_view = (events["event"] == "page_view").to_numpy() & events["page"].notna().to_numpy()
    shown = is_view[order]
    views = events[[CUSTOMER_ID, "page"]].iloc[order[shown]].assign(session=np.cumsum(new)[shown])
    per_session = views.groupby("session")["page"].agg(["first", "size"])
    entries = per_session.groupby("first").size()
    bounces = per_session.loc[per_session["size"] == 1].groupby("first").size()
    table = views.groupby("page").agg(
        page_views=("page", "size"), unique_visitors=(CUSTOMER_ID, "nunique")
    )
    table["entries"] = entries.reindex(table.index).fillna(0).astype(int)
    table["bounce_rate"] = bounces.reindex(table.index).fillna(0) / table["entries"].replace(
        0, np.nan
    )
    line = table.index.to_series().str.extract("(" + LINE_PREFIX[1:] + ")", expand=False)
    table.insert(0, "business_line", line.str.rstrip("_").fillna("general").to_numpy())
    return (
        table.reset_index()
        .sort_values(["business_line", "page_views"], ascending=[True, False])
        .reset_index(drop=True)
    )
