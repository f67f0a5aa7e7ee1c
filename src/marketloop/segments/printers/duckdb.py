"""DuckDB spelling: JSON through `json_extract_string`, numbers through `TRY_CAST`."""

from __future__ import annotations

from typing import ClassVar

from marketloop.segments.printers.base import SqlPrinter


def json_path(prop: str) -> str:
    return '$."' + prop.replace("\\", "\\\\").replace('"', '\\"') + '"'


class DuckDBPrinter(SqlPrinter):
    dialect: ClassVar[str] = "duckdb"

    def json_text(self, column: str, prop: str) -> str:
        return f"json_extract_string({column}, {self.string(json_path(prop))})"

    def json_number(self, column: str, prop: str) -> str:
        return f"TRY_CAST({self.json_text(column, prop)} AS DOUBLE)"
