"""The JSON form of segment definitions (what the console's builder produces): JSON → AST → JSON.

    {"and": [
      {"field": "age", "op": ">=", "value": 30},
      {"field": "city", "op": "in", "value": ["上海", "杭州"]},
      {"field": "open_date", "op": ">=", "value": {"relative": "today-365d"}},
      {"tag": "rfm", "value": "champion"},
      {"holds": {"product_type": "wealth", "min_balance": 50000, "maturing_within": "7d"}},
      {"did": "fund_page_view", "where": [{"property": "fund_type", "op": "=", "value": "equity"}],
       "at_least": 3, "within": "30d"},
      {"sequence": ["view_wealth", "use_yield_calculator"], "within": "10m", "in_last": "7d"},
      {"not": {"did": "view_wealth", "then_not": "buy_wealth", "within": "10m", "in_last": "1d"}},
      {"transacted": {"direction": "out", "counterparty_type": "other_bank", "sum_at_least": 100000,
                      "within": "30d"}},
      {"segment": "seg_vip"}
    ]}

Every error names the JSON pointer of the offending spot. `parse_definition`
accepts either form: a JSON object (or its text) or the text form
(`marketloop.segments.text`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from marketloop.segments import ast as a
from marketloop.segments import text
from marketloop.segments.args import HOLDS_ARGUMENTS
from marketloop.segments.ast import (
    And,
    Between,
    Compare,
    Condition,
    DidEvent,
    DidNotAfter,
    DidSequence,
    EventStep,
    HasTag,
    Holds,
    InSegment,
    InSet,
    IsNull,
    Not,
    Op,
    Or,
    Position,
    PropertyFilter,
    Transacted,
    Value,
)
from marketloop.segments.errors import Code, fail
from marketloop.segments.json_form import Reader, to_json

__all__ = ["from_json", "parse_definition", "to_json"]


def parse_definition(source: str | bytes | Mapping[str, Any] | Condition, *, pointer: str = "") -> Condition:
    """A definition in either form: a JSON object, JSON text (starts with `{`) or the text form.

    `pointer` is where the definition sits in a larger JSON document (e.g.
    `/definition` of a request body); JSON errors point below it. A
    `Condition` is returned as it is.
    """
    if isinstance(source, Condition):
        return source
    if isinstance(source, Mapping):
        return from_json(source, pointer)
    body = source.decode() if isinstance(source, bytes) else source
    if body.lstrip().startswith("{"):
        return from_json(_decode(body), pointer)
    return text.parse_text(body)


def _decode(body: str) -> Any:
    try:
        return json.loads(body, parse_float=Decimal)
    except json.JSONDecodeError as error:
        raise fail(Code.SYNTAX, f"not JSON: {error.msg}", Position(line=error.lineno, column=error.colno)) from None


def from_json(doc: Any, pointer: str = "") -> Condition:
    """The condition a JSON document describes; raises `DefinitionError` pointing at the bad spot."""
    reader = Reader(doc, pointer)
    kinds = [kind for kind in _KINDS if kind in reader.obj]
    if len(kinds) != 1:
        found = ", ".join(kinds) or "none"
        raise fail(Code.SYNTAX, f"a condition has exactly one of {', '.join(_KINDS)} (found {found})", reader.here)
    return _KINDS[kinds[0]](reader)


def _parts(reader: Reader, key: str) -> tuple[Condition, ...]:
    reader.only(key)
    items = reader.array(key)
    if not items:
        raise fail(Code.SYNTAX, f"'{key}' needs at least one condition", reader.spot(key))
    return tuple(from_json(item, f"{reader.pointer}/{key}/{i}") for i, item in enumerate(items))


def _and(reader: Reader) -> Condition:
    return And(parts=_parts(reader, "and"), pos=reader.here)


def _or(reader: Reader) -> Condition:
    return Or(parts=_parts(reader, "or"), pos=reader.here)


def _not(reader: Reader) -> Condition:
    reader.only("not")
    return Not(part=from_json(reader.obj["not"], f"{reader.pointer}/not"), pos=reader.here)


def _field(reader: Reader) -> Condition:
    op = reader.string("op")
    if op in ("is_null", "is_not_null"):
        reader.only("field", "op")
        node = IsNull(field=reader.string("field"), pos=reader.here, spots=reader.spots("field"))
        return Not(part=node, pos=reader.here) if op == "is_not_null" else node
    reader.only("field", "op", "value")
    spots = reader.spots("field", "op", "value") + _item_spots(reader, "value")
    name = reader.string("field")
    if op == "in":
        values = tuple(_value(reader, item, f"value/{i}") for i, item in enumerate(reader.array("value")))
        return InSet(field=name, values=values, pos=reader.here, spots=spots)
    if op == "between":
        bounds = reader.array("value")
        if len(bounds) != 2:
            raise fail(Code.SYNTAX, "'between' takes [low, high]", reader.spot("value"))
        low, high = (_value(reader, item, f"value/{i}") for i, item in enumerate(bounds))
        return Between(field=name, low=low, high=high, pos=reader.here, spots=spots)
    value = _value(reader, reader.obj.get("value"), "value")
    return Compare(field=name, op=_op(reader, op), value=value, pos=reader.here, spots=spots)


def _item_spots(reader: Reader, key: str) -> a.Spots:
    items = reader.obj.get(key)
    if not isinstance(items, list):
        return ()
    return tuple((f"{key}/{i}", reader.spot(f"{key}/{i}")) for i in range(len(items)))


def _op(reader: Reader, op: str) -> Op:
    try:
        return Op(op)
    except ValueError:
        allowed = ", ".join([*(o.value for o in Op), "in", "between", "is_null", "is_not_null"])
        raise fail(Code.SYNTAX, f"unknown operator {op!r}; use one of {allowed}", reader.spot("op")) from None


def _value(reader: Reader, item: Any, part: str) -> Value:
    position = Position(pointer=f"{reader.pointer}/{part}")
    if isinstance(item, Mapping) and set(item) == {"relative"}:
        return Reader.relative(item["relative"], position)
    return Reader.scalar(item, position)


def _tag(reader: Reader) -> Condition:
    reader.only("tag", "value", "values")
    spots = reader.spots("tag", "value", "values")
    values: tuple[str, ...] = ()
    if "value" in reader.obj:
        values = (reader.string("value", empty=True),)
    elif "values" in reader.obj:
        items = enumerate(reader.array("values"))
        values = tuple(reader.item_string(item, f"values/{i}", empty=True) for i, item in items)
    return HasTag(tag=reader.string("tag"), values=values, pos=reader.here, spots=spots)


def _holds(reader: Reader) -> Condition:
    reader.only("holds")
    inner = reader.child("holds")
    inner.only(*HOLDS_ARGUMENTS)
    return Holds(
        product_type=inner.optional_string("product_type"),
        product_code=inner.optional_string("product_code"),
        risk_level=inner.optional_string("risk_level"),
        min_balance=inner.optional_number("min_balance"),
        max_balance=inner.optional_number("max_balance"),
        maturing_within=inner.optional_duration("maturing_within"),
        pos=reader.here,
        spots=inner.spots(*HOLDS_ARGUMENTS),
    )


def _transacted(reader: Reader) -> Condition:
    reader.only("transacted")
    inner = reader.child("transacted")
    keys = ("direction", "counterparty_type", "channel", "category", "min_amount", "max_amount")
    inner.only(*keys, "within", "at_least", "sum_at_least")
    return Transacted(
        direction=inner.optional_string("direction"),
        counterparty_type=inner.optional_string("counterparty_type"),
        channel=inner.optional_string("channel"),
        category=inner.optional_string("category"),
        min_amount=inner.optional_number("min_amount"),
        max_amount=inner.optional_number("max_amount"),
        within=inner.duration("within"),
        at_least=inner.integer("at_least", 1),
        sum_at_least=inner.optional_number("sum_at_least"),
        pos=reader.here,
        spots=inner.spots(*keys, "within", "at_least", "sum_at_least"),
    )


def _filters(reader: Reader, key: str) -> tuple[PropertyFilter, ...]:
    if key not in reader.obj:
        return ()
    return tuple(_filter(Reader(item, f"{reader.pointer}/{key}/{i}")) for i, item in enumerate(reader.array(key)))


def _filter(reader: Reader) -> PropertyFilter:
    reader.only("property", "op", "value")
    value = Reader.scalar(reader.obj.get("value"), reader.spot("value"))
    return PropertyFilter(
        property=reader.string("property"),
        op=_op(reader, reader.string("op")),
        value=value,
        pos=reader.here,
        spots=reader.spots("property", "op", "value"),
    )


def _step(item: Any, pointer: str) -> EventStep:
    if isinstance(item, str):
        return EventStep(event=item, pos=Position(pointer=pointer))
    reader = Reader(item, pointer)
    reader.only("event", "where")
    return EventStep(
        event=reader.string("event"), where=_filters(reader, "where"), pos=reader.here, spots=reader.spots("event")
    )


def _did(reader: Reader) -> Condition:
    if "then_not" in reader.obj:
        reader.only("did", "where", "then_not", "within", "in_last")
        first = EventStep(event=reader.string("did"), where=_filters(reader, "where"), pos=reader.spot("did"))
        return DidNotAfter(
            first=first,
            then_not=_step(reader.obj["then_not"], f"{reader.pointer}/then_not"),
            within=reader.duration("within"),
            in_last=reader.duration("in_last"),
            pos=reader.here,
            spots=reader.spots("did", "within", "in_last"),
        )
    reader.only("did", "where", "at_least", "within")
    return DidEvent(
        event=reader.string("did"),
        where=_filters(reader, "where"),
        at_least=reader.integer("at_least", 1),
        within=reader.duration("within"),
        pos=reader.here,
        spots=reader.spots("did", "at_least", "within"),
    )


def _sequence(reader: Reader) -> Condition:
    reader.only("sequence", "within", "in_last")
    steps = tuple(_step(item, f"{reader.pointer}/sequence/{i}") for i, item in enumerate(reader.array("sequence")))
    if len(steps) < 2:
        raise fail(Code.SYNTAX, "a sequence has at least two steps", reader.spot("sequence"))
    return DidSequence(
        steps=steps,
        within=reader.duration("within"),
        in_last=reader.optional_duration("in_last"),
        pos=reader.here,
        spots=reader.spots("sequence", "within", "in_last"),
    )


def _segment(reader: Reader) -> Condition:
    reader.only("segment")
    return InSegment(segment_id=reader.string("segment"), pos=reader.here, spots=reader.spots("segment"))


_KINDS: dict[str, Callable[[Reader], Condition]] = {
    "and": _and,
    "or": _or,
    "not": _not,
    "field": _field,
    "tag": _tag,
    "holds": _holds,
    "did": _did,
    "sequence": _sequence,
    "transacted": _transacted,
    "segment": _segment,
}
