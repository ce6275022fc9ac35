"""The pages in-process (Starlette TestClient, mounted at /ui) on the demo run: content, escaping,
errors as plain pages, queries and downloads only by POST. Browser tests are in test_browser.py."""

from __future__ import annotations

import io

import pandas as pd
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from portrait.settings import load_settings
from serving.state import load_state
from serving.ui import create_app


def mounted(state_fn) -> TestClient:
    app = Starlette(
        routes=[Mount("/ui", create_app(state_fn, mlflow_command=lambda s: "mlflow ui"))]
    )
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture(scope="module")
def state(demo_run):
    settings = load_settings(None, {"tracking.tracking_uri": demo_run.tracking_uri})
    return load_state(demo_run.run_dir, settings, models=({}, "rules-only"))


@pytest.fixture(scope="module")
def client(state) -> TestClient:
    return mounted(lambda: state)


@pytest.fixture(scope="module")
def customers(demo_run, state) -> pd.DataFrame:
    table = pd.read_parquet(demo_run.data_dir / "customers.parquet").set_index("customer_id")
    return table.loc[table.index.isin(state.portrait.index)]


def test_pages_say_loading_until_a_state_is_served():
    client = mounted(lambda: None)
    for path in ("/ui/", "/ui/customers/C000001", "/ui/audiences"):
        answer = client.get(path)
        assert answer.status_code == 503 and "Still loading" in answer.text
    answer = client.post("/ui/audiences/count", data={"query": "age > 3"})
    assert answer.status_code == 503 and "loading" in answer.json()["error"]
    assert client.get("/ui/static/ui.css").headers["content-type"].startswith("text/css")


def test_overview_shows_segments_rules_campaigns_and_links(client, state):
    html = client.get("/ui/").text
    for text in ("Run overview", "Segments", "Top product rules", "Campaign results", "mlflow ui"):
        assert text in html
    profiles = pd.read_parquet(state.run_dir / "segment_profiles.parquet")
    assert all(name in html for name in profiles["segment_name"])
    report = client.get("/ui/report")
    assert (
        report.status_code == 200 and report.content == (state.run_dir / "report.html").read_bytes()
    )


def test_customer_page_has_every_block(client, state, customers):
    cid = str(customers.loc[~customers["marketing_opt_out"]].index[0])
    html = client.get(f"/ui/customers/{cid}").text
    for text in ("Portrait", "age band", "KYC", "Segment", "value tier", "lifecycle stage",
                 "Churn risk", "Holdings and assets", "Next best products", "Behaviour timeline",
                 "not offered"):  # fmt: skip
        assert text in html, text
    assert state.segment_of(cid)["segment_name"] in html
    assert "Opted out of marketing" not in html


def test_opted_out_customer_is_clearly_marked(client, customers):
    cid = str(customers.loc[customers["marketing_opt_out"]].index[0])
    html = client.get(f"/ui/customers/{cid}").text
    assert "Opted out of marketing" in html and "non-personalised" in html


def test_timeline_pages_and_filters_by_business_line(client, state):
    bounds = state.timeline.bounds
    cid = max(bounds, key=lambda c: bounds[c][1] - bounds[c][0])  # the busiest customer
    total = bounds[cid][1] - bounds[cid][0]
    first = client.get(f"/ui/customers/{cid}").text
    assert f"{total} events and transactions" in first and "Older" in first
    second = client.get(f"/ui/customers/{cid}?page=2").text
    assert "page 2 of" in second and "Newer" in second
    filtered = client.get(f"/ui/customers/{cid}?line=general").text
    shown = int(filtered.split(" events and transactions")[0].rsplit(">", 1)[-1].strip())
    assert 0 < shown < total


def test_bad_customer_id_is_a_plain_escaped_message(client):
    answer = client.get('/ui/customers/<script>alert("x")</script>')
    assert answer.status_code == 404
    assert "Customer not found" in answer.text and "Traceback" not in answer.text
    assert "<script>alert" not in answer.text and "&lt;script&gt;" in answer.text


def test_unknown_page_is_a_plain_404(client):
    answer = client.get("/ui/no/such/page")
    assert answer.status_code == 404 and "Page not found" in answer.text


def test_search_box_goes_to_the_customer(client, customers):
    cid = str(customers.index[0])
    answer = client.get(f"/ui/customers?customer_id={cid}", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].endswith(f"/ui/customers/{cid}")


def test_audience_count_matches_the_portrait_and_leaves_opted_out_out(client, state):
    answer = client.post("/ui/audiences/count", data={"query": "age >= 60"}).json()
    portrait = state.portrait
    old = portrait["age"] >= 60
    opted_out = portrait["marketing_opt_out"].astype(bool)
    assert answer["count"] == int((old & ~opted_out).sum())
    assert answer["opted_out_excluded"] == int((old & opted_out).sum())
    assert len(answer["sample"]) == min(20, answer["count"])


def test_bad_query_points_at_the_token(client):
    answer = client.post("/ui/audiences", data={"query": "age >> 3"})
    assert answer.status_code == 400
    assert (
        "position 5" in answer.text and "       ^" in answer.text and "Traceback" not in answer.text
    )
    assert client.post("/ui/audiences/count", data={"query": "age >> 3"}).json()["error"]


def test_ready_made_query_runs_without_javascript(client):
    answer = client.post("/ui/audiences", data={"ready": "high_intent_non_investors", "query": ""})
    assert answer.status_code == 200 and "customers in the list" in answer.text
    assert "did view_page page=credit_report" in answer.text


def test_downloads_are_post_only_and_hold_everyone(client, state):
    assert client.get("/ui/audiences/download").status_code == 405
    count = client.post("/ui/audiences/count", data={"query": "age >= 30"}).json()["count"]
    csv = client.post("/ui/audiences/download", data={"query": "age >= 30", "format": "csv"})
    assert "attachment" in csv.headers["content-disposition"]
    rows = pd.read_csv(io.StringIO(csv.text))
    assert (
        len(rows) == count
        and not state.portrait.loc[rows["customer_id"], "marketing_opt_out"].any()
    )
    parquet = client.post(
        "/ui/audiences/download", data={"query": "age >= 30", "format": "parquet"}
    )
    assert len(pd.read_parquet(io.BytesIO(parquet.content))) == count
    bad = client.post("/ui/audiences/download", data={"query": "age >=", "format": "csv"})
    assert bad.status_code == 400 and "^" in bad.text
