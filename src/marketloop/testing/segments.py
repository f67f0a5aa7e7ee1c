"""A small bank for segment tests: the same customers as Python facts and as SQL tables.

`SmallBank` holds rows of customers, profile, tags, products, holdings,
transactions and events. `facts` gives each customer's `CustomerFacts` for
`segments.evaluate`; `ddl` and `inserts` give the tables in DuckDB or
ClickHouse, so a test can hold the printed SQL's answer against the Python
evaluator's. `random_bank` draws one from a seeded `Random`.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from marketloop.core.bank import CUSTOMERS, HOLDINGS, PRODUCTS, TRANSACTIONS, LogicalType, TableSpec
from marketloop.segments.catalog import DEFAULT_CATALOG
from marketloop.segments.evaluate import CustomerFacts, EventFact, HoldingFact, TransactionFact
from marketloop.segments.printers import printer_for
from marketloop.segments.printers.spelling import Spelling

T = LogicalType
AS_OF = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)

# customer_profile columns of the small bank (a subset of the real profile's).
PROFILE_COLUMNS: dict[str, LogicalType] = {
    "age": T.INTEGER,
    "aum": T.DECIMAL,
    "aum_trend_pct": T.DOUBLE,
    "last_seen_at": T.TIMESTAMP,
    "payroll_customer": T.BOOLEAN,
    "vip_tier": T.TEXT,
}
EVENT_COLUMNS: dict[str, LogicalType] = {
    "message_id": T.TEXT,
    "type": T.TEXT,
    "event": T.TEXT,
    "user_id": T.TEXT,
    "timestamp": T.TIMESTAMP,
    "received_at": T.TIMESTAMP,
    "source": T.TEXT,
    "properties": T.TEXT,
    "load_seq": T.INTEGER,
}
TAG_COLUMNS: dict[str, LogicalType] = {"cust_no": T.TEXT, "tag": T.TEXT, "value": T.TEXT, "as_of": T.TIMESTAMP}

PRODUCT_ROWS: tuple[dict[str, Any], ...] = (
    {"product_code": "D01", "name": "demand deposit", "product_type": "deposit", "risk_level": "R1"},
    {"product_code": "W01", "name": "wealth 90d", "product_type": "wealth", "risk_level": "R2"},
    {"product_code": "W02", "name": "wealth equity", "product_type": "wealth", "risk_level": "R4"},
    {"product_code": "F01", "name": "bond fund", "product_type": "fund", "risk_level": "R3"},
    {"product_code": "L01", "name": "mortgage", "product_type": "loan", "risk_level": None},
)
EVENT_NAMES = ("login", "view_wealth", "use_yield_calculator", "buy_wealth", "fund_page_view")


@dataclass(kw_only=True)
class SmallBank:
    customers: list[dict[str, Any]] = field(default_factory=list)
    profiles: list[dict[str, Any]] = field(default_factory=list)
    tags: list[dict[str, Any]] = field(default_factory=list)
    products: list[dict[str, Any]] = field(default_factory=lambda: [dict(p) for p in PRODUCT_ROWS])
    holdings: list[dict[str, Any]] = field(default_factory=list)
    transactions: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)


def facts(bank: SmallBank) -> dict[str, CustomerFacts]:
    """Each customer as the evaluator sees them."""
    products = {p["product_code"]: p for p in bank.products}
    found: dict[str, CustomerFacts] = {}
    for customer in bank.customers:
        cust_no = customer["cust_no"]
        profile = next((p for p in bank.profiles if p["cust_no"] == cust_no), {})
        tags: dict[str, set[str | None]] = {}
        for tag in (t for t in bank.tags if t["cust_no"] == cust_no):
            tags.setdefault(tag["tag"], set()).add(tag["value"])
        found[cust_no] = CustomerFacts(
            cust_no=cust_no,
            attributes=customer | profile,
            tags={name: frozenset(values) for name, values in tags.items()},
            holdings=[_holding(h, products) for h in bank.holdings if h["cust_no"] == cust_no],
            transactions=[_transaction(t) for t in bank.transactions if t["cust_no"] == cust_no],
            events=[
                EventFact(event=e["event"], timestamp=e["timestamp"], properties=json.loads(e["properties"]))
                for e in bank.events
                if e["user_id"] == cust_no
            ],
        )
    return found


def _holding(row: dict[str, Any], products: dict[str, dict[str, Any]]) -> HoldingFact:
    product = products.get(row["product_code"], {})
    return HoldingFact(
        product_code=row["product_code"],
        balance=row["balance"],
        valid_from=row["valid_from"],
        valid_to=row["valid_to"],
        maturity_date=row["maturity_date"],
        product_type=product.get("product_type"),
        risk_level=product.get("risk_level"),
    )


def _transaction(row: dict[str, Any]) -> TransactionFact:
    return TransactionFact(
        ts=row["ts"],
        amount=row["amount"],
        direction=row["direction"],
        counterparty_type=row["counterparty_type"],
        channel=row["channel"],
        category=row["category"],
    )


# -- as tables ----------------------------------------------------------------------

_DUCKDB_TYPES = {
    T.TEXT: "VARCHAR",
    T.INTEGER: "BIGINT",
    T.DECIMAL: "DECIMAL(18, 2)",
    T.DOUBLE: "DOUBLE",
    T.BOOLEAN: "BOOLEAN",
    T.DATE: "DATE",
    T.TIMESTAMP: "TIMESTAMPTZ",
}
_CLICKHOUSE_TYPES = {
    T.TEXT: "String",
    T.INTEGER: "Int64",
    T.DECIMAL: "Decimal(18, 2)",
    T.DOUBLE: "Float64",
    T.BOOLEAN: "Bool",
    T.DATE: "Date32",
    T.TIMESTAMP: "DateTime64(6, 'UTC')",
}


def _spec_columns(spec: TableSpec) -> dict[str, LogicalType]:
    return {c.name: c.type for c in spec.columns}


def tables(bank: SmallBank) -> Iterator[tuple[str, dict[str, LogicalType], Sequence[dict[str, Any]]]]:
    """(name, columns, rows) of every table the segment SQL reads."""
    yield "customers", _spec_columns(CUSTOMERS), bank.customers
    yield "customer_profile", {"cust_no": T.TEXT} | PROFILE_COLUMNS, bank.profiles
    yield "customer_tags", TAG_COLUMNS, bank.tags
    yield "products", _spec_columns(PRODUCTS), bank.products
    yield "holdings", _spec_columns(HOLDINGS), bank.holdings
    yield "transactions", _spec_columns(TRANSACTIONS), bank.transactions
    yield "events", EVENT_COLUMNS, bank.events


def ddl(dialect: str, name: str, columns: dict[str, LogicalType], database: str = "") -> str:
    spelling = printer_for(dialect, DEFAULT_CATALOG)
    if dialect == "clickhouse":
        typed = ", ".join(f"{spelling.ident(c)} Nullable({_CLICKHOUSE_TYPES[t]})" for c, t in columns.items())
        return f"CREATE TABLE {database}{name} ({typed}) ENGINE = Memory"
    typed = ", ".join(f"{spelling.ident(c)} {_DUCKDB_TYPES[t]}" for c, t in columns.items())
    return f"CREATE TABLE {name} ({typed})"


def inserts(dialect: str, name: str, columns: dict[str, LogicalType], rows: Sequence[dict[str, Any]]) -> str | None:
    """One INSERT … VALUES of every row, spelled by the dialect's printer; None when there are no rows."""
    if not rows:
        return None
    spelling = printer_for(dialect, DEFAULT_CATALOG)
    values = ", ".join("(" + ", ".join(_literal(spelling, row.get(c)) for c in columns) + ")" for row in rows)
    return f"INSERT INTO {name} ({', '.join(spelling.ident(c) for c in columns)}) VALUES {values}"


def _literal(spelling: Spelling, value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return spelling.boolean(value)
    if isinstance(value, datetime):
        return spelling.timestamp(value)
    if isinstance(value, date):
        return spelling.date(value)
    if isinstance(value, int | Decimal):
        return spelling.number(value)
    if isinstance(value, float):
        return repr(value)
    return spelling.string(str(value))


# -- a random bank from a seeded Random ------------------------------------------------------


def random_bank(rng: random.Random, customers: int = 40, as_of: datetime = AS_OF) -> SmallBank:
    """A bank with every kind of row, dense enough that most conditions select some but not all customers."""
    bank = SmallBank()
    for i in range(customers):
        cust_no = f"C{i:04d}"
        bank.customers.append(_random_customer(rng, cust_no, as_of))
        if rng.random() < 0.8:
            bank.profiles.append(_random_profile(rng, cust_no, as_of))
        for tag in ("rfm", "lifecycle"):
            if rng.random() < 0.5:
                value = rng.choice(["a", "b", None])
                bank.tags.append({"cust_no": cust_no, "tag": tag, "value": value, "as_of": as_of})
        bank.holdings += [_random_holding(rng, cust_no, i, k, as_of) for k in range(rng.randint(0, 3))]
        bank.transactions += [_random_transaction(rng, cust_no, i, k, as_of) for k in range(rng.randint(0, 4))]
        bank.events += [_random_event(rng, cust_no, i, k, as_of) for k in range(rng.randint(0, 8))]
    return bank


def _days(rng: random.Random, low: int, high: int) -> timedelta:
    return timedelta(days=rng.randint(low, high))


def _random_customer(rng: random.Random, cust_no: str, as_of: datetime) -> dict[str, Any]:
    return {
        "cust_no": cust_no,
        "gender": rng.choice(["M", "F", None]),
        "birth_date": as_of.date() - _days(rng, 20 * 365, 70 * 365),
        "city": rng.choice(["上海", "杭州", "北京", None]),
        "city_tier": rng.choice([1, 2, 3, None]),
        "risk_tolerance": rng.choice(["C1", "C2", "C3", "C4", "C5", None]),
        "vip_level": rng.choice(["standard", "gold", "diamond", None]),
        "branch_id": rng.choice(["B01", "B02"]),
        "open_date": as_of.date() - _days(rng, 0, 800),
        "status": rng.choice(["active", "dormant"]),
        "fraud_flag": rng.choice([True, False, None]),
    }


def _random_profile(rng: random.Random, cust_no: str, as_of: datetime) -> dict[str, Any]:
    return {
        "cust_no": cust_no,
        "age": rng.choice([rng.randint(20, 70), None]),
        "aum": rng.choice([Decimal(rng.randint(0, 2_000_000)) / 100, None]),
        "aum_trend_pct": rng.choice([round(rng.uniform(-50, 50), 2), None]),
        "last_seen_at": rng.choice([as_of - timedelta(minutes=rng.randint(0, 60 * 24 * 60)), None]),
        "payroll_customer": rng.choice([True, False]),
        "vip_tier": rng.choice(["standard", "gold", None]),
    }


def _random_holding(rng: random.Random, cust_no: str, i: int, k: int, as_of: datetime) -> dict[str, Any]:
    start = as_of.date() - _days(rng, -5, 400)
    return {
        "holding_id": f"H{i}-{k}",
        "cust_no": cust_no,
        "product_code": rng.choice([p["product_code"] for p in PRODUCT_ROWS]),
        "balance": Decimal(rng.randint(-1000, 10_000_000)) / 100,
        "valid_from": start,
        "valid_to": rng.choice([None, start + _days(rng, 0, 400)]),
        "maturity_date": rng.choice([None, as_of.date() + _days(rng, -3, 40)]),
    }


def _random_transaction(rng: random.Random, cust_no: str, i: int, k: int, as_of: datetime) -> dict[str, Any]:
    return {
        "txn_id": f"T{i}-{k}",
        "cust_no": cust_no,
        "ts": as_of - timedelta(hours=rng.randint(-24, 24 * 40)),
        "amount": Decimal(rng.randint(1, 20_000_000)) / 100,
        "direction": rng.choice(["in", "out"]),
        "counterparty_type": rng.choice(["other_bank", "employer", "merchant", None]),
        "channel": rng.choice(["mobile", "counter", None]),
        "category": rng.choice(["salary", "transfer", None]),
    }


def _random_event(rng: random.Random, cust_no: str, i: int, k: int, as_of: datetime) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    if rng.random() < 0.7:
        properties["amount"] = rng.choice([rng.randint(0, 500), str(rng.randint(0, 500)), "n/a", 12.5])
    if rng.random() < 0.7:
        properties["fund_type"] = rng.choice(["equity", "bond"])
    if rng.random() < 0.3:
        properties["first_time"] = rng.choice([True, False])
    moment = as_of - timedelta(minutes=5 * rng.randint(-20, 12 * 24 * 12))
    return {
        "message_id": f"M{i}-{k}",
        "type": "track",
        "event": rng.choice(EVENT_NAMES),
        "user_id": cust_no,
        "timestamp": moment,
        "received_at": moment,
        "source": "test",
        "properties": json.dumps(properties),
        "load_seq": i * 100 + k,
    }
