"""The same definition answered in Python for ONE customer: real-time membership (M4) and the property tests.

`CustomerFacts` is what the stream processor holds for a customer: the
profile row (attributes), tags, holdings, transactions and recent events.
`evaluate` answers a bound tree against them at `as_of`, with exactly the
semantics the printed SQL has (two-valued logic, windows `(as_of - span,
as_of]`, greedy sequences, absences known only once `within` has passed).
`CompiledSegment` resolves once and is then called per event; it also says
how much history it needs (`lookback`) and which facts (`needs`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from marketloop.segments import bound as b
from marketloop.segments.passes import fold, normalise
from marketloop.segments.passes.fold import maturity_end
from marketloop.segments.passes.walk import leaves
from marketloop.segments.rows import compare, test_row


@dataclass(frozen=True, kw_only=True)
class HoldingFact:
    product_code: str
    balance: Decimal
    valid_from: date
    valid_to: date | None = None  # last day with this balance; None = still
    maturity_date: date | None = None
    product_type: str | None = None
    risk_level: str | None = None


@dataclass(frozen=True, kw_only=True)
class TransactionFact:
    ts: datetime
    amount: Decimal
    direction: str
    counterparty_type: str | None = None
    channel: str | None = None
    category: str | None = None


@dataclass(frozen=True, kw_only=True)
class EventFact:
    event: str | None
    timestamp: datetime
    properties: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class CustomerFacts:
    """One customer as the evaluator sees them; absent attributes are NULL."""

    cust_no: str
    attributes: Mapping[str, Any] = field(default_factory=dict)  # customers + customer_profile columns
    tags: Mapping[str, frozenset[str | None]] = field(default_factory=dict)  # tag → its values
    holdings: Sequence[HoldingFact] = ()
    transactions: Sequence[TransactionFact] = ()
    events: Sequence[EventFact] = ()


def evaluate(node: b.Bound, customer: CustomerFacts, as_of: datetime) -> bool:
    """Whether `customer` is a member at `as_of` (relative dates and windows folded here)."""
    return _answer(fold(node, as_of), customer)


def _answer(node: b.Bound, customer: CustomerFacts) -> bool:
    if isinstance(node, b.AllOf):
        return all(_answer(part, customer) for part in node.parts)
    if isinstance(node, b.AnyOf):
        return any(_answer(part, customer) for part in node.parts)
    if isinstance(node, b.Negation):
        return not _answer(node.part, customer)
    if isinstance(node, b.AggregateScan):
        answers = (_answer(test, customer) for test in node.tests)
        return any(answers) if node.any_of else all(answers)
    handler = _LEAVES.get(type(node))
    if handler is None:
        return test_row(node, _row(customer))
    return handler(node, customer)


def _row(customer: CustomerFacts) -> Mapping[str, Any]:
    """The attributes, with `cust_no` from the facts when the profile row does not repeat it."""
    if "cust_no" in customer.attributes:
        return customer.attributes
    return {**customer.attributes, "cust_no": customer.cust_no}


def _tag(node: b.TagIn, customer: CustomerFacts) -> bool:
    values = customer.tags.get(node.tag)
    if not values:
        return False
    return not node.values or any(v in values for v in node.values)


def _holds(node: b.HoldingTest, customer: CustomerFacts) -> bool:
    on = node.on
    assert on is not None, "fold first"
    total, found = Decimal(0), False
    for holding in customer.holdings:
        if _holding_matches(node, holding, on):
            total, found = total + holding.balance, True
    if not found:
        return False
    return (node.min_balance is None or total >= node.min_balance) and (
        node.max_balance is None or total <= node.max_balance
    )


def _holding_matches(node: b.HoldingTest, holding: HoldingFact, on: date) -> bool:
    in_force = holding.valid_from <= on and (holding.valid_to is None or holding.valid_to >= on)
    wanted = (
        (node.product_type is None or holding.product_type == node.product_type)
        and (node.product_code is None or holding.product_code == node.product_code)
        and (node.risk_level is None or holding.risk_level == node.risk_level)
    )
    return in_force and wanted and holding.balance > 0 and _maturing(node, holding, on)


def _maturing(node: b.HoldingTest, holding: HoldingFact, on: date) -> bool:
    if node.maturing_days is None:
        return True
    due = holding.maturity_date
    return due is not None and on <= due <= maturity_end(on, node.maturing_days)


# -- events ---------------------------------------------------------------------

_NUMBER = re.compile(r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$")


def as_number(value: Any) -> float | None:
    """An event property as a number the way SQL reads it: numbers and numeric strings; else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and _NUMBER.match(value):
        return float(value)
    return None


def as_text(value: Any) -> str | None:
    """An event property as the text SQL extracts: strings as they are, other values as JSON."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def property_holds(test: b.PropertyTest, properties: Mapping[str, Any]) -> bool:
    found = properties.get(test.property)
    if isinstance(test.value, Decimal):
        return compare(test.op, as_number(found), float(test.value))
    return compare(test.op, as_text(found), as_text(test.value))


def matches(match: b.EventMatch, event: EventFact) -> bool:
    return event.event == match.event and all(property_holds(t, event.properties) for t in match.where)


def _times(match: b.EventMatch, customer: CustomerFacts, start: datetime, end: datetime) -> list[datetime]:
    return sorted(e.timestamp for e in customer.events if start < e.timestamp <= end and matches(match, e))


def _count(node: b.EventCount, customer: CustomerFacts) -> bool:
    start, end = node.window.folded()
    return len(_times(node.match, customer, start, end)) >= node.at_least


def _sequence(node: b.EventSequence, customer: CustomerFacts) -> bool:
    start, end = node.window.folded()
    steps = [_times(step, customer, start, end) for step in node.steps]
    return any(_chain(first, steps[1:], first + node.within) for first in steps[0])


def _chain(after: datetime, steps: list[list[datetime]], deadline: datetime) -> bool:
    """Greedy: take the earliest next step after `after`; the chain fits iff the greedy one does."""
    for times in steps:
        later = next((t for t in times if after < t <= deadline), None)
        if later is None:
            return False
        after = later
    return True


def _absence(node: b.EventAbsence, customer: CustomerFacts) -> bool:
    start, end = node.window.folded()
    seconds = _times(node.then_not, customer, start, end)
    for first in _times(node.first, customer, start, end - node.within):
        if not any(first < t <= first + node.within for t in seconds):
            return True
    return False


def _transacted(node: b.TxnTest, customer: CustomerFacts) -> bool:
    start, end = node.window.folded()
    amounts = [t.amount for t in customer.transactions if start < t.ts <= end and txn_matches(node, t)]
    if len(amounts) < node.at_least:
        return False
    return node.sum_at_least is None or sum(amounts, Decimal(0)) >= node.sum_at_least


def txn_matches(node: b.TxnTest, txn: TransactionFact) -> bool:
    return (
        (node.direction is None or txn.direction == node.direction)
        and (node.counterparty_type is None or txn.counterparty_type == node.counterparty_type)
        and (node.channel is None or txn.channel == node.channel)
        and (node.category is None or txn.category == node.category)
        and (node.min_amount is None or txn.amount >= node.min_amount)
        and (node.max_amount is None or txn.amount <= node.max_amount)
    )


_LEAVES: dict[type[b.Bound], Callable[[Any, CustomerFacts], bool]] = {
    b.TagIn: _tag,
    b.HoldingTest: _holds,
    b.EventCount: _count,
    b.EventSequence: _sequence,
    b.EventAbsence: _absence,
    b.TxnTest: _transacted,
}

# -- compiled, for calling per event -----------------------------------------------------


@dataclass(frozen=True)
class CompiledSegment:
    """A resolved definition ready to be answered per event (the M4 stream processor's entry point)."""

    bound: b.Bound

    def matches(self, customer: CustomerFacts, as_of: datetime) -> bool:
        return evaluate(self.bound, customer, as_of)

    @property
    def lookback(self) -> timedelta:
        """How far back events and transactions must reach for an exact answer."""
        spans = [leaf.window.span for leaf in leaves(normalise(self.bound)) if hasattr(leaf, "window")]
        return max(spans, default=timedelta(0))

    @property
    def needs(self) -> frozenset[str]:
        """Which `CustomerFacts` the answer reads: attributes, tags, holdings, transactions, events."""
        kinds = {
            b.TagIn: "tags",
            b.HoldingTest: "holdings",
            b.TxnTest: "transactions",
            b.EventCount: "events",
            b.EventSequence: "events",
            b.EventAbsence: "events",
        }
        return frozenset(kinds.get(type(leaf), "attributes") for leaf in leaves(self.bound))
