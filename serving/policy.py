"""The recommendation policy: suitability and consent, in one place for the service, batch scoring and exports.

Rules (ARCHITECTURE.md), each with the reason recorded when it excludes a product:
- `inactive_product`: the product is not on sale.
- `already_held`: the customer holds it at the cut-off.
- `risk_above_customer`: product risk above the customer's assessed risk level.
- `risk_not_assessed`: the customer has no assessment and the product's risk is above level 1.
- `qualified_only`: a qualified-only product for a customer who is not a qualified investor.
- `marketing_opt_out`: a personalised candidate for a customer who refused personalised marketing.
A customer is a qualified investor when KYC-verified, assessed at risk level >= 4 (C4) and holding
at least `qualified_min_assets` (the firm's regulatory threshold, a setting).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.contract import CUSTOMER_ID, PRODUCT_ID

UNASSESSED_MAX_RISK = 1
QUALIFIED_MIN_RISK = 4
EXCLUSION_REASONS = (
    "inactive_product",
    "already_held",
    "risk_not_assessed",
    "risk_above_customer",
    "qualified_only",
    "marketing_opt_out",
)
POLICY_COLUMNS = [
    CUSTOMER_ID,
    "max_product_risk",
    "risk_assessed",
    "qualified",
    "marketing_opt_out",
]


@dataclass(frozen=True)
class PolicyResult:
    """Candidates that passed, and the ones excluded with their first failing reason."""

    kept: pd.DataFrame
    excluded: pd.DataFrame

    def exclusion_counts(self) -> dict[str, int]:
        counts = self.excluded["reason"].value_counts()
        return {reason: int(counts.get(reason, 0)) for reason in EXCLUSION_REASONS}


def customer_policy(portrait: pd.DataFrame, *, qualified_min_assets: float) -> pd.DataFrame:
    """Per customer: highest product risk allowed, assessment, qualified-investor status and consent."""
    risk = portrait["risk_level"].astype(float)
    assessed = risk.notna()
    assets = (
        portrait["total_assets"].astype(float)
        if "total_assets" in portrait
        else pd.Series(0.0, index=portrait.index)
    )
    kyc = (
        portrait["kyc_verified"].astype(bool)
        if "kyc_verified" in portrait
        else pd.Series(False, index=portrait.index)
    )
    return pd.DataFrame(
        {
            CUSTOMER_ID: portrait[CUSTOMER_ID].to_numpy(),
            "max_product_risk": risk.fillna(UNASSESSED_MAX_RISK).astype(int).to_numpy(),
            "risk_assessed": assessed.to_numpy(),
            "qualified": (
                kyc & assessed & (risk >= QUALIFIED_MIN_RISK) & (assets >= qualified_min_assets)
            ).to_numpy(),
            "marketing_opt_out": portrait["marketing_opt_out"].astype(bool).to_numpy(),
        }
    )


def apply_policy(
    candidates: pd.DataFrame,
    *,
    customers: pd.DataFrame,
    products: pd.DataFrame,
    holdings: pd.DataFrame,
    personalised: bool | pd.Series = True,
) -> PolicyResult:
    """Split (customer, product) candidates into allowed and excluded, vectorised over all pairs.

    `customers` is a `customer_policy` frame; a candidate whose customer is missing from it is
    excluded as `risk_not_assessed` with the most cautious reading (not assessed, not qualified,
    opted out). `personalised` marks candidates produced from the customer's own data.
    """
    pairs = candidates.merge(customers[POLICY_COLUMNS], on=CUSTOMER_ID, how="left")
    pairs = pairs.merge(
        products[[PRODUCT_ID, "risk_level", "is_active", "qualified_only"]].rename(
            columns={"risk_level": "product_risk"}
        ),
        on=PRODUCT_ID,
        how="left",
    )
    held_keys = pd.MultiIndex.from_frame(holdings[[CUSTOMER_ID, PRODUCT_ID]].astype(str))
    pair_keys = pd.MultiIndex.from_frame(pairs[[CUSTOMER_ID, PRODUCT_ID]].astype(str))
    known_customer = pairs["max_product_risk"].notna().to_numpy()
    assessed = pairs["risk_assessed"].fillna(False).astype(bool).to_numpy()
    product_risk = pairs["product_risk"].astype(float).fillna(np.inf).to_numpy()
    allowed_risk = pairs["max_product_risk"].astype(float).fillna(UNASSESSED_MAX_RISK).to_numpy()
    personal = np.broadcast_to(np.asarray(personalised, dtype=bool), (len(pairs),))
    failures = {
        "inactive_product": ~pairs["is_active"].fillna(False).astype(bool).to_numpy(),
        "already_held": pair_keys.isin(held_keys),
        "risk_not_assessed": (~assessed | ~known_customer) & (product_risk > UNASSESSED_MAX_RISK),
        "risk_above_customer": assessed & (product_risk > allowed_risk),
        "qualified_only": pairs["qualified_only"].fillna(True).astype(bool).to_numpy()
        & ~pairs["qualified"].fillna(False).astype(bool).to_numpy(),
        "marketing_opt_out": personal
        & pairs["marketing_opt_out"].fillna(True).astype(bool).to_numpy(),
    }
    reason = np.full(len(pairs), "", dtype=object)
    for name in reversed(EXCLUSION_REASONS):  # the first rule in order wins
        reason = np.where(failures[name], name, reason)
    bad = reason != ""
    base = candidates.reset_index(drop=True)
    return PolicyResult(
        kept=base.loc[~bad].reset_index(drop=True),
        excluded=base.loc[bad].assign(reason=reason[bad]).reset_index(drop=True),
    )


def policy_violations(
    recommendations: pd.DataFrame,
    *,
    customers: pd.DataFrame,
    products: pd.DataFrame,
    holdings: pd.DataFrame,
) -> pd.DataFrame:
    """Recommendations that break suitability (the consent rule is checked by the caller's flag)."""
    personalised = recommendations.get("personalised", True)
    result = apply_policy(
        recommendations,
        customers=customers,
        products=products,
        holdings=holdings,
        personalised=personalised,
    )
    return result.excluded
