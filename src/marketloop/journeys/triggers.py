"""Trigger definitions (触发器) as data, in the style of Prefect's `EventTrigger`.

A trigger says what it expects; `marketloop.journeys.machines` turns each kind
into a small state machine per customer. Kinds:

=================  ==============================================================================
kind               fires when
=================  ==============================================================================
`event`            `threshold` events matching `expect` happen within `within` (reactive), after
                   the ordered `after` events when given (a sequence: A then B within T); or, with
                   posture `proactive`, when FEWER than `threshold` happen within `within` after
                   the `after` sequence (absence: A then not B within T, fired by a durable timer)
`segment`          the customer enters or exits a segment (from the `Membership` port)
`attribute`        an attribute falls or rises by `percent` % (or `amount`) within `within`
                   (AUM down 30 % in 30 days)
`date`             a date the customer carries comes round, shifted by `offset_days` (birthday,
                   product maturity minus 7 days), at `at` local time; `yearly` repeats it
`schedule`         a fixed time (`at`) or a cron expression; fires once for its audience, not
                   per customer (the journey expands it over `segment_id`)
`api`              `POST /v1/triggers/{id}/fire` names a customer (the call becomes a `$api_trigger`
                   event in the log, so it is as durable and exactly-once as any event)
=================  ==============================================================================

Unlike Prefect, `after` is an ordered sequence (viewed a product, used the
yield calculator, opened the detail page): each step must follow the one
before, the whole sequence within `within` of its first step.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from croniter import croniter

from marketloop.core.errors import ErrorKind, FieldError, MarketloopError

API_EVENT = "$api_trigger"  # the event an API trigger call is appended to the log as
DEFAULT_TIMEZONE = "Asia/Shanghai"
_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")

Operator = Literal["eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "exists", "contains"]


class PropertyFilter(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One condition on an event property (or, for identify, a trait): `amount` `gte` 10000."""

    property: str
    op: Operator = "eq"
    value: Any = None


class EventMatch(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """An event name (`*` = any) and conditions on its properties, all of which must hold."""

    event: str
    where: list[PropertyFilter] = []


class _Trigger(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, tag_field="kind"):
    id: str
    name: str = ""
    enabled: bool = True


class EventTrigger(_Trigger, tag="event"):
    expect: list[EventMatch]
    after: list[EventMatch] = []
    within: timedelta | None = None
    threshold: Annotated[int, msgspec.Meta(ge=1)] = 1
    posture: Literal["reactive", "proactive"] = "reactive"


class SegmentTrigger(_Trigger, tag="segment"):
    segment_id: str
    transition: Literal["entered", "exited"] = "entered"


class AttributeTrigger(_Trigger, tag="attribute"):
    attribute: str
    event: str | None = None  # read from this event's properties; None = identify traits
    direction: Literal["down", "up"] = "down"
    percent: Annotated[float, msgspec.Meta(gt=0)] | None = None
    amount: Annotated[float, msgspec.Meta(gt=0)] | None = None
    within: timedelta = timedelta(days=30)


class DateTrigger(_Trigger, tag="date"):
    attribute: str
    event: str | None = None  # read from this event's properties; None = identify traits
    key_property: str | None = None  # one date per value of this property (product code)
    offset_days: int = 0
    at: time = time(9, 0)
    timezone: str = DEFAULT_TIMEZONE
    yearly: bool = False


class ScheduleTrigger(_Trigger, tag="schedule"):
    at: datetime | None = None
    cron: str | None = None
    timezone: str = DEFAULT_TIMEZONE
    segment_id: str | None = None  # the audience; None = whoever the journey names


class ApiTrigger(_Trigger, tag="api"):
    required: list[str] = []  # payload properties a call must carry


Trigger = EventTrigger | SegmentTrigger | AttributeTrigger | DateTrigger | ScheduleTrigger | ApiTrigger
PerCustomer = EventTrigger | SegmentTrigger | AttributeTrigger | DateTrigger | ApiTrigger

_decoder = msgspec.json.Decoder(Trigger, strict=False)
_encoder = msgspec.json.Encoder()


def invalid_trigger(detail: str, pointer: str = "") -> MarketloopError:
    return MarketloopError(
        kind=ErrorKind.INVALID,
        code="triggers.invalid",
        title="The trigger is not valid",
        detail=detail,
        errors=[FieldError(pointer=pointer or "/", detail=detail)],
    )


def parse_trigger(document: bytes | str | dict[str, Any], pointer: str = "") -> Trigger:
    """A trigger from its JSON form; INVALID with the offending field's JSON pointer when it is not one."""
    raw = document if isinstance(document, bytes | str) else _encoder.encode(document)
    try:
        trigger: Trigger = _decoder.decode(raw)
    except msgspec.ValidationError as error:
        message = str(error)
        path = message.rsplit("at `$", 1)[1].rstrip("`") if "at `$" in message else ""
        where = pointer + re.sub(r"\[(\d+)\]", r"/\1", path).replace(".", "/")
        raise invalid_trigger(message.split(" - at ")[0], where) from None
    except msgspec.DecodeError as error:
        raise invalid_trigger(f"not JSON: {error}", pointer) from None
    check(trigger, pointer)
    return trigger


def encode_trigger(trigger: Trigger) -> bytes:
    return _encoder.encode(trigger)


def as_dict(trigger: Trigger) -> dict[str, Any]:
    found: dict[str, Any] = msgspec.to_builtins(trigger)
    return found


def check(trigger: Trigger, pointer: str = "") -> None:
    """The rules a well-typed trigger must still follow; INVALID naming the field."""
    if not _ID.match(trigger.id):
        raise invalid_trigger("an id is 1-64 of a-z 0-9 _ . - and starts with a letter or digit", pointer + "/id")
    if isinstance(trigger, EventTrigger):
        _check_event(trigger, pointer)
    elif isinstance(trigger, AttributeTrigger) and (trigger.percent is None) == (trigger.amount is None):
        raise invalid_trigger("give exactly one of percent and amount", pointer + "/percent")
    elif isinstance(trigger, DateTrigger | ScheduleTrigger):
        zone(trigger.timezone, pointer + "/timezone")
        if isinstance(trigger, ScheduleTrigger):
            _check_schedule(trigger, pointer)


def _check_event(trigger: EventTrigger, pointer: str) -> None:
    if not trigger.expect:
        raise invalid_trigger("expect names at least one event", pointer + "/expect")
    if trigger.within is not None and trigger.within <= timedelta(0):
        raise invalid_trigger("within must be positive", pointer + "/within")
    if trigger.posture == "proactive" and (not trigger.after or trigger.within is None):
        raise invalid_trigger(
            "a proactive (absence) trigger needs `after` and `within`: A then not B within T", pointer + "/after"
        )
    if trigger.after and trigger.within is None:
        raise invalid_trigger("a sequence (`after`) needs `within`", pointer + "/within")


def _check_schedule(trigger: ScheduleTrigger, pointer: str) -> None:
    if (trigger.at is None) == (trigger.cron is None):
        raise invalid_trigger("give exactly one of at and cron", pointer + "/cron")
    if trigger.cron is not None and not croniter.is_valid(trigger.cron):
        raise invalid_trigger(f"not a cron expression: {trigger.cron!r}", pointer + "/cron")


def zone(name: str, pointer: str = "/timezone") -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise invalid_trigger(f"unknown time zone {name!r} (use e.g. Asia/Shanghai)", pointer) from None


def next_schedule(trigger: ScheduleTrigger, after: datetime) -> datetime | None:
    """The first time the schedule fires strictly after `after` (UTC), or None when it never will again."""
    if trigger.at is not None:
        at = trigger.at if trigger.at.tzinfo else trigger.at.replace(tzinfo=zone(trigger.timezone))
        return at.astimezone(UTC) if at > after else None
    assert trigger.cron is not None
    local = after.astimezone(zone(trigger.timezone))
    following: datetime = croniter(trigger.cron, local).get_next(datetime)
    return following.astimezone(UTC)
