"""What a segment can ask about and where it lives: the catalog, as data.

A `Catalog` lists the customer fields (name, type, relation, column, allowed
values), the relations behind tags, holdings, transactions and events, and
the enumerations a filter may use. The resolver binds names against it; the
printers read relation and column names from it; nothing else knows a table
name. It grows without code: `with_columns` adds the columns a relation
really has (the service adds `customer_profile`'s at count time) and
`with_tags` the tags the tag engine has defined.

`CUSTOMER_EVENTS` is the one place that says how an event row names its
customer: `events.user_id` in `DEFAULT_CATALOG`, which the engine's own tests
use on hand-made tables. The product runs on `ONE_ID_CATALOG`: events through
the warehouse's `customer_events` view, which gives each event the cust_no of
its OneID (apps log in with their own user ids, not the customer number).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from marketloop.core.bank import (
    CUSTOMERS,
    CounterpartyType,
    Direction,
    LogicalType,
    ProductRisk,
    ProductType,
    TransactionChannel,
)

T = LogicalType


@dataclass(frozen=True, kw_only=True)
class Field:
    """A customer attribute a condition may test: where it lives and what values it takes."""

    name: str
    relation: str
    column: str
    type: LogicalType
    allowed: tuple[str, ...] = ()  # the only values a text field takes, when it is an enumeration
    description: str = ""


@dataclass(frozen=True, kw_only=True)
class EventSource:
    """Where a customer's behaviour events are and which columns mean what."""

    relation: str = "events"
    customer: str = "user_id"  # the column holding the customer's cust_no
    time: str = "timestamp"
    name: str = "event"
    properties: str = "properties"  # JSON object of the event's properties


# The one place events meet customers (see the module docstring): `events.user_id` in the
# self-contained catalog of the engine's tests; `ONE_ID_CATALOG` (below) is the product's.
CUSTOMER_EVENTS = EventSource()


@dataclass(frozen=True, kw_only=True)
class Relations:
    """The tables behind each kind of condition; `customers` is the population (one row per cust_no)."""

    customers: str = "customers"
    profile: str = "customer_profile"
    tags: str = "customer_tags"  # (cust_no, tag, value, as_of): the current value of each tag
    holdings: str = "holdings"
    products: str = "products"
    transactions: str = "transactions"


# Columns never offered to segments: personal data (PIPL) and identity links.
HIDDEN_COLUMNS = frozenset(
    {c.name for c in CUSTOMERS.columns if c.personal} | {"name_prefix", "anonymous_ids", "name_enc", "phone_enc"}
)


def _customer_fields() -> tuple[Field, ...]:
    return tuple(
        Field(
            name=c.name,
            relation="customers",
            column=c.name,
            type=c.type,
            allowed=c.allowed,
            description=c.description,
        )
        for c in CUSTOMERS.columns
        if c.name not in HIDDEN_COLUMNS
    )


def _profile(name: str, type_: LogicalType, description: str = "") -> Field:
    return Field(name=name, relation="customer_profile", column=name, type=type_, description=description)


# Figures of the materialised customer 360 (`marketloop.profiles`) that `customers` does not hold.
# `Catalog.with_columns` adds whatever else the built profile has.
PROFILE_FIELDS: tuple[Field, ...] = (
    _profile("age", T.INTEGER, "age in years on the profile's as-of date"),
    _profile("birthday_in_days", T.INTEGER, "days until the next birthday (0 = today)"),
    _profile("tenure_months", T.INTEGER, "months since the customer opened"),
    _profile("aum", T.DECIMAL, "assets under management (金融资产)"),
    _profile("aum_30d_ago", T.DECIMAL),
    _profile("aum_trend_pct", T.DOUBLE, "AUM change against 30 days ago, in percent"),
    _profile("deposit_balance", T.DECIMAL),
    _profile("wealth_balance", T.DECIMAL),
    _profile("fund_balance", T.DECIMAL),
    _profile("insurance_balance", T.DECIMAL),
    _profile("loan_balance", T.DECIMAL),
    _profile("mortgage_balance", T.DECIMAL),
    _profile("credit_card_balance", T.DECIMAL),
    _profile("credit_card_limit", T.DECIMAL),
    _profile("credit_card_utilisation", T.DOUBLE),
    _profile("liability_total", T.DECIMAL),
    _profile("products_held", T.INTEGER),
    _profile("contribution", T.DECIMAL, "annual contribution proxy (贡献度)"),
    _profile("next_maturity_date", T.DATE),
    _profile("wealth_maturing_7d", T.DECIMAL),
    _profile("wealth_maturing_30d", T.DECIMAL),
    _profile("deposit_maturing_7d", T.DECIMAL),
    _profile("deposit_maturing_30d", T.DECIMAL),
    _profile("inflow_30d", T.DECIMAL),
    _profile("outflow_30d", T.DECIMAL),
    _profile("txn_count_30d", T.INTEGER),
    _profile("salary_30d", T.DECIMAL),
    _profile("last_salary_at", T.TIMESTAMP),
    _profile("other_bank_out_30d", T.DECIMAL),
    _profile("payroll_customer", T.BOOLEAN, "代发客户"),
    _profile("risk_assessment_expired", T.BOOLEAN),
    _profile("last_seen_at", T.TIMESTAMP),
    _profile("events_30d", T.INTEGER),
    _profile("logins_30d", T.INTEGER),
    _profile("app_logins_30d", T.INTEGER),
    _profile("active_days_30d", T.INTEGER),
    _profile("wealth_page_views_30d", T.INTEGER),
    _profile("fund_page_views_30d", T.INTEGER),
    _profile("vip_tier", T.TEXT, "VIP tier by AUM"),
    _profile("clv", T.DOUBLE, "customer lifetime value"),
)


@dataclass(frozen=True, kw_only=True)
class Catalog:
    """Every field, relation and enumeration a definition may use."""

    fields: tuple[Field, ...]
    events: EventSource = CUSTOMER_EVENTS
    relations: Relations = field(default_factory=Relations)
    tags: frozenset[str] | None = None  # the known tags; None while no tag library restricts them
    product_types: tuple[str, ...] = tuple(p.value for p in ProductType)
    risk_levels: tuple[str, ...] = tuple(r.value for r in ProductRisk)
    directions: tuple[str, ...] = tuple(d.value for d in Direction)
    counterparty_types: tuple[str, ...] = tuple(c.value for c in CounterpartyType)
    channels: tuple[str, ...] = tuple(c.value for c in TransactionChannel)

    def field(self, name: str) -> Field | None:
        for found in self.fields:
            if found.name == name:
                return found
        return None

    def names(self) -> list[str]:
        return [f.name for f in self.fields]

    def with_columns(self, relation: str, columns: Mapping[str, LogicalType]) -> Catalog:
        """This catalog plus a field for each column of `relation` not yet known (hidden columns excepted)."""
        known = {f.name for f in self.fields}
        added = tuple(
            Field(name=name, relation=relation, column=name, type=type_)
            for name, type_ in columns.items()
            if name not in known
            and name not in HIDDEN_COLUMNS
            and name != "cust_no"
            and not name.endswith(("_enc", "_hash"))
        )
        return replace(self, fields=self.fields + added)

    def with_tags(self, tags: Iterable[str]) -> Catalog:
        return replace(self, tags=frozenset(tags))


DEFAULT_CATALOG = Catalog(fields=_customer_fields() + PROFILE_FIELDS)
# What the product runs on: a customer's events are those OneID gives their cust_no (the warehouse's
# `customer_events` view, which falls back to `user_id` for events no OneID links to a customer).
ONE_ID_CATALOG = replace(DEFAULT_CATALOG, events=EventSource(relation="customer_events", customer="cust_no"))
