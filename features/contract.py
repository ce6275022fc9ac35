"""The data contract (DATA_CONTRACT.md) as code: tables, columns, kinds and allowed values.

Every part of portrait reads input through these specs; column names live here only.
Internally every timestamp is a tz-naive ``datetime64`` in UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Column names used across packages (one place, as in Microsoft Recommenders).
CUSTOMER_ID = "customer_id"
PRODUCT_ID = "product_id"
TS = "ts"
SEGMENT_ID = "segment_id"
REASON = "reason"

TRANSACTION_TYPES = ("deposit", "withdraw", "buy", "sell", "income")
INTERACTION_KINDS = ("inquiry", "complaint", "survey", "call", "chat")
CAMPAIGN_GROUPS = ("treatment", "control")
GENDERS = ("F", "M", "U")
BUSINESS_LINES = ("p2p", "forex", "stock")
FUNNEL_STEPS = ("register", "real_name_auth", "bind_card", "invest_success")


@dataclass(frozen=True)
class Column:
    """One column: its kind (str, timestamp, date, int, float, bool), nullability and domain."""

    name: str
    kind: str
    nullable: bool = False
    low: float | None = None
    high: float | None = None
    low_exclusive: bool = False
    allowed: tuple[str, ...] | None = None
    pattern: str | None = None
    pattern_name: str | None = None  # what the pattern means, for quarantine reasons


@dataclass(frozen=True)
class TableSpec:
    """One table of the contract: columns, unique key and references to other tables."""

    name: str
    columns: tuple[Column, ...]
    required: bool = True
    unique: tuple[str, ...] = ()
    references: dict[str, str] = field(default_factory=dict)  # column -> table keyed by it

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]


CUSTOMERS = TableSpec(
    "customers",
    (
        Column(CUSTOMER_ID, "str"),
        Column("signup_at", "timestamp"),
        Column("birth_year", "int", nullable=True, low=1900, high=2100),
        Column("gender", "str", allowed=GENDERS),
        Column("occupation", "str", nullable=True),
        Column("income_band", "int", nullable=True, low=1, high=5),
        Column("city_tier", "int", nullable=True, low=1, high=4),
        Column("channel", "str", nullable=True),
        Column("risk_level", "int", nullable=True, low=1, high=5),
        Column("kyc_verified", "bool"),
        Column("marketing_opt_out", "bool"),
    ),
    unique=(CUSTOMER_ID,),
)

PRODUCTS = TableSpec(
    "products",
    (
        Column(PRODUCT_ID, "str"),
        Column("name", "str"),
        Column("category", "str"),
        Column("risk_level", "int", low=1, high=5),
        Column("min_amount", "float", low=0),
        Column("is_active", "bool"),
        Column("qualified_only", "bool"),
    ),
    unique=(PRODUCT_ID,),
)

TRANSACTIONS = TableSpec(
    "transactions",
    (
        Column(CUSTOMER_ID, "str"),
        Column(PRODUCT_ID, "str", nullable=True),
        Column(TS, "timestamp"),
        Column("type", "str", allowed=TRANSACTION_TYPES),
        Column("amount", "float", low=0, low_exclusive=True),
    ),
    references={CUSTOMER_ID: "customers", PRODUCT_ID: "products"},
)

EVENTS = TableSpec(
    "events",
    (
        Column(CUSTOMER_ID, "str"),
        Column(TS, "timestamp"),
        Column("event", "str", pattern=r"^[a-z][a-z0-9_]*$", pattern_name="snake_case"),
        Column("page", "str", nullable=True),
        Column(PRODUCT_ID, "str", nullable=True),
        Column("properties", "str", nullable=True),
    ),
    references={CUSTOMER_ID: "customers", PRODUCT_ID: "products"},
)

BALANCES = TableSpec(
    "balances",
    (
        Column(CUSTOMER_ID, "str"),
        Column("date", "timestamp"),
        Column("total_assets", "float", low=0),
    ),
    required=False,
    unique=(CUSTOMER_ID, "date"),
    references={CUSTOMER_ID: "customers"},
)

CAMPAIGNS = TableSpec(
    "campaigns",
    (
        Column("campaign_id", "str"),
        Column(CUSTOMER_ID, "str"),
        Column("sent_at", "timestamp"),
        Column("channel", "str"),
        Column("group", "str", allowed=CAMPAIGN_GROUPS),
        Column(PRODUCT_ID, "str", nullable=True),
    ),
    required=False,
    unique=("campaign_id", CUSTOMER_ID),
    references={CUSTOMER_ID: "customers", PRODUCT_ID: "products"},
)

INTERACTIONS = TableSpec(
    "interactions",
    (
        Column(CUSTOMER_ID, "str"),
        Column(TS, "timestamp"),
        Column("kind", "str", allowed=INTERACTION_KINDS),
        Column("score", "float", nullable=True),
    ),
    required=False,
    references={CUSTOMER_ID: "customers"},
)

SPECS: dict[str, TableSpec] = {
    s.name: s
    for s in (CUSTOMERS, PRODUCTS, TRANSACTIONS, EVENTS, BALANCES, CAMPAIGNS, INTERACTIONS)
}
# Order matters: referenced tables are validated before the tables that point at them.
TABLE_ORDER = (
    "customers",
    "products",
    "transactions",
    "events",
    "balances",
    "campaigns",
    "interactions",
)
