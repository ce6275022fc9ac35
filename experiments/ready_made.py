"""Ready-made audience queries for the marketers' everyday lists (seeds 001 and 002)."""

from __future__ import annotations

READY_MADE = {
    # Wake dormant customers who still hold money with us: no login for 90 days, assets left.
    "dormant_to_reactivate": "total_assets > 0 and did not login in last 90 days and did login",
    # Seed 002: viewed the credit report or products recently but never invested.
    "high_intent_non_investors": (
        "(did view_page page=credit_report in last 30 days or did view_product in last 30 days at least 3 times)"
        " and did not invest_success and did not buy"
    ),
    # Large customers the churn model says are leaving (needs --run for value_tier and churn_probability).
    "churn_risk_large": "churn_probability > 0.6 and value_tier in (top, potential_large)",
    # Ranked by the uplift model instead of raw propensity (needs --run with uplift_scores.parquet).
    "persuadable": "uplift > 0",
}


def resolve_query(query: str) -> str:
    """A ready-made name becomes its query text; anything else is returned as written."""
    return READY_MADE.get(query.strip(), query)
