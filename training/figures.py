"""Matplotlib figures for the report and MLflow artifacts: one size and style, PNG bytes out."""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def figure(width: float = 5.0, height: float = 3.2) -> tuple[plt.Figure, plt.Axes]:
    """A new figure and axes sized for the report grid."""
    fig, ax = plt.subplots(figsize=(width, height))
    ax.spines[["top", "right"]].set_visible(False)
    return fig, ax


def png_base64(fig: plt.Figure) -> str:
    """The figure as base64 PNG text (for an inline <img>); the figure is closed."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()
