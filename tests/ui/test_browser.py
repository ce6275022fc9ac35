"""Real headless Chromium (Debian's, via Playwright) against a real `portrait serve` on the demo bank.

Each test opens a page, checks the key content, and saves screenshots at 1280 px and 390 px
under tests/artifacts/ui/ (gitignored).
"""

from __future__ import annotations

import re

import pandas as pd
import pytest

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def portrait(server) -> pd.DataFrame:
    """The served run's portrait, indexed by customer_id."""
    return pd.read_parquet(server.demo.run_dir / "features.parquet").set_index("customer_id")


def no_trace(page) -> None:
    text = page.content()
    assert "Traceback" not in text and 'File "' not in text


def test_run_overview(page, server, shoot):
    page.goto(f"{server.url}/ui/")
    assert page.locator("h1").inner_text() == "Run overview"
    for heading in (
        "Models against baselines",
        "Segments",
        "Top product rules",
        "Campaign results",
    ):
        assert page.get_by_role("heading", name=heading).is_visible()
    assert page.locator("table caption", has_text="Churn model").count() == 1
    assert page.locator("tr.model").count() >= 2  # the model row of each model table
    profiles = pd.read_parquet(server.demo.run_dir / "segment_profiles.parquet")
    for name in profiles["segment_name"]:
        assert page.get_by_role("rowheader", name=name, exact=True).count() == 1
    assert "mlflow ui --backend-store-uri" in page.locator("code.cmd").inner_text()
    shoot("overview")
    page.get_by_role("link", name="Open the full run report").click()
    page.wait_for_load_state()
    assert page.url.endswith("/ui/report") and "Traceback" not in page.content()


def test_customer_360_from_the_search_box(page, server, portrait, shoot):
    held = portrait.loc[
        ~portrait["marketing_opt_out"].astype(bool) & (portrait["n_products_held"] > 0)
    ]
    cid = str(held.index[0])
    page.goto(f"{server.url}/ui/")
    page.get_by_label("Customer id").fill(cid)
    page.get_by_label("Customer id").press("Enter")
    page.wait_for_url(f"**/ui/customers/{cid}")
    assert page.locator("h1").inner_text() == f"Customer {cid}"
    for heading in ("Portrait", "Segment", "Churn risk", "Holdings and assets", "Next best products",
                    "Behaviour timeline"):  # fmt: skip
        assert page.get_by_role("heading", name=heading, exact=True).is_visible(), heading
    assert page.locator("svg.trend polyline").count() == 1
    assert page.locator("ol.products > li").count() >= 1
    assert page.locator("ul.reasons li").count() >= 1
    assert page.locator(".banner.optout").count() == 0
    page.get_by_text("Why the other").click()
    assert page.locator("details[open] td", has_text="already held").count() >= 1
    rows = page.locator("table.timeline tbody tr")
    assert 1 <= rows.count() <= 20
    shoot(f"customer-{cid}")
    if page.get_by_role("link", name="Older →").count():
        newest = rows.first.inner_text()
        page.get_by_role("link", name="Older →").click()
        page.wait_for_url(re.compile(r"page=2"))
        assert rows.first.inner_text() != newest
    page.get_by_label("Business line").select_option("general")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r"line=general"))
    products = page.locator("table.timeline tbody td[data-label=product]").all_inner_texts()
    assert products and set(products) == {
        ""
    }  # app and account rows (logins, cash moves) name no product
    assert cid in page.url and "@" not in page.url  # nothing but the id in the address


def test_opted_out_customer_is_marked(page, server, portrait, shoot):
    cid = str(portrait.loc[portrait["marketing_opt_out"].astype(bool)].index[0])
    page.goto(f"{server.url}/ui/customers/{cid}")
    banner = page.locator(".banner.optout")
    assert banner.is_visible() and "Opted out of marketing" in banner.inner_text()
    assert "non-personalised" in page.locator(".pill").inner_text()
    shoot(f"customer-opted-out-{cid}")


def test_bad_customer_id_shows_a_message(page, server, shoot):
    page.goto(f"{server.url}/ui/customers/NO-SUCH-CUSTOMER")
    assert page.locator("h1").inner_text() == "Customer not found"
    assert "NO-SUCH-CUSTOMER" in page.get_by_role("alert").inner_text()
    no_trace(page)
    shoot("customer-not-found")


def test_audience_count_as_you_type_and_downloads(page, server, portrait, shoot, tmp_path):
    page.goto(f"{server.url}/ui/audiences")
    page.get_by_label("Query").fill("age >= 60")
    page.locator("#counts").wait_for(state="visible")
    old = portrait["age"] >= 60
    opted_out = portrait["marketing_opt_out"].astype(bool)
    expected = int((old & ~opted_out).sum())
    page.wait_for_function(
        "n => document.getElementById('count').textContent.replace(/,/g, '') === String(n)",
        arg=expected,
    )
    assert page.locator("#optout").inner_text().replace(",", "") == str(
        int((old & opted_out).sum())
    )
    assert page.locator("#sample tbody tr").count() == min(20, expected)
    shoot("audiences-count")
    with page.expect_download() as csv_info:
        page.get_by_role("button", name="Download CSV").click()
    csv = pd.read_csv(csv_info.value.path())
    assert len(csv) == expected and not opted_out[csv["customer_id"]].any()
    with page.expect_download() as parquet_info:
        page.get_by_role("button", name="Download Parquet").click()
    assert len(pd.read_parquet(parquet_info.value.path())) == expected
    assert page.url.endswith("/ui/audiences")  # the query never went into an address


def test_ready_made_query_is_one_click(page, server):
    page.goto(f"{server.url}/ui/audiences")
    page.get_by_role("button", name="Viewed the credit report or products, never invested").click()
    page.locator("#counts").wait_for(state="visible")
    assert "credit_report" in page.get_by_label("Query").input_value()
    assert int(page.locator("#count").inner_text().replace(",", "")) >= 0


def test_bad_query_points_at_the_token(page, server, shoot):
    page.goto(f"{server.url}/ui/audiences")
    page.get_by_label("Query").fill("age >> 3")
    error = page.locator("#error")
    error.wait_for(state="visible")
    text = error.inner_text()
    assert "position 5" in text and "age >> 3" in text and "^" in text
    assert page.locator("#counts").is_hidden()
    no_trace(page)
    shoot("audiences-bad-query")


def test_login_form_then_count_and_download_with_the_session(browser_context, server):
    tab = browser_context.new_page()  # no Authorization header: the login page, then a cookie
    try:
        tab.goto(f"{server.url}/ui/audiences")
        tab.fill("#key", server.keys["marketer"])
        tab.click("button[type=submit]")
        tab.get_by_label("Query").fill("age >= 60")
        tab.locator("#counts").wait_for(state="visible")  # the count's fetch sent the CSRF token
        with tab.expect_download() as download:
            tab.get_by_role("button", name="Download CSV").click()
        assert download.value.suggested_filename.endswith(".csv")
        tab.goto(f"{server.url}/ui/logout")
        assert tab.locator("#key").is_visible()
    finally:
        tab.close()
