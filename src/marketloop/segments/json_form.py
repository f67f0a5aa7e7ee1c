"""Reading and writing the JSON form: a checked reader of one JSON object, and AST → JSON.

`Reader` turns each wrong key, type or value into a `DefinitionError` whose
position is the JSON pointer of the spot. `to_json` is the inverse of
`parse.from_json`: `from_json(to_json(c)) == c` for every condition.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from decimal import Decimal
from typing import Any

from marketloop.segments import ast as a
from marketloop.segments.ast import Position, RelativeDate, Scalar, Value, format_duration, parse_duration
from marketloop.segments.errors import Code, fail

Number = int | Decimal


def _kind(item: Any) -> str:
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "an array"}
    if item is None:
        return "null"
    if isinstance(item, Mapping):
        return "an object"
    return names.get(type(item), "a number" if isinstance(item, Decimal) else type(item).__name__)


class Reader:
    """One JSON object of a definition and its JSON pointer."""

    def __init__(self, doc: Any, pointer: str) -> None:
        if not isinstance(doc, Mapping):
            raise fail(Code.SYNTAX, f"expected an object, found {_kind(doc)}", Position(pointer=pointer))
        self.obj: Mapping[str, Any] = doc
        self.pointer = pointer
        self.here = Position(pointer=pointer)

    def spot(self, key: str) -> Position:
        return Position(pointer=f"{self.pointer}/{key}")

    def spots(self, *keys: str) -> a.Spots:
        return tuple((key, self.spot(key)) for key in keys if key in self.obj)

    def only(self, *keys: str) -> None:
        for key in self.obj:
            if key not in keys:
                allowed = ", ".join(keys)
                raise fail(Code.SYNTAX, f"unknown key {key!r} here; allowed: {allowed}", self.spot(key))

    def child(self, key: str) -> Reader:
        return Reader(self.obj[key], f"{self.pointer}/{key}")

    def _required(self, key: str) -> Any:
        if key not in self.obj:
            raise fail(Code.SYNTAX, f"missing {key!r}", self.here)
        return self.obj[key]

    def string(self, key: str, *, empty: bool = False) -> str:
        return self.item_string(self._required(key), key, empty=empty)

    def item_string(self, item: Any, part: str, *, empty: bool = False) -> str:
        if not isinstance(item, str) or not (item or empty):
            found = "an empty string" if item == "" else _kind(item)
            raise fail(Code.SYNTAX, f"expected a non-empty string, found {found}", self.spot(part))
        return item

    def optional_string(self, key: str) -> str | None:
        return self.string(key) if self.obj.get(key) is not None else None

    def array(self, key: str) -> list[Any]:
        item = self._required(key)
        if not isinstance(item, list):
            raise fail(Code.SYNTAX, f"expected an array, found {_kind(item)}", self.spot(key))
        return item

    def integer(self, key: str, default: int) -> int:
        item = self.obj.get(key, default)
        if isinstance(item, bool) or not isinstance(item, int):
            raise fail(Code.SYNTAX, f"expected a whole number, found {_kind(item)}", self.spot(key))
        return item

    def optional_number(self, key: str) -> Number | None:
        item = self.obj.get(key)
        if item is None:
            return None
        found = self.scalar(item, self.spot(key))
        if isinstance(found, bool) or not isinstance(found, int | Decimal):
            raise fail(Code.WRONG_TYPE, f"expected a number, found {_kind(item)}", self.spot(key))
        return found

    def duration(self, key: str) -> timedelta:
        item = self._required(key)
        span = parse_duration(item) if isinstance(item, str) else None
        if span is None:
            raise fail(Code.SYNTAX, f"expected a duration such as 30d, 12h, 10m, found {item!r}", self.spot(key))
        return span

    def optional_duration(self, key: str) -> timedelta | None:
        return self.duration(key) if self.obj.get(key) is not None else None

    @staticmethod
    def scalar(item: Any, position: Position) -> Scalar:
        if isinstance(item, str | bool | int | Decimal):
            return item
        if isinstance(item, float):
            return Decimal(repr(item))
        raise fail(Code.SYNTAX, f"expected a string, number or boolean, found {_kind(item)}", position)

    @staticmethod
    def relative(item: Any, position: Position) -> RelativeDate:
        found = a.parse_relative(item) if isinstance(item, str) else None
        if found is None:
            raise fail(Code.SYNTAX, f"expected a relative date such as today-30d or now-2h, found {item!r}", position)
        return found


def scalar_json(value: Scalar) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() and value.as_tuple().exponent == 0 else float(value)
    return value


def value_json(value: Value) -> Any:
    return {"relative": str(value)} if isinstance(value, RelativeDate) else scalar_json(value)


def _optional(**items: Any) -> dict[str, Any]:
    return {key: item for key, item in items.items() if item is not None}


def _duration(span: timedelta | None) -> str | None:
    return format_duration(span) if span is not None else None


def _number(value: Number | None) -> Any:
    return scalar_json(value) if value is not None else None


def _filters(filters: tuple[a.PropertyFilter, ...]) -> dict[str, Any]:
    if not filters:
        return {}
    return {"where": [{"property": f.property, "op": f.op.value, "value": scalar_json(f.value)} for f in filters]}


def _step(step: a.EventStep) -> Any:
    return {"event": step.event} | _filters(step.where) if step.where else step.event


def _compare(node: a.Compare) -> dict[str, Any]:
    return {"field": node.field, "op": node.op.value, "value": value_json(node.value)}


def _in_set(node: a.InSet) -> dict[str, Any]:
    return {"field": node.field, "op": "in", "value": [value_json(v) for v in node.values]}


def _between(node: a.Between) -> dict[str, Any]:
    return {"field": node.field, "op": "between", "value": [value_json(node.low), value_json(node.high)]}


def _not(node: a.Not) -> dict[str, Any]:
    if isinstance(node.part, a.IsNull):
        return {"field": node.part.field, "op": "is_not_null"}
    return {"not": to_json(node.part)}


def _tag(node: a.HasTag) -> dict[str, Any]:
    if len(node.values) == 1:
        return {"tag": node.tag, "value": node.values[0]}
    return {"tag": node.tag} | ({"values": list(node.values)} if node.values else {})


def _holds(node: a.Holds) -> dict[str, Any]:
    return {
        "holds": _optional(
            product_type=node.product_type,
            product_code=node.product_code,
            risk_level=node.risk_level,
            min_balance=_number(node.min_balance),
            max_balance=_number(node.max_balance),
            maturing_within=_duration(node.maturing_within),
        )
    }


def _did(node: a.DidEvent) -> dict[str, Any]:
    at_least = {"at_least": node.at_least} if node.at_least != 1 else {}
    return {"did": node.event} | _filters(node.where) | at_least | {"within": format_duration(node.within)}


def _sequence(node: a.DidSequence) -> dict[str, Any]:
    return {"sequence": [_step(s) for s in node.steps], "within": format_duration(node.within)} | _optional(
        in_last=_duration(node.in_last)
    )


def _absence(node: a.DidNotAfter) -> dict[str, Any]:
    return (
        {"did": node.first.event}
        | _filters(node.first.where)
        | {"then_not": _step(node.then_not)}
        | {"within": format_duration(node.within), "in_last": format_duration(node.in_last)}
    )


def _transacted(node: a.Transacted) -> dict[str, Any]:
    inner = _optional(
        direction=node.direction,
        counterparty_type=node.counterparty_type,
        channel=node.channel,
        category=node.category,
        min_amount=_number(node.min_amount),
        max_amount=_number(node.max_amount),
        within=format_duration(node.within),
        at_least=node.at_least if node.at_least != 1 else None,
        sum_at_least=_number(node.sum_at_least),
    )
    return {"transacted": inner}


_WRITERS: dict[type[a.Condition], Callable[[Any], dict[str, Any]]] = {
    a.And: lambda node: {"and": [to_json(p) for p in node.parts]},
    a.Or: lambda node: {"or": [to_json(p) for p in node.parts]},
    a.Not: _not,
    a.Compare: _compare,
    a.InSet: _in_set,
    a.Between: _between,
    a.IsNull: lambda node: {"field": node.field, "op": "is_null"},
    a.HasTag: _tag,
    a.Holds: _holds,
    a.DidEvent: _did,
    a.DidSequence: _sequence,
    a.DidNotAfter: _absence,
    a.Transacted: _transacted,
    a.InSegment: lambda node: {"segment": node.segment_id},
}


def to_json(condition: a.Condition) -> dict[str, Any]:
    """The JSON form of `condition` (a plain, JSON-serialisable dict)."""
    return _WRITERS[type(condition)](condition)
