"""The service's own Prometheus metrics: requests by route template (never the raw path) and
log writes that failed. Created lazily, after BentoML has set up Prometheus' multiprocess
directory, and exposed by the access middleware at /metrics."""

from __future__ import annotations

import contextlib
from functools import lru_cache
from typing import Any

METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"})


@lru_cache(maxsize=1)
def _metrics() -> dict[str, Any]:
    import prometheus_client

    metrics = {
        "requests": prometheus_client.Counter(
            "portrait_http_requests", "HTTP requests by route template, method and status",
            labelnames=["route", "method", "status"],
        ),
        "duration": prometheus_client.Histogram(
            "portrait_http_request_duration_seconds", "HTTP request duration by route template",
            labelnames=["route"],
        ),
        "log_failures": prometheus_client.Counter(
            "portrait_log_write_failures", "Log lines that could not be written, by log",
            labelnames=["log"],
        ),
    }  # fmt: skip
    for log in ("access", "exclusions"):
        metrics["log_failures"].labels(log=log)  # shows from the first scrape, at 0
    return metrics


def count_request(route: str, method: str, status: int, seconds: float) -> None:
    """Count one answered request under its route template."""
    counter, histogram = _series(route, method if method in METHODS else "other", status)
    counter.inc()
    histogram.observe(seconds)


@lru_cache(maxsize=4096)
def _series(route: str, method: str, status: int) -> tuple[Any, Any]:
    """The labelled series of one route, method and status (`labels()` costs a lock and a dict
    build per call; routes are templates, so the combinations are few)."""
    metrics = _metrics()
    return (
        metrics["requests"].labels(route=route, method=method, status=str(status)),
        metrics["duration"].labels(route=route),
    )


def count_log_failure(log: str) -> None:
    """Count a log line that could not be written (the answer is given anyway)."""
    with contextlib.suppress(Exception):  # counting a failure must never fail the answer either
        _metrics()["log_failures"].labels(log=log).inc()


def exposition() -> tuple[bytes, str]:
    """Every process's metrics in Prometheus' text format, and its content type."""
    from bentoml._internal.configuration.containers import BentoMLContainer

    _metrics()  # the series show from the first scrape on
    client = BentoMLContainer.metrics_client.get()
    return client.generate_latest(), client.CONTENT_TYPE_LATEST
