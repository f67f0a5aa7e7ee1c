"""ClickHouse spelling: `countIf` / `sumIf`, `toDate32` / `toDateTime64`, backslash escapes, `JSONExtract`.

Events' `properties` is a JSON String column; times are `DateTime64(6, 'UTC')`; dates are `Date32`
(`Date` stops at 1970, before most birth dates).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import ClassVar

from marketloop.segments.printers.base import SqlPrinter


class ClickHousePrinter(SqlPrinter):
    dialect: ClassVar[str] = "clickhouse"
    except_distinct: ClassVar[str] = "EXCEPT DISTINCT"

    def string(self, text: str) -> str:
        return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"

    def date(self, day: date) -> str:
        return f"toDate32('{day.isoformat()}')"  # Date32: birth dates before 1970 too

    def timestamp(self, moment: datetime) -> str:
        utc = moment.astimezone(UTC).replace(tzinfo=None)
        return f"toDateTime64('{utc.isoformat(sep=' ', timespec='microseconds')}', 6, 'UTC')"

    def count_if(self, condition: str) -> str:
        return f"countIf({condition})"

    def sum_if(self, expression: str, condition: str) -> str:
        return f"sumIf({expression}, {condition})"

    def json_text(self, column: str, prop: str) -> str:
        return f"JSONExtract({column}, {self.string(prop)}, 'Nullable(String)')"

    def json_number(self, column: str, prop: str) -> str:
        return f"toFloat64OrNull({self.json_text(column, prop)})"
