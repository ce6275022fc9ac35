"""The service over real HTTP: a `portrait serve` subprocess on a free 127.0.0.1 port (see conftest)."""

from __future__ import annotations

import json

import httpx
import pandas as pd
import pytest

from serving.audit import read_audit

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def customers(server) -> pd.DataFrame:
    """The demo bank's customers with their holdings count, indexed by customer_id."""
    return pd.read_parquet(server.demo.data_dir / "customers.parquet").set_index("customer_id")


@pytest.fixture(scope="module")
def products(server) -> pd.DataFrame:
    return pd.read_parquet(server.demo.data_dir / "products.parquet").set_index("product_id")


def post(server, path: str, body, **kw) -> httpx.Response:
    """POST JSON (or raw text when `body` is a str) to the server."""
    kw.setdefault("timeout", 30)
    headers = {**server.auth(path), **kw.pop("headers", {})}
    if isinstance(body, str):
        headers = {"content-type": "application/json", **headers}
        return httpx.post(f"{server.url}{path}", content=body, headers=headers, **kw)
    return httpx.post(f"{server.url}{path}", json=body, headers=headers, **kw)


def served(customers: pd.DataFrame, mask: pd.Series) -> str:
    """The first customer matching `mask` who signed up before the run's cut-off."""
    return str(customers.loc[mask & (customers["signup_at"] < pd.Timestamp("2025-10-01"))].index[0])


def test_health_endpoints(server):
    assert httpx.get(f"{server.url}/livez").status_code == 200
    assert httpx.get(f"{server.url}/readyz").status_code == 200
    metrics = httpx.get(f"{server.url}/metrics", headers=server.auth("/metrics")).text
    assert "portrait_policy_exclusions_total" in metrics


def test_known_customer_gets_ranked_reasoned_suitable_products(server, customers, products):
    cid = served(customers, customers["risk_level"].ge(3) & ~customers["marketing_opt_out"])
    answer = post(server, "/recommend", {"customer_id": cid, "k": 4}).json()
    assert answer["personalised"] is True and answer["cold_start"] is False
    assert answer["model_version"].startswith("churn:v")
    assert [i["rank"] for i in answer["items"]] == list(range(1, len(answer["items"]) + 1))
    assert 1 <= len(answer["items"]) <= 4
    for item in answer["items"]:
        assert item["reasons"] and all(isinstance(r, str) and r for r in item["reasons"])
        assert item["risk_level"] <= customers.at[cid, "risk_level"]
        assert bool(products.at[item["product_id"], "is_active"])


def test_session_views_change_the_answer(server, customers):
    cid = served(customers, customers["risk_level"].ge(4) & ~customers["marketing_opt_out"])
    first = post(server, "/recommend", {"customer_id": cid, "k": 5}).json()
    before = first["items"]
    last = before[-1]["product_id"]
    views = [{"event": "view_product", "product_id": last, "page": "product"}] * 20
    after = post(
        server,
        "/recommend",
        {"customer_id": cid, "k": 5, "session_events": views, "channel": "app"},
    )
    assert after.status_code == 200
    assert [(i["product_id"], i["score"]) for i in after.json()["items"]] != [
        (i["product_id"], i["score"]) for i in before
    ]
    if first["model_version"].endswith("conversion:none"):
        # Without a conversion champion the viewed (suitable) product leads, with the visit as reason.
        top = after.json()["items"][0]
        assert top["product_id"] == last
        assert any("in this visit" in r for r in top["reasons"])


def test_opted_out_customer_gets_a_marked_non_personalised_list(server, customers):
    cid = served(customers, customers["marketing_opt_out"])
    answer = post(server, "/recommend", {"customer_id": cid, "k": 3}).json()
    assert answer["personalised"] is False
    assert "opt-out" in answer["label"]
    assert all("opted out" in " ".join(i["reasons"]) for i in answer["items"])


def test_unassessed_customer_gets_risk_level_one_only(server, customers):
    cid = served(customers, customers["risk_level"].isna() & ~customers["marketing_opt_out"])
    items = post(server, "/recommend", {"customer_id": cid, "k": 10}).json()["items"]
    assert items and {i["risk_level"] for i in items} == {1}


def test_unknown_customer_with_attributes_gets_a_cold_start_plan(server):
    body = {"customer_id": "NEW-0001", "k": 3, "attributes": {"age": 28, "occupation": "engineer",
            "income_band": 3, "risk_level": 2}}  # fmt: skip
    answer = post(server, "/recommend", body).json()
    assert answer["cold_start"] is True and answer["label"] == "cold start"
    assert answer["items"] and all(i["risk_level"] <= 2 for i in answer["items"])
    assert all(i["reasons"][0].startswith(("cold start", "fallback")) for i in answer["items"])


def test_unknown_customer_without_attributes_is_a_clear_404(server):
    response = post(server, "/recommend", {"customer_id": "NOBODY-42", "k": 3})
    assert response.status_code == 404
    assert "NOBODY-42" in response.json()["error"] and "attributes" in response.json()["error"]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/recommend", '{"customer_id": "C000001", "k": ', None),
        ("/recommend", {"customer_id": "C000001", "k": "many"}, "k"),
        ("/recommend", {"customer_id": "C000001", "colour": "red"}, "colour"),
        ("/recommend", {"customer_id": 12345}, "customer_id"),
        ("/recommend", {"customer_id": "C000001", "k": 0}, "k"),
        (
            "/recommend",
            {"customer_id": "C1", "session_events": [{"event": "View!"}]},
            "session_events",
        ),
        ("/profile", {"customer_id": "C000001", "page": -1}, "page"),
        ("/profile", "not json", None),
        ("/audience", {"query": ""}, "query"),
    ],
)
def test_bad_input_is_a_4xx_with_a_clear_message(server, path, body, field):
    response = post(server, path, body)
    assert 400 <= response.status_code < 500
    payload = response.json()
    assert payload["error"]
    if field is not None:
        assert field in json.dumps(payload["detail"])


def test_profile_shows_portrait_and_paged_timeline(server, customers):
    cid = served(customers, customers["risk_level"].notna())
    first = post(server, "/profile", {"customer_id": cid, "page": 1, "page_size": 5}).json()
    for key in (
        "key_features",
        "segment_name",
        "value_tier",
        "lifecycle_stage",
        "tags",
        "churn",
        "holdings",
    ):
        assert key in first
    assert first["key_features"]["risk_level"] == customers.at[cid, "risk_level"]
    stamps = [i["ts"] for i in first["timeline"]["items"]]
    assert stamps == sorted(stamps, reverse=True) and stamps[-1] < "2025-11-01"
    second = post(server, "/profile", {"customer_id": cid, "page": 2, "page_size": 5}).json()
    assert second["timeline"]["total"] == first["timeline"]["total"]
    if first["timeline"]["total"] > 5:
        assert second["timeline"]["items"][0]["ts"] <= stamps[-1]


def test_profile_of_unknown_customer_is_404(server):
    assert post(server, "/profile", {"customer_id": "NOBODY-42"}).status_code == 404


def test_audience_never_includes_opted_out_customers(server, customers):
    answer = post(server, "/audience", {"query": "total_assets > 0", "limit": 200}).json()
    assert answer["count"] > 0 and answer["opted_out_excluded"] > 0
    sample = {row["customer_id"] for row in answer["sample"]}
    assert sample and not sample & set(customers.index[customers["marketing_opt_out"]])


def test_bad_audience_query_is_a_400(server):
    response = post(server, "/audience", {"query": "total_assets >>> banana"})
    assert response.status_code == 400 and response.json()["error"]


def test_exclusions_are_counted_and_audited(server, customers):
    cid = served(customers, customers["risk_level"].eq(1) & ~customers["marketing_opt_out"])
    post(server, "/recommend", {"customer_id": cid, "k": 3})
    metrics = httpx.get(f"{server.url}/metrics", headers=server.auth("/metrics")).text
    line = next(
        x
        for x in metrics.splitlines()
        if x.startswith('portrait_policy_exclusions_total{reason="risk_above_customer"}')
    )
    assert float(line.split()[-1]) > 0
    log = read_audit(server.audit_log)
    mine = log.loc[log["customer_id"] == cid]
    assert len(mine) and mine["model_version"].str.startswith("churn:v").all()
    assert set(mine["rule"]) >= {"risk_above_customer"}


def test_reload_keeps_serving_when_the_new_state_fails(server, customers, tmp_path):
    outside = post(server, "/admin/reload", {"run_dir": str(tmp_path / "missing-run")})
    assert outside.status_code == 400 and "run_roots" in outside.json()["error"]
    bad = post(server, "/admin/reload", {"run_dir": "missing-run"}).json()
    assert bad["reloaded"] is False and "manifest.json" in bad["reason"]
    assert "/" not in bad["reason"] and "/" not in bad["run_dir"]  # no server paths
    assert httpx.get(f"{server.url}/readyz").status_code == 200
    cid = served(customers, ~customers["marketing_opt_out"])
    assert post(server, "/recommend", {"customer_id": cid}).status_code == 200
    good = post(server, "/admin/reload", {}, timeout=120).json()
    assert good["reloaded"] is True and good["model_version"].startswith("churn:v")


def test_a_reload_reaches_every_worker(server, customers):
    first = post(server, "/admin/reload", {}, timeout=120).json()
    second = post(server, "/admin/reload", {}, timeout=120).json()
    assert second["reloaded"] is True and second["generation"] == first["generation"] + 1
    assert second["of_workers"] >= 2 and second["workers"] == second["of_workers"]
    cid = served(customers, ~customers["marketing_opt_out"])
    answers = [
        post(server, "/recommend", {"customer_id": cid}) for _ in range(12)
    ]  # new connections
    assert {a.status_code for a in answers} == {200}
    assert {a.json()["model_version"] for a in answers} == {second["model_version"]}


def test_a_page_session_holds_on_every_worker(server):
    from tests.e2e.test_access import login

    cookies = login(server, "staff").cookies
    pages = [httpx.get(f"{server.url}/ui/", cookies=cookies) for _ in range(12)]  # new connections
    assert {p.status_code for p in pages} == {200}
