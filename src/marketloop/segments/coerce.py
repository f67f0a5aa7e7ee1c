"""Values written in a definition, checked against the type of the field they are compared with.

`coerce` returns the typed value (a `date` for a date field, a `Decimal`
for money, …) or the reason it does not fit; the resolver turns the reason
into a problem at the value's position.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from marketloop.core.bank import LogicalType
from marketloop.segments import ast as a
from marketloop.segments.bound import Value
from marketloop.segments.catalog import Field
from marketloop.segments.errors import Code

T = LogicalType
NUMERIC = frozenset({T.INTEGER, T.DECIMAL, T.DOUBLE})
ORDERED = NUMERIC | {T.DATE, T.TIMESTAMP}
_TYPE_WORDS = {
    T.TEXT: "text",
    T.INTEGER: "a whole number",
    T.DECIMAL: "an amount",
    T.DOUBLE: "a number",
    T.BOOLEAN: "true or false",
    T.DATE: "a date (2026-01-31, or relative: today-30d)",
    T.TIMESTAMP: "a time (2026-01-31T08:00:00, or relative: now-2h, today-7d)",
}


class MismatchError(Exception):
    """A value that does not fit its field: the problem code and message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def type_words(type_: LogicalType) -> str:
    return _TYPE_WORDS[type_]


def coerce(field: Field, value: a.Value) -> Value:
    """`value` as the type of `field`; raises `MismatchError` when it does not fit."""
    if isinstance(value, a.RelativeDate):
        return _relative(field, value)
    if field.type in NUMERIC:
        return _number(field, value)
    if field.type == T.BOOLEAN:
        if not isinstance(value, bool):
            raise _wrong(field, value)
        return value
    if not isinstance(value, str):
        raise _wrong(field, value)
    if field.type == T.DATE:
        return _date(field, value)
    if field.type == T.TIMESTAMP:
        return _timestamp(field, value)
    if field.allowed and value not in field.allowed:
        raise MismatchError(Code.UNKNOWN_VALUE, f"{field.name} is one of {', '.join(field.allowed)}, not {value!r}")
    return value


def _wrong(field: Field, value: object) -> MismatchError:
    return MismatchError(Code.WRONG_TYPE, f"{field.name} is {type_words(field.type)}; {value!r} is not")


def _number(field: Field, value: a.Value) -> Value:
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise _wrong(field, value)
    if field.type == T.INTEGER:
        return value
    return Decimal(value)


def _relative(field: Field, value: a.RelativeDate) -> Value:
    if field.type == T.TIMESTAMP:
        return value
    if field.type != T.DATE:
        raise MismatchError(Code.WRONG_TYPE, f"{field.name} is {type_words(field.type)}, not a relative date")
    if value.anchor == "now" or value.offset % timedelta(days=1):
        raise MismatchError(Code.WRONG_TYPE, f"{field.name} is a date: use whole days, e.g. today-30d")
    return value


def _date(field: Field, value: str) -> Value:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _wrong(field, value) from None


def _timestamp(field: Field, value: str) -> Value:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise _wrong(field, value) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def number(value: int | Decimal | None) -> Decimal | None:
    return None if value is None else Decimal(value)
