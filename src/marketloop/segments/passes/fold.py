"""Constant folding against `as_of`: relative dates become dates and times, windows get their bounds.

`as_of` is an argument, never the wall clock, so the same definition and
`as_of` always print the same SQL and give the same answer.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta

from marketloop.core.bank import LogicalType
from marketloop.segments import bound as b
from marketloop.segments.ast import RelativeDate
from marketloop.segments.catalog import Field
from marketloop.segments.passes.walk import rebuild


def fold(node: b.Bound, as_of: datetime) -> b.Bound:
    """`node` with every relative date and window fixed against `as_of` (naive means UTC)."""
    moment = as_of if as_of.tzinfo is not None else as_of.replace(tzinfo=UTC)
    return rebuild(node, lambda leaf: _fold_leaf(leaf, moment))


def absolute(field: Field, value: b.Value, as_of: datetime) -> b.Value:
    """`value` as a date (date fields) or an aware time (time fields) when it is relative."""
    if not isinstance(value, RelativeDate):
        return value
    midnight = datetime.combine(as_of.date(), time(0), tzinfo=as_of.tzinfo)
    moment = (as_of if value.anchor == "now" else midnight) + value.offset
    if field.type == LogicalType.DATE:
        return moment.date()
    return moment


def _window(window: b.Window, as_of: datetime) -> b.Window:
    return replace(window, start=as_of - window.span, end=as_of)


def _fold_leaf(node: b.Bound, as_of: datetime) -> b.Bound:
    if isinstance(node, b.FieldCompare):
        return replace(node, value=absolute(node.field, node.value, as_of))
    if isinstance(node, b.FieldIn):
        return replace(node, values=tuple(absolute(node.field, v, as_of) for v in node.values))
    if isinstance(node, b.FieldBetween):
        field = node.field
        return replace(node, low=absolute(field, node.low, as_of), high=absolute(field, node.high, as_of))
    if isinstance(node, b.HoldingTest):
        return replace(node, on=as_of.date())
    if isinstance(node, b.EventCount | b.EventSequence | b.EventAbsence | b.TxnTest):
        return replace(node, window=_window(node.window, as_of))
    return node


def maturity_end(on: date, days: int) -> date:
    """The last maturity date counted by `maturing_within = days` from `on` (both ends included)."""
    return on + timedelta(days=days)
