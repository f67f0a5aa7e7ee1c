"""Each trigger kind as a small state machine over ONE customer's events and timers.

`on_event(trigger, state, customer, event)` and `on_timer(trigger, state,
customer, timer)` take the customer's serialised state (JSON bytes, or None
when it has none) and return a `Step`: the new state, the fires, the timers to
schedule and the timers to cancel. Pure and deterministic, so the processor
can run them inside its transaction and a replay gives the same answer.

Windows are measured in event time (the customer's skew-corrected
`timestamp`); timers are due at event time + `within`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import msgspec

from marketloop.journeys import dates
from marketloop.journeys.steps import Fire, Observed, Step, TimerRequest, matches, number, read_attribute
from marketloop.journeys.triggers import (
    API_EVENT,
    ApiTrigger,
    AttributeTrigger,
    DateTrigger,
    EventTrigger,
    PerCustomer,
    SegmentTrigger,
)


class SequenceState(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Progress through `after`, then the open episode (armed) counting `expect` events."""

    progress: int = 0
    started_at: datetime | None = None
    armed_at: datetime | None = None
    armed_id: str | None = None
    count: int = 0
    cause: list[str] = []


class CountState(msgspec.Struct, kw_only=True):
    """Matching events still inside the window: (time, message id)."""

    seen: list[tuple[datetime, str]] = []


class SegmentState(msgspec.Struct, kw_only=True):
    """Whether the customer was in the segment at the last answer; None before the first one."""

    member: bool | None = None


class AttributeState(msgspec.Struct, kw_only=True):
    """Candidate reference values inside the window, monotone (the first is the max for down, min for up)."""

    history: list[tuple[datetime, float]] = []


def _load(state: bytes | None, kind: type[Any]) -> Any:
    """The stored state, or a fresh one when there is none or it was written for another definition."""
    if state is None:
        return kind()
    try:
        return msgspec.json.decode(state, type=kind)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return kind()


def _dump(state: msgspec.Struct, empty: msgspec.Struct) -> bytes | None:
    return None if state == empty else msgspec.json.encode(state)


def on_event(trigger: PerCustomer, state: bytes | None, customer: str, event: Observed) -> Step:
    if isinstance(trigger, EventTrigger):
        return _sequence(trigger, state, customer, event) if trigger.after else _count(trigger, state, customer, event)
    if isinstance(trigger, SegmentTrigger):
        return _segment(trigger, state, customer, event)
    if isinstance(trigger, AttributeTrigger):
        return _attribute(trigger, state, customer, event)
    if isinstance(trigger, DateTrigger):
        return dates.on_event(trigger, state, customer, event)
    return _api(trigger, state, customer, event)


def on_timer(
    trigger: PerCustomer, state: bytes | None, customer: str, timer: TimerRequest, now: datetime | None = None
) -> Step:
    """A durable timer of this trigger came due; stale timers (their episode is over) change nothing."""
    if isinstance(trigger, EventTrigger) and trigger.posture == "proactive":
        return _absence_due(trigger, state, customer, timer)
    if isinstance(trigger, DateTrigger):
        return dates.on_timer(trigger, state, customer, timer, now)
    return Step(state=state)


# -- event: single, threshold ------------------------------------------------------------------


def _count(trigger: EventTrigger, state: bytes | None, customer: str, event: Observed) -> Step:
    if not any(matches(match, event) for match in trigger.expect):
        return Step(state=state)
    if trigger.threshold == 1:
        fire = _fire(trigger, customer, event.timestamp, "event", (event.message_id,), event)
        return Step(state=None, fires=[fire])
    current: CountState = _load(state, CountState)
    seen = [*current.seen, (event.timestamp, event.message_id)]
    if trigger.within is not None:
        since = event.timestamp - trigger.within
        seen = [entry for entry in seen if entry[0] > since]
    if len(seen) < trigger.threshold:
        return Step(state=_dump(CountState(seen=seen), CountState()))
    cause = tuple(message_id for _, message_id in seen)
    return Step(state=None, fires=[_fire(trigger, customer, event.timestamp, "threshold", cause, event)])


# -- event with `after`: sequence (reactive) and absence (proactive) ---------------------------


def _sequence(trigger: EventTrigger, state: bytes | None, customer: str, event: Observed) -> Step:
    current: SequenceState = _load(state, SequenceState)
    step = Step(state=state)
    current = _expire(trigger, current, customer, event.timestamp, step)
    if current.armed_at is not None and any(matches(match, event) for match in trigger.expect):
        current = _expected(trigger, current, customer, event, step)
    elif current.armed_at is None or _rearms(trigger, event):
        current = _advance(trigger, current, customer, event, step)
    step.state = _dump(current, SequenceState())
    return step


def _deadline(trigger: EventTrigger, armed_at: datetime) -> datetime:
    assert trigger.within is not None
    return armed_at + trigger.within


def _expire(trigger: EventTrigger, current: SequenceState, customer: str, now: datetime, step: Step) -> SequenceState:
    """Close an episode whose window ended before `now` (an absence fires here if its timer has not yet)."""
    assert trigger.within is not None
    if current.armed_at is not None and now > _deadline(trigger, current.armed_at):
        if trigger.posture == "proactive":
            step.fires.extend(_absence(trigger, current, customer))
            step.cancelled.append(_timer_id(trigger, customer, current))
        return SequenceState()
    if current.armed_at is None and current.started_at is not None and now - current.started_at > trigger.within:
        return SequenceState()
    return current


def _expected(
    trigger: EventTrigger, current: SequenceState, customer: str, event: Observed, step: Step
) -> SequenceState:
    count = current.count + 1
    cause = [*current.cause, event.message_id]
    if count < trigger.threshold:
        return msgspec.structs.replace(current, count=count, cause=cause)
    if trigger.posture == "reactive":
        reason = "sequence" if trigger.threshold == 1 else "threshold"
        step.fires.append(_fire(trigger, customer, event.timestamp, reason, tuple(cause), event))
    else:  # the customer did it in time: no absence, and its timer is void
        step.cancelled.append(_timer_id(trigger, customer, current))
    return SequenceState()


def _rearms(trigger: EventTrigger, event: Observed) -> bool:
    """A reactive one-step sequence restarts its window at the latest `after` event (A, A, B: from the second A)."""
    return trigger.posture == "reactive" and len(trigger.after) == 1 and matches(trigger.after[0], event)


def _advance(
    trigger: EventTrigger, current: SequenceState, customer: str, event: Observed, step: Step
) -> SequenceState:
    if current.armed_at is not None or current.progress >= len(trigger.after):  # re-arming, or a changed trigger
        current = SequenceState()
    if not matches(trigger.after[current.progress], event):
        return current
    started_at = current.started_at or event.timestamp
    cause = [*current.cause, event.message_id]
    progress = current.progress + 1
    if progress < len(trigger.after):
        return SequenceState(progress=progress, started_at=started_at, cause=cause)
    armed = SequenceState(progress=progress, started_at=started_at, armed_at=event.timestamp, armed_id=event.message_id)
    armed.cause = cause
    if trigger.posture == "proactive":
        due = _deadline(trigger, event.timestamp)
        payload = {"armed_id": event.message_id}
        timer_id = _timer_id(trigger, customer, armed)
        step.timers.append(
            TimerRequest(timer_id=timer_id, trigger_id=trigger.id, customer=customer, due_at=due, payload=payload)
        )
    return armed


def _timer_id(trigger: EventTrigger, customer: str, current: SequenceState) -> str:
    return f"{trigger.id}:{customer}:{current.armed_id}"


def _absence(trigger: EventTrigger, current: SequenceState, customer: str) -> list[Fire]:
    if current.count >= trigger.threshold or current.armed_at is None:
        return []
    due = _deadline(trigger, current.armed_at)
    fire = Fire(
        fire_id=f"{trigger.id}:{customer}:{current.armed_id}",
        trigger_id=trigger.id,
        customer=customer,
        at=due,
        reason="absence",
        cause=tuple(current.cause),
        context={"armed_id": current.armed_id, "seen": current.count},
    )
    return [fire]


def _absence_due(trigger: EventTrigger, state: bytes | None, customer: str, timer: TimerRequest) -> Step:
    current: SequenceState = _load(state, SequenceState)
    if current.armed_id is None or current.armed_id != timer.payload.get("armed_id"):
        return Step(state=state)  # stale: that episode ended already
    return Step(state=None, fires=_absence(trigger, current, customer))


# -- segment, attribute, api -----------------------------------------------------------------


def _segment(trigger: SegmentTrigger, state: bytes | None, customer: str, event: Observed) -> Step:
    if event.segments is None:
        return Step(state=state)
    before: SegmentState = _load(state, SegmentState)
    member = trigger.segment_id in event.segments
    fires = []
    # The first answer only sets the state: going live (or a new customer) does not flood `entered`.
    if before.member is not None and member != before.member and member == (trigger.transition == "entered"):
        reason = f"segment.{trigger.transition}"
        context = {"segment_id": trigger.segment_id}
        fires.append(_fire(trigger, customer, event.timestamp, reason, (event.message_id,), event, context))
    return Step(state=_dump(SegmentState(member=member), SegmentState()), fires=fires)


def _attribute(trigger: AttributeTrigger, state: bytes | None, customer: str, event: Observed) -> Step:
    value = number(read_attribute(event, trigger.attribute, trigger.event))
    if value is None:
        return Step(state=state)
    since = event.timestamp - trigger.within
    history = [entry for entry in _load(state, AttributeState).history if entry[0] > since]
    if history and _changed(trigger, history[0][1], value):
        reference = history[0][1]
        context = {"attribute": trigger.attribute, "from": reference, "to": value}
        fire = _fire(trigger, customer, event.timestamp, "attribute", (event.message_id,), event, context)
        return Step(state=_dump(AttributeState(history=[(event.timestamp, value)]), AttributeState()), fires=[fire])
    down = trigger.direction == "down"
    # An older value the new one beats can never be the reference again: keep the list monotone.
    while history and (history[-1][1] <= value if down else history[-1][1] >= value):
        history.pop()
    history.append((event.timestamp, value))
    return Step(state=_dump(AttributeState(history=history), AttributeState()))


def _changed(trigger: AttributeTrigger, reference: float, value: float) -> bool:
    change = reference - value if trigger.direction == "down" else value - reference
    if trigger.amount is not None:
        return change >= trigger.amount
    assert trigger.percent is not None
    return reference != 0 and change > 0 and change / abs(reference) * 100 >= trigger.percent


def _api(trigger: ApiTrigger, state: bytes | None, customer: str, event: Observed) -> Step:
    if event.name != API_EVENT or event.properties.get("trigger_id") != trigger.id:
        return Step(state=state)
    payload = event.properties.get("payload")
    context = {"payload": payload if isinstance(payload, Mapping) else {}}
    return Step(
        state=state, fires=[_fire(trigger, customer, event.timestamp, "api", (event.message_id,), event, context)]
    )


def _fire(
    trigger: PerCustomer,
    customer: str,
    at: datetime,
    reason: str,
    cause: tuple[str, ...],
    event: Observed,
    context: Mapping[str, Any] | None = None,
) -> Fire:
    found = {"event": event.name, "properties": dict(event.properties)} | dict(context or {})
    return Fire(
        fire_id=f"{trigger.id}:{customer}:{cause[-1]}",
        trigger_id=trigger.id,
        customer=customer,
        at=at,
        reason=reason,
        cause=cause,
        context=found,
    )
