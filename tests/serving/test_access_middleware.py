"""The access middleware in process, around a stand-in app: keys and roles, page sessions and
CSRF, Host and Origin checks, the body limit, headers, and a crashing handler."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from serving.access import AccessConfig, AccessControl
from serving.keys import add_key


async def echo(request):
    body = await request.body()
    who = request.scope["portrait.principal"].name
    return JSONResponse({"who": who, "bytes": len(body)})


async def crash(request):
    raise RuntimeError("boom")


@pytest.fixture
def client(tmp_path: Path):
    keys = tmp_path / "keys.json"
    app = Starlette(routes=[
        Route("/recommend", echo, methods=["POST"]),
        Route("/ui/audiences/count", echo, methods=["POST"]),
        Route("/ui/customers/{cid}", crash),
        Route("/livez", lambda r: PlainTextResponse("ok")),
    ])  # fmt: skip
    config = AccessConfig(keys, frozenset({"testserver", "127.0.0.1"}), 1000, 60)
    client = TestClient(AccessControl(app, config=config), raise_server_exceptions=False)
    client.keys = {r: add_key(keys, f"k-{r}", roles=[r]) for r in ("app", "marketer", "staff")}
    return client


def bearer(client, role):
    return {"Authorization": f"Bearer {client.keys[role]}"}


def test_keys_and_roles(client):
    body = {"customer_id": "C1"}
    assert client.post("/recommend", json=body).status_code == 401
    assert (
        client.post("/recommend", json=body, headers={"Authorization": "Bearer x"}).status_code
        == 401
    )
    assert client.post("/recommend", json=body, headers=bearer(client, "staff")).status_code == 403
    ok = client.post("/recommend", json=body, headers=bearer(client, "app"))
    assert ok.status_code == 200 and ok.json()["who"] == "k-app"
    assert client.get("/livez").status_code == 200
    for name in ("content-security-policy", "x-frame-options", "x-content-type-options"):
        assert name in ok.headers
    assert "'unsafe-inline'" not in ok.headers["content-security-policy"]


def test_bodies_are_bounded_and_json_for_the_api(client):
    big = client.post("/recommend", content=b"{" * 1001, headers={**bearer(client, "app"),
                      "content-type": "application/json"})  # fmt: skip
    assert big.status_code == 413
    chunked = client.post("/recommend", content=iter([b"{" * 600, b"{" * 600]),
                          headers={**bearer(client, "app"), "content-type": "application/json"})  # fmt: skip
    assert chunked.status_code == 413
    form = client.post("/recommend", data={"a": "b"}, headers=bearer(client, "app"))
    assert form.status_code == 415


def test_host_and_origin(client):
    foreign = client.post(
        "/recommend", json={}, headers={**bearer(client, "app"), "host": "evil.example"}
    )
    assert foreign.status_code == 400
    cross = client.post("/recommend", json={}, headers={**bearer(client, "app"),
                        "origin": "https://evil.example"})  # fmt: skip
    assert cross.status_code == 403


def test_page_session_needs_the_csrf_token(client):
    page = client.get("/ui/login")
    token = re.search(r'name="login_token" value="([^"]+)"', page.text).group(1)
    done = client.post("/ui/login", data={"login_token": token, "key": client.keys["marketer"],
                       "next": "https://evil.example/"}, follow_redirects=False)  # fmt: skip
    assert done.status_code == 303 and done.headers["location"] == "/ui/"
    assert client.post("/ui/audiences/count", data={"query": "x"}).status_code == 403
    session = client.cookies.get("portrait_session")
    assert session
    # the token comes from the page the middleware renders: take it from the sessions store
    csrf = client.app.sessions.get(session).csrf
    ok = client.post("/ui/audiences/count", data={"query": "x", "csrf_token": csrf})
    assert ok.status_code == 200 and ok.json()["who"] == "k-marketer"
    assert client.post("/recommend", json={}).status_code == 401  # cookies never open the API


def test_a_crashing_page_is_a_500_not_a_dropped_connection(client):
    strict = TestClient(client.app, raise_server_exceptions=True)  # raises if the error escapes
    response = strict.get("/ui/customers/C1", headers=bearer(client, "staff"))
    assert response.status_code == 500
