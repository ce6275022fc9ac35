"""Readable segment names generated from what distinguishes each cluster from the population.

A name is up to two adjectives and a noun, e.g. "young high-frequency traders". The input is
the mean z-score of every clustering feature per segment; the same z-scores give the same
names, so names are deterministic for a given seed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

MIN_Z = 0.3  # a feature this many standard deviations from the population is distinctive
# feature -> (phrase when the segment is above the population, phrase when below)
PHRASES: dict[str, tuple[str | None, str | None]] = {
    "age": ("older", "young"),
    "income_band": ("high-income", "lower-income"),
    "city_tier": ("smaller-city", "big-city"),
    "risk_level": ("risk-seeking", "cautious"),
    "total_assets": ("affluent", "low-balance"),
    "invested_total": ("heavily invested", "lightly invested"),
    "buy_amount_365d": ("big-ticket", "small-ticket"),
    "n_buy_365d": ("high-frequency", "rarely buying"),
    "n_sell_365d": ("active-selling", None),
    "days_since_last_buy": ("lapsed", "recently buying"),
    "events_90d": ("highly engaged", "quiet"),
    "logins_30d": ("daily-login", "rarely logging in"),
    "active_days_30d": ("daily-active", "rarely active"),
    "product_views_90d": ("browsing", None),
    "n_products_held": ("multi-product", "single-product"),
    "max_risk_held": ("high-risk-holding", "low-risk-holding"),
    "p2p_events_90d": ("P2P-focused", None),
    "forex_events_90d": ("forex-focused", None),
    "stock_events_90d": ("stock-focused", None),
}
# noun -> features whose mean z-score says the segment is that kind of customer (- = low is the sign)
NOUNS: dict[str, tuple[str, ...]] = {
    "traders": (
        "n_buy_365d",
        "n_sell_365d",
        "stock_events_90d",
        "forex_events_90d",
        "holds_forex_copy",
    ),
    "savers": (
        "holds_deposit",
        "holds_money_market",
        "holds_bond_fund",
        "-risk_level",
        "-max_risk_held",
    ),
    "yield seekers": ("holds_p2p", "p2p_events_90d"),
    "investors": ("total_assets", "invested_total", "holds_equity_fund", "holds_stock_portfolio"),
    "dabblers": ("-events_90d", "-n_products_held", "-total_assets"),
}


# interest_<category> -> noun when that product interest is what most sets a segment apart
INTEREST_NOUNS = {
    "forex_copy": "FX copy traders", "money_market": "money-market savers",
    "deposit": "deposit savers", "bond_fund": "bond fund investors",
    "equity_fund": "equity fund investors", "index_fund": "index fund investors",
    "stock_portfolio": "stock portfolio investors", "p2p": "P2P yield seekers",
    "gold": "gold buyers", "pension": "pension savers", "insurance": "insurance buyers",
    "margin": "margin traders",
}  # fmt: skip
# the business-line word a product-interest noun already says
SAME_LINE = {
    "p2p": "p2p_events_90d",
    "forex_copy": "forex_events_90d",
    "stock_portfolio": "stock_events_90d",
}
INTEREST = "interest_"
INTEREST_Z = 0.5  # a product interest must stand out this much to name the segment


def interest_noun(z: pd.Series) -> tuple[str, set[str]] | None:
    """The noun of the product interest that stands out most (None when none does, or compressed)."""
    interests = z[[str(f).startswith(INTEREST) and "svd" not in str(f) for f in z.index]]
    if interests.empty or interests.max() < INTEREST_Z:
        return None
    top = str(interests.idxmax())
    item = top.removeprefix(INTEREST)
    used = {*interests.index, SAME_LINE.get(item, "")}
    return INTEREST_NOUNS.get(item, f"{item.replace('_', ' ')} buyers"), used


def profile_z(design: pd.DataFrame, labels: np.ndarray) -> pd.DataFrame:
    """Mean z-score of every clustering column per segment (gaps at the median), against the population."""
    filled = design.fillna(design.median()).fillna(0.0)
    spread = filled.std(ddof=0).replace(0.0, 1.0)
    return ((filled - filled.mean()) / spread).groupby(labels).mean()


def phrase(feature: str, z: float) -> str | None:
    """The adjective for one feature's z-score (None when the direction has no useful word)."""
    if feature.startswith(INTEREST):
        item = feature.removeprefix(INTEREST).replace("_", " ")
        return f"{item}-leaning" if z > 0 and "svd" not in item else None
    if feature.startswith("holds_"):
        category = feature.removeprefix("holds_").replace("_", " ")
        return f"{category}-holding" if z > 0 else None
    high, low = PHRASES.get(feature, (None, None))
    return high if z > 0 else low


def noun_for(z: pd.Series) -> tuple[str, set[str]]:
    """The noun whose features stand out most, and the features it already speaks for."""
    best, best_score, used = "customers", MIN_Z, set()
    for noun, signed in NOUNS.items():
        present = [(s.lstrip("-"), -1.0 if s.startswith("-") else 1.0) for s in signed]
        present = [(f, sign) for f, sign in present if f in z.index]
        if not present:
            continue
        score = sum(sign * z[f] for f, sign in present) / len(present)
        if score > best_score:
            best, best_score, used = noun, score, {f for f, _ in present}
    return best, used


def segment_name(z: pd.Series) -> str:
    """Name for one segment from its feature z-scores: two strongest adjectives plus a noun."""
    noun, used = interest_noun(z) or noun_for(z)
    ranked = z.drop(labels=list(used), errors="ignore")
    ranked = ranked.reindex(ranked.abs().sort_values(ascending=False, kind="stable").index)
    words: list[str] = []
    for feature, value in ranked.items():
        if abs(value) < MIN_Z or len(words) == 2:
            break
        word = phrase(str(feature), float(value))
        if word and word not in words:
            words.append(word)
    return " ".join([*words, noun]) if words else f"typical {noun}"


def name_segments(profile_z: pd.DataFrame) -> dict[int, str]:
    """Unique name per segment id (rows of `profile_z`).

    Segments that would share a name get the adjective that most sets each apart from the
    others of that name ("young savers, affluent" / "young savers, low-balance"); only when no
    feature word tells them apart does the segment number follow the name.
    """
    names = {int(seg): segment_name(row) for seg, row in profile_z.iterrows()}
    out = dict(names)
    for name, group in pd.Series(names).groupby(pd.Series(names)):
        if len(group) < 2:
            continue
        for seg in group.index:  # a few segments, not customers
            others = profile_z.loc[[s for s in group.index if s != seg]].mean()
            word = _distinguishing_word(profile_z.loc[seg] - others, taken=name)
            out[seg] = f"{name}, {word}" if word else name
    counts = pd.Series(list(out.values())).value_counts()
    return {seg: f"{name} ({seg})" if counts[name] > 1 else name for seg, name in out.items()}


def _distinguishing_word(diff: pd.Series, *, taken: str) -> str | None:
    """The word of the largest difference that the name does not already hold."""
    ordered = diff.reindex(diff.abs().sort_values(ascending=False, kind="stable").index)
    for feature, value in ordered.items():
        if abs(value) < 1e-9:
            break
        word = phrase(str(feature), float(value))
        if word and word not in taken:
            return word
    return None
