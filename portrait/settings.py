"""Settings, parsed once (YAML file and/or CLI overrides) into frozen dataclasses and passed down."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from portrait.errors import SettingsError


@dataclass(frozen=True)
class ValidationSettings:
    max_bad_fraction: float = 0.01


@dataclass(frozen=True)
class FeatureSettings:
    # the firm's own customer columns used as features: comma-separated names; empty include = all
    extra_columns_include: str = ""
    extra_columns_exclude: str = ""


@dataclass(frozen=True)
class TimeSettings:
    active_days: int = 90
    churn_horizon_days: int = 60
    conversion_horizon_days: int = 60
    # earlier cut-offs, each one horizon further back; 4 rather than 2 measured +1.6 points of
    # conversion MAP@5 at 20k customers (twice the purchases to learn from)
    training_cutoffs: int = 4


@dataclass(frozen=True)
class EngagementSettings:
    """What counts as a customer still being there (DATA_CONTRACT.md, Time and labels)."""

    # inflows are engagement; sells, withdrawals and income are how money leaves, not activity
    transaction_types: tuple[str, ...] = ("deposit", "buy")
    non_engagement_events: tuple[str, ...] = ()  # event names that do not count (e.g. a push)
    # departed: assets at as_of at or below max(departed_floor, departed_peak_share x the
    # customer's peak before as_of) after a withdrawal, and no engagement since that withdrawal
    departed_peak_share: float = 0.02
    departed_floor: float = 1.0
    departed: bool = True  # False: nobody is departed (every engaged customer is active)


@dataclass(frozen=True)
class SegmentSettings:
    k_min: int = 4  # fewer than 4 groups is too coarse for a marketer to act on
    k_max: int = 10
    top_n: int = 100
    seed: int = 42
    method: str = "kmeans"  # kmeans or gmm
    n_components: int = 0  # PCA components before clustering; 0 = none
    sample_size: int = 5000  # rows used to score each k (silhouette) and to check reseed stability
    n_reseeds: int = 3
    # product interests (training/segments/interest.py): items past this many are compressed (SVD)
    interest_components: int = 16
    # total variance of the interest block; the profile and engagement blocks get 0.5 each
    interest_weight: float = 1.0
    interest_prior: float = 1.0  # a customer's mix is shrunk to the mean by n / (n + prior)
    potential_floor: float = (
        0.1  # potential_large needs this share of the smallest top-tier balance
    )
    potential_back_days: int = 180  # back-test window of the potential-large rule
    new_days: int = 90
    churned_days: int = 180
    transition_steps: int = 3  # lifecycle transition table: cut-offs back from as_of
    transition_step_days: int = 30


@dataclass(frozen=True)
class RuleSettings:
    min_support: float = 0.01
    min_confidence: float = 0.05
    min_lift: float = 1.2
    max_len: int = 3
    # frequent itemsets allowed before mining; min support is raised to stay within it (0 = off)
    max_itemsets: int = 100_000
    # rules kept in the rule base, best lift_lower first: candidates and reasons need the strong
    # ones, and serving matches every customer's holdings against all of them (0 = all)
    max_rules: int = 20_000
    transition_window_days: int = 60  # "held at a cut-off -> bought in the next window"
    transition_windows: int = 10  # cut-offs stepping back from as_of, one window each
    # a purchase in one window is rarer than a holding, so transition rules get their own floors
    # low enough for a rare product's affinity (margin after a stock portfolio: support ~5e-4,
    # confidence ~0.8%); min_rule_baskets and the lift_lower ranking keep thin rules down
    transition_min_support: float = 0.0002
    transition_min_confidence: float = 0.005
    min_rule_baskets: int = 5  # a rule needs this many supporting baskets (guards small segments)
    per_segment: bool = True
    min_segment_baskets: int = 200  # smaller segments get only the overall rules
    top_rules: int = 20  # rows of each top-rules table in the report
    # rules are ranked within strata: the combination of these customers columns, where
    # "segment_id" is the segments stage's segment; empty = no strata. Both confounders a
    # brokerage has: suitability (nobody buys above their risk level) and customer type (each
    # type buys its own products); thin strata back off to risk level (benchmarks/rules.py
    # --confounders, training/rules/ranking.py, README "Rules ranked against confounders")
    strata_columns: tuple[str, ...] = ("risk_level", "segment_id")
    # a stratum with fewer baskets backs off to its leading columns, then to one pooled stratum
    min_stratum_baskets: int = 100
    # what lift_lower bounds: "mantel_haenszel" (risk ratio vs non-holders, pooled over strata)
    # or "standardised" (observed / expected within strata)
    rank_estimate: str = "mantel_haenszel"


@dataclass(frozen=True)
class ModelSettings:
    n_trials: int = 10
    seed: int = 42
    k: int = 5


@dataclass(frozen=True)
class PolicySettings:
    qualified_min_assets: float = (
        3_000_000.0  # qualified-investor asset threshold (firm's regulation)
    )


@dataclass(frozen=True)
class TrackingSettings:
    tracking_uri: str = ""  # empty: a local sqlite store inside the project directory
    experiment: str = "portrait"


@dataclass(frozen=True)
class ExperimentSettings:
    campaign_window_days: int = 30
    funnel_days: int = 30  # a funnel step counts within this many days of registering
    expected_treatment_share: float = 0.5
    uplift_holdout_share: float = 0.3
    session_gap_minutes: int = 30
    seed: int = 42


@dataclass(frozen=True)
class EngineSettings:
    engine: str = "pandas"  # pandas (one machine) or dask (training/engine.py)
    scheduler: str = ""  # dask scheduler address; empty: start a LocalCluster for the run
    partitions: int = 0  # customer partitions for the dask feature shuffle; 0 = automatic
    # LightGBM training sets smaller than this fit in the run's process even on dask: starting a
    # distributed fit costs seconds, and per-product models and small banks gain nothing from it.
    train_min_rows: int = 50_000


@dataclass(frozen=True)
class ServingSettings:
    keys_file: str = ""  # the API key file (hashed keys); `portrait serve --keys FILE` sets it
    allowed_hosts: str = "localhost,127.0.0.1"  # Host header values served (comma-separated)
    # directories reload may load runs from (comma-separated); empty: the served run's parent
    run_roots: str = ""
    max_body_bytes: int = 1_000_000  # larger request bodies are refused with 413
    # who read which customer, who exported which audience; empty: RUN/audit/access.jsonl
    access_log: str = ""
    log_max_bytes: int = 10_000_000  # each log file rotates at this size
    log_backups: int = 5  # rotated files kept per log
    session_minutes: int = 480  # a page login lasts this long
    audience_workers: int = 2  # audience queries' own pool, never /recommend's threads
    audience_budget_seconds: float = 10.0  # an audience query taking longer is answered 400
    # plain /recommend answers (known customer, no viewed product) kept per worker and state,
    # least recently used dropped first (~1.5 KB each); 0 computes every answer
    answer_memo: int = 50_000


@dataclass(frozen=True)
class Settings:
    validation: ValidationSettings = field(default_factory=ValidationSettings)
    features: FeatureSettings = field(default_factory=FeatureSettings)
    time: TimeSettings = field(default_factory=TimeSettings)
    engagement: EngagementSettings = field(default_factory=EngagementSettings)
    segments: SegmentSettings = field(default_factory=SegmentSettings)
    rules: RuleSettings = field(default_factory=RuleSettings)
    models: ModelSettings = field(default_factory=ModelSettings)
    policy: PolicySettings = field(default_factory=PolicySettings)
    tracking: TrackingSettings = field(default_factory=TrackingSettings)
    engine: EngineSettings = field(default_factory=EngineSettings)
    experiments: ExperimentSettings = field(default_factory=ExperimentSettings)
    serving: ServingSettings = field(default_factory=ServingSettings)


def _build(cls: type, values: dict[str, Any], where: str) -> Any:
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise SettingsError(
            f"unknown setting {where}.{unknown[0]}; known: {', '.join(sorted(known))}"
        )
    kwargs = {}
    for name, value in values.items():
        if isinstance(value, dict):
            kwargs[name] = _build(_SECTIONS[name], value, name)
        else:
            kwargs[name] = _coerce(value, known[name].default, f"{where}.{name}")
    return cls(**kwargs)


def _coerce(value: Any, default: Any, where: str) -> Any:
    if default is dataclasses.MISSING or value is None:
        return value
    if isinstance(default, tuple):  # a YAML list, or "a,b" from --set
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            raise SettingsError(f"setting {where} must be a list, got {value!r}")
        return tuple(str(v).strip() for v in items if str(v).strip())
    if isinstance(default, bool) and isinstance(value, str):
        if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise SettingsError(f"setting {where} must be true or false, got {value!r}")
        return value.lower() in ("true", "1", "yes")
    try:
        return type(default)(value)
    except (TypeError, ValueError) as exc:
        raise SettingsError(
            f"setting {where} must be {type(default).__name__}, got {value!r}"
        ) from exc


_SECTIONS = {f.name: f.default_factory for f in dataclasses.fields(Settings)}


def load_settings(
    path: str | Path | None = None, overrides: dict[str, Any] | None = None
) -> Settings:
    """Read settings from an optional YAML file, then apply dotted overrides like {"models.k": 10}."""
    values: dict[str, Any] = {}
    if path:
        p = Path(path)
        if not p.exists():
            raise SettingsError(f"settings file {p} does not exist")
        values = yaml.safe_load(p.read_text()) or {}
        if not isinstance(values, dict):
            raise SettingsError(f"settings file {p} must hold a mapping of sections")
    for dotted, value in (overrides or {}).items():
        section, _, key = dotted.partition(".")
        values.setdefault(section, {})[key] = value
    for section in values:
        if section not in _SECTIONS:
            raise SettingsError(
                f"unknown settings section {section!r}; known: {', '.join(_SECTIONS)}"
            )
    settings = _build(Settings, values, "")
    _check(settings)
    return settings


def _check(s: Settings) -> None:
    if not 0 <= s.validation.max_bad_fraction <= 1:
        raise SettingsError("validation.max_bad_fraction must be between 0 and 1")
    if not 2 <= s.segments.k_min <= s.segments.k_max <= 50:
        raise SettingsError(
            f"segments.k_min..k_max must satisfy 2 <= k_min <= k_max <= 50, got {s.segments.k_min}..{s.segments.k_max}"
        )
    if s.segments.top_n < 1:
        raise SettingsError("segments.top_n must be at least 1")
    if not 0 < s.rules.min_support <= 1 or not 0 <= s.rules.min_confidence <= 1:
        raise SettingsError(
            "rules.min_support must be in (0, 1] and rules.min_confidence in [0, 1]"
        )
    if s.rules.max_len < 2:
        raise SettingsError("rules.max_len must be at least 2 (a rule needs two products)")
    if s.models.k < 1 or s.models.n_trials < 1:
        raise SettingsError("models.k and models.n_trials must be at least 1")
    for name in (
        "active_days",
        "churn_horizon_days",
        "conversion_horizon_days",
        "training_cutoffs",
    ):
        if getattr(s.time, name) < 1:
            raise SettingsError(f"time.{name} must be at least 1")
    _check_engagement(s.engagement)


TRANSACTION_TYPES = ("deposit", "withdraw", "buy", "sell", "income")


def _check_engagement(e: EngagementSettings) -> None:
    unknown = sorted(set(e.transaction_types) - set(TRANSACTION_TYPES))
    if unknown:
        raise SettingsError(
            f"engagement.transaction_types has unknown type {unknown[0]!r}; "
            f"choose from {', '.join(TRANSACTION_TYPES)}"
        )
    if not 0 <= e.departed_peak_share < 1 or e.departed_floor < 0:
        raise SettingsError(
            "engagement.departed_peak_share must be in [0, 1) and engagement.departed_floor >= 0, "
            f"got {e.departed_peak_share} and {e.departed_floor}"
        )
