"""The tracking plan (埋点方案) and the check of one event against it.

A plan says, per event name, which properties an event carries, of which
type, whether they are required and which values are allowed. `check` returns
what an event breaks, as short human-readable codes:

    unplanned_event: fund_buy
    missing_required: fund_code
    wrong_type: amount expected number got string
    not_allowed: channel='x' not in ['app', 'h5']
    unplanned_property: foo

What is checked, by message type:

- `track`: properties against the spec named like the event; an event with no
  spec is `unplanned_event` unless the plan allows unplanned events;
- `identify`: traits against the spec `$identify` when the plan has one, and
  only for `set` / `set_once` (the other profile operations carry counters,
  lists or names to remove, not trait values);
- `page` / `screen`: properties against `$page` / `$screen` when present;
- `alias`, `group`, and everything when the plan has no event specs at all
  (no plan yet): nothing.

A property whose value is JSON `null` counts as absent. Checks run on the
collection hot path, so a plan is compiled once (cached on the frozen plan)
into a dict of per-event checkers; checking an event costs a dict lookup and
one pass over its spec's properties.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any, Literal, get_args

from marketloop.core.events import Event

PropertyType = Literal["string", "integer", "number", "boolean", "datetime", "object", "array"]
PROPERTY_TYPES: tuple[str, ...] = get_args(PropertyType)
SCALAR_TYPES = frozenset({"string", "integer", "number", "boolean"})
PROMOTABLE_TYPES = frozenset({"string", "integer", "number", "boolean", "datetime"})

IDENTIFY_SPEC = "$identify"
PAGE_SPEC = "$page"
SCREEN_SPEC = "$screen"
RESERVED_SPECS = {"identify": IDENTIFY_SPEC, "page": PAGE_SPEC, "screen": SCREEN_SPEC}
_CHECKED_PROFILE_OPS = frozenset({None, "set", "set_once"})

# The Python types msgspec / json decode each JSON type to. `bool` is not an
# `int` here: the checks compare exact types.
PYTHON_TYPES: dict[str, frozenset[type]] = {
    "string": frozenset({str}),
    "integer": frozenset({int}),
    "number": frozenset({int, float}),
    "boolean": frozenset({bool}),
    "datetime": frozenset({str}),
    "object": frozenset({dict}),
    "array": frozenset({list}),
}
_JSON_NAMES: dict[type, str] = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    dict: "object",
    list: "array",
    type(None): "null",
}

AllowedValue = str | int | float | bool


@dataclass(frozen=True, kw_only=True)
class PropertySpec:
    """One planned property (or identify trait). `allowed` applies to scalar types only."""

    name: str
    type: PropertyType
    required: bool = False
    allowed: tuple[AllowedValue, ...] | None = None
    promote: bool = False  # give it a typed column in the warehouse `events` table
    description: str = ""


@dataclass(frozen=True, kw_only=True)
class EventSpec:
    """One planned event: its properties and whether others may come along."""

    name: str
    properties: tuple[PropertySpec, ...] = ()
    allow_unplanned_properties: bool = True
    description: str = ""

    def __post_init__(self) -> None:
        _require_unique([p.name for p in self.properties], f"properties of {self.name!r}")


@dataclass(frozen=True, kw_only=True)
class TrackingPlan:
    """A version of the plan. Version 0 with no events is "no plan yet"."""

    version: int = 0
    events: tuple[EventSpec, ...] = ()
    allow_unplanned_events: bool = False

    def __post_init__(self) -> None:
        _require_unique([e.name for e in self.events], "events")

    @cached_property
    def compiled(self) -> CompiledPlan:
        """The plan as fast checkers; built on first use and kept with the plan."""
        return CompiledPlan(self)

    def promoted(self) -> dict[str, PropertyType]:
        """Properties marked `promote`, by name, with their type (the same name has one type)."""
        return {p.name: p.type for event in self.events for p in event.properties if p.promote}


def check(plan: TrackingPlan, event: Event) -> list[str]:
    """What `event` breaks in `plan`; empty when it complies."""
    return plan.compiled.check(event)


def _require_unique(names: list[str], what: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"{what}: {name!r} appears twice")
        seen.add(name)


def json_type(value: object) -> str:
    """The JSON name of a decoded value's type."""
    return _JSON_NAMES.get(type(value), type(value).__name__)


def _is_datetime(value: str) -> bool:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _shown(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# name, accepted Python types, required, allowed values (or None), is datetime, planned type, " not in [...]"
_PropertyCheck = tuple[str, frozenset[type], bool, frozenset[AllowedValue] | None, bool, str, str]


def _compile_property(spec: PropertySpec) -> _PropertyCheck:
    allowed = frozenset(spec.allowed) if spec.allowed is not None else None
    listed = "" if spec.allowed is None else " not in " + _shown(list(spec.allowed), 200)
    return (spec.name, PYTHON_TYPES[spec.type], spec.required, allowed, spec.type == "datetime", spec.type, listed)


class CompiledEventSpec:
    """One event spec as a flat tuple of property checks."""

    __slots__ = ("_checks", "_closed", "_names")

    def __init__(self, spec: EventSpec) -> None:
        self._checks = tuple(_compile_property(p) for p in spec.properties)
        self._names = frozenset(p.name for p in spec.properties)
        self._closed = not spec.allow_unplanned_properties

    def check(self, values: Mapping[str, Any]) -> list[str]:
        """Violations of `values` (properties or traits) against this spec."""
        found: list[str] = []
        for name, types, required, allowed, is_datetime, planned, listed in self._checks:
            value = values.get(name)
            if value is None:
                if required:
                    found.append("missing_required: " + name)
            elif type(value) not in types or (is_datetime and not _is_datetime(value)):
                found.append(_wrong_type(name, planned, value))
            elif allowed is not None and value not in allowed:
                found.append(f"not_allowed: {name}={_shown(value)}{listed}")
        if self._closed:
            found.extend("unplanned_property: " + key for key in values if key not in self._names)
        return found


def _wrong_type(name: str, planned: str, value: object) -> str:
    got = json_type(value)
    if planned == "datetime" and got == "string":
        got = "string that is not ISO 8601"
    return f"wrong_type: {name} expected {planned} got {got}"


class CompiledPlan:
    """A plan as a dict from event name to checker, plus the identify / page / screen checkers."""

    __slots__ = ("_events", "_open", "_reserved")

    def __init__(self, plan: TrackingPlan) -> None:
        self._events = {e.name: CompiledEventSpec(e) for e in plan.events}
        self._reserved = {kind: self._events.pop(name) for kind, name in RESERVED_SPECS.items() if name in self._events}
        self._open = plan.allow_unplanned_events or not plan.events

    def check(self, event: Event) -> list[str]:
        """What `event` breaks; empty when it complies or its type is not checked."""
        if event.type == "track":
            spec = self._events.get(event.event or "")
            if spec is not None:
                return spec.check(event.properties)
            return [] if self._open else [f"unplanned_event: {event.event}"]
        reserved = self._reserved.get(event.type)
        if reserved is None:
            return []
        if event.type == "identify":
            return reserved.check(event.traits) if event.profile_op in _CHECKED_PROFILE_OPS else []
        return reserved.check(event.properties)
