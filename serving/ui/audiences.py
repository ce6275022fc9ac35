"""The audience builder's work: run a query on the served state, a sample for the page, full exports.

Queries arrive in POST bodies only (they can name customers' attributes; URLs end up in logs).
"""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from experiments.audience import AudienceResult, run_audience
from experiments.ready_made import READY_MADE
from portrait.errors import PortraitError

if TYPE_CHECKING:
    from serving.state import ServingState

SAMPLE_SIZE = 20
MAX_QUERY = 4000
FORMATS = {"csv": "text/csv; charset=utf-8", "parquet": "application/vnd.apache.parquet"}
READY_MADE_HELP = {
    "dormant_to_reactivate": "Dormant customers who still hold assets",
    "high_intent_non_investors": "Viewed the credit report or products, never invested",
    "churn_risk_large": "Large customers the churn model says are leaving",
    "persuadable": "Customers the uplift model says a push would convince",
}


def ready_made() -> list[dict[str, str]]:
    """The ready-made queries with a one-line description each."""
    return [
        {"name": name, "query": text, "help": READY_MADE_HELP.get(name, name.replace("_", " "))}
        for name, text in READY_MADE.items()
    ]


def clean_query(text: str | None) -> str:
    """The query as typed, trimmed; a PortraitError when it is empty or too long."""
    query = (text or "").strip()
    if not query:
        raise PortraitError(
            "type a query first, e.g. total_assets > 100000 and did login in last 30 days"
        )
    if len(query) > MAX_QUERY:
        raise PortraitError(f"the query is {len(query)} characters long; the limit is {MAX_QUERY}")
    return query


def run_query(state: ServingState, query: str, *, limit: int | None) -> AudienceResult:
    """Evaluate an audience query on the served portrait, segments and scores at the run's cut-off."""
    extras = state.audience_extras()
    uplift = state.run_dir / "uplift_scores.parquet"
    if uplift.is_file():  # the uplift model's scores, so "persuadable" works as in the CLI
        extras["uplift_scores"] = _uplift(uplift)
    return run_audience(
        clean_query(query),
        tables=state.tables,
        portrait=state.portrait.reset_index(drop=True),
        extras=extras,
        as_of=state.as_of,
        limit=limit,
    )


@lru_cache(maxsize=2)
def _read_uplift(path: str, mtime_ns: int) -> pd.DataFrame:
    return pd.read_parquet(path)


def _uplift(path: Path) -> pd.DataFrame:
    return _read_uplift(str(path), path.stat().st_mtime_ns)


def summary(result: AudienceResult) -> dict[str, Any]:
    """Counts and the sample rows (customer id, channel, why they matched) for the page and the JSON route."""
    sample = result.frame.head(SAMPLE_SIZE)
    columns = [c for c in ("customer_id", "channel", "matched_because") if c in sample.columns]
    rows = sample[columns].astype(object).where(sample[columns].notna(), "").astype(str)
    return {**result.summary(), "columns": columns, "sample": rows.to_dict(orient="records")}


def export(result: AudienceResult, fmt: str) -> tuple[bytes, str, str]:
    """The full list as CSV or Parquet bytes, its media type and a file name."""
    if fmt not in FORMATS:
        raise PortraitError(f"download format must be csv or parquet, got {fmt!r}")
    buffer = io.BytesIO()
    if fmt == "csv":
        buffer.write(result.frame.to_csv(index=False).encode("utf-8"))
    else:
        result.frame.to_parquet(buffer, index=False)
    return buffer.getvalue(), FORMATS[fmt], f"audience-{result.as_of.date()}-{result.count}.{fmt}"
