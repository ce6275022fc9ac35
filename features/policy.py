"""The policy every exit obeys: suitability and consent, one place for the service, batch scoring and exports.

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
REASON_OF_CODE = np.array(["", *EXCLUSION_REASONS], dtype=object)  # code -> reason name
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


def exportable(customers: pd.DataFrame) -> np.ndarray:
    """Consent for exports and pushes: True where `marketing_opt_out` is known to be False.

    The one consent mask of audiences, persuadable lists and exports; an unknown consent
    (missing value) counts as opted out.
    """
    opted_out = customers["marketing_opt_out"]
    return opted_out.notna().to_numpy() & ~opted_out.fillna(True).astype(bool).to_numpy()


def customer_policy(portrait: pd.DataFrame, *, qualified_min_assets: float) -> pd.DataFrame:
    """Per customer: highest product risk allowed, assessment, qualified-investor status and consent."""
    n = len(portrait)
    facts = policy_facts(
        risk_level=portrait["risk_level"].astype(float).to_numpy(),
        kyc_verified=_column(portrait, "kyc_verified", False, bool, n),
        total_assets=_column(portrait, "total_assets", 0.0, float, n),
        qualified_min_assets=qualified_min_assets,
    )
    return pd.DataFrame(
        {
            CUSTOMER_ID: portrait[CUSTOMER_ID].to_numpy(),
            **facts,
            "marketing_opt_out": portrait["marketing_opt_out"].astype(bool).to_numpy(),
        }
    )


def _column(frame: pd.DataFrame, name: str, default, dtype, n: int) -> np.ndarray:
    return frame[name].astype(dtype).to_numpy() if name in frame else np.full(n, default, dtype)


def policy_facts(
    *,
    risk_level: np.ndarray,
    kyc_verified: np.ndarray,
    total_assets: np.ndarray,
    qualified_min_assets: float,
) -> dict[str, np.ndarray]:
    """max_product_risk, risk_assessed and qualified from risk level (NaN = not assessed), KYC, assets."""
    risk = np.asarray(risk_level, dtype=float)
    assessed = ~np.isnan(risk)
    qualified = (
        np.asarray(kyc_verified, dtype=bool)
        & assessed
        & (np.nan_to_num(risk) >= QUALIFIED_MIN_RISK)
        & (np.asarray(total_assets, dtype=float) >= qualified_min_assets)
    )
    return {
        "max_product_risk": np.where(assessed, risk, UNASSESSED_MAX_RISK).astype(int),
        "risk_assessed": assessed,
        "qualified": qualified,
    }


def exclusion_codes(
    *,
    product_risk: np.ndarray,
    active: np.ndarray,
    qualified_only: np.ndarray,
    held: np.ndarray,
    known: np.ndarray,
    assessed: np.ndarray,
    allowed_risk: np.ndarray,
    qualified: np.ndarray,
    opted_out: np.ndarray,
    personalised: np.ndarray,
) -> np.ndarray:
    """THE policy on numpy arrays (broadcast together): 0 allowed, else 1 + index of the first failing
    rule in EXCLUSION_REASONS. Both `apply_policy` (frames) and the single-customer path call it.

    An unknown product reads as risk inf, not on sale and qualified-only; an unknown customer as
    not known, not assessed, not qualified and opted out.
    """
    assessed, known = np.asarray(assessed, dtype=bool), np.asarray(known, dtype=bool)
    failures = [
        ~np.asarray(active, dtype=bool),
        np.asarray(held, dtype=bool),
        (~assessed | ~known) & (product_risk > UNASSESSED_MAX_RISK),
        assessed & (product_risk > allowed_risk),
        np.asarray(qualified_only, dtype=bool) & ~np.asarray(qualified, dtype=bool),
        np.asarray(personalised, dtype=bool) & np.asarray(opted_out, dtype=bool),
    ]
    codes = np.zeros((), dtype=np.int8)  # broadcast by np.where to the failures' shape
    for code in range(len(failures), 0, -1):  # the first rule in order wins
        codes = np.where(failures[code - 1], np.int8(code), codes)
    return codes


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
    codes = exclusion_codes(
        product_risk=pairs["product_risk"].astype(float).fillna(np.inf).to_numpy(),
        active=pairs["is_active"].fillna(False).astype(bool).to_numpy(),
        qualified_only=pairs["qualified_only"].fillna(True).astype(bool).to_numpy(),
        held=pair_keys.isin(held_keys),
        known=pairs["max_product_risk"].notna().to_numpy(),
        assessed=pairs["risk_assessed"].fillna(False).astype(bool).to_numpy(),
        allowed_risk=pairs["max_product_risk"].astype(float).fillna(UNASSESSED_MAX_RISK).to_numpy(),
        qualified=pairs["qualified"].fillna(False).astype(bool).to_numpy(),
        opted_out=pairs["marketing_opt_out"].fillna(True).astype(bool).to_numpy(),
        personalised=np.broadcast_to(np.asarray(personalised, dtype=bool), (len(pairs),)),
    )
    reason = REASON_OF_CODE[codes]
    bad = codes > 0
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
