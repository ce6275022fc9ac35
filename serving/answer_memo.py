"""A served state's answers to plain requests, kept: a known customer's answer without product
views in the visit depends only on the state (immutable) and k, so it is computed once per state
and then sent again as the same bytes, its exclusions audited and counted on every request.

Bounded (`serving.answer_memo` answers per worker, least recently used dropped first; 0: off).
An entry is the JSON bytes and tuples of strings, objects Python's cycle collector does not
track, so a full memo does not bring back the collection pauses `gc.freeze` removed
(serving/worker_state.py). A reload builds a new state, with an empty memo.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from serving.audit import Exclusions

Key = tuple[str, int]


class AnswerMemo:
    """(customer_id, k) -> (answer JSON, excluded product ids, their rules), at most `size`."""

    def __init__(self, size: int) -> None:
        self.size = max(int(size), 0)
        self._entries: OrderedDict[Key, tuple[bytes, tuple[str, ...], tuple[str, ...]]] = (
            OrderedDict()
        )
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Key) -> tuple[bytes, Exclusions] | None:
        """The kept answer and its exclusions, or None."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            self._entries.move_to_end(key)
        payload, products, reasons = entry
        return payload, Exclusions(key[0], list(products), list(reasons))

    def put(self, key: Key, payload: bytes, excluded: Exclusions) -> None:
        """Keep an answer (dropping the least recently used past the bound)."""
        if not self.size:
            return
        entry = (payload, tuple(excluded.product_ids), tuple(excluded.reasons))
        with self._lock:
            self._entries[key] = entry
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)


def plain_key(state: Any, request: Any) -> Key | None:
    """The memo key of a request whose answer depends only on the state: a known customer with
    no product viewed in this visit (None otherwise: visits and cold starts are computed)."""
    if any(event.product_id for event in request.session_events):
        return None
    return (request.customer_id, request.k) if state.knows(request.customer_id) else None
