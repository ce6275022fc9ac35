"""Everything the service answers from, loaded once into one immutable, pre-indexed object.

`load_state` reads a run directory (portrait, segments, rule base, churn scores, the dataset it
was built from) and the `champion` models from the MLflow registry. `StateHolder` keeps the
state being served and swaps in a new one only when it loaded and passed a smoke prediction,
so a model that fails to load leaves the old one serving.
"""

from __future__ import annotations

import io
import json
import threading
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import joblib
import pandas as pd

from features.contract import CUSTOMER_ID, PRODUCT_ID
from features.holdings import build_holdings
from features.pairs import build_pair_context
from features.policy import customer_policy
from features.validate import load_dataset
from portrait.errors import PortraitError
from portrait.settings import Settings
from serving.cold_start import Popularity, PopularityLists, build_popularity, popularity_lists
from serving.pair_reasons import warm_reasons
from serving.profile import TimelineIndex, build_timeline_index
from serving.recommend import index_inputs
from serving.recommend_index import (
    CandidateIndex,
    CustomerFacts,
    ProductFacts,
    build_candidate_index,
    customer_facts,
    product_facts,
)
from training.models.fallback import read_fallback

RUN_ENV = "PORTRAIT_RUN_DIR"
SETTINGS_ENV = "PORTRAIT_SETTINGS"
AUDIT_ENV = "PORTRAIT_AUDIT_LOG"
SEGMENT_FIELDS = ("segment_id", "segment_name", "value_tier", "lifecycle_stage", "tags")


class StateError(PortraitError):
    """A run directory or a model the service cannot load; the message says what to fix."""


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
    churn_reasons: dict[str, list[str]]
    recommend_inputs: Any = None  # serving.recommend.RecommendInputs
    pair_context: Any = None  # features.pairs.PairContext at as_of
    models: dict[str, Any] = field(default_factory=dict)
    model_version: str = ""
    candidates: CandidateIndex | None = None  # every customer's candidates, scored once

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
        return customer_facts(self.recommend_inputs.policy_customers, self.candidates.customers)

    def warm(self) -> int:
        """Explain each customer's best allowed model pairs ahead of requests (slow; the service
        runs it in the background once this state serves). Returns the pairs explained."""
        model = self.models.get("conversion")
        return warm_reasons(self.candidates, self.product_facts, self.customer_facts, model)

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
    run_dir: Path, settings: Settings, *, models: tuple[dict[str, Any], str] | None = None
) -> ServingState:
    """Read a run directory and the champion models into a ServingState (slow: start-up and reload).

    `models` (models by kind, version) replaces the registry look-up, e.g. in in-process tests.
    """
    run_dir = Path(run_dir).resolve()
    from serving.runs import verify

    manifest = verify(run_dir, settings, vouch=models is None)  # before anything is read
    meta = run_manifest(run_dir)
    as_of = pd.Timestamp(meta["as_of"])
    tables = load_dataset(
        meta["data_dir"], max_bad_fraction=settings.validation.max_bad_fraction
    ).tables
    portrait = _read(run_dir, "features.parquet", required=True)
    segments = _read(run_dir, "segments.parquet", required=False)
    holdings = build_holdings(tables["transactions"], as_of=as_of).astype(
        {CUSTOMER_ID: str, PRODUCT_ID: str}
    )
    models, version = models if models is not None else load_models(settings)
    if models.get("conversion") is None and (fallback := read_fallback(run_dir)) is not None:
        models = models | {"conversion": fallback}  # the batch's ranker: the best baseline
    churn = _churn(run_dir, portrait, models.get("churn"))
    policy = customer_policy(portrait, qualified_min_assets=settings.policy.qualified_min_assets)
    inputs = index_inputs(
        portrait=portrait, policy_customers=policy, holdings=holdings, segments=segments
    )
    products = tables["products"].set_index(tables["products"][PRODUCT_ID].astype(str))
    context = build_pair_context(
        tables, portrait, cutoff=as_of, window_days=settings.time.conversion_horizon_days,
        segments=segments,
    )  # fmt: skip
    rule_base = _rule_base(run_dir)
    candidates = build_candidate_index(
        portrait=inputs.portrait, products=products, holdings=inputs.holdings,
        segments=inputs.segments, context=context, model=models.get("conversion"),
        rule_base=rule_base,
    )  # fmt: skip
    state = ServingState(
        run_dir=run_dir,
        as_of=as_of,
        settings=settings,
        tables=tables,
        portrait=inputs.portrait,
        policy=inputs.policy_customers,
        products=products.rename_axis(None),
        holdings=holdings,
        holdings_by_customer={str(k): g for k, g in holdings.groupby(CUSTOMER_ID, sort=False)},
        segments=segments,
        segment_rows=_segment_rows(segments),
        segmentation=_unpickle(run_dir, "segmentation.pkl", manifest),
        rule_base=rule_base,
        popularity=build_popularity(
            holdings, portrait, segments, new_days=settings.segments.new_days
        ),
        recommend_inputs=inputs,
        pair_context=context,
        timeline=build_timeline_index(tables, as_of=as_of),
        churn_probability=churn[0],
        churn_reasons=churn[1],
        models=models,
        model_version=version,
        candidates=candidates,
    )
    return state


def _read(run_dir: Path, name: str, *, required: bool) -> pd.DataFrame | None:
    path = run_dir / name
    if not path.is_file():
        if required:
            raise StateError(
                f"run directory {run_dir} has no {name}; run `portrait run` to write it"
            )
        return None
    return pd.read_parquet(path)


def _segment_rows(segments: pd.DataFrame | None) -> dict[str, dict[str, Any]]:
    if segments is None:
        return {}
    cols = [c for c in SEGMENT_FIELDS if c in segments.columns]
    records = segments[cols].to_dict(orient="records")
    return {str(cid): rec for cid, rec in zip(segments[CUSTOMER_ID], records, strict=True)}


def _unpickle(run_dir: Path, name: str, manifest: dict[str, Any]) -> Any:
    from training.manifest import verified_bytes

    # only the bytes the manifest vouched for, read once: nothing else is ever unpickled
    return joblib.load(io.BytesIO(verified_bytes(run_dir, name, manifest)))


def _rule_base(run_dir: Path) -> Any:
    from training.rules.base import load_rule_base
    from training.rules.mining import RulesError

    if not (run_dir / "rule_base").is_dir():
        return None
    try:
        return load_rule_base(run_dir / "rule_base")
    except RulesError as exc:
        raise StateError(str(exc)) from exc


def load_models(settings: Settings) -> tuple[dict[str, Any], str]:
    """The `champion` models from the MLflow registry and their versions, e.g. "churn:v3,conversion:v2".

    The churn champion is required. The conversion model may have no champion yet (the quality
    gate keeps the alias off a model that does not beat rules and popularity); the recommender
    then ranks by rules and popularity, and the version says "conversion:none".
    """
    from training import registry, tracking

    tracking.configure(settings.tracking)
    pair = registry.champion_pair([registry.CHURN_MODEL, registry.CONVERSION_MODEL])
    churn_version, conversion_version = pair[registry.CHURN_MODEL], pair[registry.CONVERSION_MODEL]
    if churn_version is None:
        registry.require_champion(registry.CHURN_MODEL)  # raises the error that says what to do
    churn = registry.load_version(registry.CHURN_MODEL, churn_version)
    conversion = (
        registry.load_version(registry.CONVERSION_MODEL, conversion_version)
        if conversion_version
        else None
    )
    version = f"churn:v{churn_version},conversion:" + (
        f"v{conversion_version}" if conversion_version else "none"
    )
    return {"churn": churn, "conversion": conversion}, version


def _churn(
    run_dir: Path, portrait: pd.DataFrame, model: Any
) -> tuple[dict[str, float], dict[str, list[str]]]:
    scores = _read(run_dir, "churn_scores.parquet", required=False)
    if scores is None:
        return {}, {}
    ids = scores[CUSTOMER_ID].astype(str)
    probability = dict(zip(ids, scores["churn_probability"].astype(float), strict=True))
    if "reasons" in scores.columns:
        return probability, {c: list(r) for c, r in zip(ids, scores["reasons"], strict=True)}
    if model is None or not hasattr(model, "explain"):
        return probability, {}
    rows = portrait.loc[portrait[CUSTOMER_ID].astype(str).isin(ids)]
    reasons = model.explain(rows)
    return probability, dict(zip(rows[CUSTOMER_ID].astype(str), reasons, strict=True))


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
