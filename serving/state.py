"""Everything the service answers from, loaded once into one immutable, pre-indexed object.

`load_state` reads a run directory (portrait, segments, rule base, churn scores, the dataset it
was built from, the batch stage's candidate index) and the `champion` models from the MLflow
registry. The candidate index is the one the models stage scored (`serving.index_files`) when
the served conversion model is the one that scored it; else every pair is scored at load.
`StateHolder` keeps the state being served and swaps in a new one only when it loaded and passed
a smoke prediction, so a model that fails to load leaves the old one serving.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from features.contract import CUSTOMER_ID, PRODUCT_ID
from features.holdings import build_holdings
from features.pairs import build_pair_context, window_buys
from features.policy import customer_policy
from features.validate import load_dataset
from portrait.settings import Settings
from serving.answer_memo import AnswerMemo
from serving.cold_start import Popularity, PopularityLists, build_popularity, popularity_lists
from serving.index_files import read_index, scorer_name
from serving.pair_reasons import warm_reasons
from serving.profile import TimelineIndex, build_timeline_index
from serving.recommend_index import (
    CandidateIndex,
    CustomerFacts,
    ProductFacts,
    build_candidate_index,
    by_customer,
    customer_facts,
    product_facts,
)
from serving.run_parts import (
    StateError,
    churn_scores,
    load_models,
    read_rule_base,
    read_table,
    segment_rows,
    unpickle,
)
from training.models.fallback import read_fallback

__all__ = ["StateError", "ServingState", "StateHolder", "load_models", "load_state"]
RUN_ENV = "PORTRAIT_RUN_DIR"
SETTINGS_ENV = "PORTRAIT_SETTINGS"
AUDIT_ENV = "PORTRAIT_AUDIT_LOG"


@dataclass(frozen=True, eq=False)
class ServingState:
    """One run's portrait, products, holdings, segments, rules, models and timeline, indexed."""

    run_dir: Path
    as_of: pd.Timestamp
    settings: Settings
    tables: dict[str, pd.DataFrame]
    portrait: pd.DataFrame  # indexed by customer_id
    policy: pd.DataFrame  # customer_policy rows, indexed by customer_id
    products: pd.DataFrame  # the products table, indexed by product_id
    holdings: pd.DataFrame
    holdings_by_customer: dict[str, pd.DataFrame]
    segments: pd.DataFrame | None
    segment_rows: dict[str, dict[str, Any]]
    segmentation: Any
    rule_base: Any
    popularity: Popularity
    timeline: TimelineIndex
    churn_probability: dict[str, float]
    models: dict[str, Any] = field(default_factory=dict)
    model_version: str = ""
    candidates: CandidateIndex | None = None  # every customer's candidates, scored once

    @cached_property
    def pair_context(self) -> Any:
        """The pairs' context at as_of (`features.pairs.PairContext`), built on first use: only
        when the candidate index is scored at load, not when the batch's index is read."""
        return build_pair_context(
            self.tables, self.portrait, cutoff=self.as_of, segments=self.segments,
            window_days=self.settings.time.conversion_horizon_days,
        )  # fmt: skip

    @cached_property
    def product_facts(self) -> ProductFacts:
        """The served products' policy facts at the candidate index's positions."""
        return product_facts(self.products, self.candidates.products)

    @cached_property
    def popularity_lists(self) -> PopularityLists:
        """Cold-start popularity by product position of the candidate index."""
        return popularity_lists(self.popularity, self.candidates.position)

    @cached_property
    def customer_facts(self) -> CustomerFacts:
        """The served customers' policy facts at the candidate index's positions."""
        return customer_facts(self.policy, self.candidates.customers)

    @cached_property
    def answers(self) -> AnswerMemo:
        """Plain /recommend answers of this state, kept (serving/answer_memo.py)."""
        return AnswerMemo(self.settings.serving.answer_memo)

    def warm(self) -> int:
        """Explain each customer's best allowed model pairs ahead of requests (slow; the service
        runs it in the background once this state serves). Returns the pairs explained."""
        model = self.models.get("conversion")
        return warm_reasons(self.candidates, self.product_facts, self.customer_facts, model)

    def churn_reasons_of(self, customer_id: str, *, top: int = 3) -> list[str]:
        """The top factors behind a scored customer's churn probability, explained now by the
        churn model on the customer's portrait row (one TreeSHAP row, about a millisecond:
        explaining every customer in the batch cost more than the rest of the scoring)."""
        model = self.models.get("churn")
        if customer_id not in self.churn_probability or not hasattr(model, "explain"):
            return []
        row = self.portrait.loc[[customer_id]].reset_index(drop=True)
        return [str(r) for r in model.explain(row, top=top)[0]]

    def knows(self, customer_id: str) -> bool:
        """Whether the customer is in the served portrait."""
        return customer_id in self.portrait.index

    def segment_of(self, customer_id: str) -> dict[str, Any]:
        """Segment id and name, value tier, lifecycle stage and tags of a known customer."""
        return self.segment_rows.get(customer_id, {})

    def audience_extras(self) -> dict[str, pd.DataFrame]:
        """Run frames the audience language can query next to the portrait."""
        extras = {}
        if self.segments is not None:
            extras["segments"] = self.segments
        if self.churn_probability:
            extras["churn_scores"] = pd.DataFrame(
                {
                    CUSTOMER_ID: list(self.churn_probability),
                    "churn_probability": list(self.churn_probability.values()),
                }
            )
        if (self.run_dir / "propensity.parquet").is_file():  # for `propensity(P) > x` terms
            extras["propensity"] = pd.read_parquet(self.run_dir / "propensity.parquet")
        return extras


def run_manifest(run_dir: Path) -> dict[str, Any]:
    """as_of and data_dir of a run, from its quality.json (written by `portrait run`)."""
    quality = Path(run_dir) / "quality.json"
    if not quality.is_file():
        raise StateError(
            f"{run_dir} is not a run directory (no quality.json); run `portrait run` first"
        )
    meta = json.loads(quality.read_text(encoding="utf-8"))
    missing = [k for k in ("as_of", "data_dir") if k not in meta]
    if missing:
        raise StateError(
            f"{quality} lacks {', '.join(missing)}; re-run `portrait run` to rewrite it"
        )
    return meta


def load_state(
    run_dir: Path, settings: Settings, *, models: tuple[dict[str, Any], str] | None = None,
    versions: dict[str, str | None] | None = None,
) -> ServingState:  # fmt: skip
    """Read a run directory and the champion models into a ServingState (slow: start-up and reload).

    `models` (models by kind, version) replaces the registry look-up, e.g. in in-process tests;
    `versions` loads those registry versions instead of the champions (every worker the same).
    """
    run_dir = Path(run_dir).resolve()
    from serving.runs import verify

    manifest = verify(run_dir, settings, vouch=models is None)  # before anything is read
    meta = run_manifest(run_dir)
    as_of = pd.Timestamp(meta["as_of"])
    tables = load_dataset(
        meta["data_dir"], max_bad_fraction=settings.validation.max_bad_fraction
    ).tables
    portrait = read_table(run_dir, "features.parquet", required=True)
    segments = read_table(run_dir, "segments.parquet", required=False)
    recent_days = settings.time.conversion_horizon_days  # the recent popularity baseline's window
    holdings = build_holdings(tables["transactions"], as_of=as_of).astype(
        {CUSTOMER_ID: str, PRODUCT_ID: str}
    )
    models, version = models if models is not None else load_models(settings, versions=versions)
    if models.get("conversion") is None and (fallback := read_fallback(run_dir)) is not None:
        models = models | {"conversion": fallback}  # the batch's ranker: the best baseline
    policy = customer_policy(portrait, qualified_min_assets=settings.policy.qualified_min_assets)
    portrait, policy = by_customer(portrait), by_customer(policy)
    products = tables["products"].set_index(tables["products"][PRODUCT_ID].astype(str))
    state = ServingState(
        run_dir=run_dir, as_of=as_of, settings=settings, tables=tables, portrait=portrait,
        policy=policy, products=products.rename_axis(None), holdings=holdings,
        holdings_by_customer={str(k): g for k, g in holdings.groupby(CUSTOMER_ID, sort=False)},
        segments=segments, segment_rows=segment_rows(segments),
        segmentation=unpickle(run_dir, "segmentation.pkl", manifest),
        rule_base=read_rule_base(run_dir),
        popularity=build_popularity(
            holdings, portrait, segments, new_days=settings.segments.new_days,
            recent_buys=window_buys(tables["transactions"], as_of, days=recent_days),
            recent_days=recent_days),
        timeline=build_timeline_index(tables, as_of=as_of),
        churn_probability=churn_scores(run_dir), models=models, model_version=version,
    )  # fmt: skip
    return dataclasses.replace(state, candidates=_candidates(state, manifest))


def _candidates(state: ServingState, manifest: dict[str, Any]) -> CandidateIndex:
    """The batch stage's candidate index when it was scored by the served conversion model,
    else every pair scored now."""
    model = state.models.get("conversion")
    served = state.model_version.rsplit("conversion:", 1)[-1]
    scored_by = scorer_name(model, served.removeprefix("v") if served.startswith("v") else None)
    found = read_index(state.run_dir, manifest, scored_by=scored_by, holdings=state.holdings,
                       model=model, customers=state.portrait.index)  # fmt: skip
    if found is not None:
        return found
    return build_candidate_index(
        portrait=state.portrait, products=state.products, holdings=state.holdings,
        segments=state.segments, context=state.pair_context, model=model,
        rule_base=state.rule_base,
    )  # fmt: skip


class StateHolder:
    """The state being served; `swap` replaces it atomically, readers never see half a state."""

    def __init__(self) -> None:
        self._state: ServingState | None = None
        self._lock = threading.Lock()

    @property
    def current(self) -> ServingState | None:
        """The state requests read now (None until the first load succeeded)."""
        return self._state

    def swap(self, state: ServingState) -> ServingState | None:
        """Serve `state` from now on; return the one it replaced."""
        with self._lock:
            old, self._state = self._state, state
        return old
