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
from datetime import datetime
from pathlib import Path

import pandas as pd

from features.contract import CUSTOMER_ID, PRODUCT_ID
from serving.policy import EXCLUSION_REASONS

METRIC_NAME = "portrait_policy_exclusions"
CountFn = Callable[[str, int], None]


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

    def record(self, excluded: pd.DataFrame, *, model_version: str, at: datetime) -> dict[str, int]:
        """Log and count the excluded (customer_id, product_id, reason) rows; return counts by reason."""
        if excluded.empty:
            return {}
        counts = excluded["reason"].value_counts()
        lines = audit_lines(excluded, model_version=model_version, at=at)
        with self._lock:
            if self.path is not None:
                with self.path.open("a", encoding="utf-8") as handle:
                    handle.write(lines)
            for reason, n in counts.items():
                self.totals[str(reason)] += int(n)
                if self._count is not None:
                    self._count(str(reason), int(n))
        return {str(k): int(v) for k, v in counts.items()}


def audit_lines(excluded: pd.DataFrame, *, model_version: str, at: datetime) -> str:
    """The JSON lines for excluded rows: time, customer, product, rule and model version."""
    stamp = at.isoformat()
    rows = zip(excluded[CUSTOMER_ID], excluded[PRODUCT_ID], excluded["reason"], strict=True)
    return "".join(
        json.dumps(
            {
                "time": stamp,
                "customer_id": str(customer),
                "product_id": str(product),
                "rule": str(reason),
                "model_version": model_version,
            }
        )
        + "\n"
        for customer, product, reason in rows
    )


def read_audit(path: Path) -> pd.DataFrame:
    """The audit log as a frame (for tests and investigations)."""
    path = Path(path)
    if not path.exists():
        return pd.DataFrame(columns=["time", CUSTOMER_ID, PRODUCT_ID, "rule", "model_version"])
    return pd.read_json(path, lines=True, dtype={CUSTOMER_ID: str, PRODUCT_ID: str})
