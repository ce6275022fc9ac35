"""What each stage of `portrait run` did: ran, reduced or skipped (or failed), with a one-line reason.

Every stage returns a `StageStatus` (None means it ran in full); a stage made of parts (churn
and conversion in `models`) records each part under `stage.part` and returns their combination.
The run loop writes them to quality.json (`stages.<name>.status` / `.reason`), MLflow tags and a
report section.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from portrait.report import Section

RAN, REDUCED, SKIPPED, FAILED = "ran", "reduced", "skipped", "failed"
STATUSES = (RAN, REDUCED, SKIPPED, FAILED)


@dataclass(frozen=True)
class StageStatus:
    """One stage's outcome: `status` in STATUSES and why, in one line (empty when it simply ran)."""

    status: str = RAN
    reason: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(
                f"stage status must be one of {', '.join(STATUSES)}, got {self.status!r}"
            )

    @property
    def complete(self) -> bool:
        """True when the stage ran in full."""
        return self.status == RAN

    def as_dict(self) -> dict[str, str]:
        """{"status", "reason"} for quality.json."""
        return {"status": self.status, "reason": self.reason}


def ran(reason: str = "") -> StageStatus:
    """The stage ran in full."""
    return StageStatus(RAN, reason)


def reduced(reason: str) -> StageStatus:
    """The stage ran on part of what it would do, for `reason`."""
    return StageStatus(REDUCED, reason)


def skipped(reason: str) -> StageStatus:
    """The stage could not run on these data, for `reason`."""
    return StageStatus(SKIPPED, reason)


def combined(parts: dict[str, StageStatus]) -> StageStatus:
    """A stage's status from its parts: ran when all ran, skipped when all skipped, else reduced."""
    if all(p.complete for p in parts.values()):
        return ran()
    if all(p.status == SKIPPED for p in parts.values()):
        return skipped("; ".join(f"{n}: {p.reason}" for n, p in parts.items()))
    return reduced(
        "; ".join(f"{n} {p.status}: {p.reason}" for n, p in parts.items() if not p.complete)
    )


def stages_section(statuses: dict[str, StageStatus]) -> Section:
    """Report section: every stage and part with its status and reason."""
    rows = pd.DataFrame(
        [{"stage": n, "status": s.status, "reason": s.reason or "–"} for n, s in statuses.items()]
    )
    section = Section("Stages: what ran").text(
        "Each stage ran, ran reduced (part of it could not be built from these data) or was "
        "skipped, with the reason; the same list is in quality.json under `stages`."
    )
    if rows.empty:
        return section
    section.table(rows)
    if rows["status"].eq(FAILED).any():
        section.text(
            "A failed stage is a bug in portrait, not in the data: please report it.", css="bad"
        )
    return section
