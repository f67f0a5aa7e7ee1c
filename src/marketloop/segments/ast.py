"""The segment definition language (客群定义) as frozen syntax nodes.

A definition is a tree of `Condition`s. Nodes say what was written and
nothing more: field, tag and event names are plain strings, values are
literals or `RelativeDate`s, windows are `timedelta`s. `resolve` gives the
names meaning against a catalog; the passes and printers turn that meaning
into SQL and `evaluate` into a yes / no for one customer.

Every node may carry the `Position` it was parsed from (a JSON pointer, or a
line and column of the text form) and the positions of its parts (`spots`:
"field", "value", "within", …). Positions take no part in equality, so a
definition parsed from JSON equals the same definition parsed from text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Literal


@dataclass(frozen=True, kw_only=True)
class Position:
    """Where a node was written: a JSON pointer into the document, or a 1-based line and column of the text."""

    pointer: str | None = None
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        if self.line is not None:
            return f"{self.line}:{self.column}"
        return self.pointer or "/"


Spots = tuple[tuple[str, Position], ...]


@dataclass(frozen=True, kw_only=True)
class Node:
    """Base of every syntax node: where it was written, and where its named parts were."""

    pos: Position | None = field(default=None, compare=False, repr=False)
    spots: Spots = field(default=(), compare=False, repr=False)

    def at(self, part: str | None = None) -> Position | None:
        """The position of `part` ("field", "value", …) when known, else of the node."""
        for name, position in self.spots:
            if name == part:
                return position
        return self.pos


class Op(StrEnum):
    EQ = "="
    NE = "!="
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="


ORDERING_OPS = frozenset({Op.LT, Op.LE, Op.GT, Op.GE})


@dataclass(frozen=True, kw_only=True)
class RelativeDate:
    """A time relative to the evaluation's `as_of`: `today-30d`, `today+7d`, `now-2h` (`-30d` = `today-30d`).

    `today` is the date of `as_of`; `now` is `as_of` itself. The engine never
    reads the wall clock: the passes fold relative dates against the `as_of`
    they are given.
    """

    anchor: Literal["today", "now"] = "today"
    offset: timedelta = timedelta(0)

    def __str__(self) -> str:
        if not self.offset:
            return self.anchor
        sign = "-" if self.offset < timedelta(0) else "+"
        return f"{self.anchor}{sign}{format_duration(abs(self.offset))}"


Scalar = str | int | Decimal | bool
Value = Scalar | RelativeDate


@dataclass(frozen=True, kw_only=True)
class Condition(Node):
    """A yes / no question about one customer."""


@dataclass(frozen=True, kw_only=True)
class And(Condition):
    parts: tuple[Condition, ...]


@dataclass(frozen=True, kw_only=True)
class Or(Condition):
    parts: tuple[Condition, ...]


@dataclass(frozen=True, kw_only=True)
class Not(Condition):
    part: Condition


@dataclass(frozen=True, kw_only=True)
class Compare(Condition):
    """`field op value`; a missing (NULL) field value compares false."""

    field: str
    op: Op
    value: Value


@dataclass(frozen=True, kw_only=True)
class InSet(Condition):
    field: str
    values: tuple[Value, ...]


@dataclass(frozen=True, kw_only=True)
class Between(Condition):
    """`low <= field <= high`."""

    field: str
    low: Value
    high: Value


@dataclass(frozen=True, kw_only=True)
class IsNull(Condition):
    field: str


@dataclass(frozen=True, kw_only=True)
class HasTag(Condition):
    """The customer carries `tag` (标签), with one of `values` when any are given."""

    tag: str
    values: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Holds(Condition):
    """Holds, on the `as_of` date, products matching every given filter with a positive balance.

    `min_balance` / `max_balance` bound the total balance of the matching
    holdings; `maturing_within` keeps holdings maturing between `as_of` and
    that many days later (到期).
    """

    product_type: str | None = None
    product_code: str | None = None
    risk_level: str | None = None
    min_balance: int | Decimal | None = None
    max_balance: int | Decimal | None = None
    maturing_within: timedelta | None = None


@dataclass(frozen=True, kw_only=True)
class PropertyFilter(Node):
    """A test of one event property: numbers compare as numbers, anything else as its JSON text."""

    property: str
    op: Op
    value: Scalar


@dataclass(frozen=True, kw_only=True)
class EventStep(Node):
    """One step of a sequence: an event name and filters on its properties."""

    event: str
    where: tuple[PropertyFilter, ...] = ()


@dataclass(frozen=True, kw_only=True)
class DidEvent(Condition):
    """Did `event` (with every `where` filter true) at least `at_least` times in the last `within`."""

    event: str
    where: tuple[PropertyFilter, ...] = ()
    at_least: int = 1
    within: timedelta


@dataclass(frozen=True, kw_only=True)
class DidSequence(Condition):
    """Did the steps in this order, the last no later than `within` after the first, all in the last `in_last`.

    `in_last` defaults to `within`: the whole sequence happened in the last `within`.
    """

    steps: tuple[EventStep, ...]
    within: timedelta
    in_last: timedelta | None = None


@dataclass(frozen=True, kw_only=True)
class DidNotAfter(Condition):
    """Did `first` in the last `in_last` and no `then_not` within `within` after it.

    Only a `first` at least `within` old counts: before that the absence is
    not yet known (the real-time processor waits for the timer instead).
    """

    first: EventStep
    then_not: EventStep
    within: timedelta
    in_last: timedelta


@dataclass(frozen=True, kw_only=True)
class Transacted(Condition):
    """Made at least `at_least` matching transactions in the last `within`, totalling at least `sum_at_least`.

    `min_amount` / `max_amount` bound each transaction's amount.
    """

    direction: str | None = None
    counterparty_type: str | None = None
    channel: str | None = None
    category: str | None = None
    min_amount: int | Decimal | None = None
    max_amount: int | Decimal | None = None
    within: timedelta
    at_least: int = 1
    sum_at_least: int | Decimal | None = None


@dataclass(frozen=True, kw_only=True)
class InSegment(Condition):
    """Is a member of another saved segment (its newest version)."""

    segment_id: str


_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNIT_SECONDS = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}
_RELATIVE = re.compile(r"^(today|now)?(?:([+-])(\d+[smhdw]))?$")


def parse_duration(text: str) -> timedelta | None:
    """`30d`, `12h`, `10m`, `45s`, `2w` as a timedelta; None when `text` is not a duration."""
    found = _DURATION.match(text.strip())
    if not found:
        return None
    return timedelta(seconds=int(found.group(1)) * _UNIT_SECONDS[found.group(2)])


def format_duration(span: timedelta) -> str:
    """The shortest exact text of a non-negative duration: `30d`, `36h`, `90m`, `45s`."""
    seconds = int(span.total_seconds())
    for unit in ("d", "h", "m"):
        if seconds and seconds % _UNIT_SECONDS[unit] == 0:
            return f"{seconds // _UNIT_SECONDS[unit]}{unit}"
    return f"{seconds}s"


def parse_relative(text: str) -> RelativeDate | None:
    """`today`, `now`, `today-30d`, `now+2h`, `-30d` (= `today-30d`); None when `text` is none of these."""
    found = _RELATIVE.match(text.strip())
    if not found or (found.group(1) is None and found.group(2) is None):
        return None
    anchor: Literal["today", "now"] = "now" if found.group(1) == "now" else "today"
    if found.group(2) is None:
        return RelativeDate(anchor=anchor)
    span = parse_duration(found.group(3))
    assert span is not None
    return RelativeDate(anchor=anchor, offset=-span if found.group(2) == "-" else span)
