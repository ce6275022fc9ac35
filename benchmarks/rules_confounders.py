"""Benchmark: ranks of the demo bank's planted affinities under each confounder correction.

For each configuration (default and alt, features/demo_bank/profiles.py) and seed, a
5k-customer demo bank; its transition rules are mined once (the rules stage's path: itemset
budget, then fpgrowth) and ranked under every variant below. A rank is the position of a
planted affinity among the report's ordering of one-product -> one-product transition rules
for all customers (training.rules.ranking.top_rules); "-" = not mined.

Variants: raw lift (one stratum), lift standardised within risk level (the default before
issue 16's last round), within segment (the segments stage's own segments at as_of, fitted
as the stage fits them: portrait plus product-interest mix), within risk level x segment,
within the segment predicted from sign-up attributes (signup_segment), and the same strata
with the Mantel-Haenszel risk ratio (the default: MH within segment); plus the planted
personas (truth, which no run has) as a reference.

    nice -n 10 .venv/bin/python benchmarks/rules.py --confounders [--seeds 7,2,3] [--customers 5000]
        [--profiles default alt]

Writes benchmarks/results/rules_confounders.json.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from features.contract import CUSTOMER_ID, SEGMENT_ID  # noqa: E402
from portrait.settings import RuleSettings, Settings  # noqa: E402
from training.engine import build_portrait  # noqa: E402
from training.rules.build import within_budget  # noqa: E402
from training.rules.mining import build_transition_baskets, mine_rules  # noqa: E402
from training.rules.ranking import rank_rules, top_rules  # noqa: E402
from training.rules.strata import (  # noqa: E402
    SIGNUP_SEGMENT,
    run_strata,
    signup_segment_frame,
)
from training.segments.build import fit_run_segments  # noqa: E402

RISK, SEG, SIGNUP = "risk_level", SEGMENT_ID, SIGNUP_SEGMENT
VARIANTS = {  # name: (strata columns, estimate, segments used: "run" or "persona")
    "raw lift": ((), "standardised", "run"),
    "lift | risk": ((RISK,), "standardised", "run"),
    "lift | segment": ((SEG,), "standardised", "run"),
    "lift | risk x segment": ((RISK, SEG), "standardised", "run"),
    "MH | none": ((), "mantel_haenszel", "run"),
    "MH | risk": ((RISK,), "mantel_haenszel", "run"),
    "MH | segment": ((SEG,), "mantel_haenszel", "run"),
    "MH | risk x segment": ((RISK, SEG), "mantel_haenszel", "run"),
    "lift | risk x signup segment": ((RISK, SIGNUP), "standardised", "run"),
    "MH | signup segment": ((SIGNUP,), "mantel_haenszel", "run"),
    "MH | risk x signup segment": ((RISK, SIGNUP), "mantel_haenszel", "run"),
    "lift | risk x persona (truth)": ((RISK, SEG), "standardised", "persona"),
    "MH | risk x persona (truth)": ((RISK, SEG), "mantel_haenszel", "persona"),
}


def run_segments(
    tables: dict[str, pd.DataFrame], as_of: pd.Timestamp
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """[customer_id, segment_id] by behaviour and by sign-up attributes (the stage's own model).

    As the segments stage fits it (training.segments.build.fit_run_segments): the portrait
    plus the product-interest mix, k over the range the active customers allow.
    """
    settings = Settings()
    portrait = build_portrait(tables, as_of=as_of, settings=settings)
    segments, model, _, _ = fit_run_segments(
        tables, portrait, as_of=as_of, settings=settings.segments,
        active_days=settings.time.active_days,
    )  # fmt: skip
    return segments[[CUSTOMER_ID, SEGMENT_ID]], signup_segment_frame(model, portrait)


def planted_ranks(rules: pd.DataFrame, affinities: pd.DataFrame) -> dict[str, int | None]:
    """Rank of each planted affinity among the transition pair rules for all customers."""
    pairs = top_rules(rules, kind="transition", n=len(rules))
    order = list(zip(pairs["antecedents"].str[0], pairs["consequents"].str[0], strict=True))
    found = {pair: i + 1 for i, pair in enumerate(order)}
    return {
        f"{a}->{c}": found.get((a, c))
        for a, c in affinities[["antecedent", "consequent"]].itertuples(index=False)
    }


def run_seed(*, seed: int, n_customers: int, profile: str = "default") -> dict:
    """Mine one bank's transition rules once and rank them under every variant."""
    from features.demo_bank import DEMO_AS_OF, generate_demo_bank

    started = time.perf_counter()
    demo = generate_demo_bank(n_customers=n_customers, seed=seed, profile=profile)
    tables, settings = demo.tables, RuleSettings()
    behaviour, signup = run_segments(tables, DEMO_AS_OF)
    persona = demo.truth["customers"][[CUSTOMER_ID, "persona"]]
    segments = {
        "run": {SEG: behaviour, SIGNUP: signup},
        "persona": {SEG: persona.rename(columns={"persona": SEG})},
    }
    baskets = build_transition_baskets(
        tables["transactions"], as_of=DEMO_AS_OF,
        window_days=settings.transition_window_days, n_windows=settings.transition_windows,
    )  # fmt: skip
    used, _ = within_budget(baskets, settings, kind="transition")
    rules = mine_rules(baskets, settings=used, kind="transition")
    ranks = {}
    for name, (columns, estimate, source) in VARIANTS.items():
        variant = dataclasses.replace(settings, strata_columns=columns, rank_estimate=estimate)
        strata, _ = run_strata(tables["customers"], segments[source], variant.strata_columns)
        ranked = rank_rules(
            rules, baskets, strata, estimate=estimate,
            min_stratum_baskets=variant.min_stratum_baskets,
        )  # fmt: skip
        ranks[name] = planted_ranks(ranked, demo.truth["affinities"])
    n_pairs = len(top_rules(ranked, kind="transition", n=len(ranked)))
    return {
        "profile": profile, "seed": seed, "customers": n_customers, "pair_rules": n_pairs,
        "segments": int(behaviour[SEG].nunique()), "ranks": ranks,
        "seconds": round(time.perf_counter() - started, 1),
    }  # fmt: skip


def table(results: list[dict]) -> pd.DataFrame:
    """One row per variant: each seed's ranks; over all seeds the top-15 count, mean and worst rank."""
    rows = []
    for name in VARIANTS:
        row = {"variant": name}
        found, total = [], 0
        for r in results:
            ranks = r["ranks"][name]
            row[f"seed {r['seed']}"] = " ".join(
                "-" if v is None else str(v) for v in ranks.values()
            )
            found += [v for v in ranks.values() if v is not None]
            total += len(ranks)
        row["in top 15"] = f"{sum(v <= 15 for v in found)}/{total}"
        row["mean rank (mined)"] = round(sum(found) / max(len(found), 1), 1)
        row["worst"] = max(found, default=None)
        rows.append(row)
    return pd.DataFrame(rows)


def confounders_main(*, seeds: list[int], n_customers: int, profiles: list[str]) -> None:
    """Every configuration and seed, then a table per configuration and the JSON."""
    results = []
    for profile in profiles:
        for seed in seeds:
            results.append(run_seed(seed=seed, n_customers=n_customers, profile=profile))
            print(f"done: {profile} seed {seed} in {results[-1]['seconds']} s", file=sys.stderr,
                  flush=True)  # fmt: skip
    pairs = list(results[0]["ranks"]["raw lift"])
    print(f"\nplanted affinities, in this order: {', '.join(pairs)}; ranks per seed")
    for profile in profiles:
        mine = [r for r in results if r["profile"] == profile]
        print(f"\n{profile} configuration, {n_customers} customers "
              f"(pair rules per seed: {', '.join(str(r['pair_rules']) for r in mine)})")  # fmt: skip
        print(table(mine).to_string(index=False))
    target = ROOT / "benchmarks" / "results" / "rules_confounders.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps({"affinities": pairs, "results": results}, indent=2))
