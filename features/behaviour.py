"""Behaviour features from event tracking and contact history: activity windows, recency, funnel, complaints."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.contract import BUSINESS_LINES, CUSTOMER_ID, FUNNEL_STEPS, TS
from features.timeline import (
    before,
    count_by,
    customer_codes,
    days_before,
    days_since,
    last_ts,
    window_counts,
)

EVENT_WINDOWS = (7, 30, 90)
LINE_PREFIX = r"^(?:" + "|".join(BUSINESS_LINES) + r")_"


def event_names(events: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """Each event's name code and the distinct names. There are few names: a test of them runs
    once per distinct name and is read off every event's code (`on_events`), instead of a string
    comparison of every event per test."""
    codes, uniques = pd.factorize(events)
    return codes, pd.Series(uniques, dtype=events.dtype)


def on_events(codes: np.ndarray, per_name: np.ndarray, missing: object) -> np.ndarray:
    """A value per distinct name read off every event's code; code -1 (no name) takes `missing`."""
    return np.append(per_name, missing)[codes]


def base_event(events: pd.Series) -> pd.Series:
    """Event name without its business-line prefix (`p2p_invest_success` -> `invest_success`)."""
    codes, names = event_names(events)
    stripped = names.str.replace(LINE_PREFIX, "", regex=True)
    return pd.Series(
        stripped.array.take(codes, allow_fill=True), index=events.index, name=events.name
    )


def per_name(events: pd.Series, values: pd.Series, missing: object) -> np.ndarray:
    """``values`` (indexed by base event name) looked up for every event, ``missing`` elsewhere."""
    codes, names = event_names(events)
    found = base_event(names).map(values).to_numpy(object)
    return on_events(codes, np.where(pd.isna(found), missing, found), missing)


def event_features(
    tables: dict[str, pd.DataFrame], index: pd.Index, *, as_of: pd.Timestamp
) -> pd.DataFrame:
    """Events, logins, page and product views per trailing window, recency, trend and business lines."""
    # Only the columns read here: the properties text would double the copy for nothing.
    events = before(tables["events"][[CUSTOMER_ID, TS, "event", "page"]], as_of)
    n = len(index)
    codes = customer_codes(events[CUSTOMER_ID], index)
    age = days_before(events[TS], as_of)
    name_code, names = event_names(events["event"])
    is_name = lambda hit: on_events(name_code, np.asarray(hit, dtype=bool), False)  # noqa: E731
    page_views = is_name(names == "page_view")
    credit = np.zeros(len(events), dtype=bool)
    credit[page_views] = events["page"].to_numpy()[page_views] == "credit_report"
    out = pd.DataFrame(index=index)
    groups = {
        "events": np.ones(len(events), dtype=bool),
        "logins": is_name(names == "login"),
        "page_views": page_views,
        "product_views": is_name(base_event(names) == "view_product"),
        "credit_report_views": credit,
        "shares": is_name(names == "share"),
    }
    for label, mask in groups.items():
        for w, counts in window_counts(codes[mask], age[mask], n, EVENT_WINDOWS).items():
            out[f"{label}_{w}d"] = counts
    for line in BUSINESS_LINES:
        mask = is_name(names.str.startswith(f"{line}_"))
        out[f"{line}_events_90d"] = count_by(codes[mask & (age <= 90)], n)
    previous = out["events_90d"] - out["events_30d"]
    out["events_trend"] = (out["events_30d"] + 1.0) / (previous / 2.0 + 1.0)
    out["days_since_last_event"] = days_since(last_ts(codes, events[TS], n), as_of)
    logins = groups["logins"]
    out["days_since_last_login"] = days_since(last_ts(codes[logins], events[TS][logins], n), as_of)
    recent = age <= 30
    day = np.floor(age[recent]).astype(int)
    pairs = pd.DataFrame({"c": codes[recent], "d": day}).drop_duplicates()
    out["active_days_30d"] = count_by(pairs["c"].to_numpy(), n)
    return out


def funnel_features(
    tables: dict[str, pd.DataFrame], index: pd.Index, *, as_of: pd.Timestamp
) -> pd.DataFrame:
    """Furthest sign-up funnel step reached: 0 none, 1 register, 2 real-name auth, 3 bind card, 4 invested."""
    events = tables["events"]  # masked, not copied: point in time through `seen`
    steps = pd.Series({s: i + 1 for i, s in enumerate(FUNNEL_STEPS)})
    step = per_name(events["event"], steps, 0).astype(np.int64)
    # only the funnel steps before as_of move a stage: their customers are looked up, not every
    # event's (3 s and 1.4 GB a portrait at 200k customers)
    rows = np.flatnonzero((step > 0) & (events[TS] < as_of).to_numpy())
    codes = customer_codes(events[CUSTOMER_ID].iloc[rows], index)
    seen = codes >= 0
    furthest = np.zeros(len(index), dtype=np.int64)
    np.maximum.at(furthest, codes[seen], step[rows][seen])
    reached = pd.Series(furthest, index=index)
    txns = before(tables["transactions"], as_of)
    bought = pd.Index(txns.loc[txns["type"] == "buy", CUSTOMER_ID].unique())
    reached = reached.where(~index.isin(bought), len(FUNNEL_STEPS))
    return pd.DataFrame({"funnel_stage": reached.astype(int)}, index=index)


# interaction kind ("contact": any) -> the trailing windows its count is taken over
CONTACT_WINDOWS = {"complaint": (30, 90, 365), "inquiry": (30, 90), "contact": (30, 90)}
CONTACT_LABELS = {"complaint": "complaints", "inquiry": "inquiries", "contact": "contacts"}
CONTACT_COUNTS = tuple(f"{CONTACT_LABELS[k]}_{w}d" for k, ws in CONTACT_WINDOWS.items() for w in ws)
CONTACT_MEASURES = ("survey_score_last", "survey_score_mean_90d", "survey_score_mean_365d",
                    "days_since_last_complaint", "days_since_last_survey")  # fmt: skip
CONTACT_COLUMNS = (*CONTACT_COUNTS, *CONTACT_MEASURES)


def contact_features(
    tables: dict[str, pd.DataFrame], index: pd.Index, *, as_of: pd.Timestamp
) -> pd.DataFrame:
    """Complaints, inquiries and contacts per window, survey scores (last, 90 and 365 days), and days
    since the last complaint and survey: a satisfaction score means little without its age."""
    out = pd.DataFrame(index=index)
    if "interactions" not in tables:
        for col in CONTACT_COUNTS:
            out[col] = 0
        for col in CONTACT_MEASURES:
            out[col] = np.nan
        return out[list(CONTACT_COLUMNS)]
    contacts = before(tables["interactions"], as_of)
    n = len(index)
    codes = customer_codes(contacts[CUSTOMER_ID], index)
    age = days_before(contacts[TS], as_of)
    kind = contacts["kind"]
    complaint = (kind == "complaint").to_numpy()
    survey = (kind == "survey").to_numpy() & contacts["score"].notna().to_numpy()
    for name, windows in CONTACT_WINDOWS.items():
        mask = (
            np.ones(len(contacts), dtype=bool) if name == "contact" else (kind == name).to_numpy()
        )
        for w, counts in window_counts(codes[mask], age[mask], n, windows).items():
            out[f"{CONTACT_LABELS[name]}_{w}d"] = counts
    surveys = contacts.loc[survey].sort_values(TS, kind="stable")
    out["survey_score_last"] = surveys.groupby(CUSTOMER_ID)["score"].last().reindex(index)
    for days in (90, 365):
        recent = surveys.loc[surveys[TS] >= as_of - pd.Timedelta(days=days)]
        out[f"survey_score_mean_{days}d"] = (
            recent.groupby(CUSTOMER_ID)["score"].mean().reindex(index)
        )
    for label, mask in (("complaint", complaint), ("survey", survey)):
        out[f"days_since_last_{label}"] = days_since(
            last_ts(codes[mask], contacts[TS][mask], n), as_of
        )
    return out[list(CONTACT_COLUMNS)]
