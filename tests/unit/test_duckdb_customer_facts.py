"""`DuckDBCustomerFacts`: one lookup per batch; profile rows cached until the profile is refreshed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from marketloop.adapters.duckdb_customer_facts import DuckDBCustomerFacts
from marketloop.adapters.duckdb_identity import DuckDBIdentityStore
from marketloop.adapters.duckdb_warehouse import DuckDBWarehouse
from marketloop.core.bank import CUSTOMERS
from marketloop.core.events import Event
from marketloop.ports.customer_facts import KINDS, HoldingRow
from marketloop.testing.clock import FrozenClock
from marketloop.testing.segments import ddl

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def _event(name: str, at: datetime, user: str = "C1", message_id: str | None = None) -> Event:
    return Event(
        message_id=message_id or f"{user}-{name}-{at.isoformat()}",
        type="track",
        source_id="app",
        received_at=at,
        timestamp=at,
        event=name,
        user_id=user,
        properties={"amount": 5},
    )


@pytest.fixture
def warehouse(tmp_path: Path) -> Iterator[DuckDBWarehouse]:
    opened = DuckDBWarehouse(tmp_path / "events.duckdb")
    DuckDBIdentityStore(opened.cursor, opened.write_lock)
    con = opened.cursor()
    con.execute(ddl("duckdb", "customers", {c.name: c.type for c in CUSTOMERS.columns}))
    con.execute("INSERT INTO customers (cust_no, branch_id) VALUES ('C1', 'B01')")
    con.execute("CREATE TABLE customer_profile (cust_no VARCHAR, aum DECIMAL(18, 2), branch_id VARCHAR)")
    con.execute("INSERT INTO customer_profile VALUES ('C1', 1000, NULL)")
    con.execute("CREATE TABLE profile_refreshes (refreshed_at TIMESTAMPTZ, generation VARCHAR)")
    con.execute("INSERT INTO profile_refreshes VALUES ($at, 'g1')", {"at": T0})
    con.execute("CREATE TABLE customer_tags (cust_no VARCHAR, tag VARCHAR, value VARCHAR, as_of TIMESTAMPTZ)")
    con.execute("INSERT INTO customer_tags VALUES ('C1', 'rfm', 'champion', $at)", {"at": T0})
    con.execute(
        "CREATE TABLE products (product_code VARCHAR, product_type VARCHAR, risk_level VARCHAR);"
        "INSERT INTO products VALUES ('W01', 'wealth', 'R2');"
        "CREATE TABLE holdings (cust_no VARCHAR, product_code VARCHAR, balance DECIMAL(18, 2), valid_from DATE,"
        " valid_to DATE, maturity_date DATE);"
        "INSERT INTO holdings VALUES ('C1', 'W01', 50000, '2026-01-01', NULL, '2026-12-01')"
    )
    yield opened
    opened.close()


def _load(con: duckdb.DuckDBPyConnection, event: Event, seq: int) -> None:
    con.execute(
        "INSERT INTO events (message_id, type, event, user_id, timestamp, received_at, source, properties, load_seq)"
        " VALUES ($id, 'track', $name, $user, $at, $at, 'app', '{\"amount\": 5}', $seq)",
        {"id": event.message_id, "name": event.event, "user": event.user_id, "at": event.timestamp, "seq": seq},
    )


def test_a_batch_sees_loaded_events_its_own_earlier_events_and_the_profile(warehouse: DuckDBWarehouse) -> None:
    facts = DuckDBCustomerFacts(warehouse.cursor, FrozenClock(T0).monotonic)
    loaded = _event("login", T0 - DAY / 2)
    _load(warehouse.cursor(), loaded, 1)
    _load(warehouse.cursor(), _event("login", T0 - 3 * DAY), 2)  # before the lookback
    first, second = _event("fund_view", T0), _event("fund_view", T0 + timedelta(seconds=1))
    batch = [("C1", first), ("C1", second), ("X9", _event("login", T0, user="X9"))]
    facts.prepare(batch, lookback=DAY, kinds=KINDS)

    record = facts.record("C1", first, lookback=DAY, kinds=KINDS)
    assert record is not None
    assert record.attributes["aum"] == Decimal(1000)
    assert record.attributes["branch_id"] == "B01"  # a NULL profile column keeps the customer's value
    assert record.tags == {"rfm": frozenset({"champion"})}
    assert record.holdings == [
        HoldingRow(
            product_code="W01",
            balance=Decimal(50000),
            valid_from=date(2026, 1, 1),
            maturity_date=date(2026, 12, 1),
            product_type="wealth",
            risk_level="R2",
        )
    ]
    assert sorted(e.message_id for e in record.events) == sorted([loaded.message_id, first.message_id])
    later = facts.record("C1", second, lookback=DAY, kinds=KINDS)
    assert later is not None
    assert len(later.events) == 3
    assert facts.record("X9", batch[2][1], lookback=DAY, kinds=KINDS) is None  # not in customers


def test_profile_rows_are_cached_until_a_new_profile_generation(warehouse: DuckDBWarehouse) -> None:
    facts = DuckDBCustomerFacts(warehouse.cursor, FrozenClock(T0).monotonic)
    kinds = frozenset({"attributes"})

    def aum() -> object:
        event = _event("login", T0)
        facts.prepare([("C1", event)], lookback=DAY, kinds=kinds)
        record = facts.record("C1", event, lookback=DAY, kinds=kinds)
        assert record is not None
        return record.attributes["aum"]

    assert aum() == Decimal(1000)
    con = warehouse.cursor()
    con.execute("UPDATE customer_profile SET aum = 2000")
    assert aum() == Decimal(1000)  # cached: no query per batch for unchanged profiles
    con.execute("INSERT INTO profile_refreshes VALUES ($at, 'g2')", {"at": T0 + DAY})
    assert aum() == Decimal(2000)
