"""The customer portrait: one row per customer with every feature as of a cut-off."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.behaviour import contact_features, event_features, funnel_features
from features.contract import CUSTOMER_ID, TS
from features.engagement import DEFAULT, departed_mask, engagement
from features.repeat import repeat_features
from features.timeline import before, between, customer_codes, days_since, last_ts
from features.trading import asset_features, holding_features, return_features, trading_features
from portrait.settings import EngagementSettings

CATEGORICAL_FEATURES = ("gender", "occupation", "channel")
# Identity and consent columns are carried for policy and audiences, never used as model inputs.
NON_MODEL_COLUMNS = (CUSTOMER_ID, "marketing_opt_out", "signup_at", "is_active", "is_departed")


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
    acts = before(engagement(tables, rule=rule), as_of)
    codes = customer_codes(acts[CUSTOMER_ID], index)
    out = pd.DataFrame(index=index)
    out["days_since_last_engagement"] = days_since(last_ts(codes, acts[TS], len(index)), as_of)
    window = between(acts, as_of - pd.Timedelta(days=active_days), as_of)
    engaged = index.isin(window[CUSTOMER_ID].unique())
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


def model_feature_columns(portrait: pd.DataFrame) -> list[str]:
    """Columns a model may learn from: everything but identity, consent and bookkeeping."""
    return [c for c in portrait.columns if c not in NON_MODEL_COLUMNS]
