"""The compact text form of segment definitions: text → AST (lark, LALR) and AST → text.

    age >= 30 and city in ("上海", "杭州") and open_date >= today-365d
    and tag rfm = "champion"
    and holds(product_type = "wealth", min_balance = 50000, maturing_within = 7d)
    and did fund_page_view where (fund_type = "equity") at least 3 times within 30d
    and did view_wealth then use_yield_calculator within 10m in last 7d
    and not did view_wealth then not buy_wealth within 10m in last 1d
    and transacted(direction = "out", counterparty_type = "other_bank", sum_at_least = 100000, within = 30d)
    and segment seg_vip

`and` binds tighter than `or`; `not` tighter than both. Names that are not
plain identifiers (or are keywords) are written as JSON strings. `#` and
`--` start comments. Errors carry the line and column of the spot.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any

from lark import Lark, Token, Tree, UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from marketloop.segments import ast as a
from marketloop.segments.args import Arguments
from marketloop.segments.ast import Position, parse_duration
from marketloop.segments.errors import Code, fail
from marketloop.segments.text_writer import to_text

__all__ = ["parse_text", "to_text"]


@cache
def _parser() -> Lark:
    grammar = (resources.files("marketloop.segments") / "grammar.lark").read_text(encoding="utf-8")
    return Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=False)


def parse_text(source: str) -> a.Condition:
    """The condition `source` describes; raises `DefinitionError` with the line and column of the spot."""
    try:
        tree = _parser().parse(source)
    except UnexpectedInput as error:
        raise fail(Code.SYNTAX, _syntax_message(error, source), _error_position(error, source)) from None
    return _condition(tree)


def _error_position(error: UnexpectedInput, source: str) -> Position:
    if isinstance(error, UnexpectedToken) and error.token.type == "$END":
        lines = source.rstrip().split("\n")
        return Position(line=len(lines), column=len(lines[-1]) + 1)  # just after the last character
    return Position(line=error.line, column=error.column)


def _syntax_message(error: UnexpectedInput, source: str) -> str:
    if isinstance(error, UnexpectedToken):
        if error.token.type == "$END":
            return "the definition ends too early"
        expected = sorted({_readable(name) for name in error.expected})
        return f"unexpected {str(error.token)!r}; expected {', '.join(expected)}"
    if isinstance(error, UnexpectedCharacters):
        return f"unexpected character {source[error.pos_in_stream or 0]!r}"
    return "cannot read the definition here"


def _readable(terminal: str) -> str:
    names = {"NAME": "a name", "STRING": "a string", "NUMBER": "a number", "INT": "a whole number"}
    names |= {"DURATION": "a duration (30d, 12h, 10m)", "RELATIVE": "a relative date (today-30d)", "OP": "=, <, >…"}
    names |= {"LPAR": "(", "RPAR": ")", "COMMA": ","}
    return names.get(terminal, terminal.strip("_").lower())


def _here(node: Tree[Token] | Token) -> Position:
    if isinstance(node, Token):
        return Position(line=node.line, column=node.column)
    return Position(line=node.meta.line, column=node.meta.column)


def _name(token: Tree[Token] | Token) -> str:
    assert isinstance(token, Token)
    return str(json.loads(token)) if token.type == "STRING" else str(token)


def _op(token: Tree[Token] | Token) -> a.Op:
    written = str(token)
    return a.Op("!=" if written == "<>" else written)


def _scalar(node: Tree[Token] | Token) -> a.Scalar:
    assert isinstance(node, Tree)
    token = node.children[0] if node.children else None
    if node.data == "true":
        return True
    if node.data == "false":
        return False
    assert isinstance(token, Token)
    if node.data == "string":
        return str(json.loads(token))
    return int(token) if re.fullmatch(r"[+-]?\d+", token) else Decimal(str(token))


def _value(node: Tree[Token] | Token) -> a.Value:
    if isinstance(node, Tree) and node.data == "relative":
        found = a.parse_relative(str(node.children[0]))
        assert found is not None
        return found
    return _scalar(node)


def _trees(children: list[Tree[Token] | Token], data: str) -> Iterator[Tree[Token]]:
    return (c for c in children if isinstance(c, Tree) and c.data == data)


def _duration(token: Tree[Token] | Token) -> timedelta:
    span = parse_duration(str(token))
    assert span is not None
    return span


def _condition(tree: Tree[Token] | Token) -> a.Condition:
    assert isinstance(tree, Tree)
    return _BUILDERS[str(tree.data)](tree)


def _parts(tree: Tree[Token]) -> tuple[a.Condition, ...]:
    return tuple(_condition(child) for child in tree.children)


def _field_spots(tree: Tree[Token]) -> a.Spots:
    field, *rest = tree.children
    spots = [("field", _here(field))]
    if rest and isinstance(rest[0], Token) and rest[0].type == "OP":
        spots.append(("op", _here(rest[0])))
        rest = rest[1:]
    spots += [("value", _here(rest[0]))] if len(rest) == 1 else [(f"value/{i}", _here(v)) for i, v in enumerate(rest)]
    return tuple(spots)


def _compare(tree: Tree[Token]) -> a.Condition:
    field, op, value = tree.children
    return a.Compare(field=_name(field), op=_op(op), value=_value(value), pos=_here(tree), spots=_field_spots(tree))


def _in_set(tree: Tree[Token]) -> a.Condition:
    field, *values = tree.children
    return a.InSet(
        field=_name(field), values=tuple(_value(v) for v in values), pos=_here(tree), spots=_field_spots(tree)
    )


def _between(tree: Tree[Token]) -> a.Condition:
    field, low, high = tree.children
    spots = (("field", _here(field)), ("value", _here(low)))
    return a.Between(field=_name(field), low=_value(low), high=_value(high), pos=_here(tree), spots=spots)


def _is_null(tree: Tree[Token]) -> a.Condition:
    return a.IsNull(field=_name(tree.children[0]), pos=_here(tree), spots=_field_spots(tree))


def _tag(tree: Tree[Token]) -> a.Condition:
    name, *rest = tree.children
    if rest and isinstance(rest[0], Token) and rest[0].type == "OP" and rest[0] != "=":
        raise fail(Code.SYNTAX, "a tag is compared with = or in (…)", _here(rest[0]))
    values = tuple(_name(v) for v in rest if isinstance(v, Token) and v.type == "STRING")
    spots = (("tag", _here(name)),) + ((("value", _here(rest[-1])),) if rest else ())
    return a.HasTag(tag=_name(name), values=values, pos=_here(tree), spots=spots)


def _arguments(tree: Tree[Token]) -> Arguments:
    found: dict[str, tuple[Any, Position]] = {}
    for argument in _trees(tree.children, "argument"):
        key, op, value = argument.children
        if op != "=":
            raise fail(Code.SYNTAX, f"write {key} = …", _here(op))
        if isinstance(value, Token) and value.type == "DURATION":
            found[str(key)] = (_duration(value), _here(value))
        else:
            found[str(key)] = (_value(value), _here(value))
    return Arguments(found, _here(tree))


def _holds(tree: Tree[Token]) -> a.Condition:
    args = _arguments(tree)
    return args.holds()


def _transacted(tree: Tree[Token]) -> a.Condition:
    return _arguments(tree).transacted()


def _step(tree: Tree[Token] | Token) -> a.EventStep:
    assert isinstance(tree, Tree)
    name, *tests = tree.children
    where = tuple(_property_test(t) for t in tests if isinstance(t, Tree))
    return a.EventStep(event=_name(name), where=where, pos=_here(tree), spots=(("event", _here(name)),))


def _property_test(tree: Tree[Token]) -> a.PropertyFilter:
    name, op, value = tree.children
    spots = (("property", _here(name)), ("value", _here(value)))
    return a.PropertyFilter(property=_name(name), op=_op(op), value=_scalar(value), pos=_here(tree), spots=spots)


def _did(tree: Tree[Token]) -> a.Condition:
    step = _step(tree.children[0])
    counted = next(_trees(tree.children, "at_least"), None)
    within = tree.children[-1]
    spots = [("within", _here(within))]
    at_least = 1
    if counted is not None:
        at_least = int(str(counted.children[0]))
        spots.append(("at_least", _here(counted.children[0])))
    return a.DidEvent(
        event=step.event,
        where=step.where,
        at_least=at_least,
        within=_duration(within),
        pos=_here(tree),
        spots=(("did", _here(tree.children[0])), *spots),
    )


def _in_last(tree: Tree[Token]) -> tuple[timedelta | None, a.Spots]:
    found = next(_trees(tree.children, "in_last"), None)
    if found is None:
        return None, ()
    return _duration(found.children[0]), (("in_last", _here(found.children[0])),)


def _sequence(tree: Tree[Token]) -> a.Condition:
    steps = tuple(_step(s) for s in _trees(tree.children, "step"))
    within = next(c for c in tree.children if isinstance(c, Token) and c.type == "DURATION")
    in_last, spots = _in_last(tree)
    spots = (("within", _here(within)), *spots)
    return a.DidSequence(steps=steps, within=_duration(within), in_last=in_last, pos=_here(tree), spots=spots)


def _absence(tree: Tree[Token]) -> a.Condition:
    first, then_not = (_step(s) for s in _trees(tree.children, "step"))
    within = next(c for c in tree.children if isinstance(c, Token) and c.type == "DURATION")
    in_last, spots = _in_last(tree)
    assert in_last is not None
    return a.DidNotAfter(
        first=first,
        then_not=then_not,
        within=_duration(within),
        in_last=in_last,
        pos=_here(tree),
        spots=(("did", first.pos or _here(tree)), ("within", _here(within)), *spots),
    )


def _segment(tree: Tree[Token]) -> a.Condition:
    name = tree.children[0]
    return a.InSegment(segment_id=_name(name), pos=_here(tree), spots=(("segment", _here(name)),))


_BUILDERS: dict[str, Callable[[Tree[Token]], a.Condition]] = {
    "disjunction": lambda tree: a.Or(parts=_parts(tree), pos=_here(tree)),
    "conjunction": lambda tree: a.And(parts=_parts(tree), pos=_here(tree)),
    "negate": lambda tree: a.Not(part=_condition(tree.children[0]), pos=_here(tree)),
    "compare": _compare,
    "in_set": _in_set,
    "between": _between,
    "is_null": _is_null,
    "is_not_null": lambda tree: a.Not(part=_is_null(tree), pos=_here(tree)),
    "tag": _tag,
    "holds": _holds,
    "transacted": _transacted,
    "did": _did,
    "sequence": _sequence,
    "absence": _absence,
    "segment": _segment,
}
