"""1,000+ hostile requests (the classes of issue 17) against the session's server: no answer is
a 500 and no connection is dropped. A table, generated, so a failure names its request."""

from __future__ import annotations

import itertools

import httpx
import pytest

pytestmark = pytest.mark.e2e

API = {"/recommend": "app", "/profile": "staff", "/audience": "marketer", "/admin/reload": "admin"}


def audience_queries() -> list[str]:
    """Deep brackets, long `not` chains, huge numbers, impossible dates, odd characters."""
    queries = []
    for n in (5, 19, 20, 21, 50, 300, 1300):
        queries += ["(" * n + "age > 30" + ")" * n, "not " * n + "age > 30", "(" * n + "age > 30"]
    for n in (1, 20, 21, 100, 990):
        queries.append(" and ".join(["age > 30"] * n)[:4000])
        queries.append(" or ".join(["did login in last 30 days"] * n)[:4000])
    for number in ("99999999999999999999", "1e999", "-1e309", "36500", "36501", "0", "nan"):
        queries += [f"did login in last {number} days", f"total_assets > {number}",
                    f"did login at least {number} times"]  # fmt: skip
    for a, b in itertools.product(("0000-00-00", "2025-02-30", "1899-12-31", "2025-01-01",
                                   "9999-99-99", "2025-13-01"), repeat=2):  # fmt: skip
        queries += [f"signup_at between {a} and {b}", f"did login between {a} and {b}"]
    queries += ["age > 30\x00", "\x00", "age >", "did", "did not", "in last", "((((", "))))",
                "age in (", "age in ()", "'unterminated", "age = 'x'" * 400, "é" * 3999]  # fmt: skip
    return queries


def requests_table() -> list[tuple[str, str, dict, bytes]]:
    """(path, role, headers, body) rows: over 1,000 of them."""
    rows = []
    json_h = {"content-type": "application/json"}
    for query in audience_queries():
        for limit in (0, 20, 1000):
            body = httpx.Request("POST", "/", json={"query": query[:4000], "limit": limit}).content
            rows.append(("/audience", "marketer", json_h, body))
        form_h = {"content-type": "application/x-www-form-urlencoded"}
        for route, extra in (("count", {}), ("download", {"format": "csv"})):
            form = httpx.Request("POST", "/", data={"query": query, **extra}).content
            rows.append((f"/ui/audiences/{route}", "marketer", form_h, form))
    media = ["multipart/form-data", "multipart/form-data; boundary=x", "multipart/mixed",
             "text/plain", "application/x-www-form-urlencoded", "application/json; charset=x",
             "", "application/octet-stream", "image/png"]  # fmt: skip
    bodies = [b"", b"{}", b"--x\r\nContent-Disposition: form-data; name=a\r\n\r\nb\r\n--x--",
              b"run_dir=/tmp", b'{"customer_id": "C\\u0000"}', b'{"run_dir": "a\\u0000b"}',
              b"\x00" * 64, b"[" * 5000, b'{"k": 1e999}', b'{"customer_id": 1}' * 100]  # fmt: skip
    for (path, role), m, body in itertools.product(API.items(), media, bodies):
        rows.append((path, role, {"content-type": m} if m else {}, body))
    big = b'{"customer_id": "' + b"x" * 1_100_000 + b'"}'
    for path, role in API.items():
        rows += [(path, role, json_h, big)] * 3
    return rows


def test_no_hostile_request_gets_a_500(server):
    table = requests_table()
    assert len(table) >= 1000
    statuses, fives = {}, []
    with httpx.Client(base_url=server.url, timeout=120) as client:
        for path, role, headers, body in table:
            try:
                response = client.post(
                    path, content=body, headers={**server.headers(role), **headers}
                )
                status = response.status_code
            except httpx.HTTPError as exc:  # a dropped connection is a failure too
                status = type(exc).__name__
            statuses[status] = statuses.get(status, 0) + 1
            if status == 500 or isinstance(status, str):
                fives.append((path, headers, body[:80], status))
    assert not fives, f"{len(fives)} bad answers, e.g. {fives[:3]}; all: {statuses}"
