"""Report figures for experiments: funnel chart, campaign lift with intervals, Qini curve."""

from __future__ import annotations

import numpy as np
import pandas as pd

from experiments.funnel import STEP_LABELS
from training.figures import figure


def funnel_chart(funnel: pd.DataFrame, *, by: str):
    """Share of registered customers reaching each step, one bar group per step and one colour per `by` value."""
    fig, ax = figure(6.0, 3.4)
    wide = funnel.pivot(index="step", columns=by, values="from_register").reindex(list(STEP_LABELS))
    width = 0.8 / max(len(wide.columns), 1)
    x = np.arange(len(wide))
    for i, col in enumerate(wide.columns):
        bars = ax.bar(x + i * width, wide[col], width, label=str(col))
        for rect, value in zip(bars, wide[col], strict=True):
            ax.text(
                rect.get_x() + rect.get_width() / 2,
                value,
                f"{value:.0%}",
                ha="center",
                va="bottom",
                fontsize=6,
            )
    ax.set_xticks(x + width * (len(wide.columns) - 1) / 2, wide.index, fontsize=7)
    ax.set_ylabel("share of registered customers")
    ax.legend(title=by, fontsize=7)
    return fig, f"Sign-up funnel by {by}: register → real-name auth → bind card → first investment"


def lift_chart(rows: pd.DataFrame, *, label: str, title: str):
    """Absolute lift per row (campaign or segment) with its 95% confidence interval."""
    fig, ax = figure(6.0, 0.5 + 0.35 * max(len(rows), 2))
    y = np.arange(len(rows))
    low = rows["abs_lift"] - rows["abs_lift_low"]
    high = rows["abs_lift_high"] - rows["abs_lift"]
    ax.errorbar(
        rows["abs_lift"] * 100, y, xerr=[low * 100, high * 100], fmt="o", color="#0969da", capsize=3
    )
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(y, rows[label].astype("str"), fontsize=7)
    ax.set_xlabel("treatment minus control conversion (percentage points, 95% CI)")
    return fig, title


def qini_chart(curve: pd.DataFrame, *, metrics: dict[str, float]):
    """Qini curve of the uplift model on held-out customers against random targeting."""
    fig, ax = figure()
    ax.plot(curve["fraction"], curve["qini"], color="#8250df", label="uplift model")
    ax.plot(
        curve["fraction"], curve["qini_random"], color="grey", ls="--", label="random targeting"
    )
    ax.set_xlabel("share of customers targeted (highest predicted uplift first)")
    ax.set_ylabel("incremental conversions")
    ax.legend(fontsize=7)
    caption = f"Qini curve on held-out customers: Qini coefficient {metrics['qini_coefficient']:.4f} (random 0)"
    return fig, caption
