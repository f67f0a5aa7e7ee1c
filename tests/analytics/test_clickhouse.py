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
