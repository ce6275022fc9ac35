"""Audiences: run a query over the portrait (plus segments and scores), drop opted-out customers, export.

`run_audience` is the one entry point shared by the CLI, the pipeline and the HTTP service.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from experiments.evaluate import QueryEvaluator
from experiments.query import parse_query
from experiments.ready_made import resolve_query
from features.contract import CUSTOMER_ID
from features.policy import exportable
from portrait.errors import PortraitError

# Channel contact fields a firm's customers extract may carry (extra columns are kept by validation).
CONTACT_COLUMNS = (
    "phone", "mobile", "email", "wechat_id", "push_token", "device_id", "app_user_id", "preferred_channel",
)  # fmt: skip
RUN_FILES = ("segments.parquet", "churn_scores.parquet", "uplift_scores.parquet",
             "propensity.parquet")  # fmt: skip
LONG_EXTRAS = ("propensity",)  # one row per (customer, product): read by `propensity(P)` terms


@dataclass(frozen=True)
class AudienceResult:
    """Who matched: exportable count, opted-out customers left out, and the export frame."""

    query: str
    as_of: pd.Timestamp
    eligible: int
    matched: int
    count: int
    opted_out_excluded: int
    frame: pd.DataFrame  # customer_id, contact/channel fields, matched_because

    def summary(self) -> dict[str, object]:
        """The counts as a plain dict (for the CLI, the service and metrics)."""
        return {
            "query": self.query,
            "as_of": str(self.as_of.date()),
            "eligible": self.eligible,
            "matched": self.matched,
            "count": self.count,
            "opted_out_excluded": self.opted_out_excluded,
            "exported": len(self.frame),
        }


def audience_fields(
    portrait: pd.DataFrame, extras: Mapping[str, pd.DataFrame] | None = None
) -> pd.DataFrame:
    """Portrait indexed by customer_id, with the columns of each extra frame (segments, scores) joined on."""
    fields = portrait.set_index(CUSTOMER_ID, drop=False).rename_axis(None)
    for name, extra in (extras or {}).items():
        if name in LONG_EXTRAS:
            continue
        if CUSTOMER_ID not in extra.columns:
            raise PortraitError(
                f"{name} has no {CUSTOMER_ID} column; it cannot be joined to the portrait"
            )
        new = [c for c in extra.columns if c not in fields.columns]
        part = extra.drop_duplicates(CUSTOMER_ID).set_index(CUSTOMER_ID)[new]
        fields = fields.join(part, how="left")
    return fields.sort_index()


def run_audience(
    query: str,
    *,
    tables: dict[str, pd.DataFrame],
    portrait: pd.DataFrame,
    extras: Mapping[str, pd.DataFrame] | None = None,
    as_of: pd.Timestamp | str,
    limit: int | None = None,
    explain: bool = True,
) -> AudienceResult:
    """Evaluate `query` (or a ready-made query name) at `as_of`; opted-out customers are counted, never exported."""
    if limit is not None and limit < 0:
        raise PortraitError(f"limit must be zero or more, got {limit}")
    text = resolve_query(query)
    as_of = pd.Timestamp(as_of)
    fields = audience_fields(portrait, extras)
    evaluator = QueryEvaluator(parse_query(text), fields=fields, tables=tables, as_of=as_of,
                               propensity=(extras or {}).get("propensity"))  # fmt: skip
    matched = evaluator.mask()
    opted_out = ~exportable(fields)
    keep = matched & ~opted_out
    count = int(keep.sum())
    if limit is not None:
        keep &= keep.cumsum() <= limit  # fields are sorted by customer_id, so this is deterministic
    frame = contact_frame(fields.loc[keep], tables["customers"])
    if explain:
        frame["matched_because"] = evaluator.explain(keep).to_numpy()
    return AudienceResult(
        query=text,
        as_of=as_of,
        eligible=len(fields),
        matched=int(matched.sum()),
        count=count,
        opted_out_excluded=int((matched & opted_out).sum()),
        frame=frame.reset_index(drop=True),
    )


def contact_frame(selected: pd.DataFrame, customers: pd.DataFrame) -> pd.DataFrame:
    """customer_id, the acquisition channel and any contact columns the customers table carries."""
    contacts = [c for c in CONTACT_COLUMNS if c in customers.columns]
    frame = (
        selected[[CUSTOMER_ID, "channel"]].copy()
        if "channel" in selected
        else selected[[CUSTOMER_ID]].copy()
    )
    if contacts:
        extra = customers.drop_duplicates(CUSTOMER_ID).set_index(CUSTOMER_ID)[contacts]
        frame = frame.join(extra, on=CUSTOMER_ID)
    return frame


def write_audience(result: AudienceResult, path: Path) -> Path:
    """Write the export to .csv or .parquet (by suffix); the parent directory is created."""
    path = Path(path)
    if path.suffix not in (".csv", ".parquet"):
        raise PortraitError(f"--out {path} must end in .csv or .parquet")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".csv":
        result.frame.to_csv(path, index=False)
    else:
        result.frame.to_parquet(path, index=False)
    return path


def load_run_extras(run_dir: Path | None) -> dict[str, pd.DataFrame]:
    """segments, churn scores and uplift scores written by `portrait run` in RUN_DIR (those present)."""
    if run_dir is None:
        return {}
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise PortraitError(
            f"run directory {run_dir} does not exist; create one with `portrait run ... --out {run_dir}`"
        )
    found = {
        name.removesuffix(".parquet"): run_dir / name
        for name in RUN_FILES
        if (run_dir / name).exists()
    }
    if not found:
        raise PortraitError(f"run directory {run_dir} holds none of {', '.join(RUN_FILES)}")
    return {name: pd.read_parquet(path) for name, path in found.items()}
