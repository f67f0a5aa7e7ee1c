"""The meaning of a definition: resolved nodes, bound to catalog fields, with typed values.

`resolve` builds these from the syntax tree; the passes rewrite them (fold
relative dates and windows against `as_of`, merge scans, push windows down);
the printers turn them into SQL and `evaluate` answers them for one customer.
No node here holds a position or an unknown name: everything that could be
wrong with a definition was reported by `resolve`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Literal as TypingLiteral

from marketloop.segments.ast import Op, RelativeDate
from marketloop.segments.catalog import Field

Literal = str | int | Decimal | bool | date | datetime
Value = Literal | RelativeDate


@dataclass(frozen=True, kw_only=True)
class Bound:
    """A resolved condition."""


@dataclass(frozen=True, kw_only=True)
class AllOf(Bound):
    parts: tuple[Bound, ...]


@dataclass(frozen=True, kw_only=True)
class AnyOf(Bound):
    parts: tuple[Bound, ...]


@dataclass(frozen=True, kw_only=True)
class Negation(Bound):
    part: Bound


@dataclass(frozen=True, kw_only=True)
class Constant(Bound):
    value: bool


@dataclass(frozen=True, kw_only=True)
class FieldCompare(Bound):
    field: Field
    op: Op
    value: Value


@dataclass(frozen=True, kw_only=True)
class FieldIn(Bound):
    field: Field
    values: tuple[Value, ...]


@dataclass(frozen=True, kw_only=True)
class FieldBetween(Bound):
    field: Field
    low: Value
    high: Value


@dataclass(frozen=True, kw_only=True)
class FieldIsNull(Bound):
    field: Field


FieldTest = FieldCompare | FieldIn | FieldBetween | FieldIsNull


@dataclass(frozen=True, kw_only=True)
class TagIn(Bound):
    tag: str
    values: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Window:
    """The last `span` before `as_of`: the times in (`start`, `end`], known once folded against `as_of`."""

    span: timedelta
    start: datetime | None = None
    end: datetime | None = None

    def folded(self) -> tuple[datetime, datetime]:
        if self.start is None or self.end is None:
            raise ValueError("fold the definition against as_of first")
        return self.start, self.end


@dataclass(frozen=True, kw_only=True)
class HoldingTest(Bound):
    """Holdings in force on `on` with a positive balance, matching the filters; totals bounded."""

    product_type: str | None = None
    product_code: str | None = None
    risk_level: str | None = None
    min_balance: Decimal | None = None
    max_balance: Decimal | None = None
    maturing_days: int | None = None
    on: date | None = None  # set by folding: the as_of date

    @property
    def needs_products(self) -> bool:
        return self.product_type is not None or self.risk_level is not None


@dataclass(frozen=True, kw_only=True)
class PropertyTest:
    """An event property test: a Decimal value compares numerically, a string or boolean as JSON text."""

    property: str
    op: Op
    value: str | Decimal | bool


@dataclass(frozen=True, kw_only=True)
class EventMatch:
    event: str
    where: tuple[PropertyTest, ...] = ()


@dataclass(frozen=True, kw_only=True)
class EventCount(Bound):
    match: EventMatch
    at_least: int
    window: Window


@dataclass(frozen=True, kw_only=True)
class EventSequence(Bound):
    steps: tuple[EventMatch, ...]
    within: timedelta
    window: Window


@dataclass(frozen=True, kw_only=True)
class EventAbsence(Bound):
    """A `first` in `window` at least `within` old, with no `then_not` in the `within` after it."""

    first: EventMatch
    then_not: EventMatch
    within: timedelta
    window: Window


@dataclass(frozen=True, kw_only=True)
class TxnTest(Bound):
    direction: str | None = None
    counterparty_type: str | None = None
    channel: str | None = None
    category: str | None = None
    min_amount: Decimal | None = None
    max_amount: Decimal | None = None
    at_least: int = 1
    sum_at_least: Decimal | None = None
    window: Window


# -- nodes the passes introduce ------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class AttrScan(Bound):
    """Customers with a row of `relation` where `condition` (field tests of that relation only) holds.

    `condition` is false on a missing row, so "no row" and "row that fails"
    mean the same thing; the merge pass guarantees it.
    """

    relation: str
    condition: Bound


@dataclass(frozen=True, kw_only=True)
class AggregateScan(Bound):
    """Several counts over one scan of events or transactions, grouped by customer.

    `any_of` says whether one test (OR) or every test (AND) must hold;
    `window` is the union of the tests' windows, pushed into the scan.
    """

    source: TypingLiteral["events", "transactions"]
    tests: tuple[EventCount | TxnTest, ...]
    any_of: bool = False
    window: Window | None = None
