"""Meaning: bind a definition's names to the catalog, check types, windows and segment references.

`resolve` walks the syntax tree once and collects every problem (unknown
field, tag, value or segment; wrong type for an operator or a value;
impossible window; bad count; a cycle of segments referring to each other),
each with the position of the spot, then raises them together as one
`DefinitionError`. On success it returns the bound tree (`bound.py`):
fields bound to catalog entries, values typed, referenced segments inlined.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

from marketloop.segments import ast as a
from marketloop.segments import bound as b
from marketloop.segments.catalog import Catalog, Field
from marketloop.segments.coerce import ORDERED, MismatchError, coerce, number
from marketloop.segments.errors import Code, DefinitionError, Problem

# The newest saved definition of a segment id, or None when there is no such segment.
SegmentLookup = Callable[[str], a.Condition | None]


def resolve(
    definition: a.Condition,
    catalog: Catalog,
    segments: SegmentLookup | None = None,
    *,
    segment_id: str | None = None,
) -> b.Bound:
    """The bound tree of `definition`; raises `DefinitionError` listing every problem with its position.

    `segment_id` is the id the definition is (or will be) saved under, so a
    reference back to it is reported as a cycle.
    """
    resolver = _Resolver(catalog, segments or (lambda _: None))
    found = resolver.condition(definition, (segment_id,) if segment_id else ())
    if resolver.problems:
        raise DefinitionError(resolver.problems)
    return found


class _Resolver:
    def __init__(self, catalog: Catalog, segments: SegmentLookup) -> None:
        self.catalog = catalog
        self.segments = segments
        self.problems: list[Problem] = []
        self._handlers: dict[type[a.Condition], Callable[[Any, tuple[str, ...]], b.Bound]] = {
            a.And: lambda n, s: b.AllOf(parts=tuple(self.condition(p, s) for p in n.parts)),
            a.Or: lambda n, s: b.AnyOf(parts=tuple(self.condition(p, s) for p in n.parts)),
            a.Not: lambda n, s: b.Negation(part=self.condition(n.part, s)),
            a.Compare: lambda n, _: self.compare(n),
            a.InSet: lambda n, _: self.in_set(n),
            a.Between: lambda n, _: self.between(n),
            a.IsNull: lambda n, _: self.is_null(n),
            a.HasTag: lambda n, _: self.tag(n),
            a.Holds: lambda n, _: self.holds(n),
            a.DidEvent: lambda n, _: self.did(n),
            a.DidSequence: lambda n, _: self.sequence(n),
            a.DidNotAfter: lambda n, _: self.absence(n),
            a.Transacted: lambda n, _: self.transacted(n),
            a.InSegment: self.segment,
        }

    def problem(self, code: str, message: str, position: a.Position | None) -> b.Bound:
        self.problems.append(Problem(code=code, message=message, position=position))
        return b.Constant(value=False)

    def condition(self, node: a.Condition, stack: tuple[str, ...]) -> b.Bound:
        return self._handlers[type(node)](node, stack)

    # -- customer fields -------------------------------------------------------

    def field(self, node: a.Compare | a.InSet | a.Between | a.IsNull) -> Field | None:
        found = self.catalog.field(node.field)
        if found is None:
            close = difflib.get_close_matches(node.field, self.catalog.names(), n=3)
            hint = f"; did you mean {' or '.join(close)}?" if close else ""
            self.problem(Code.UNKNOWN_FIELD, f"unknown field {node.field!r}{hint}", node.at("field"))
        return found

    def value(self, field: Field, value: a.Value, node: a.Node, part: str = "value") -> b.Value | None:
        try:
            return coerce(field, value)
        except MismatchError as mismatch:
            spot = dict(node.spots).get(part) or node.at("value")
            self.problem(mismatch.code, mismatch.message, spot)
            return None

    def compare(self, node: a.Compare) -> b.Bound:
        field = self.field(node)
        if field is None:
            return b.Constant(value=False)
        if node.op not in (a.Op.EQ, a.Op.NE) and field.type not in ORDERED:
            message = f"{node.op.value} needs a number, date or time; {field.name} is {field.type.value}"
            return self.problem(Code.WRONG_OPERATOR, message + " (use = or !=)", node.at("op"))
        value = self.value(field, node.value, node)
        return b.Constant(value=False) if value is None else b.FieldCompare(field=field, op=node.op, value=value)

    def in_set(self, node: a.InSet) -> b.Bound:
        field = self.field(node)
        if not node.values:
            return self.problem(Code.SYNTAX, "'in' needs at least one value", node.at("value"))
        if field is None:
            return b.Constant(value=False)
        values = [self.value(field, v, node, f"value/{i}") for i, v in enumerate(node.values)]
        if any(v is None for v in values):
            return b.Constant(value=False)
        return b.FieldIn(field=field, values=tuple(v for v in values if v is not None))

    def between(self, node: a.Between) -> b.Bound:
        field = self.field(node)
        if field is None:
            return b.Constant(value=False)
        if field.type not in ORDERED:
            return self.problem(Code.WRONG_OPERATOR, "between needs a number, date or time field", node.at("field"))
        low, high = self.value(field, node.low, node, "value/0"), self.value(field, node.high, node, "value/1")
        if low is None or high is None:
            return b.Constant(value=False)
        return b.FieldBetween(field=field, low=low, high=high)

    def is_null(self, node: a.IsNull) -> b.Bound:
        field = self.field(node)
        return b.Constant(value=False) if field is None else b.FieldIsNull(field=field)

    # -- tags and holdings -----------------------------------------------------

    def tag(self, node: a.HasTag) -> b.Bound:
        known = self.catalog.tags
        if known is not None and node.tag not in known:
            close = difflib.get_close_matches(node.tag, sorted(known), n=3)
            hint = f"; did you mean {' or '.join(close)}?" if close else ""
            return self.problem(Code.UNKNOWN_TAG, f"unknown tag {node.tag!r}{hint}", node.at("tag"))
        return b.TagIn(tag=node.tag, values=node.values)

    def allowed(self, node: a.Node, part: str, value: str | None, allowed: tuple[str, ...]) -> None:
        if value is not None and value not in allowed:
            self.problem(Code.UNKNOWN_VALUE, f"{part} is one of {', '.join(allowed)}, not {value!r}", node.at(part))

    def amounts(self, node: a.Node, low_part: str, low: Any, high_part: str, high: Any) -> None:
        for part, amount in ((low_part, low), (high_part, high)):
            if amount is not None and amount < 0:
                self.problem(Code.WRONG_TYPE, f"{part} cannot be negative", node.at(part))
        if low is not None and high is not None and low > high:
            self.problem(Code.IMPOSSIBLE_WINDOW, f"{low_part} {low} is above {high_part} {high}", node.at(high_part))

    def holds(self, node: a.Holds) -> b.Bound:
        before = len(self.problems)
        self.allowed(node, "product_type", node.product_type, self.catalog.product_types)
        self.allowed(node, "risk_level", node.risk_level, self.catalog.risk_levels)
        self.amounts(node, "min_balance", node.min_balance, "max_balance", node.max_balance)
        days = None
        if node.maturing_within is not None:
            days = self.whole_days(node, "maturing_within", node.maturing_within)
        if len(self.problems) > before:
            return b.Constant(value=False)
        return b.HoldingTest(
            product_type=node.product_type,
            product_code=node.product_code,
            risk_level=node.risk_level,
            min_balance=number(node.min_balance),
            max_balance=number(node.max_balance),
            maturing_days=days,
        )

    # -- windows and behaviour ---------------------------------------------------

    def window(self, node: a.Node, part: str, span: timedelta) -> bool:
        if span <= timedelta(0):
            shown = a.format_duration(span) if span >= timedelta(0) else "-" + a.format_duration(-span)
            self.problem(Code.IMPOSSIBLE_WINDOW, f"{part} must be a positive duration, not {shown}", node.at(part))
            return False
        return True

    def whole_days(self, node: a.Node, part: str, span: timedelta) -> int | None:
        if not self.window(node, part, span):
            return None
        if span % timedelta(days=1):
            self.problem(Code.IMPOSSIBLE_WINDOW, f"{part} is counted in whole days (e.g. 7d)", node.at(part))
            return None
        return span.days

    def count(self, node: a.Node, at_least: int) -> None:
        if at_least < 1:
            message = f"at least {at_least} times is always true; use at least 1, or not … for 'never'"
            self.problem(Code.BAD_COUNT, message, node.at("at_least"))

    def property_test(self, test: a.PropertyFilter) -> b.PropertyTest:
        value = test.value
        if isinstance(value, bool | str) and test.op not in (a.Op.EQ, a.Op.NE):
            message = f"{test.op.value} compares numbers; {test.property} is compared with {value!r}"
            self.problem(Code.WRONG_OPERATOR, message, test.at("value"))
        typed = Decimal(value) if isinstance(value, int) and not isinstance(value, bool) else value
        return b.PropertyTest(property=test.property, op=test.op, value=typed)

    def match(self, event: str, where: tuple[a.PropertyFilter, ...]) -> b.EventMatch:
        return b.EventMatch(event=event, where=tuple(self.property_test(t) for t in where))

    def did(self, node: a.DidEvent) -> b.Bound:
        before = len(self.problems)
        self.window(node, "within", node.within)
        self.count(node, node.at_least)
        found = b.EventCount(
            match=self.match(node.event, node.where), at_least=node.at_least, window=b.Window(span=node.within)
        )
        return found if len(self.problems) == before else b.Constant(value=False)

    def sequence(self, node: a.DidSequence) -> b.Bound:
        before = len(self.problems)
        self.window(node, "within", node.within)
        in_last = node.in_last if node.in_last is not None else node.within
        self.window(node, "in_last", in_last)
        steps = tuple(self.match(s.event, s.where) for s in node.steps)
        if len(self.problems) > before:
            return b.Constant(value=False)
        return b.EventSequence(steps=steps, within=node.within, window=b.Window(span=in_last))

    def absence(self, node: a.DidNotAfter) -> b.Bound:
        before = len(self.problems)
        ok = self.window(node, "within", node.within) and self.window(node, "in_last", node.in_last)
        if ok and node.in_last <= node.within:
            message = (
                f"in last {a.format_duration(node.in_last)} is shorter than needed: that no "
                f"{node.then_not.event} followed within {a.format_duration(node.within)} is known only for a "
                f"{node.first.event} at least that old, so in_last must be longer than within"
            )
            self.problem(Code.IMPOSSIBLE_WINDOW, message, node.at("in_last"))
        first, then_not = (
            self.match(node.first.event, node.first.where),
            self.match(node.then_not.event, node.then_not.where),
        )
        if len(self.problems) > before:
            return b.Constant(value=False)
        return b.EventAbsence(first=first, then_not=then_not, within=node.within, window=b.Window(span=node.in_last))

    def transacted(self, node: a.Transacted) -> b.Bound:
        before = len(self.problems)
        self.window(node, "within", node.within)
        self.count(node, node.at_least)
        self.allowed(node, "direction", node.direction, self.catalog.directions)
        self.allowed(node, "counterparty_type", node.counterparty_type, self.catalog.counterparty_types)
        self.allowed(node, "channel", node.channel, self.catalog.channels)
        self.amounts(node, "min_amount", node.min_amount, "max_amount", node.max_amount)
        if len(self.problems) > before:
            return b.Constant(value=False)
        return b.TxnTest(
            direction=node.direction,
            counterparty_type=node.counterparty_type,
            channel=node.channel,
            category=node.category,
            min_amount=number(node.min_amount),
            max_amount=number(node.max_amount),
            at_least=node.at_least,
            sum_at_least=number(node.sum_at_least),
            window=b.Window(span=node.within),
        )

    # -- references to other segments -------------------------------------------

    def segment(self, node: a.InSegment, stack: tuple[str, ...]) -> b.Bound:
        where = node.at("segment")
        if node.segment_id in stack:
            path = " → ".join((*stack[stack.index(node.segment_id) :], node.segment_id))
            return self.problem(Code.SEGMENT_CYCLE, f"segments refer to each other in a cycle: {path}", where)
        referenced = self.segments(node.segment_id)
        if referenced is None:
            return self.problem(Code.UNKNOWN_SEGMENT, f"there is no segment {node.segment_id!r}", where)
        inner = _Resolver(self.catalog, self.segments)
        found = inner.condition(referenced, (*stack, node.segment_id))
        for problem in inner.problems:
            self.problems.append(
                Problem(code=problem.code, message=f"in segment {node.segment_id!r}: {problem.message}", position=where)
            )
        return found
