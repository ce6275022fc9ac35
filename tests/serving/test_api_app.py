"""The /recommend route's answers that need no loaded run: 503 while loading, 400 naming the
field for bad bodies (never echoing the input); the e2e tests cover the answers themselves."""

from __future__ import annotations

import json
from types import SimpleNamespace

from starlette.testclient import TestClient

from serving.api_app import create_api_app, recommend_response


def loading_service():
    return SimpleNamespace(current_state=lambda: None, last_load="loading")


def test_recommend_is_503_until_a_state_is_loaded():
    answer = recommend_response(loading_service(), b'{"customer_id": "C1"}')
    assert answer.status_code == 503 and json.loads(answer.body)["detail"] == "loading"


def test_bad_bodies_are_400_naming_the_field(monkeypatch):
    service = SimpleNamespace(current_state=lambda: object(), last_load="loaded")
    for body, field in [(b'{"customer_id": "C1", "k": "many"}', "k"),
                        (b'{"customer_id": "C1", "colour": "secret-red"}', "colour"),
                        (b'{"customer_id": ', None)]:  # fmt: skip
        answer = recommend_response(service, body)
        payload = json.loads(answer.body)
        assert answer.status_code == 400 and payload["error"].endswith("RecommendRequest")
        assert field is None or field in json.dumps(payload["detail"])
        assert "secret-red" not in answer.body.decode()


def test_the_route_answers_post_only_and_before_the_service_exists():
    client = TestClient(create_api_app(lambda: None))
    assert client.post("/recommend", json={"customer_id": "C1"}).status_code == 503
    assert client.get("/recommend").status_code == 405
