"""The segments section of report.html: profile cards, sizes, heat map, projection, tiers, lifecycle, tags."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA

from features.contract import SEGMENT_ID
from portrait.report import Section
from training.figures import figure
from training.segments.build import runner_up
from training.segments.lifecycle import STAGES, transition_matrix
from training.segments.model import SegmentationModel
from training.segments.tiers import TIERS


def segments_section(
    portrait, segments, model, cards, versus, transitions, coverage, potential
) -> Section:  # noqa: ANN001
    """Report section: sizes, profile heat map, 2-D projection, tiers, lifecycle, tags."""
    section = Section("Segments, value tiers and lifecycle")
    section.text(
        f"{model.k_} behavioural segments chosen by silhouette x stability over k={model.k_min}..{model.k_max} "
        f"(silhouette {model.criterion_[model.k_]['silhouette']:.3f}; stability, the adjusted Rand between "
        f"refits on half samples with other seeds, {model.stability_ari_:.2f}); sign-up-only assignment agrees with the full one for "
        f"{model.cold_start_agreement_:.0%} of held-out customers (largest segment alone: {model.cold_start_baseline_:.0%})"
        + ("." if model.cold_start_informative_ else
           ": no better than chance, so the service's cold starts use the last horizon's purchases, not the segment.")
    )  # fmt: skip
    section.text(runner_up_sentence(model))
    section.table(cards, caption="Profile cards")
    section.figures(
        _sizes_plot(cards),
        _heatmap(versus, cards),
        _projection(portrait, segments, model),
        _k_plot(model),
    )
    section.figures(
        _bar(segments["value_tier"], TIERS, "Value tiers"),
        _bar(segments["lifecycle_stage"], STAGES, "Lifecycle stages"),
    )
    section.text(potential_sentence(potential))
    section.table(
        transition_matrix(transitions),
        caption="Lifecycle transitions (rows: from, columns: to), summed over cut-offs",
        index=True,
        floatfmt="{:,.0f}",
    )
    section.table(coverage, caption="Tags and their coverage")
    return section


def runner_up_sentence(model: SegmentationModel) -> str:
    """How close the second-best k came, and how to fix k when the choice is a near tie."""
    second = runner_up(model.criterion_, model.k_)
    if second is None:
        return f"k = {model.k_} was the only number of segments tried (segments.k_min = k_max)."
    k, ratio = second
    return (
        f"Runner-up: k = {k}, at {ratio:.2%} of the chosen k's score. Near 100% the data support "
        f"both, and the pick can change with the data's sample; to fix k = {k}, set "
        f"segments.k_min and segments.k_max to {k}."
    )


def _sizes_plot(cards: pd.DataFrame):  # noqa: ANN202
    fig, ax = figure(5.5, 3.2)
    ax.barh(cards["segment_name"], cards["customers"], color="#4c72b0")
    ax.invert_yaxis()
    ax.set_xlabel("customers")
    return fig, "Segment sizes"


def _heatmap(versus: pd.DataFrame, cards: pd.DataFrame):  # noqa: ANN202
    grid = versus.pivot(index=SEGMENT_ID, columns="feature", values="z").reindex(cards[SEGMENT_ID])
    fig, ax = figure(6.5, 0.5 + 0.45 * len(grid))
    image = ax.imshow(grid.to_numpy(dtype=float), cmap="RdBu_r", vmin=-2, vmax=2, aspect="auto")
    ax.set_xticks(range(grid.shape[1]), grid.columns, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(len(grid)), cards["segment_name"], fontsize=7)
    fig.colorbar(image, ax=ax, label="z vs population")
    return fig, "Profile heat map: feature means against the population (z-scores)"


def _projection(portrait: pd.DataFrame, segments: pd.DataFrame, model: SegmentationModel):  # noqa: ANN202
    take = np.random.default_rng(model.random_state).permutation(len(portrait))[:3000]
    coords = PCA(n_components=2, random_state=model.random_state).fit_transform(
        model.transform(portrait.iloc[take])
    )
    fig, ax = figure(5, 3.6)
    scatter = ax.scatter(
        coords[:, 0], coords[:, 1], c=segments[SEGMENT_ID].to_numpy()[take], cmap="tab10", s=4
    )
    ax.legend(*scatter.legend_elements(), fontsize=6, title="segment", loc="best")
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    return fig, "2-D projection (PCA of the scaled clustering features)"


def _k_plot(model: SegmentationModel):  # noqa: ANN202
    fig, ax = figure()
    ks = sorted(model.criterion_)
    for key in ("silhouette", "stability", "score"):
        ax.plot(ks, [model.criterion_[k].get(key, np.nan) for k in ks], marker="o", label=key)
    ax.axvline(model.k_, color="grey", linestyle="--")
    ax.set_xlabel("k")
    ax.legend()
    return fig, "k selection (silhouette x stability on a seeded sample)"


def _bar(values: pd.Series, order: tuple[str, ...], title: str):  # noqa: ANN202
    counts = values.value_counts().reindex(list(order), fill_value=0)
    fig, ax = figure(4.5, 3)
    ax.bar(counts.index, counts.to_numpy(), color="#55a868")
    ax.tick_params(axis="x", rotation=30)
    ax.set_ylabel("customers")
    return fig, f"{title} ({len(values):,} customers)"


def potential_sentence(potential: dict[str, float]) -> str:
    """The potential-large back-test in words (says so when nobody was flagged)."""
    flagged = int(potential.get("potential_flagged", 0) or 0)
    if flagged == 0 or pd.isna(potential.get("potential_precision")):
        return (
            "Potential-large back-test: no customer was flagged at as_of - window, so the rule "
            "cannot be measured on these data."
        )
    lift = potential.get("potential_lift")
    lift_text = "" if lift is None or pd.isna(lift) else f"; lift {lift:.1f}"
    return (
        f"Potential-large back-test: of {flagged} customers flagged at as_of - window, "
        f"{potential['potential_precision']:.1%} reached the top tier (small customers: "
        f"{potential['small_base_rate']:.2%}{lift_text})."
    )
