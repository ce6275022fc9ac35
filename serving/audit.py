"""Every product the policy excluded: a JSON-lines audit log and a Prometheus counter by reason.

An audit line says when, for which customer, which products by policy rule, and which model
version; the log is bounded (repeats of a recent answer are counted, not rewritten; rotation). The counter is created lazily by the service, after BentoML has set up Prometheus'
multiprocess directory, so `/metrics` shows it.
"""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd

from features.contract import CUSTOMER_ID, PRODUCT_ID
from features.policy import EXCLUSION_REASONS
from serving.logs import JsonLinesLog

METRIC_NAME = "portrait_policy_exclusions"
CountFn = Callable[[str, int], None]


@dataclass(frozen=True)
class Exclusions:
    """The candidates the policy excluded from one answer: a product and a rule per exclusion."""

    customer_id: str
    product_ids: list[str]
    reasons: list[str]  # names from features.policy.EXCLUSION_REASONS

    def __len__(self) -> int:
        return len(self.reasons)

    def by_reason(self) -> dict[str, list[str]]:
        """The excluded products grouped by rule (rules sorted, products in answer order)."""
        grouped: dict[str, list[str]] = {}
        for product, reason in zip(self.product_ids, self.reasons, strict=True):
            grouped.setdefault(reason, []).append(product)  # one answer's few exclusions
        return dict(sorted(grouped.items()))

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
    # every reason shows in /metrics from the start, at 0; its series is looked up once
    series = {reason: counter.labels(reason=reason) for reason in EXCLUSION_REASONS}

    def count(reason: str, n: int) -> None:
        (series.get(reason) or counter.labels(reason=reason)).inc(n)

    return count


class ExclusionAudit:
    """One JSON line per answer that excluded products (products grouped by rule), counted by
    reason. Bounded: an answer identical to one of the last REPEATS_KEPT logged (same customer,
    model version and exclusions) is counted but not written again, and the file rotates."""

    REPEATS_KEPT = 50_000

    def __init__(
        self, path: Path | None, *, count: CountFn | None = None,
        max_bytes: int = 10_000_000, backups: int = 5,
    ) -> None:  # fmt: skip
        self.path = None if path is None else Path(path)
        self.log = JsonLinesLog(self.path, log="exclusions", max_bytes=max_bytes, backups=backups)
        self._count = count
        self._lock = threading.Lock()
        self._recent: OrderedDict[tuple, None] = OrderedDict()
        self.totals: Counter[str] = Counter()

    def record(self, excluded: Exclusions, *, model_version: str, at: datetime) -> dict[str, int]:
        """Log (once per distinct answer) and count an answer's exclusions; counts by reason."""
        if not len(excluded):
            return {}
        counts = Counter(excluded.reasons)
        key = (str(excluded.customer_id), model_version, tuple(excluded.product_ids),
               tuple(excluded.reasons))  # fmt: skip
        with self._lock:
            fresh = key not in self._recent
            self._recent[key] = None
            self._recent.move_to_end(key)
            while len(self._recent) > self.REPEATS_KEPT:
                self._recent.popitem(last=False)
            for reason, n in counts.items():
                self.totals[reason] += n
                if self._count is not None:
                    self._count(reason, n)
        if fresh:  # grouped in plain Python: a DataFrame groupby cost ~1 ms an answer
            self.log.write({"time": at.isoformat(), CUSTOMER_ID: str(excluded.customer_id),
                            "model_version": model_version, "excluded": excluded.by_reason()})  # fmt: skip
        return dict(counts)


def read_audit(path: Path) -> pd.DataFrame:
    """The audit log (current file) as one row per excluded product (tests and investigations)."""
    path = Path(path)
    columns = ["time", CUSTOMER_ID, PRODUCT_ID, "rule", "model_version"]
    if not path.exists() or path.stat().st_size == 0:
        return pd.DataFrame(columns=columns)
    lines = pd.read_json(path, lines=True, dtype={CUSTOMER_ID: str})
    pairs = lines.assign(pairs=lines["excluded"].map(lambda d: list(d.items()))).explode("pairs")
    pairs["rule"] = pairs["pairs"].str[0]
    pairs[PRODUCT_ID] = pairs["pairs"].str[1]
    rows = pairs.explode(PRODUCT_ID).astype({PRODUCT_ID: str})
    return rows[columns].reset_index(drop=True)
