"""The customer portrait: one row per customer with every feature as of a cut-off."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.behaviour import contact_features, event_features, funnel_features
from features.contract import CUSTOMER_ID, SPECS
from features.engagement import DEFAULT, departed_mask, engagement_codes
from features.repeat import repeat_features
from features.timeline import count_by, days_since, last_ts
from features.trading import asset_features, holding_features, return_features, trading_features
from portrait.settings import EngagementSettings

CATEGORICAL_FEATURES = ("gender", "occupation", "channel")
# Identity and consent columns are carried for policy and audiences, never used as model inputs.
NON_MODEL_COLUMNS = (CUSTOMER_ID, "marketing_opt_out", "signup_at", "is_active", "is_departed")
# The firm's own customer columns (DATA_CONTRACT.md, Extra columns) become features named so.
EXTRA_PREFIX = "extra_"


def build_features(
    tables: dict[str, pd.DataFrame], *, as_of: pd.Timestamp | str, active_days: int = 90,
    engagement_rule: EngagementSettings = DEFAULT,
) -> pd.DataFrame:  # fmt: skip
    """Point-in-time portrait of every customer signed up before `as_of`; never reads rows at or after it.

    `is_departed` and `is_active` follow the contract's engagement rule (features/engagement.py).
    """
    as_of = pd.Timestamp(as_of)
    customers = tables["customers"]
    customers = customers.loc[customers["signup_at"] < as_of].sort_values(CUSTOMER_ID)
    index = pd.Index(customers[CUSTOMER_ID], name=CUSTOMER_ID)
    parts = [
        demographic_features(customers.set_index(CUSTOMER_ID), as_of=as_of),
        extra_customer_features(customers.set_index(CUSTOMER_ID)),
        asset_features(tables, index, as_of=as_of),
        return_features(tables, index, as_of=as_of),
        holding_features(tables, index, as_of=as_of),
        trading_features(tables, index, as_of=as_of),
        event_features(tables, index, as_of=as_of),
        funnel_features(tables, index, as_of=as_of),
        contact_features(tables, index, as_of=as_of),
    ]
    parts.append(repeat_features(tables, index, as_of=as_of, rule=engagement_rule))
    parts.append(status_features(tables, index, as_of=as_of, active_days=active_days,
                                 rule=engagement_rule))  # fmt: skip
    portrait = _plain_dtypes(pd.concat(parts, axis=1))
    # Rebuilding from a dict consolidates the many per-feature blocks into one per dtype.
    columns = {CUSTOMER_ID: index.to_series(index=range(len(index)))}
    columns.update({c: portrait[c].to_numpy() for c in portrait.columns})
    return pd.DataFrame(columns)


def status_features(
    tables: dict[str, pd.DataFrame], index: pd.Index, *, as_of: pd.Timestamp, active_days: int,
    rule: EngagementSettings = DEFAULT,
) -> pd.DataFrame:  # fmt: skip
    """Days since the last engagement, and the departed and active flags of the contract."""
    codes, ts = engagement_codes(tables, index, end=as_of, rule=rule)
    out = pd.DataFrame(index=index)
    out["days_since_last_engagement"] = days_since(last_ts(codes, ts, len(index)), as_of)
    recent = codes[ts.searchsorted(as_of - pd.Timedelta(days=active_days), side="left") :]
    engaged = count_by(recent, len(index)) > 0
    out["is_departed"] = departed_mask(tables, index, as_of=as_of, rule=rule)
    out["is_active"] = engaged & ~out["is_departed"].to_numpy()
    return out


def _plain_dtypes(portrait: pd.DataFrame) -> pd.DataFrame:
    """Numeric extension dtypes (Int64, Float64) become float64 so models and Parquet see plain numbers."""
    numeric = [
        c
        for c, t in portrait.dtypes.items()
        if isinstance(t, pd.api.extensions.ExtensionDtype) and pd.api.types.is_numeric_dtype(t)
    ]
    if portrait.empty:  # no customer yet: concat leaves object columns that models refuse
        numeric += [
            c
            for c, t in portrait.dtypes.items()
            if pd.api.types.is_object_dtype(t) and c not in CATEGORICAL_FEATURES
        ]
    return portrait.astype(dict.fromkeys(numeric, "float64"))


def demographic_features(customers: pd.DataFrame, *, as_of: pd.Timestamp) -> pd.DataFrame:
    """Age, income, occupation, city tier, channel, risk level and KYC, tenure."""
    out = pd.DataFrame(index=customers.index)
    out["signup_at"] = customers["signup_at"]
    out["age"] = (as_of.year - customers["birth_year"]).astype(float)
    for col in CATEGORICAL_FEATURES:
        out[col] = customers[col].astype("string")
    out["income_band"] = customers["income_band"].astype(float)
    out["city_tier"] = customers["city_tier"].astype(float)
    out["risk_level"] = customers["risk_level"].astype(float)
    out["risk_assessed"] = customers["risk_level"].notna().astype(int)
    out["kyc_verified"] = customers["kyc_verified"].astype(int)
    out["marketing_opt_out"] = customers["marketing_opt_out"].astype(bool)
    out["tenure_days"] = (as_of - customers["signup_at"]) / np.timedelta64(1, "D")
    return out


def extra_columns_of(customers: pd.DataFrame) -> list[str]:
    """The customers table's columns beyond the contract's (the firm's own attributes)."""
    contract = set(SPECS["customers"].names)
    return [c for c in customers.columns if c not in contract]


def extra_customer_features(customers: pd.DataFrame) -> pd.DataFrame:
    """Each extra customer column as `extra_<name>`: numbers as float, anything else as text.

    A column is numeric when every present value parses as a number (CSV gives text);
    timestamps are not features and are left out.
    """
    out = {}
    for column in extra_columns_of(customers):  # a few dozen columns, not rows
        values = customers[column]
        if pd.api.types.is_datetime64_any_dtype(values):
            continue
        numbers = pd.to_numeric(values.astype(object).where(values.notna()), errors="coerce")
        numeric = bool((numbers.notna() | values.isna()).all())
        out[EXTRA_PREFIX + str(column)] = (
            numbers.astype(float) if numeric else values.astype("string")
        )
    return pd.DataFrame(out, index=customers.index)


def text_columns(frame: pd.DataFrame, columns: list[str]) -> list[str]:
    """Which of `columns` hold text (model categoricals) rather than numbers."""
    return [
        c for c in columns
        if c in frame.columns and not pd.api.types.is_numeric_dtype(frame[c])
        and not pd.api.types.is_bool_dtype(frame[c])
    ]  # fmt: skip


def model_feature_columns(portrait: pd.DataFrame) -> list[str]:
    """Columns a model may learn from: everything but identity, consent and bookkeeping."""
    return [c for c in portrait.columns if c not in NON_MODEL_COLUMNS]
