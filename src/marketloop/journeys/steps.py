"""What a trigger's state machine sees and says: the event, its outcome (fires, timers) and matching.

Pure: no clock and no I/O. Time comes in with the event (its timestamp) or
with the timer (its due time); every id is derived from its cause, so running
the same input twice yields the same fires and timers (`fire_id` and
`timer_id` are idempotency keys).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from marketloop.core.events import Event
from marketloop.journeys.triggers import EventMatch, PropertyFilter

SCHEDULED = "*"  # the customer key of a schedule trigger's fire: its whole audience


@dataclass(frozen=True, kw_only=True)
class Observed:
    """One event as triggers see it. `name` is the event name (track), page name, or the type (identify)."""

    message_id: str
    name: str
    type: str
    timestamp: datetime
    properties: Mapping[str, Any] = field(default_factory=dict)
    traits: Mapping[str, Any] = field(default_factory=dict)
    segments: frozenset[str] | None = None  # segments the customer is in just after it; None = not asked


@dataclass(frozen=True, kw_only=True)
class Fire:
    """A trigger fired for a customer; `fire_id` is unique per cause, so a replay cannot add a second."""

    fire_id: str
    trigger_id: str
    customer: str
    at: datetime  # the event's time, or the timer's due time
    reason: str  # event, sequence, threshold, absence, segment.entered, attribute, date, schedule, api
    cause: tuple[str, ...] = ()  # message ids of the events that made it fire
    context: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class TimerRequest:
    """Wake the trigger for `customer` at `due_at`; `payload` comes back to `on_timer`."""

    timer_id: str
    trigger_id: str
    customer: str
    due_at: datetime
    payload: Mapping[str, Any] = field(default_factory=dict)


@dataclass(kw_only=True)
class Step:
    """What one event or timer did to one trigger for one customer. `state` None: the customer has none."""

    state: bytes | None
    fires: list[Fire] = field(default_factory=list)
    timers: list[TimerRequest] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)  # timer ids


def lookup(values: Mapping[str, Any], path: str) -> Any:
    """`a.b` reads values["a"]["b"]; None when any part is missing."""
    found: Any = values
    for part in path.split("."):
        if not isinstance(found, Mapping):
            return None
        found = found.get(part)
    return found


def matches(match: EventMatch, event: Observed) -> bool:
    if match.event not in ("*", event.name):
        return False
    values = event.traits if event.type == "identify" else event.properties
    return all(_holds(condition, lookup(values, condition.property)) for condition in match.where)


def _holds(condition: PropertyFilter, value: Any) -> bool:
    op, wanted = condition.op, condition.value
    if op == "exists":
        return (value is not None) == (wanted is not False)
    if value is None:
        return op in ("ne", "not_in")
    try:
        return _compare(op, value, wanted)
    except TypeError:  # a number compared with text: the condition does not hold
        return False


def _compare(op: str, value: Any, wanted: Any) -> bool:
    if op == "eq":
        return bool(value == wanted)
    if op == "ne":
        return bool(value != wanted)
    if op == "in":
        return value in (wanted or ())
    if op == "not_in":
        return value not in (wanted or ())
    if op == "contains":
        return wanted in value if isinstance(value, str | list) else False
    order = {"gt": value > wanted, "gte": value >= wanted, "lt": value < wanted, "lte": value <= wanted}
    return bool(order[op])


def number(value: Any) -> float | None:
    """A JSON number or numeric text as a float; None otherwise (booleans are not numbers)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def read_attribute(event: Observed, attribute: str, event_name: str | None) -> Any:
    """An attribute from identify traits (`event_name` None) or from the properties of the named event."""
    if event_name is None:
        return lookup(event.traits, attribute) if event.type == "identify" else None
    return lookup(event.properties, attribute) if event.name == event_name else None


def partition_key(event: Event) -> str:
    """The key the collection service partitions the log by (`marketloop.collect.service`)."""
    return event.user_id or event.anonymous_id or event.message_id


def observe(event: Event, segments: frozenset[str] | None = None) -> Observed:
    return Observed(
        message_id=event.message_id,
        name=event.event or event.type,
        type=event.type,
        timestamp=event.timestamp,
        properties=event.properties,
        traits=event.traits,
        segments=segments,
    )
