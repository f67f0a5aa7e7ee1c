"""A hand-made bank in an in-memory DuckDB, with the tag service over it (SQLite operational store in a temp dir).

Customers (as of 2026-11-24 08:00 UTC):
* A: frequent, recent and large transactions; holds wealth; logs in.   → RFM 重要价值
* B: one small transaction 70 days ago; dormant status.                → RFM 一般挽留
* C: two large transactions this week.                                 → RFM 重要发展
* D: ten transactions 40–80 days ago, large in total.                  → RFM 重要保持
* E: opened 10 days ago, nothing else.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from marketloop.adapters.duckdb_tags import DuckDBTagWarehouse
from marketloop.adapters.sql.engine import create_engine, upgrade
from marketloop.adapters.sql.tags import SqlTagRepository
from marketloop.tags.service import TagService
from marketloop.testing.clock import FrozenClock

AS_OF = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
DAY = AS_OF.date()

SCHEMA = """
CREATE TABLE customers (cust_no VARCHAR, gender VARCHAR, city VARCHAR, status VARCHAR, open_date DATE,
                        risk_tolerance VARCHAR, vip_level VARCHAR, birth_date DATE);
CREATE TABLE customer_profile (cust_no VARCHAR, age BIGINT, aum DECIMAL(18, 2), aum_trend_pct DOUBLE,
                               products_held BIGINT, last_seen_at TIMESTAMPTZ, payroll_customer BOOLEAN,
                               vip_tier VARCHAR);
CREATE TABLE products (product_code VARCHAR, name VARCHAR, product_type VARCHAR, risk_level VARCHAR);
CREATE TABLE holdings (holding_id VARCHAR, cust_no VARCHAR, product_code VARCHAR, balance DECIMAL(18, 2),
                       valid_from DATE, valid_to DATE, maturity_date DATE);
CREATE TABLE transactions (txn_id VARCHAR, cust_no VARCHAR, ts TIMESTAMPTZ, amount DECIMAL(18, 2),
                           direction VARCHAR, channel VARCHAR, counterparty_type VARCHAR, category VARCHAR);
CREATE TABLE events (message_id VARCHAR, event VARCHAR, user_id VARCHAR, "timestamp" TIMESTAMPTZ,
                     properties VARCHAR, load_seq BIGINT);
"""

CUSTOMERS = [
    ("A", "F", "上海", "active", date(2015, 1, 1), "C4", "gold", date(1980, 1, 1)),
    ("B", "M", "北京", "dormant", date(2012, 1, 1), "C2", "standard", date(1950, 1, 1)),
    ("C", "M", "上海", "active", date(2020, 1, 1), "C3", "gold", date(1990, 1, 1)),
    ("D", "F", "杭州", "active", date(2018, 1, 1), "C3", "diamond", date(1970, 1, 1)),
    ("E", "F", "杭州", "active", DAY - timedelta(days=10), "C1", "standard", date(2000, 1, 1)),
]
PROFILES = [
    ("A", 46, 800_000, 15.0, 4, AS_OF - timedelta(hours=5), True, "diamond"),
    ("B", 76, 50, -50.0, 1, None, False, "standard"),
    ("C", 36, 60_000, -25.0, 2, AS_OF - timedelta(days=2), True, "gold"),
    ("D", 56, 300_000, 0.0, 2, AS_OF - timedelta(days=40), False, "gold"),
    ("E", 26, 0, None, 0, None, False, "standard"),
]


def _txn(i: int, cust: str, days_ago: float, amount: int, category: str = "consumption") -> tuple[Any, ...]:
    return (f"T{i}", cust, AS_OF - timedelta(days=days_ago), amount, "out", "mobile", "merchant", category)


def transactions() -> list[tuple[Any, ...]]:
    rows = [_txn(i, "A", 1 + i, 20_000) for i in range(10)]  # recent, 10 in 90 days, 200k
    rows.append(_txn(100, "B", 70, 100))
    rows += [_txn(200, "C", 1, 30_000), _txn(201, "C", 3, 30_000)]
    rows += [_txn(300 + i, "D", 40 + 4 * i, 5_000) for i in range(10)]
    return rows


@dataclass
class Bank:
    con: duckdb.DuckDBPyConnection
    service: TagService
    clock: FrozenClock
    warehouse: DuckDBTagWarehouse


@pytest.fixture
def bank(tmp_path: Path) -> Iterator[Bank]:
    con = duckdb.connect(":memory:")
    con.execute(SCHEMA)
    con.executemany("INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?, ?, ?)", CUSTOMERS)
    con.executemany("INSERT INTO customer_profile VALUES (?, ?, ?, ?, ?, ?, ?, ?)", PROFILES)
    con.executemany(
        "INSERT INTO products VALUES (?, ?, ?, ?)", [("W1", "稳享", "wealth", "R2"), ("F1", "基金", "fund", "R3")]
    )
    con.execute(
        "INSERT INTO holdings VALUES ('H1', 'A', 'W1', 100000, DATE '2026-01-01', NULL, ?)",
        [DAY + timedelta(days=5)],
    )
    con.executemany("INSERT INTO transactions VALUES (?, ?, ?, ?, ?, ?, ?, ?)", transactions())
    con.execute(
        "INSERT INTO events VALUES ('E1', 'login', 'A', ?, '{}', 1), ('E2', 'wealth_product_view', 'C', ?, '{}', 2)",
        [AS_OF - timedelta(days=1), AS_OF - timedelta(days=2)],
    )
    engine = create_engine(f"sqlite:///{tmp_path / 'state.sqlite'}")
    upgrade(engine)
    clock = FrozenClock(AS_OF)
    warehouse = DuckDBTagWarehouse(con.cursor, _lock())
    try:
        yield Bank(con=con, service=TagService(SqlTagRepository(engine), warehouse, clock, starter=[]), clock=clock,
                   warehouse=warehouse)  # fmt: skip
    finally:
        engine.dispose()
        con.close()


def _lock() -> Any:
    import threading

    return threading.Lock()
