"""The customer statistics section of report.html: what the firm's customers look like as of the cut-off."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.contract import FUNNEL_STEPS, TS
from features.timeline import before
from portrait.report import Section
from training.figures import figure


def quality_section(summary: dict[str, dict]) -> Section:
    """Rows read, kept and quarantined per table, with the main reasons."""
    rows = [
        {
            "table": name,
            "read": q["read"],
            "kept": q["kept"],
            "quarantined": q["quarantined"],
            "main reasons": "; ".join(f"{r} ({n})" for r, n in list(q["reasons"].items())[:3])
            or "–",
        }
        for name, q in summary.items()
    ]
    section = Section("Data quality")
    section.text(
        "Every row read is either kept or quarantined (quarantine/TABLE.parquet, with a reason)."
    )
    return section.table(pd.DataFrame(rows), floatfmt="{:,.0f}")


def statistics_section(
    tables: dict[str, pd.DataFrame], portrait: pd.DataFrame, *, as_of: pd.Timestamp
) -> Section:
    """Transactions over time, assets, investment cycle, risk appetite, returns, contacts and the funnel."""
    section = Section("Customer statistics")
    active = int(portrait["is_active"].sum())
    departed = int(portrait["is_departed"].sum()) if "is_departed" in portrait else 0
    section.text(
        f"{len(portrait):,} customers signed up before {as_of.date()}, {active:,} active (engaged in "
        f"the last 90 days), {departed:,} departed (assets withdrawn, silent since); "
        f"{int(portrait['marketing_opt_out'].sum()):,} opted out of personalised marketing; "
        f"{int((portrait['risk_assessed'] == 0).sum()):,} without a risk assessment."
    )
    section.figures(
        _transactions_by_month(before(tables["transactions"], as_of)),
        _assets_distribution(portrait),
        _investment_cycle(portrait),
        _risk_appetite(portrait),
        _returns(portrait),
        _age_and_channel(portrait),
        _funnel(portrait),
    )
    if "interactions" in tables and len(before(tables["interactions"], as_of)):
        section.figures(*_contacts(before(tables["interactions"], as_of)))
    return section


def shown(value: float, spec: str, *, missing: str = "unknown") -> str:
    """`value` formatted with `spec`, or `missing` when it is NaN or None (never "nan" in the report)."""
    return missing if value is None or pd.isna(value) else format(value, spec)


def _transactions_by_month(txns: pd.DataFrame):
    fig, ax = figure(6.5, 3.2)
    monthly = txns.groupby([txns[TS].dt.to_period("M"), "type"]).size().unstack(fill_value=0)
    monthly.index = monthly.index.astype(str)
    if monthly.empty:
        return fig, "Transactions per month: no transactions before as_of"
    monthly.plot(ax=ax, kind="bar", stacked=True, width=0.85)
    ax.set_xlabel("month")
    ax.set_ylabel("transactions")
    ax.tick_params(axis="x", labelsize=6)
    ax.legend(fontsize=7)
    return fig, "Transactions per month by type (by year and month)"


def _assets_distribution(portrait: pd.DataFrame):
    fig, ax = figure()
    assets = portrait.loc[portrait["total_assets"] > 0, "total_assets"]
    ax.hist(np.log10(assets), bins=50, color="#0969da")
    ax.set_xlabel("total assets (log10)")
    ax.set_ylabel("customers")
    share = assets.sort_values(ascending=False)
    top = share.head(max(1, len(share) // 100)).sum() / max(share.sum(), 1)
    return fig, f"Assets distribution: the top 1% of customers hold {top:.0%} of assets"


def _investment_cycle(portrait: pd.DataFrame):
    fig, ax = figure()
    cycle = portrait["investment_cycle_days"].dropna()
    ax.hist(cycle.clip(upper=365), bins=40, color="#8250df")
    ax.set_xlabel("mean days between purchases (capped at 365)")
    ax.set_ylabel("customers")
    return fig, f"Investment cycle: median {cycle.median():.0f} days between purchases" if len(
        cycle
    ) else "Investment cycle"


def _risk_appetite(portrait: pd.DataFrame):
    fig, ax = figure()
    stated = portrait["risk_level"].fillna(0).astype(int).value_counts().sort_index()
    held = portrait["max_risk_held"].dropna().astype(int).value_counts().sort_index()
    frame = pd.DataFrame(
        {"stated risk level (0 = not assessed)": stated, "highest product risk held": held}
    ).fillna(0)
    frame.plot(ax=ax, kind="bar")
    ax.set_xlabel("level")
    ax.set_ylabel("customers")
    ax.legend(fontsize=7)
    return fig, "Risk appetite: questionnaire level against the riskiest product held"


def _returns(portrait: pd.DataFrame):
    fig, ax = figure()
    returns = portrait["return_365d"].dropna().clip(-0.5, 0.5)
    ax.hist(returns, bins=50, color="#1a7f37")
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel("12-month return, modified Dietz (clipped to ±50%)")
    ax.set_ylabel("customers")
    if returns.empty:
        return fig, "Returns net of deposits and withdrawals: no customer has a 12-month return"
    share = (returns > 0).mean()
    return fig, f"Returns net of deposits and withdrawals: {share:.0%} of customers made money"


def _age_and_channel(portrait: pd.DataFrame):
    fig, ax = figure()
    channels = portrait["channel"].fillna("unknown").value_counts()
    if len(channels):
        channels.plot(ax=ax, kind="barh", color="#bf8700")
    ax.set_xlabel("customers")
    age = shown(portrait["age"].median(), ".0f")
    return fig, f"Acquisition channel (median age {age})"


def _funnel(portrait: pd.DataFrame):
    fig, ax = figure()
    stage = portrait["funnel_stage"]
    reached = [int((stage >= i + 1).sum()) for i in range(len(FUNNEL_STEPS))]
    ax.bar(FUNNEL_STEPS, reached, color="#cf222e")
    for i, n in enumerate(reached):
        ax.text(i, n, f"{n / max(reached[0], 1):.0%}", ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("customers reaching the step")
    ax.tick_params(axis="x", labelsize=7)
    return fig, "Sign-up funnel: register → real-name auth → bind card → first investment"


def _contacts(contacts: pd.DataFrame):
    fig, ax = figure()
    monthly = (
        contacts.groupby([contacts[TS].dt.to_period("M"), "kind"]).size().unstack(fill_value=0)
    )
    monthly.index = monthly.index.astype(str)
    if len(monthly):
        monthly.plot(ax=ax)
    ax.tick_params(axis="x", labelsize=6)
    ax.set_ylabel("contacts")
    ax.legend(fontsize=7)
    fig2, ax2 = figure()
    scores = contacts.loc[contacts["kind"] == "survey", "score"].dropna()
    ax2.hist(scores, bins=np.arange(0.5, 11.5, 1.0), color="#0969da")
    ax2.set_xlabel("survey score")
    ax2.set_ylabel("answers")
    mean = f"mean {scores.mean():.1f}" if len(scores) else "no answers"
    return (fig, "Contacts per month by kind"), (fig2, f"Survey scores ({mean})")
