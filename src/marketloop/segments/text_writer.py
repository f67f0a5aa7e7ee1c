"""AST → the text form (the inverse of `text.parse_text`): canonical spacing, minimal parentheses."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from marketloop.segments import ast as a
from marketloop.segments.ast import format_duration

_KEYWORDS = frozenset(
    {"or", "and", "not", "in", "between", "is", "null", "tag", "holds", "transacted", "did", "then", "where"}
    | {"at", "least", "time", "times", "within", "last", "segment", "true", "false", "today", "now"}
)
_IDENTIFIER = re.compile(r"^[^\W\d]\w*$")


def name_text(name: str) -> str:
    """`name` as written in the text form: bare when it is a plain identifier, else a JSON string."""
    if _IDENTIFIER.match(name) and name.lower() not in _KEYWORDS:
        return name
    return json.dumps(name, ensure_ascii=False)


def value_text(value: a.Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def to_text(condition: a.Condition) -> str:
    """The text form of `condition`; `parse_text(to_text(c)) == c` when every And / Or has two or more parts."""
    return _TEXT[type(condition)](condition)


def _joined(parts: tuple[a.Condition, ...], word: str, wrap: tuple[type[a.Condition], ...]) -> str:
    return f" {word} ".join(f"({to_text(p)})" if isinstance(p, wrap) else to_text(p) for p in parts)


def _not_text(node: a.Not) -> str:
    if isinstance(node.part, a.IsNull):
        return f"{name_text(node.part.field)} is not null"
    inner = to_text(node.part)
    return f"not ({inner})" if isinstance(node.part, a.And | a.Or) else f"not {inner}"


def _tag_text(node: a.HasTag) -> str:
    if not node.values:
        return f"tag {name_text(node.tag)}"
    if len(node.values) == 1:
        return f"tag {name_text(node.tag)} = {value_text(node.values[0])}"
    return f"tag {name_text(node.tag)} in ({', '.join(value_text(v) for v in node.values)})"


def _arguments_text(**items: Any) -> str:
    shown = []
    for key, item in items.items():
        if item is None:
            continue
        shown.append(f"{key} = {format_duration(item) if isinstance(item, timedelta) else value_text(item)}")
    return ", ".join(shown)


def _holds_text(node: a.Holds) -> str:
    inner = _arguments_text(
        product_type=node.product_type,
        product_code=node.product_code,
        risk_level=node.risk_level,
        min_balance=node.min_balance,
        max_balance=node.max_balance,
        maturing_within=node.maturing_within,
    )
    return f"holds({inner})" if inner else "holds"


def _transacted_text(node: a.Transacted) -> str:
    inner = _arguments_text(
        direction=node.direction,
        counterparty_type=node.counterparty_type,
        channel=node.channel,
        category=node.category,
        min_amount=node.min_amount,
        max_amount=node.max_amount,
        at_least=node.at_least if node.at_least != 1 else None,
        sum_at_least=node.sum_at_least,
        within=node.within,
    )
    return f"transacted({inner})"


def _step_text(event: str, where: tuple[a.PropertyFilter, ...]) -> str:
    if not where:
        return name_text(event)
    tests = " and ".join(f"{name_text(f.property)} {f.op.value} {value_text(f.value)}" for f in where)
    return f"{name_text(event)} where ({tests})"


def _did_text(node: a.DidEvent) -> str:
    times = f" at least {node.at_least} times" if node.at_least != 1 else ""
    return f"did {_step_text(node.event, node.where)}{times} within {format_duration(node.within)}"


def _sequence_text(node: a.DidSequence) -> str:
    steps = " then ".join(_step_text(s.event, s.where) for s in node.steps)
    in_last = f" in last {format_duration(node.in_last)}" if node.in_last is not None else ""
    return f"did {steps} within {format_duration(node.within)}{in_last}"


def _absence_text(node: a.DidNotAfter) -> str:
    first = _step_text(node.first.event, node.first.where)
    then_not = _step_text(node.then_not.event, node.then_not.where)
    spans = f"within {format_duration(node.within)} in last {format_duration(node.in_last)}"
    return f"did {first} then not {then_not} {spans}"


def _field_text(node: a.Compare | a.InSet | a.Between | a.IsNull) -> str:
    field = name_text(node.field)
    if isinstance(node, a.Compare):
        return f"{field} {node.op.value} {value_text(node.value)}"
    if isinstance(node, a.InSet):
        return f"{field} in ({', '.join(value_text(v) for v in node.values)})"
    if isinstance(node, a.Between):
        return f"{field} between {value_text(node.low)} and {value_text(node.high)}"
    return f"{field} is null"


_TEXT: dict[type[a.Condition], Callable[[Any], str]] = {
    a.And: lambda node: _joined(node.parts, "and", (a.And, a.Or)),
    a.Or: lambda node: _joined(node.parts, "or", (a.Or,)),
    a.Not: _not_text,
    a.Compare: _field_text,
    a.InSet: _field_text,
    a.Between: _field_text,
    a.IsNull: _field_text,
    a.HasTag: _tag_text,
    a.Holds: _holds_text,
    a.DidEvent: _did_text,
    a.DidSequence: _sequence_text,
    a.DidNotAfter: _absence_text,
    a.Transacted: _transacted_text,
    a.InSegment: lambda node: f"segment {name_text(node.segment_id)}",
}
