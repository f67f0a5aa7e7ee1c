"""PostgreSQL spelling: `properties` is JSONB (`->>`), numbers only from numeric text, intervals as text."""

from __future__ import annotations

from datetime import timedelta
from typing import ClassVar

from marketloop.segments.printers.base import SqlPrinter

_NUMERIC = r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$"


class PostgresPrinter(SqlPrinter):
    dialect: ClassVar[str] = "postgres"

    def interval(self, span: timedelta) -> str:
        return f"INTERVAL '{int(span.total_seconds())} seconds'"

    def json_text(self, column: str, prop: str) -> str:
        return f"({column} ->> {self.string(prop)})"

    def json_number(self, column: str, prop: str) -> str:
        text = self.json_text(column, prop)
        return f"(CASE WHEN {text} ~ {self.string(_NUMERIC)} THEN CAST({text} AS double precision) END)"
