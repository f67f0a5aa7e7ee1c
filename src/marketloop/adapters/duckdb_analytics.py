"""`AnalyticsWarehouse` on DuckDB: analysis SQL over the events and bank tables of the embedded warehouse."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import duckdb

from marketloop.adapters.duckdb_changes import CHANGES_SQL
from marketloop.adapters.duckdb_changes import SCHEMA as CHANGES_SCHEMA
from marketloop.core.errors import ErrorKind, MarketloopError


class DuckDBAnalyticsWarehouse:
    """Runs analysis queries on a cursor of the warehouse's DuckDB connection (reads run beside loads)."""

    dialect = "duckdb"

    def __init__(self, cursor: Callable[[], duckdb.DuckDBPyConnection]) -> None:
        self._cursor = cursor
        cursor().execute(CHANGES_SCHEMA)

    def rows(self, sql: str) -> list[dict[str, Any]]:
        try:
            found = self._cursor().execute(sql)
        except duckdb.CatalogException as error:  # e.g. a segment on the profile before its first refresh
            raise MarketloopError(
                kind=ErrorKind.CONFLICT,
                code="analytics.missing-relation",
                title="The analysis reads a table that does not exist yet",
                detail=f"{str(error).splitlines()[0]} (build the customer profile first if it is customer_profile)",
            ) from None
        names = [column[0] for column in found.description or []]
        return [dict(zip(names, row, strict=True)) for row in found.fetchall()]

    def data_version(self) -> str:
        # load_seq only grows with loads; the row count also moves when an erasure deletes events. The other
        # tables analyses read (bank imports, profile, tags, OneID links) count their writes in data_changes.
        row = (
            self._cursor()
            .execute(f"SELECT coalesce(max(load_seq), 0), count(*), ({CHANGES_SQL}) FROM events")
            .fetchone()
        )
        loaded, count, changes = row if row else (0, 0, "")
        return f"events:{loaded}:{count}" + (f";{changes}" if changes else "")
