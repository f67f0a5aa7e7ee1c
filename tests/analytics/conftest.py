"""The hand-made shop (marketloop.testing.analytics) in DuckDB, and a runner: JSON spec → shaped result."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import duckdb
import pytest

from marketloop.analytics.parse import parse_spec
from marketloop.analytics.results import shape
from marketloop.analytics.sql import compile_spec
from marketloop.segments.catalog import DEFAULT_CATALOG
from marketloop.testing.analytics import WEEK_END, duckdb_rows, load_duckdb, small_shop

WEEK = {"from": "2026-11-02", "to": "2026-11-09"}
Run = Callable[[dict[str, Any]], dict[str, Any]]


@pytest.fixture(scope="module")
def shop() -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect(config={"threads": 1})
    load_duckdb(con, small_shop())
    yield con
    con.close()


@pytest.fixture(scope="module")
def run(shop: duckdb.DuckDBPyConnection) -> Run:
    def run(doc: dict[str, Any]) -> dict[str, Any]:
        spec = parse_spec({"range": WEEK} | doc, as_of=WEEK_END)
        return shape(spec, duckdb_rows(shop, compile_spec(spec, "duckdb", DEFAULT_CATALOG).sql()))

    return run
