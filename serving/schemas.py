"""Request and response models of the HTTP service: typed, and requests reject unknown fields."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

CustomerId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^\S+$")]
ProductId = Annotated[str, Field(min_length=1, max_length=64)]


class Strict(BaseModel):
    """Base of every request: unknown fields are an error, never silently ignored."""

    model_config = ConfigDict(extra="forbid")


class SessionEvent(Strict):
    """One event of the current visit, e.g. {"event": "view_product", "product_id": "P07"}."""

    event: str = Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")
    product_id: ProductId | None = None
    page: str | None = Field(default=None, max_length=128)


class CustomerAttributes(Strict):
    """Sign-up attributes of a new or unknown customer, for a cold-start answer."""

    age: int | None = Field(default=None, ge=16, le=120)
    occupation: str | None = Field(default=None, max_length=64)
    income_band: int | None = Field(default=None, ge=1, le=5)
    city_tier: int | None = Field(default=None, ge=1, le=4)
    channel: str | None = Field(default=None, max_length=64)
    risk_level: int | None = Field(default=None, ge=1, le=5)
    marketing_opt_out: bool = False


class RecommendRequest(Strict):
    """POST /recommend."""

    customer_id: CustomerId
    k: int = Field(default=5, ge=1, le=50)
    session_events: list[SessionEvent] = Field(default_factory=list, max_length=200)
    channel: str | None = Field(default=None, max_length=64)
    attributes: CustomerAttributes | None = None


class RecommendedProduct(BaseModel):
    """One recommended product with its rank, score and the reasons it was chosen."""

    rank: int
    product_id: str
    name: str
    category: str
    risk_level: int
    score: float
    reasons: list[str]


class RecommendResponse(BaseModel):
    """Top-k products; `personalised` false means a clearly marked non-personalised list."""

    customer_id: str
    personalised: bool
    cold_start: bool
    label: str
    segment_name: str | None
    model_version: str
    as_of: str
    items: list[RecommendedProduct]


class ProfileRequest(Strict):
    """POST /profile: the customer and which page of the behaviour timeline."""

    customer_id: CustomerId
    page: int = Field(default=1, ge=1, le=100_000)
    page_size: int = Field(default=20, ge=1, le=200)


class Holding(BaseModel):
    """A product the customer holds at the cut-off."""

    product_id: str
    name: str
    category: str
    risk_level: int
    invested: float
    first_buy_at: str | None
    last_buy_at: str | None


class TimelineItem(BaseModel):
    """One event or transaction of the recent behaviour timeline."""

    ts: str
    kind: str
    what: str
    product_id: str | None
    page: str | None
    amount: float | None


class Timeline(BaseModel):
    """A page of the timeline, newest first."""

    page: int
    page_size: int
    total: int
    items: list[TimelineItem]


class ChurnRisk(BaseModel):
    """Churn probability (None when the customer is not active at the cut-off) and its reasons."""

    probability: float | None
    band: str
    reasons: list[str]


class ProfileResponse(BaseModel):
    """The portrait front-line staff see: who, which group, how valuable, at risk, holding, doing."""

    customer_id: str
    as_of: str
    key_features: dict[str, Any]
    segment_id: int | None
    segment_name: str | None
    value_tier: str | None
    lifecycle_stage: str | None
    tags: list[str]
    churn: ChurnRisk
    holdings: list[Holding]
    timeline: Timeline


class AudienceRequest(Strict):
    """POST /audience: a query in the audience language (or a ready-made name)."""

    query: str = Field(min_length=1, max_length=4000)
    as_of: dt.date | None = None
    limit: int = Field(default=20, ge=0, le=1000)


class AudienceResponse(BaseModel):
    """How many customers match (opted-out never included) and a sample of them."""

    query: str
    as_of: str
    eligible: int
    matched: int
    count: int
    opted_out_excluded: int
    sample: list[dict[str, Any]]


class ReloadRequest(Strict):
    """POST /admin/reload: load a run (default: the one serving now) and the current champions.

    `run_dir` names a run under serving.run_roots (a name or a path inside a root); `run_id` the
    MLflow run id of a `portrait run` there. Either way its manifest must verify."""

    run_dir: str | None = Field(default=None, max_length=1024)
    run_id: str | None = Field(default=None, max_length=64)


class ReloadResponse(BaseModel):
    """Whether the new state replaced the old one, and why not when it did not."""

    reloaded: bool
    run_dir: str  # the run's directory name (never a server path)
    model_version: str
    reason: str
    generation: int  # the server's state generation this worker serves
    workers: int  # how many workers serve that generation when the answer is sent
    of_workers: int


class ErrorBody(BaseModel):
    """Body of every 4xx answer the service itself gives."""

    error: str
    detail: Any = None
