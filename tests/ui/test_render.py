"""Unit tests of what the pages show, on small hand-made inputs with exact expected values."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from experiments.audience import AudienceResult
from portrait.errors import PortraitError
from serving.ui import audiences
from serving.ui.charts import asset_trend_svg, trend_summary
from serving.ui.customer import age_band, timeline_lines
from serving.ui.overview import campaign_results, metric_tables, top_rules

T = pd.Timestamp


@pytest.mark.parametrize(
    ("age", "band"),
    [(19, "under 25"), (24.9, "under 25"), (25, "25–34"), (44, "35–44"), (64, "55–64"),
     (65, "65+"), (None, "unknown"), (np.nan, "unknown")],
)  # fmt: skip
def test_age_band(age, band):
    assert age_band(age) == band


def test_timeline_lines_by_event_page_and_product_category():
    frame = pd.DataFrame(
        {
            "what": ["p2p_view_loan", "page_view", "buy", "buy", "login", "view_product"],
            "page": [None, "forex_rates", None, None, None, "product_detail"],
            "product_id": [None, None, "P12", "P01", None, "P16"],
        }
    )
    categories = pd.Series(
        {"P12": "stock_portfolio", "P01": "deposit", "P16": "forex_copy"}, name="category"
    )
    lines = timeline_lines(frame, categories)
    assert list(lines) == ["p2p", "forex", "stock", "wealth", "general", "forex"]


def test_asset_trend_svg_draws_every_month_and_says_it_in_words():
    points = [(T("2025-01-31"), 1000.0), (T("2025-02-28"), 1500.0), (T("2025-03-31"), 1250.0)]
    svg = asset_trend_svg(points)
    assert svg.startswith("<svg") and 'role="img"' in svg
    polyline = svg.split('<polyline points="')[1].split('"')[0]
    assert len(polyline.split()) == 3
    assert svg.count("<circle") == 3
    assert trend_summary(points) == (
        "Total assets 1,250 at 2025-03-31, from 1,000 at 2025-01-31 (+25%), over 3 month-ends."
    )
    assert asset_trend_svg([]) == ""
    assert trend_summary([]) == "No month-end balances before the cut-off."


def test_flat_series_does_not_divide_by_zero():
    svg = asset_trend_svg([(T("2025-01-31"), 0.0), (T("2025-02-28"), 0.0)])
    assert "nan" not in svg and "inf" not in svg


def test_metric_tables_put_the_model_first_and_mark_where_it_beats_every_baseline():
    models = {
        "churn.model.roc_auc": 0.80, "churn.model.brier": 0.07, "churn.model.n": 100.0,
        "churn.recency.roc_auc": 0.75, "churn.recency.brier": 0.06, "churn.recency.n": 100.0,
        "churn.promoted": 1.0,
        "conversion.rules.map@5": 0.40, "conversion.model.map@5": 0.30,
        "conversion.popularity.map@5": 0.20, "conversion.promoted": 0.0,
        "truth.churn.model.roc_auc": 0.7,
    }  # fmt: skip
    churn, conversion = metric_tables(models)
    assert churn["kind"] == "churn" and churn["metrics"] == ["roc_auc", "brier"]
    assert [r["who"] for r in churn["rows"]] == ["model", "recency"]
    assert churn["beats"] == [True, False]  # brier: lower is better, 0.07 > 0.06
    assert churn["promoted"] is True and churn["n"] == 100.0
    assert [r["who"] for r in conversion["rows"]] == ["model", "rules", "popularity"]
    assert conversion["beats"] == [False] and conversion["promoted"] is False


def test_campaign_results_read_every_campaign():
    experiments = {
        "A.rate_treatment": 0.2, "A.rate_control": 0.1, "A.abs_lift": 0.1,
        "A.abs_lift_low": 0.05, "A.abs_lift_high": 0.15, "A.p_value": 0.01,
        "ab.bind_card_lift": 0.3,
    }  # fmt: skip
    assert campaign_results(experiments) == [
        {"campaign": "A", "treatment": 0.2, "control": 0.1, "lift": 0.1, "low": 0.05,
         "high": 0.15, "p_value": 0.01}
    ]  # fmt: skip


def test_top_rules_are_overall_rules_by_lift():
    rules = pd.DataFrame(
        {
            "kind": ["holding", "holding", "transition"],
            "segment_id": [None, "3", None],
            "reason": ["a then b", "segment rule", "c then d"],
            "support": [0.1, 0.2, 0.05],
            "confidence": [0.5, 0.9, 0.4],
            "lift": [2.0, 9.0, 3.0],
        }
    )
    assert [r["reason"] for r in top_rules(rules)] == ["c then d", "a then b"]
    assert top_rules(None) == []


def test_empty_or_huge_queries_are_refused_with_a_message():
    with pytest.raises(PortraitError, match="type a query first"):
        audiences.clean_query("   ")
    with pytest.raises(PortraitError, match="limit is 4000"):
        audiences.clean_query("x" * 4001)
    assert audiences.clean_query("  age > 3 ") == "age > 3"


def _result() -> AudienceResult:
    frame = pd.DataFrame(
        {"customer_id": ["A", "B"], "channel": ["web", None], "matched_because": ["x", "y"]}
    )
    return AudienceResult("age > 3", T("2025-11-01"), 10, 3, 2, 1, frame)


def test_export_csv_and_parquet_hold_the_whole_list():
    body, media, name = audiences.export(_result(), "csv")
    assert media.startswith("text/csv") and name == "audience-2025-11-01-2.csv"
    assert pd.read_csv(io.BytesIO(body))["customer_id"].tolist() == ["A", "B"]
    body, media, name = audiences.export(_result(), "parquet")
    assert name.endswith(".parquet")
    assert pd.read_parquet(io.BytesIO(body))["customer_id"].tolist() == ["A", "B"]
    with pytest.raises(PortraitError, match="csv or parquet"):
        audiences.export(_result(), "xlsx")


def test_summary_gives_counts_and_blank_for_missing_values():
    summary = audiences.summary(_result())
    assert (summary["count"], summary["matched"], summary["opted_out_excluded"]) == (2, 3, 1)
    assert summary["sample"][1] == {"customer_id": "B", "channel": "", "matched_because": "y"}
