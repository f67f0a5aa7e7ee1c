"""Casting source values to a bank column's logical type, as polars expressions that never raise.

A value that does not parse becomes null, and the caller turns "given but
null after the cast" into a reject reason naming the column and the value.
Text sources (every CSV value) are parsed; typed Parquet columns are
converted. Naive timestamps are read in the mapping's time zone and stored
in UTC.
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

from marketloop.core.bank import LogicalType

DTYPES: dict[LogicalType, pl.DataType] = {
    LogicalType.TEXT: pl.String(),
    LogicalType.INTEGER: pl.Int64(),
    LogicalType.DECIMAL: pl.Decimal(18, 2),
    LogicalType.DOUBLE: pl.Float64(),
    LogicalType.BOOLEAN: pl.Boolean(),
    LogicalType.DATE: pl.Date(),
    LogicalType.TIMESTAMP: pl.Datetime("us", "UTC"),
}
DATE_FORMATS = ("%Y-%m-%d", "%Y%m%d", "%Y/%m/%d", "%Y.%m.%d")
TIMESTAMP_FORMATS = (
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y/%m/%d %H:%M:%S",
    "%Y%m%d%H%M%S",
    "%Y-%m-%d %H:%M",
)
BOOLEANS = {
    **dict.fromkeys(("true", "t", "yes", "y", "1", "是", "对"), True),
    **dict.fromkeys(("false", "f", "no", "n", "0", "否", "错"), False),
}
EXPECTED = {
    LogicalType.INTEGER: "an integer",
    LogicalType.DECIMAL: "an amount",
    LogicalType.DOUBLE: "a number",
    LogicalType.BOOLEAN: "true/false (是/否, Y/N, 1/0)",
    LogicalType.DATE: "a date",
    LogicalType.TIMESTAMP: "a date and time",
}


def expected(type_: LogicalType, fmt: str | None) -> str:
    """How a reject reason describes what the value should have been."""
    return EXPECTED.get(type_, "text") + (f" in the form {fmt}" if fmt else "")


def cast(raw: pl.Expr, source: pl.DataType, type_: LogicalType, fmt: str | None, timezone: str) -> pl.Expr:
    """`raw` (of dtype `source`) as the logical type; null where it does not parse."""
    if source == pl.String:
        return _FROM_TEXT[type_](raw, fmt, timezone)
    if type_ == LogicalType.TIMESTAMP and isinstance(source, pl.Datetime) and source.time_zone:
        return raw.dt.convert_time_zone("UTC").cast(DTYPES[type_])
    if type_ == LogicalType.TIMESTAMP and source.is_temporal():
        return _utc(raw.cast(pl.Datetime("us")), timezone)
    if type_ == LogicalType.DATE and source.is_temporal():
        return raw.cast(pl.Date)
    if type_ in (LogicalType.TEXT, LogicalType.DATE, LogicalType.TIMESTAMP):
        return _FROM_TEXT[type_](raw.cast(pl.String), fmt, timezone)
    return raw.cast(DTYPES[type_], strict=False)


def _text(raw: pl.Expr, fmt: str | None, timezone: str) -> pl.Expr:
    return raw


def _integer(raw: pl.Expr, fmt: str | None, timezone: str) -> pl.Expr:
    plain = raw.str.replace_all(",", "", literal=True)
    number = plain.cast(pl.Float64, strict=False)
    whole = pl.when(number == number.floor()).then(number.cast(pl.Int64, strict=False))
    return pl.coalesce(plain.cast(pl.Int64, strict=False), whole)


def _decimal(raw: pl.Expr, fmt: str | None, timezone: str) -> pl.Expr:
    return raw.str.replace_all(",", "", literal=True).cast(DTYPES[LogicalType.DECIMAL], strict=False)


def _double(raw: pl.Expr, fmt: str | None, timezone: str) -> pl.Expr:
    return raw.str.replace_all(",", "", literal=True).cast(pl.Float64, strict=False)


def _boolean(raw: pl.Expr, fmt: str | None, timezone: str) -> pl.Expr:
    return raw.str.to_lowercase().replace_strict(BOOLEANS, default=None, return_dtype=pl.Boolean)


def _date(raw: pl.Expr, fmt: str | None, timezone: str) -> pl.Expr:
    formats = (fmt,) if fmt else DATE_FORMATS
    return pl.coalesce([raw.str.strptime(pl.Date, f, strict=False) for f in formats])


def _timestamp(raw: pl.Expr, fmt: str | None, timezone: str) -> pl.Expr:
    formats = (fmt,) if fmt else TIMESTAMP_FORMATS
    naive = pl.coalesce([raw.str.strptime(pl.Datetime("us"), f, strict=False) for f in formats])
    if fmt is None:  # a bare date is midnight
        naive = pl.coalesce(naive, _date(raw, None, timezone).cast(pl.Datetime("us")))
    return _utc(naive, timezone)


def _utc(value: pl.Expr, timezone: str) -> pl.Expr:
    """A naive local time read in `timezone`, or an aware one, in UTC (a local time that never was: null)."""
    localised = value.dt.replace_time_zone(timezone, ambiguous="earliest", non_existent="null")
    return localised.dt.convert_time_zone("UTC")


_FROM_TEXT: dict[LogicalType, Callable[[pl.Expr, str | None, str], pl.Expr]] = {
    LogicalType.TEXT: _text,
    LogicalType.INTEGER: _integer,
    LogicalType.DECIMAL: _decimal,
    LogicalType.DOUBLE: _double,
    LogicalType.BOOLEAN: _boolean,
    LogicalType.DATE: _date,
    LogicalType.TIMESTAMP: _timestamp,
}
