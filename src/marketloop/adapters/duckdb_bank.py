"""The bank tables in DuckDB (same database file as the events, so segments can join them)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import duckdb
import polars as pl

from marketloop.adapters.duckdb_changes import SCHEMA as CHANGES_SCHEMA
from marketloop.adapters.duckdb_changes import mark_changed
from marketloop.core.bank import BANK_TABLES, Column, LogicalType, TableSpec
from marketloop.ports.bank import MergeResult

DUCKDB_TYPES = {
    LogicalType.TEXT: "VARCHAR",
    LogicalType.INTEGER: "BIGINT",
    LogicalType.DECIMAL: "DECIMAL(18, 2)",
    LogicalType.DOUBLE: "DOUBLE",
    LogicalType.BOOLEAN: "BOOLEAN",
    LogicalType.DATE: "DATE",
    LogicalType.TIMESTAMP: "TIMESTAMPTZ",
}


def _column_ddl(column: Column) -> str:
    return f"{column.name} {DUCKDB_TYPES[column.type]}" + (" NOT NULL" if column.required else "")


# Fact tables grow to tens of millions of rows: an ART index per row would cost more on every load than it saves;
# their keys are kept unique by `merge` (an anti-join) instead of a constraint.
UNCONSTRAINED = frozenset({"transactions", "holdings"})


def table_ddl(table: TableSpec) -> str:
    columns = ", ".join(_column_ddl(c) for c in table.columns)
    key = "" if table.name in UNCONSTRAINED else f", PRIMARY KEY ({', '.join(table.key)})"
    return f"CREATE TABLE IF NOT EXISTS {table.name} ({columns}{key})"


class DuckDBBankStore:
    """`BankStore` on a DuckDB connection (shared with the warehouse; one cursor per call)."""

    def __init__(self, cursor: Callable[[], duckdb.DuckDBPyConnection], write_lock: threading.Lock) -> None:
        self._cursor = cursor
        self._write_lock = write_lock
        con = cursor()
        for table in BANK_TABLES:
            con.execute(table_ddl(table))
        con.execute(CHANGES_SCHEMA)

    def merge(self, table: TableSpec, rows: pl.DataFrame) -> MergeResult:
        staged = _conform(table, rows)
        key = " AND ".join(f"t.{k} = s.{k}" for k in table.key)
        values = [c for c in staged.columns if c not in table.key]
        differs = " OR ".join(f"t.{c} IS DISTINCT FROM s.{c}" for c in values) or "false"
        cols = ", ".join(staged.columns)
        with self._write_lock:
            con = self._cursor()
            con.register("staged_rows", staged)
            con.execute("BEGIN")
            try:
                changed = _scalar(
                    con, f"SELECT count(*) FROM staged_rows s JOIN {table.name} t ON {key} WHERE {differs}"
                )
                existing = _scalar(con, f"SELECT count(*) FROM staged_rows s JOIN {table.name} t ON {key}")
                if values:  # an UPDATE, not DELETE + INSERT: columns the rows do not carry keep their values
                    assigned = ", ".join(f"{c} = s.{c}" for c in values)
                    con.execute(f"UPDATE {table.name} t SET {assigned} FROM staged_rows s WHERE {key} AND ({differs})")
                con.execute(
                    f"INSERT INTO {table.name} ({cols}) SELECT {cols} FROM staged_rows s "
                    f"WHERE NOT EXISTS (SELECT 1 FROM {table.name} t WHERE {key})"
                )
                if changed or len(staged) > existing:
                    mark_changed(con, table.name)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
            finally:
                con.unregister("staged_rows")
        return MergeResult(inserted=len(staged) - existing, updated=changed, unchanged=existing - changed)

    def append(self, table: TableSpec, rows: pl.DataFrame) -> int:
        staged = _conform(table, rows)
        cols = ", ".join(staged.columns)
        with self._write_lock:
            con = self._cursor()
            con.register("staged_rows", staged)
            con.execute("BEGIN")
            try:
                con.execute(f"INSERT INTO {table.name} ({cols}) SELECT {cols} FROM staged_rows")
                if len(staged):
                    mark_changed(con, table.name)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
            finally:
                con.unregister("staged_rows")
        return len(staged)

    def count(self, table: TableSpec) -> int:
        return _scalar(self._cursor(), f"SELECT count(*) FROM {table.name}")

    def fetch(self, table: TableSpec, keys: pl.DataFrame) -> pl.DataFrame:
        con = self._cursor()
        con.register("wanted_keys", keys.select(list(table.key)))
        try:
            using = ", ".join(table.key)
            found: pl.DataFrame = con.sql(f"SELECT t.* FROM {table.name} t SEMI JOIN wanted_keys USING ({using})").pl()
            return found
        finally:
            con.unregister("wanted_keys")


def _conform(table: TableSpec, rows: pl.DataFrame) -> pl.DataFrame:
    unknown = set(rows.columns) - set(table.names)
    if unknown:
        raise ValueError(f"{table.name} has no columns {sorted(unknown)}")
    missing_keys = set(table.key) - set(rows.columns)
    if missing_keys:
        raise ValueError(f"{table.name} rows lack key columns {sorted(missing_keys)}")
    return rows


def _scalar(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = con.execute(sql).fetchone()
    return int(row[0]) if row else 0
