"""The churn model: calibrated LightGBM over the portrait of active customers, with readable reasons."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from features.contract import CUSTOMER_ID
from features.portrait import CATEGORICAL_FEATURES, model_feature_columns, text_columns
from training.models.gbm import CalibratedGBM

LABEL = "churned"
# Bookkeeping columns a training set adds next to the portrait; never model inputs.
NON_FEATURES = ("cutoff", LABEL, "is_active", "is_departed")

# Readable text per feature; `{v}` is the customer's value. Anything else reads "name = value".
PHRASES = {
    "days_since_last_login": "no login for {v:.0f} days",
    "days_since_last_event": "last app activity {v:.0f} days ago",
    "days_since_last_transaction": "last transaction {v:.0f} days ago",
    "days_since_last_engagement": "last engaged {v:.0f} days ago",
    "days_since_last_buy": "last purchase {v:.0f} days ago",
    "days_since_last_complaint": "last complaint {v:.0f} days ago",
    "complaints_90d": "{v:.0f} complaints in 90 days",
    "complaints_365d": "{v:.0f} complaints in a year",
    "logins_7d": "{v:.0f} logins in 7 days",
    "logins_30d": "{v:.0f} logins in 30 days",
    "logins_90d": "{v:.0f} logins in 90 days",
    "events_7d": "{v:.0f} app events in 7 days",
    "events_30d": "{v:.0f} app events in 30 days",
    "events_90d": "{v:.0f} app events in 90 days",
    "active_days_30d": "active on {v:.0f} of the last 30 days",
    "events_trend": "app use at {v:.1f}x its earlier level",
    "asset_trend_90d": "assets changed {v:+.0%} in 90 days",
    "asset_trend_365d": "assets changed {v:+.0%} in a year",
    "assets_drawdown_from_peak": "assets {v:.0%} below their yearly peak",
    "total_assets": "total assets {v:,.0f}",
    "log_total_assets": "total assets about {e:,.0f}",
    "return_90d": "90-day return {v:+.1%}",
    "return_365d": "1-year return {v:+.1%}",
    "n_products_held": "{v:.0f} products held",
    "tenure_days": "customer for {v:.0f} days",
    "survey_score_last": "last survey score {v:.0f}",
    "survey_score_mean_90d": "survey score {v:.1f} on average in 90 days",
    "days_since_last_survey": "last survey {v:.0f} days ago",
    "complaints_30d": "{v:.0f} complaints in 30 days",
    "inquiries_30d": "{v:.0f} inquiries in 30 days",
    "contacts_30d": "{v:.0f} contacts with the firm in 30 days",
    "withdraw_share_90d": "withdrew {v:.0%} of flows in 90 days",
    "n_withdraw_30d": "{v:.0f} withdrawals in 30 days",
    "funnel_stage": "onboarding step {v:.0f} of 4",
}


def phrase(feature: str, values: pd.Series) -> pd.Series:
    """Readable text of one feature's values (vectorised over rows)."""
    template = PHRASES.get(feature)
    name = feature.replace("_", " ")
    if template is None:
        if pd.api.types.is_numeric_dtype(values):
            text = [f"{name} = {v:.3g}" for v in values.astype(float)]
        else:
            text = [f"{name} = {v}" for v in values.astype(object)]
    else:
        nums = pd.to_numeric(values, errors="coerce").astype(float)
        # `e` (the value back from log scale) only where the template reads it: expm1 of a day
        # count overflows
        e = np.expm1(nums) if "{e" in template else nums
        text = [template.format(v=v, e=x) for v, x in zip(nums, e, strict=True)]
    missing = values.isna().to_numpy()
    return pd.Series(np.where(missing, f"{name} unknown", np.array(text, dtype=object)))


def churn_features(frame: pd.DataFrame) -> list[str]:
    """Model inputs of a churn training frame: the portrait's model columns minus bookkeeping."""
    return [c for c in model_feature_columns(frame) if c not in NON_FEATURES]


class ChurnModel(CalibratedGBM):
    """P(churn in the horizon) for an active customer, with the top factors as reasons."""

    kind = "churn"

    def __init__(self, *, features: list[str], params: dict[str, Any] | None = None, **kw) -> None:
        super().__init__(features=features, categorical=CATEGORICAL_FEATURES, params=params, **kw)

    def setup(self, train: pd.DataFrame) -> None:
        """Text features (gender, occupation, channel, the firm's text columns) are categorical."""
        self.categorical = tuple(text_columns(train, self.features))

    def fit(self, train: pd.DataFrame, *, label: str = LABEL, weight: str | None = None, **kw):
        """Fit booster and calibrator on a churn training frame (label `churned`)."""
        return super().fit(train, label=label, weight=weight, **kw)

    def explain(self, frame: pd.DataFrame, *, top: int = 3) -> list[list[str]]:
        """Up to `top` reasons per row, strongest first, e.g. "no login for 45 days (raises risk)"."""
        return self.top_factors(frame, top=top, phrase=phrase, up="raises risk", down="lowers risk")


def score_churn(model: Any | None, portrait: pd.DataFrame) -> pd.DataFrame:
    """churn_probability for every customer active at the portrait's cut-off (none without a model).

    No reasons here: TreeSHAP costs ~35 predictions a row (192 s of a 200k-customer run) and
    only a customer's page shows them, so the service explains the one customer it shows
    (`serving.state.ServingState.churn_reasons_of`).
    """
    active = portrait.loc[portrait["is_active"].astype(bool)].reset_index(drop=True)
    if model is None:
        return pd.DataFrame({CUSTOMER_ID: pd.Series(dtype=str),
                             "churn_probability": pd.Series(dtype=float)})  # fmt: skip
    return pd.DataFrame(
        {
            CUSTOMER_ID: active[CUSTOMER_ID].astype(str).to_numpy(),
            "churn_probability": model.predict_proba(active),
        }
    )
