"""What the analysis SQL spells differently per dialect, on top of the segment printers' spelling.

The segment printer of the warehouse's dialect prints literals, event
matches, JSON property access and segment membership; this adds local time
buckets, epoch seconds, medians and the like. DuckDB and ClickHouse only:
PostgreSQL is not an analytics store.
"""

from __future__ import annotations

from typing import ClassVar

from marketloop.segments.catalog import Catalog
from marketloop.segments.printers import SqlPrinter, printer_for


class Dialect:
    """DuckDB spelling (the default); `ClickHouse` overrides."""

    name: ClassVar[str] = "duckdb"
    suffix: ClassVar[str] = ""

    def __init__(self, catalog: Catalog) -> None:
        self.printer: SqlPrinter = printer_for(self.name, catalog)

    def local(self, ts: str, zone: str) -> str:
        """The wall-clock time of `ts` in `zone`."""
        return f"timezone({self.printer.string(zone)}, {ts})"

    def bucket(self, ts: str, zone: str, unit: str) -> str:
        """The local hour, day or ISO week (its Monday) of `ts`, as text."""
        shape = "%Y-%m-%d %H:00" if unit == "hour" else "%Y-%m-%d"
        return f"strftime(date_trunc('{unit}', {self.local(ts, zone)}), '{shape}')"

    def local_date(self, ts: str, zone: str) -> str:
        return f"CAST({self.local(ts, zone)} AS DATE)"

    def days_between(self, first: str, second: str) -> str:
        return f"date_diff('day', {first}, {second})"

    def int_div(self, left: str, right: int) -> str:
        return f"({left}) // {right}"

    def seconds(self, ts: str) -> str:
        """`ts` as seconds since the epoch (a double)."""
        return f"epoch({ts})"

    def median(self, expression: str) -> str:
        """The interpolated median (as `quantile_cont(…, 0.5)`)."""
        return f"quantile_cont({expression}, 0.5)"

    def arg_min(self, value: str, key: str) -> str:
        return f"arg_min({value}, {key})"

    def text(self, expression: str) -> str:
        return f"CAST({expression} AS VARCHAR)"

    def double(self, expression: str) -> str:
        return f"CAST({expression} AS DOUBLE)"

    def null_text(self) -> str:
        return "CAST(NULL AS VARCHAR)"


class ClickHouse(Dialect):
    """ClickHouse: `toTimeZone`, `toStartOf…`, `formatDateTime`, `quantileExactInclusive`, NULLs on outer joins."""

    name: ClassVar[str] = "clickhouse"
    suffix: ClassVar[str] = "\nSETTINGS join_use_nulls = 1"

    def local(self, ts: str, zone: str) -> str:
        return f"toTimeZone({ts}, {self.printer.string(zone)})"

    def bucket(self, ts: str, zone: str, unit: str) -> str:
        local = self.local(ts, zone)
        if unit == "hour":
            return f"formatDateTime(toStartOfHour({local}), '%Y-%m-%d %H:00')"
        start = f"toStartOfWeek({local}, 1)" if unit == "week" else f"toStartOfDay({local})"
        return f"formatDateTime({start}, '%Y-%m-%d')"

    def local_date(self, ts: str, zone: str) -> str:
        return f"toDate32({ts}, {self.printer.string(zone)})"

    def days_between(self, first: str, second: str) -> str:
        return f"dateDiff('day', {first}, {second})"

    def int_div(self, left: str, right: int) -> str:
        return f"intDiv({left}, {right})"

    def seconds(self, ts: str) -> str:
        return f"(toUnixTimestamp64Micro({ts}) / 1000000)"

    def median(self, expression: str) -> str:
        return f"quantileExactInclusive(0.5)({expression})"

    def arg_min(self, value: str, key: str) -> str:
        return f"argMin({value}, {key})"

    def text(self, expression: str) -> str:
        return f"toString({expression})"

    def double(self, expression: str) -> str:
        return f"toFloat64({expression})"

    def null_text(self) -> str:
        return "CAST(NULL AS Nullable(String))"


DIALECTS: dict[str, type[Dialect]] = {"duckdb": Dialect, "clickhouse": ClickHouse}


def dialect_for(name: str, catalog: Catalog) -> Dialect:
    """The analysis spelling of `name` (duckdb, clickhouse); raises KeyError for another."""
    return DIALECTS[name](catalog)
