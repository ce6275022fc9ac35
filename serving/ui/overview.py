"""What the run overview page shows: model metrics against baselines, segments, top rules, campaigns.

Read from the run directory the service serves (quality.json, segment_profiles.parquet,
rules.parquet), once per run directory and quality.json version.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

LOWER_IS_BETTER = {"brier"}
SKIPPED_METRICS = {"n", "positive_rate"}
MODEL = "model"
TOP_RULES = 10


def metric_tables(models: dict[str, float]) -> list[dict[str, Any]]:
    """Per model kind: metric columns, one row per scorer (the model first, then baselines), the winners.

    Keys look like "churn.model.pr_auc" or "conversion.rules.map@5"; "truth.*" rows (the demo's
    planted probabilities) are left to `truth_tables`.
    """
    tables = []
    for kind in dict.fromkeys(k.split(".")[0] for k in models if k.count(".") >= 2):
        if kind == "truth":
            continue
        tables.append(_table(kind, {k.removeprefix(f"{kind}."): v for k, v in models.items()
                                    if k.startswith(f"{kind}.")}))  # fmt: skip
    return tables


def truth_tables(models: dict[str, float]) -> list[dict[str, Any]]:
    """The same tables scored on the demo's realised outcomes, with the planted truth as a ceiling."""
    inner = {k.removeprefix("truth."): v for k, v in models.items() if k.startswith("truth.")}
    return metric_tables(inner)


def _table(kind: str, values: dict[str, float]) -> dict[str, Any]:
    scored = {k: v for k, v in values.items() if k.count(".") == 1}
    who = list(dict.fromkeys(k.split(".")[0] for k in scored))
    who.sort(key=lambda w: (w != MODEL, w == "truth"))
    metrics = [
        m for m in dict.fromkeys(k.split(".")[1] for k in scored) if m not in SKIPPED_METRICS
    ]
    rows = [{"who": w, "values": [scored.get(f"{w}.{m}") for m in metrics]} for w in who]
    baselines = [r for r in rows if r["who"] not in (MODEL, "truth")]
    beats = []
    for j, metric in enumerate(metrics):
        model = next((r["values"][j] for r in rows if r["who"] == MODEL), None)
        others = [r["values"][j] for r in baselines if r["values"][j] is not None]
        if model is None or not others:
            beats.append(None)
        elif metric in LOWER_IS_BETTER:
            beats.append(model < min(others))
        else:
            beats.append(model > max(others))
    promoted = values.get("promoted")
    return {
        "kind": kind,
        "metrics": metrics,
        "rows": rows,
        "beats": beats,
        "promoted": None if promoted is None else bool(promoted),
        "n": next((v for k, v in scored.items() if k == f"{MODEL}.n"), None),
    }


def campaign_results(experiments: dict[str, float]) -> list[dict[str, Any]]:
    """Each campaign's treatment and control conversion, lift with its 95% interval and p-value."""
    ids = [k.removesuffix(".rate_treatment") for k in experiments if k.endswith(".rate_treatment")]
    return [
        {
            "campaign": cid,
            "treatment": experiments.get(f"{cid}.rate_treatment"),
            "control": experiments.get(f"{cid}.rate_control"),
            "lift": experiments.get(f"{cid}.abs_lift"),
            "low": experiments.get(f"{cid}.abs_lift_low"),
            "high": experiments.get(f"{cid}.abs_lift_high"),
            "p_value": experiments.get(f"{cid}.p_value"),
        }
        for cid in ids
    ]


def other_experiments(experiments: dict[str, float]) -> list[tuple[str, float]]:
    """A/B, funnel, uplift and audience-size figures that are not per-campaign results."""
    prefixes = ("ab.", "funnel.", "uplift.", "audience.")
    return [(k, v) for k, v in experiments.items() if k.startswith(prefixes)]


def top_rules(rules: pd.DataFrame | None, *, limit: int = TOP_RULES) -> list[dict[str, Any]]:
    """The strongest overall rules (not per segment), with their plain-language reason.

    Ranked like the run report: by lift_lower (training.rules.ranking) when the rules carry it,
    else by lift.
    """
    if rules is None or rules.empty:
        return []
    overall = rules.loc[rules["segment_id"].isna()] if "segment_id" in rules else rules
    key = ["lift_lower", "lift"] if "lift_lower" in overall else ["lift", "confidence"]
    best = overall.sort_values(key, ascending=False, kind="stable").head(limit)
    return [
        {
            "kind": str(r.kind),
            "reason": str(r.reason),
            "support": float(r.support),
            "confidence": float(r.confidence),
            "lift": float(r.lift),
        }
        for r in best.itertuples(index=False)
    ]


def segment_rows(profiles: pd.DataFrame | None) -> list[dict[str, Any]]:
    """One row per segment: name, size, share, top products, recent churn and conversion rates."""
    if profiles is None:
        return []
    frame = profiles.sort_values("customers", ascending=False, kind="stable")
    return [
        {
            "id": int(r.segment_id),
            "name": str(r.segment_name),
            "customers": int(r.customers),
            "share": float(r.share),
            "top_products": "" if pd.isna(r.top_products) else str(r.top_products),
            "churn": float(r.recent_churn_rate),
            "conversion": float(r.recent_conversion_rate),
        }
        for r in frame.itertuples(index=False)
    ]


def counts(segments: dict[str, float], prefix: str) -> list[tuple[str, int]]:
    """Tier or stage counts from the segments metrics ("tier_top" -> ("top", 100))."""
    return [(k.removeprefix(prefix).replace("_", " "), int(v)) for k, v in segments.items()
            if k.startswith(prefix)]  # fmt: skip


def _read(path: Path) -> pd.DataFrame | None:
    return pd.read_parquet(path) if path.is_file() else None


def run_summary(run_dir: Path) -> dict[str, Any]:
    """Everything the overview page shows for one run directory (slow part: reading the files)."""
    meta = json.loads((run_dir / "quality.json").read_text(encoding="utf-8"))
    metrics = meta.get("metrics", {})
    segments = metrics.get("segments", {})
    experiments = metrics.get("experiments", {})
    models = metrics.get("models", {})
    profiles = _read(run_dir / "segment_profiles.parquet")
    return {
        "as_of": meta.get("as_of", "?"),
        "customers": metrics.get("features", {}).get("customers"),
        "models": metric_tables(models),
        "truth": truth_tables(models),
        "segments": segment_rows(profiles),
        "profiles": profiles,
        "segment_quality": {
            k: segments[k] for k in ("k", "silhouette", "reseed_ari") if k in segments
        },
        "tiers": counts(segments, "tier_"),
        "stages": counts(segments, "stage_"),
        "rules": top_rules(_read(run_dir / "rules.parquet")),
        "rule_counts": metrics.get("rules", {}),
        "campaigns": campaign_results(experiments),
        "experiments": other_experiments(experiments),
        "has_report": (run_dir / "report.html").is_file(),
    }


class SummaryCache:
    """The summary of the run being served, re-read only when its quality.json changes."""

    def __init__(self) -> None:
        self._key: tuple[str, int] | None = None
        self._value: dict[str, Any] | None = None

    def get(self, run_dir: Path) -> dict[str, Any]:
        key = (str(run_dir), (run_dir / "quality.json").stat().st_mtime_ns)
        if key != self._key or self._value is None:
            self._value, self._key = run_summary(run_dir), key
        return self._value
