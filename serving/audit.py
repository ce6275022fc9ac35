"""Every product the policy excluded: a JSON-lines audit log and a Prometheus counter by reason.

The audit line says when, for which customer, which product, which policy rule and which model
version. The counter is created lazily by the service, after BentoML has set up Prometheus'
multiprocess directory, so `/metrics` shows it.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd

from features.contract import CUSTOMER_ID, PRODUCT_ID
from serving.policy import EXCLUSION_REASONS

METRIC_NAME = "portrait_policy_exclusions"
CountFn = Callable[[str, int], None]


@dataclass(frozen=True)
class Exclusions:
    """The candidates the policy excluded from one answer: a product and a rule per exclusion."""

    customer_id: str
    product_ids: list[str]
    reasons: list[str]  # names from serving.policy.EXCLUSION_REASONS

    def __len__(self) -> int:
        return len(self.reasons)

    def frame(self) -> pd.DataFrame:
        """customer_id, product_id, reason rows."""
        return pd.DataFrame(
            {CUSTOMER_ID: self.customer_id, PRODUCT_ID: self.product_ids, "reason": self.reasons},
            dtype=object,
        )


def prometheus_counter() -> CountFn:
    """A Prometheus counter `portrait_policy_exclusions_total{reason=...}` as a count function."""
    import prometheus_client  # imported late: BentoML sets PROMETHEUS_MULTIPROC_DIR first

    counter = prometheus_client.Counter(
        METRIC_NAME,
        "Products excluded from a recommendation by the policy, by reason",
        labelnames=["reason"],
    )
    for reason in EXCLUSION_REASONS:
        counter.labels(reason=reason)  # every reason shows in /metrics from the start, at 0
    return lambda reason, n: counter.labels(reason=reason).inc(n)


class ExclusionAudit:
    """Appends exclusions to `path` (one JSON object per line) and counts them by reason."""

    def __init__(self, path: Path | None, *, count: CountFn | None = None) -> None:
        self.path = None if path is None else Path(path)
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._count = count
        self._lock = threading.Lock()
        self.totals: Counter[str] = Counter()

    def record(self, excluded: Exclusions, *, model_version: str, at: datetime) -> dict[str, int]:
        """Log and count an answer's exclusions; return counts by reason."""
        if not len(excluded):
            return {}
        counts = Counter(excluded.reasons)
        lines = audit_lines(excluded, model_version=model_version, at=at)
        with self._lock:
            if self.path is not None:
                with self.path.open("a", encoding="utf-8") as handle:
                    handle.write(lines)
            for reason, n in counts.items():
                self.totals[reason] += n
                if self._count is not None:
                    self._count(reason, n)
        return dict(counts)


def audit_lines(excluded: Exclusions, *, model_version: str, at: datetime) -> str:
    """The JSON lines of exclusions: time, customer, product, rule and model version."""
    head = (
        '{"time": ' + json.dumps(at.isoformat())
        + ', "customer_id": ' + json.dumps(str(excluded.customer_id))
    )  # fmt: skip
    tail = ', "model_version": ' + json.dumps(model_version) + "}\n"
    quoted = _quoter()
    rows = zip(excluded.product_ids, excluded.reasons, strict=True)
    return "".join(
        head + ', "product_id": ' + quoted(product) + ', "rule": ' + quoted(reason) + tail
        for product, reason in rows
    )


def _quoter() -> Callable[[object], str]:
    """json.dumps(str(value)), computed once per distinct value of a batch of lines."""
    seen: dict[object, str] = {}

    def quoted(value: object) -> str:
        text = seen.get(value)
        if text is None:
            text = seen[value] = json.dumps(str(value))
        return text

    return quoted


def read_audit(path: Path) -> pd.DataFrame:
    """The audit log as a frame (for tests and investigations)."""
    path = Path(path)
    if not path.exists():
        return pd.DataFrame(columns=["time", CUSTOMER_ID, PRODUCT_ID, "rule", "model_version"])
    return pd.read_json(path, lines=True, dtype={CUSTOMER_ID: str, PRODUCT_ID: str})
