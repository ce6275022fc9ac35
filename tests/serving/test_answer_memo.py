"""Plain /recommend answers kept per state: the kept answer is byte for byte the computed one,
its exclusions audited on every request; visits and unknown customers are always computed;
the memo is bounded, least recently used first."""

from __future__ import annotations

import dataclasses
import json
from types import SimpleNamespace

from serving.answer_memo import AnswerMemo
from serving.api_app import recommend_response
from serving.audit import ExclusionAudit, Exclusions


def with_memo(state, size: int):
    """A copy of `state` (its own, empty memo) keeping `size` answers."""
    serving = dataclasses.replace(state.settings.serving, answer_memo=size)
    return dataclasses.replace(state, settings=dataclasses.replace(state.settings, serving=serving))


def service_of(state):
    return SimpleNamespace(current_state=lambda: state, last_load="", audit=ExclusionAudit(None))


def body(customer_id: str, k: int = 5, **extra) -> bytes:
    return json.dumps({"customer_id": customer_id, "k": k, **extra}).encode()


def test_a_kept_answer_is_the_computed_one_and_audited_each_time(state):
    kept, computed = service_of(with_memo(state, 100)), service_of(with_memo(state, 0))
    customers = [str(c) for c in state.portrait.index[:4]]
    for customer in customers:
        first, again = (recommend_response(kept, body(customer)) for _ in range(2))
        fresh = recommend_response(computed, body(customer))
        assert first.status_code == again.status_code == fresh.status_code == 200
        assert first.body == again.body == fresh.body
    assert len(kept.current_state().answers) == len(customers)
    assert len(computed.current_state().answers) == 0
    assert sum(kept.audit.totals.values()) == 2 * sum(computed.audit.totals.values()) > 0


def test_visits_other_k_and_unknown_customers_are_not_served_from_the_memo(state):
    service = service_of(with_memo(state, 100))
    customer = str(state.portrait.index[0])
    product = str(state.products.index[0])
    recommend_response(service, body(customer, k=5))
    views = [{"event": "view_product", "product_id": product}]
    assert recommend_response(service, body(customer, session_events=views)).status_code == 200
    pages = [{"event": "view_page", "page": "home"}]  # no product: the plain answer
    assert recommend_response(service, body(customer, session_events=pages)).status_code == 200
    assert len(service.current_state().answers) == 1
    recommend_response(service, body(customer, k=3))
    assert recommend_response(service, body("nobody-like-this")).status_code == 404
    assert list(service.current_state().answers._entries) == [(customer, 5), (customer, 3)]


def test_the_memo_drops_the_least_recently_used_past_its_bound():
    memo = AnswerMemo(2)
    for customer in ("A", "B"):
        memo.put((customer, 5), customer.encode(), Exclusions(customer, ["P1"], ["held"]))
    assert memo.get(("A", 5)) == (b"A", Exclusions("A", ["P1"], ["held"]))
    memo.put(("C", 5), b"C", Exclusions("C", [], []))
    assert memo.get(("B", 5)) is None and len(memo) == 2 and memo.get(("A", 5)) is not None
    off = AnswerMemo(0)
    off.put(("A", 5), b"A", Exclusions("A", [], []))
    assert len(off) == 0
