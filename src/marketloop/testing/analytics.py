"""A tiny hand-made shop of events for analysis tests, and a fake alert webhook.

`small_shop()` is five customers over one week (Monday 2026-11-02 to Sunday,
UTC) whose funnel, retention, paths, attribution, frequency and
distributions are worked out by hand in `tests/analytics`. `load_duckdb` /
`load_clickhouse` put it (or any rows of the same shape) in a database.
`RecordingAlertSink` is the `AlertSink` port in memory: it keeps every alert
it is given, and can be told to fail, so tests see what would be posted.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from marketloop.core.bank import LogicalType
from marketloop.ports.analytics import AlertDelivery, AlertMessage
from marketloop.testing.segments import EVENT_COLUMNS, ddl, inserts

T = LogicalType
MONDAY = datetime(2026, 11, 2, tzinfo=UTC)
WEEK_END = MONDAY + timedelta(days=7)
CUSTOMER_COLUMNS: dict[str, LogicalType] = {"cust_no": T.TEXT, "city": T.TEXT, "vip_level": T.TEXT}
CITIES = {"C1": "上海", "C2": "上海", "C3": "杭州", "C4": "杭州", "C5": "北京"}
AGES = {"C1": 35, "C2": 28, "C3": 41, "C4": None, "C5": 52}

# (customer, day after MONDAY, "HH:MM", event, properties)
SHOP: tuple[tuple[str, int, str, str, dict[str, Any]], ...] = (
    ("C1", -1, "09:00", "touch_delivered", {"campaign": "A"}),
    ("C1", 0, "08:00", "touch_delivered", {"campaign": "B"}),
    ("C1", 0, "09:00", "view_wealth", {"channel": "app", "amount": 100}),
    ("C1", 0, "09:05", "use_yield_calculator", {}),
    ("C1", 0, "09:10", "buy_wealth", {"amount": 5000}),
    ("C1", 1, "10:00", "login", {}),
    ("C1", 3, "10:00", "login", {}),
    ("C2", 0, "09:00", "touch_delivered", {"campaign": "B"}),
    ("C2", 0, "10:00", "view_wealth", {"channel": "h5"}),
    ("C2", 0, "10:30", "buy_wealth", {"amount": 2000}),
    ("C2", 2, "11:00", "view_wealth", {"channel": "app"}),
    ("C2", 2, "11:10", "use_yield_calculator", {}),
    ("C2", 5, "11:00", "login", {}),
    ("C3", 1, "08:00", "view_wealth", {"channel": "app"}),
    ("C3", 1, "08:01", "login", {}),
    ("C3", 1, "08:02", "use_yield_calculator", {}),
    ("C3", 3, "09:00", "buy_wealth", {"amount": 1000}),
    ("C4", 0, "12:00", "touch_delivered", {"campaign": "A"}),
    ("C4", 1, "11:00", "touch_delivered", {"campaign": "A"}),
    ("C4", 1, "11:30", "touch_delivered", {"campaign": "C"}),
    ("C4", 1, "12:00", "use_yield_calculator", {}),
    ("C4", 1, "12:05", "view_wealth", {"channel": "app"}),
    ("C4", 1, "12:06", "use_yield_calculator", {}),
    ("C4", 1, "12:07", "buy_wealth", {"amount": 3000}),
    ("C5", 0, "07:00", "login", {}),
)


def event_row(n: int, customer: str, moment: datetime, event: str, properties: dict[str, Any]) -> dict[str, Any]:
    """One row of the `events` table (the columns segment and analysis SQL read)."""
    return {
        "message_id": f"M{n:05d}",
        "type": "track",
        "event": event,
        "user_id": customer,
        "timestamp": moment,
        "received_at": moment,
        "source": "test",
        "properties": json.dumps(properties),
        "load_seq": n,
    }


def small_shop() -> list[dict[str, Any]]:
    """The rows of `SHOP` as events."""
    rows = []
    for n, (customer, day, clock, event, properties) in enumerate(SHOP, start=1):
        hour, minute = (int(part) for part in clock.split(":"))
        moment = MONDAY + timedelta(days=day, hours=hour, minutes=minute)
        rows.append(event_row(n, customer, moment, event, properties))
    return rows


def customer_rows() -> list[dict[str, Any]]:
    return [
        {"cust_no": c, "city": city, "vip_level": "gold" if c in {"C1", "C3"} else None} for c, city in CITIES.items()
    ]


def tables(events: Sequence[dict[str, Any]]) -> list[tuple[str, dict[str, LogicalType], Sequence[dict[str, Any]]]]:
    profiles = [{"cust_no": c, "age": age} for c, age in AGES.items()]
    return [
        ("customers", CUSTOMER_COLUMNS, customer_rows()),
        ("customer_profile", {"cust_no": T.TEXT, "age": T.INTEGER}, profiles),
        ("events", EVENT_COLUMNS, events),
    ]


def duckdb_rows(con: Any, sql: str) -> list[dict[str, Any]]:
    """The rows of `sql` on a DuckDB connection as column → value."""
    found = con.execute(sql)
    names = [column[0] for column in found.description or []]
    return [dict(zip(names, row, strict=True)) for row in found.fetchall()]


def load_duckdb(con: Any, events: Sequence[dict[str, Any]]) -> None:
    """Create `customers`, `customer_profile` (age) and `events` in a DuckDB connection and insert the rows."""
    for name, columns, rows in tables(events):
        con.execute(ddl("duckdb", name, columns))
        statement = inserts("duckdb", name, columns, rows)
        if statement:
            con.execute(statement)


def load_clickhouse(session: Any, events: Sequence[dict[str, Any]]) -> None:
    """Create `customers`, `customer_profile` (age) and `events` in the current database of a chDB session."""
    for name, columns, rows in tables(events):
        session.query(ddl("clickhouse", name, columns))
        statement = inserts("clickhouse", name, columns, rows)
        if statement:
            session.query(statement)


@dataclass
class RecordingAlertSink:
    """The `AlertSink` port in memory: records what it would post; `fail_with` makes deliveries fail."""

    sent: list[tuple[str, AlertMessage]] = field(default_factory=list)
    fail_with: str | None = None

    def deliver(self, url: str, message: AlertMessage) -> AlertDelivery:
        if self.fail_with is not None:
            return AlertDelivery(ok=False, status=None, error=self.fail_with)
        self.sent.append((url, message))
        return AlertDelivery(ok=True, status=200, error=None)
