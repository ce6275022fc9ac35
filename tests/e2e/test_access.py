"""Access control over real HTTP on the session's `portrait serve` (tests/conftest.py): every
route x {no key, wrong key, each role}, page login and CSRF, Host checks, the reload-RCE probe,
the access log and /metrics labels."""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil

import httpx
import pytest

pytestmark = pytest.mark.e2e

CID = "C000010"  # replaced by the first customer of the session's run (see `cid`)
FORM = {"content-type": "application/x-www-form-urlencoded"}


# method, path, body (JSON dict, form str or None), the roles allowed, the status they get
def routes(cid: str) -> list[tuple]:
    """ROUTES for a customer of the served run."""
    return [_swap(r, cid) for r in ROUTES]


def _swap(route: tuple, cid: str) -> tuple:
    method, path, body, roles, status = route
    if isinstance(body, dict) and body.get("customer_id") == CID:
        body = {**body, "customer_id": cid}
    return method, path.replace(CID, cid), body, roles, status


ROUTES = [
    ("GET", "/livez", None, None, 200),
    ("GET", "/readyz", None, None, 200),
    ("POST", "/recommend", {"customer_id": CID, "k": 3, "attributes": {"age": 40}}, {"app"}, 200),
    ("POST", "/profile", {"customer_id": CID}, {"staff"}, 200),
    ("POST", "/audience", {"query": "age > 30", "limit": 2}, {"marketer"}, 200),
    ("POST", "/admin/reload", {"run_dir": "/etc"}, {"admin"}, 400),  # auth passed, target refused
    ("GET", "/metrics", None, {"admin"}, 200),
    ("GET", "/docs.json", None, {"admin"}, 200),
    ("GET", "/schema.json", None, {"admin"}, 200),
    ("GET", "/", None, {"admin"}, 200),
    ("GET", "/no/such/route", None, {"admin"}, 404),
    ("GET", "/ui/", None, {"staff", "marketer", "admin"}, 200),
    ("GET", "/ui/report", None, {"staff", "marketer", "admin"}, 200),
    ("GET", "/ui/customers", None, {"staff"}, 200),
    ("GET", f"/ui/customers/{CID}", None, {"staff"}, 200),
    ("GET", "/ui/audiences", None, {"marketer"}, 200),
    ("POST", "/ui/audiences/count", "query=age+%3E+30", {"marketer"}, 200),
    ("POST", "/ui/audiences/download", "query=age+%3E+30&format=csv", {"marketer"}, 200),
]
CALLERS = ["none", "wrong", "app", "staff", "marketer", "admin"]
SECURITY_HEADERS = ("content-security-policy", "x-frame-options", "x-content-type-options",
                    "referrer-policy")  # fmt: skip


@pytest.fixture(scope="module")
def cid(server) -> str:
    """A customer in the served portrait."""
    import pandas as pd

    return str(pd.read_parquet(server.demo.run_dir / "features.parquet")["customer_id"].iloc[0])


def call(server, method, path, body, caller, **kw) -> httpx.Response:
    """One request as `caller` (a role, "none" or "wrong")."""
    headers = dict(kw.pop("headers", {}))
    if caller == "wrong":
        headers["Authorization"] = "Bearer pk_not-a-key"
    elif caller != "none":
        headers.update(server.headers(caller))
    if isinstance(body, str):
        headers = {**FORM, **headers}
        kw["content"] = body
    elif body is not None:
        kw["json"] = body
    return httpx.request(method, f"{server.url}{path}", headers=headers, timeout=60, **kw)


@pytest.mark.parametrize("caller", CALLERS)
def test_every_route_answers_each_caller_as_its_role_allows(server, cid, caller):
    got, wanted = {}, {}
    for method, path, body, roles, allowed in routes(cid):
        response = call(server, method, path, body, caller)
        assert all(h in response.headers for h in SECURITY_HEADERS), path
        if roles is None:
            wanted[path] = allowed
        elif caller in ("none", "wrong"):
            wanted[path] = 401
        else:
            wanted[path] = allowed if caller in roles else 403
        got[path] = response.status_code
    assert got == wanted


def test_api_bodies_must_be_json(server):
    for body in ("customer_id=C000010", "run_dir=/tmp"):
        for path, role in (("/recommend", "app"), ("/admin/reload", "admin")):
            form = call(server, "POST", path, body, role)
            text = call(server, "POST", path, body, role, headers={"content-type": "text/plain"})
            assert form.status_code == text.status_code == 415


def login(server, role: str) -> httpx.Client:
    """A client logged in through the login form with the session's key for `role`."""
    client = httpx.Client(base_url=server.url, timeout=60)
    page = client.get("/ui/login", params={"next": "/ui/audiences"})
    token = re.search(r'name="login_token" value="([^"]+)"', page.text).group(1)
    form = {"login_token": token, "next": "/ui/audiences", "key": server.keys[role]}
    done = client.post("/ui/login", data=form)
    assert done.status_code == 303 and done.headers["location"] == "/ui/audiences"
    cookie = next(c for c in done.headers.get_list("set-cookie") if c.startswith("portrait_"))
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/ui" in cookie
    return client


def test_login_sets_a_session_and_forms_need_its_csrf_token(server, cid):
    client = login(server, "marketer")
    page = client.get("/ui/audiences")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    body = {"query": "age > 30", "format": "csv"}
    # a cross-site form POST: the browser sends the cookie, but not the session's token
    assert client.post("/ui/audiences/download", data=body).status_code == 403
    forged = client.post("/ui/audiences/download", data={**body, "csrf_token": "guess"})
    assert forged.status_code == 403
    other = client.post("/ui/audiences/download", data={**body, "csrf_token": csrf},
                        headers={"origin": "https://evil.example"})  # fmt: skip
    assert other.status_code == 403
    fetch = client.post("/ui/audiences/download", data={**body, "csrf_token": csrf},
                        headers={"sec-fetch-site": "cross-site"})  # fmt: skip
    assert fetch.status_code == 403
    same = client.post("/ui/audiences/download", data={**body, "csrf_token": csrf})
    assert same.status_code == 200 and same.content.startswith(b"customer_id")
    assert client.get(f"/ui/customers/{cid}").status_code == 403  # marketer: not staff pages
    client.get("/ui/logout")
    assert client.get("/ui/audiences").status_code == 401


def test_login_refuses_a_bad_key_and_a_cross_site_form(server):
    client = httpx.Client(base_url=server.url, timeout=60)
    page = client.get("/ui/login")
    token = re.search(r'name="login_token" value="([^"]+)"', page.text).group(1)
    bad = client.post("/ui/login", data={"login_token": token, "key": "pk_nope"})
    assert bad.status_code == 401 and "portrait_session" not in bad.headers.get("set-cookie", "")
    page = client.get("/ui/login")
    token = re.search(r'name="login_token" value="([^"]+)"', page.text).group(1)
    cross = client.post("/ui/login", data={"login_token": token, "key": server.keys["staff"]},
                        headers={"origin": "https://evil.example"})  # fmt: skip
    assert cross.status_code == 403
    no_token = httpx.post(f"{server.url}/ui/login", data={"key": server.keys["staff"]})
    assert no_token.status_code == 403


def test_foreign_host_is_refused_and_the_search_redirect_is_relative(server, cid):
    staff = server.headers("staff")
    foreign = httpx.get(f"{server.url}/ui/customers", headers={**staff, "host": "evil.example"})
    assert foreign.status_code == 400
    search = httpx.get(f"{server.url}/ui/customers", params={"customer_id": cid}, headers=staff)
    assert search.status_code == 303 and search.headers["location"] == f"/ui/customers/{cid}"


def test_reload_never_unpickles_a_crafted_run(server, tmp_path):
    marker = tmp_path / "MARKER"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    root = server.demo.run_dir.parent
    crafted = root / "crafted-run"
    shutil.copytree(server.demo.run_dir, crafted, ignore=shutil.ignore_patterns("audit"))
    try:
        (crafted / "segmentation.pkl").write_bytes(pickle.dumps(Payload()))
        run_id = json.loads((crafted / "manifest.json").read_text())["run_id"]
        from training.manifest import write_manifest

        for body, caller in [("run_dir=" + str(crafted), "none"), ({"run_dir": str(crafted)},
                             "none"), ({"run_dir": str(tmp_path)}, "admin")]:  # fmt: skip
            assert call(server, "POST", "/admin/reload", body, caller).status_code in (400, 401)
        changed = call(server, "POST", "/admin/reload", {"run_dir": "crafted-run"}, "admin")
        assert changed.json()["reloaded"] is False and "changed" in changed.json()["reason"]
        write_manifest(crafted, run_id=run_id, models={})  # a forged, matching one
        forged = call(server, "POST", "/admin/reload", {"run_dir": "crafted-run"}, "admin")
        assert forged.json()["reloaded"] is False and "MLflow" in forged.json()["reason"]
        assert str(root) not in forged.text
    finally:
        shutil.rmtree(crafted)
    assert not marker.exists()
    assert call(server, "GET", "/readyz", None, "none").status_code == 200


def test_access_log_says_who_read_which_customer_and_exported_what(server, cid):
    assert call(server, "POST", "/profile", {"customer_id": cid}, "staff").status_code == 200
    assert call(server, "GET", f"/ui/customers/{cid}", None, "staff").status_code == 200
    call(server, "POST", "/ui/audiences/download", "query=age+%3E+60&format=csv", "marketer")
    path = server.audit_log.parent / "access.jsonl"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert {"who": "test-staff", "action": "profile", "customer_id": cid}.items() <= lines[
        -3
    ].items()
    assert lines[-2]["action"] == "customer_page" and lines[-2]["customer_id"] == cid
    export = lines[-1]
    assert export["who"] == "test-marketer" and export["query"] == "age > 60"
    assert export["count"] >= 0 and "customer_id" in export["columns"]


def test_metrics_label_route_templates_never_customer_ids(server):
    for cid in ("C000011", "C000012", "NOT-A-CUSTOMER-XYZ"):
        call(server, "GET", f"/ui/customers/{cid}", None, "staff")
    text = call(server, "GET", "/metrics", None, "admin").text
    assert 'route="/ui/customers/{customer_id}"' in text
    assert "C000011" not in text and "NOT-A-CUSTOMER-XYZ" not in text
