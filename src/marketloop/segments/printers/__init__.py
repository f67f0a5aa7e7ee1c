"""Printers: one per SQL dialect, all printing the same planned tree (`passes.plan`)."""

from __future__ import annotations

from marketloop.segments.catalog import Catalog
from marketloop.segments.printers.base import SqlPrinter
from marketloop.segments.printers.clickhouse import ClickHousePrinter
from marketloop.segments.printers.duckdb import DuckDBPrinter
from marketloop.segments.printers.postgres import PostgresPrinter

PRINTERS: dict[str, type[SqlPrinter]] = {
    "duckdb": DuckDBPrinter,
    "clickhouse": ClickHousePrinter,
    "postgres": PostgresPrinter,
}


def printer_for(dialect: str, catalog: Catalog) -> SqlPrinter:
    """The printer of `dialect` (duckdb, clickhouse, postgres); raises KeyError for another."""
    return PRINTERS[dialect](catalog)


__all__ = ["PRINTERS", "ClickHousePrinter", "DuckDBPrinter", "PostgresPrinter", "SqlPrinter", "printer_for"]
