"""The hand-made shop: in DuckDB with a runner (JSON spec → result), and in a data directory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from marketloop.analytics.parse import parse_spec
from marketloop.analytics.results import shape
from marketloop.analytics.sql import compile_spec
from marketloop.app.container import Container
from marketloop.app.settings import Settings
from marketloop.segments.catalog import DEFAULT_CATALOG
from marketloop.testing.analytics import CITIES, WEEK_END, duckdb_rows, load_duckdb, small_shop

WEEK = {"from": "2026-11-02", "to": "2026-11-09"}
NAMES = {"C1": "张三", "C2": "李四", "C3": "王五", "C4": "赵六", "C5": "钱七"}

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


def fill_shop(container: Container) -> None:
    con = container.warehouse.cursor()
    for row in small_shop():
        con.execute(
            "INSERT INTO events (message_id, type, event, user_id, timestamp, received_at, source, properties,"
            " load_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [row[k] for k in ("message_id", "type", "event", "user_id", "timestamp", "received_at", "source")]
            + [row["properties"], row["load_seq"]],
        )
    for cust_no, city in CITIES.items():
        name = container.cipher.encrypt(NAMES[cust_no], context="name_enc")
        con.execute(
            "INSERT INTO customers (cust_no, name_enc, name_prefix, city, branch_id, open_date)"
            " VALUES (?, ?, ?, ?, ?, DATE '2020-01-01')",
            [cust_no, name, NAMES[cust_no][0], city, "B01" if city == "上海" else "B02"],
        )
    container.profiles.refresh(WEEK_END)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("analytics") / "data"
    container = Container.open(Settings(data_dir=folder))
    try:
        fill_shop(container)
    finally:
        container.close()
    return folder
