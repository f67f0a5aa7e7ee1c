"""The ClickHouse printer's SQL, executed in-process with chDB, selects what DuckDB and the evaluator select."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from marketloop.segments.catalog import DEFAULT_CATALOG
from marketloop.segments.evaluate import evaluate
from marketloop.segments.parse import parse_definition
from marketloop.segments.passes import plan
from marketloop.segments.printers import printer_for
from marketloop.segments.resolve import resolve
from marketloop.testing.segments import AS_OF, SmallBank, ddl, facts, inserts, random_bank, tables

chdb_session = pytest.importorskip("chdb.session")

SNAPSHOTS = Path(__file__).parent.parent / "snapshots" / "segments"
# Definitions that select some but not all of the random bank's customers, beside the golden ones.
DENSE = [
    'age >= 30 and city in ("上海", "杭州")',
    'not aum > 5000 or age is null or vip_tier = "gold"',
    'tag rfm = "a" or tag lifecycle in ("b")',
    'holds(product_type = "wealth", min_balance = 1000) and not holds(risk_level = "R4")',
    "holds(maturing_within = 7d) or holds(max_balance = 500)",
    "did fund_page_view where (amount > 100) at least 2 times within 30d or did login within 7d",
    'did view_wealth where (fund_type = "equity") within 30d and not did login at least 3 times within 40d',
    "did view_wealth then buy_wealth within 2d in last 30d",
    "did view_wealth then use_yield_calculator then buy_wealth within 5d in last 40d",
    "did view_wealth then not buy_wealth within 1d in last 30d",
    'transacted(direction = "out", sum_at_least = 50000, within = 30d)',
    'transacted(counterparty_type = "employer", channel = "mobile", at_least = 2, within = 40d)',
    "last_seen_at >= now-7d or open_date >= today-100d and not fraud_flag = true",
    'aum_trend_pct > 10.5 or payroll_customer = true and birth_date < "1970-01-01"',
    'did fund_page_view where (first_time = true) within 40d or did fund_page_view where (amount = "12.5") within 40d',
]
GOLDEN = sorted(p.read_text(encoding="utf-8") for p in SNAPSHOTS.iterdir() if p.suffix in (".seg", ".json"))


@pytest.fixture(scope="module")
def bank() -> SmallBank:
    return random_bank(random.Random(20261124), 150)


@pytest.fixture(scope="module")
def duck(bank: SmallBank) -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect(config={"threads": 1})
    for name, columns, rows in tables(bank):
        con.execute(ddl("duckdb", name, columns))
        insert = inserts("duckdb", name, columns, rows)
        if insert:
            con.execute(insert)
    yield con
    con.close()


@pytest.fixture(scope="module")
def clickhouse(bank: SmallBank) -> Iterator[object]:
    session = chdb_session.Session()
    session.query("CREATE DATABASE IF NOT EXISTS bank")
    session.query("USE bank")
    for name, columns, rows in tables(bank):
        session.query(ddl("clickhouse", name, columns))
        insert = inserts("clickhouse", name, columns, rows)
        if insert:
            session.query(insert)
    yield session
    session.close()


@pytest.mark.parametrize("source", DENSE + GOLDEN)
def test_clickhouse_duckdb_and_python_agree(
    source: str, bank: SmallBank, duck: duckdb.DuckDBPyConnection, clickhouse: object
) -> None:
    bound = resolve(parse_definition(source), DEFAULT_CATALOG)
    planned = plan(bound, AS_OF)
    in_clickhouse = clickhouse.query(printer_for("clickhouse", DEFAULT_CATALOG).members(planned), "JSONCompact")  # type: ignore[attr-defined]
    selected = {row[0] for row in json.loads(in_clickhouse.bytes())["data"]}
    in_duckdb = {row[0] for row in duck.execute(printer_for("duckdb", DEFAULT_CATALOG).members(planned)).fetchall()}
    expected = {cust_no for cust_no, customer in facts(bank).items() if evaluate(bound, customer, AS_OF)}
    assert selected == in_duckdb == expected


def test_the_dense_definitions_are_neither_empty_nor_everyone(bank: SmallBank) -> None:
    customers = facts(bank)
    for source in DENSE:
        bound = resolve(parse_definition(source), DEFAULT_CATALOG)
        selected = sum(evaluate(bound, customer, AS_OF) for customer in customers.values())
        assert 0 < selected < len(customers), source
