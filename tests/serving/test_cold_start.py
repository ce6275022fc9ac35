"""Cold-start candidates by hand: new customers' holdings per segment, recent buys without one."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd

from serving.answers import newcomer_segment
from serving.cold_start import build_popularity, newcomer_candidates, popularity_lists

PORTRAIT = pd.DataFrame(
    {"customer_id": ["a", "b", "c", "d"], "tenure_days": [10, 20, 400, 500]}
)  # fmt: skip
HOLDINGS = pd.DataFrame(
    {"customer_id": ["a", "b", "c", "d", "d"], "product_id": ["P1", "P1", "P2", "P2", "P3"]}
)
SEGMENTS = pd.DataFrame({"customer_id": ["a", "b", "c", "d"], "segment_id": [0, 0, 0, 0]})
# in the last 60 days: x and y bought P3, y also P4 (twice: one buyer)
RECENT = pd.DataFrame(
    {"customer_id": ["x", "y", "y", "y"], "product_id": ["P3", "P3", "P4", "P4"]}
)  # fmt: skip
POSITION = {"P1": 0, "P2": 1, "P3": 2, "P4": 3}.__getitem__


def _lists(segments, recent=RECENT):
    popularity = build_popularity(
        HOLDINGS, PORTRAIT, segments, new_days=90, recent_buys=recent, recent_days=60
    )
    return popularity_lists(popularity, POSITION)


def test_without_a_segment_the_cold_start_is_the_last_horizons_buys():
    product, share, template = newcomer_candidates(_lists(None), None, opted_out=False)
    assert product.tolist() == [2, 3] and share.tolist() == [1.0, 0.5]
    assert template.format(share[0]) == (
        "cold start: bought by 100% of the customers who bought in the last 60 days"
    )


def test_nobody_bought_lately_falls_back_to_what_everyone_holds():
    nothing = RECENT.iloc[0:0]
    product, share, template = newcomer_candidates(_lists(None, nothing), None, opted_out=False)
    # P2 held by c and d, P1 by a and b, P3 by d; ties by product id
    assert product.tolist() == [0, 1, 2] and share.tolist() == [0.5, 0.5, 0.25]
    assert template.startswith("cold start: held by")


def test_a_segment_gives_its_customers_holdings_and_opt_out_everyones():
    lists = _lists(SEGMENTS)
    segment = {"segment_id": 0, "segment_name": "savers"}
    product, share, template = newcomer_candidates(lists, segment, opted_out=False)
    # two new customers (a, b) hold: below MIN_NEW_HOLDERS, so the whole segment's holdings
    assert product.tolist() == [0, 1, 2] and "all customers in segment 'savers'" in template
    product, _, template = newcomer_candidates(lists, segment, opted_out=True)
    assert product.tolist() == [0, 1, 2] and "marketing opt-out" in template


def test_a_segmentation_whose_signup_attributes_place_nobody_gives_no_segment():
    frame = pd.DataFrame(
        {"customer_id": ["N"], "age": [30], "occupation": ["x"], "income_band": [2],
         "city_tier": [1], "channel": ["web"], "risk_level": [2.0]}
    )  # fmt: skip

    class Model:
        cold_start_informative_ = False

    state = SimpleNamespace(segmentation=Model())
    assert newcomer_segment(state, frame) is None
    assert newcomer_segment(SimpleNamespace(segmentation=None), frame) is None
