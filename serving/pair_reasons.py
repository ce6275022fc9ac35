"""The conversion model's reasons of each candidate pair: explained once, kept, warmed after load.

TreeSHAP over every pair at load would cost a minute or more at 20k customers, so a pair is
explained the first time it is recommended and its reasons are kept (`ReasonMemo`).
`warm_reasons` explains each customer's best allowed pairs ahead of the first request; the
service runs it in the background once the state serves, so start-up does not wait for it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from features.policy import exclusion_codes

if TYPE_CHECKING:
    from serving.recommend_index import CandidateIndex, CustomerFacts, ProductFacts

EXPLAINED = 3  # model reasons per recommended product (top SHAP factors)
UNEXPLAINED, NO_REASON = -2, -1
WARM_TOP = 5  # pairs per customer explained ahead of requests: the default answer's k
WARM_CHUNK = 2000  # pairs per TreeSHAP call while warming (~2.5 s at 20k customers)


class ReasonMemo:
    """The model's reasons of each pair, explained when first recommended and then kept.

    A pair's reasons never change within a state, and explaining (TreeSHAP) every pair at load
    would cost minutes; so each is explained once, on first use, and stored as codes into one
    table of distinct texts.
    """

    def __init__(self, n_rows: int) -> None:
        self._codes = np.full((n_rows, EXPLAINED), UNEXPLAINED, dtype=np.int32)
        self._texts: list[str] = []
        self._code: dict[str, int] = {}
        self._lock = threading.Lock()

    def reasons(
        self, rows: np.ndarray, explain: Callable[[np.ndarray], list[list[str]]]
    ) -> list[list[str]]:
        """Reasons of pair `rows`; `explain(rows)` is called for the rows never explained yet."""
        missing = rows[self._codes[rows, 0] == UNEXPLAINED]
        if len(missing):
            lists = explain(missing)
            with self._lock:
                for row, texts in zip(missing, lists, strict=True):
                    codes = [self._intern(t) for t in texts[:EXPLAINED]]
                    self._codes[row] = codes + [NO_REASON] * (EXPLAINED - len(codes))
        texts = self._texts
        return [[texts[c] for c in codes if c >= 0] for codes in self._codes[rows]]

    def arrays(self) -> dict[str, np.ndarray]:
        """The kept reasons as arrays (codes per pair row, the distinct texts), for the run's
        candidate index: the service then starts with every pair the batch explained."""
        with self._lock:
            return {
                "reason_codes": self._codes.copy(),
                "reason_texts": np.array(self._texts, dtype=str),
            }

    @classmethod
    def from_arrays(cls, codes: np.ndarray, texts: np.ndarray) -> ReasonMemo:
        """A memo holding saved `arrays` (codes checked against the texts they point into)."""
        if (
            codes.ndim != 2
            or codes.shape[1] != EXPLAINED
            or codes.min(initial=0) < UNEXPLAINED
            or codes.max(initial=-1) >= len(texts)
        ):
            raise ValueError(
                f"saved reason codes of shape {codes.shape} do not fit {len(texts)} texts"
            )
        memo = cls(len(codes))
        memo._codes[:] = codes
        memo._texts = [str(t) for t in texts]
        memo._code = {t: i for i, t in enumerate(memo._texts)}
        return memo

    def _intern(self, text: str) -> int:
        code = self._code.get(text)
        if code is None:
            code = self._code[text] = len(self._texts)
            self._texts.append(text)
        return code


def warm_reasons(
    index: CandidateIndex,
    products: ProductFacts,
    customers: CustomerFacts,
    model: Any | None,
    *,
    top: int = WARM_TOP,
) -> int:
    """Explain each customer's `top` best-scored pairs the policy allows, ahead of requests: the
    model rows of a default answer, so its first request finds its reasons kept. Works in chunks
    of WARM_CHUNK pairs, so the memo fills as it goes. Returns the pairs explained."""
    if index.pairs is None or model is None:
        return 0
    owner = np.repeat(np.arange(len(index.customers)), np.diff(index.pairs.ptr))
    product = index.pairs.product
    codes = exclusion_codes(
        product_risk=products.risk[product], active=products.active[product],
        qualified_only=products.qualified_only[product], held=index.held[owner, product],
        known=customers.known[owner], assessed=customers.assessed[owner],
        allowed_risk=customers.allowed_risk[owner], qualified=customers.qualified[owner],
        opted_out=customers.opted_out[owner], personalised=True,
    )  # fmt: skip
    allowed = np.flatnonzero(codes == 0)
    if len(allowed) == 0:
        return 0
    best = allowed[np.lexsort((-index.pairs.score[allowed], owner[allowed]))]
    first = np.r_[True, owner[best][1:] != owner[best][:-1]]
    rank = np.arange(len(best)) - np.maximum.accumulate(np.where(first, np.arange(len(best)), 0))
    rows = best[rank < top]
    for start in range(0, len(rows), WARM_CHUNK):
        chunk = rows[start : start + WARM_CHUNK]
        index.pair_reasons.reasons(chunk, lambda missing: explain_pairs(index, model, missing))
    return len(rows)


def explain_pairs(index: CandidateIndex, model: Any, rows: np.ndarray) -> list[list[str]]:
    """The model's reasons of pair rows of the index."""
    return model.explain(index.pair_frame.take(rows), top=EXPLAINED)
