"""The ClickHouse SQL of every model, executed in-process with chDB, gives the DuckDB result."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from marketloop.analytics.parse import parse_spec
from marketloop.analytics.results import shape
from marketloop.analytics.sql import compile_spec
from marketloop.segments.catalog import DEFAULT_CATALOG
from marketloop.testing.analytics import WEEK_END, duckdb_rows, load_clickhouse, small_shop

chdb_session = pytest.importorskip("chdb.session")

SPECS = sorted((Path(__file__).parent.parent / "snapshots" / "analytics").glob("*.json"))
WEEK = {"from": "2026-11-02", "to": "2026-11-09"}
MORE = [
    {"model": "funnel", "steps": ["view_wealth", "use_yield_calculator", "buy_wealth"], "window": "3d"},
    {"model": "events", "event": "login", "interval": "hour", "measure": "customers"},
    {"model": "events", "event": "buy_wealth", "interval": "week", "measure": "avg", "property": "amount"},
    {"model": "events", "event": "buy_wealth", "timezone": "Pacific/Kiritimati"},
    {"model": "paths", "anchor": "buy_wealth", "direction": "before", "depth": 2},
    {"model": "frequency", "event": "view_wealth", "measure": "events"},
    {"model": "distribution", "event": "view_wealth", "property": "channel"},
    {"model": "retention", "start": "view_wealth", "back": "view_wealth", "periods": 3},
]


@pytest.fixture(scope="module")
def clickhouse() -> Iterator[Any]:
    session = chdb_session.Session()
    session.query("CREATE DATABASE IF NOT EXISTS shop")
    session.query("USE shop")
    load_clickhouse(session, small_shop())
    yield session
    session.close()


def _close(left: Any, right: Any) -> bool:
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(_close(left[k], right[k]) for k in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(_close(a, b) for a, b in zip(left, right, strict=True))
    if isinstance(left, int | float) and isinstance(right, int | float) and not isinstance(left, bool):
        return math.isclose(left, right, rel_tol=1e-9, abs_tol=1e-9)
    return bool(left == right)


@pytest.mark.parametrize(
    "doc", [json.loads(p.read_text(encoding="utf-8")) for p in SPECS] + [{"range": WEEK} | d for d in MORE]
)
def test_clickhouse_and_duckdb_agree(doc: dict[str, Any], shop: duckdb.DuckDBPyConnection, clickhouse: Any) -> None:
    spec = parse_spec(doc, as_of=WEEK_END)
    answer = clickhouse.query(compile_spec(spec, "clickhouse", DEFAULT_CATALOG).sql(), "JSONEachRow")
    in_clickhouse = shape(spec, [json.loads(line) for line in answer.bytes().decode().splitlines() if line])
    in_duckdb = shape(spec, duckdb_rows(shop, compile_spec(spec, "duckdb", DEFAULT_CATALOG).sql()))
    assert _close(in_clickhouse, in_duckdb), (in_clickhouse, in_duckdb)
    assert in_duckdb != shape(spec, [])  # the spec finds something in the shop


DRILLS = [
    (
        {"model": "attribution", "conversion": "buy_wealth", "channel": "campaign", "lookback": "7d"},
        "kind = 'unattributed' AND channel IS NULL",
        ["C3"],
    ),
    (
        {"model": "attribution", "conversion": "buy_wealth", "channel": "campaign", "lookback": "7d"},
        "kind = 'touch' AND channel = 'A'",
        ["C1", "C4"],
    ),
    (
        {"model": "paths", "anchor": "view_wealth", "depth": 2},
        "step = 1 AND name = 'use_yield_calculator' AND cust_no IN (SELECT cust_no FROM facts WHERE step = 2)",
        ["C1", "C4"],
    ),
    (
        {"model": "funnel", "steps": ["view_wealth", "use_yield_calculator", "buy_wealth"], "window": "1d"},
        "grp = 'all' AND step = 2 AND cust_no NOT IN (SELECT cust_no FROM facts WHERE step = 3)",
        ["C2", "C3"],
    ),
    (
        {"model": "retention", "start": "view_wealth", "back": "login", "periods": 3},
        "cohort = '2026-11-02' AND period = 1",
        ["C1"],
    ),
]


@pytest.mark.parametrize(("doc", "where", "expected"), DRILLS)
def test_drill_down_sql_runs_in_clickhouse_too(
    doc: dict[str, Any], where: str, expected: list[str], shop: duckdb.DuckDBPyConnection, clickhouse: Any
) -> None:
    spec = parse_spec({"range": WEEK} | doc, as_of=WEEK_END)
    listed = compile_spec(spec, "clickhouse", DEFAULT_CATALOG).customers(where, limit=10, offset=0)
    in_clickhouse = [row[0] for row in json.loads(clickhouse.query(listed, "JSONCompact").bytes())["data"]]
    in_duckdb = [
        row["cust_no"]
        for row in duckdb_rows(shop, compile_spec(spec, "duckdb", DEFAULT_CATALOG).customers(where, limit=10, offset=0))
    ]
    assert in_clickhouse == in_duckdb == expected
