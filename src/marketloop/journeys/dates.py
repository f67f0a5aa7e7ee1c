"""Time-based triggers: dates a customer carries (birthday, maturity - N days) and schedules (at, cron).

A date trigger learns the date from the customer's events and keeps one
durable timer per date (per `key_property` value: one per product); a
schedule trigger keeps one timer for the trigger itself. Dates are local to
the trigger's time zone (the bank's, Asia/Shanghai by default); a 29 February
birthday is kept on 28 February in other years.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import msgspec

from marketloop.journeys.steps import SCHEDULED, Fire, Observed, Step, TimerRequest, lookup, read_attribute
from marketloop.journeys.triggers import DateTrigger, ScheduleTrigger, next_schedule, zone

_DATE = re.compile(r"^(?:(\d{4})-|--)?(\d{2})-(\d{2})")


class DateState(msgspec.Struct, kw_only=True):
    """Per key: the date as learned (`YYYY-MM-DD` or `--MM-DD`) and the id of its pending timer ('' when none)."""

    dates: dict[str, tuple[str, str]] = {}


def _state(state: bytes | None) -> DateState:
    """The stored dates, or none when there is no state or it was written for another definition."""
    if state is None:
        return DateState()
    try:
        return msgspec.json.decode(state, type=DateState)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return DateState()


def parse_date(value: object) -> tuple[int | None, int, int] | None:
    """(year or None, month, day) from `1990-05-17`, `1990-05-17T…`, `05-17` or `--05-17`; None otherwise."""
    if not isinstance(value, str):
        return None
    found = _DATE.match(value.strip())
    if found is None:
        return None
    year = int(found.group(1)) if found.group(1) else None
    month, day = int(found.group(2)), int(found.group(3))
    try:
        date(year or 2000, month, day)
    except ValueError:
        return None
    return year, month, day


def _text(parsed: tuple[int | None, int, int]) -> str:
    year, month, day = parsed
    return f"{year:04d}-{month:02d}-{day:02d}" if year is not None else f"--{month:02d}-{day:02d}"


def occurrence(trigger: DateTrigger, year: int, month: int, day: int) -> datetime:
    """The moment (UTC) the trigger fires for the date `year-month-day`, shifted by `offset_days`."""
    if month == 2 and day == 29 and not _leap(year):
        day = 28
    local = datetime.combine(date(year, month, day) + timedelta(days=trigger.offset_days), trigger.at)
    return local.replace(tzinfo=zone(trigger.timezone)).astimezone(UTC)


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def next_occurrence(trigger: DateTrigger, parsed: tuple[int | None, int, int], after: datetime) -> datetime | None:
    """The first firing strictly after `after`; None when a one-off date has passed (or has no year)."""
    year, month, day = parsed
    if not trigger.yearly:
        if year is None:
            return None
        once = occurrence(trigger, year, month, day)
        return once if once > after else None
    for candidate in range(after.year - 1, after.year + 3):
        moment = occurrence(trigger, candidate, month, day)
        if moment > after:
            return moment
    return None


def _timer(trigger: DateTrigger, customer: str, key: str, text: str, due: datetime) -> TimerRequest:
    return TimerRequest(
        timer_id=f"{trigger.id}:{customer}:{key}:{due.isoformat()}",
        trigger_id=trigger.id,
        customer=customer,
        due_at=due,
        payload={"key": key, "date": text},
    )


def on_event(trigger: DateTrigger, state: bytes | None, customer: str, event: Observed) -> Step:
    parsed = parse_date(read_attribute(event, trigger.attribute, trigger.event))
    if parsed is None:
        return Step(state=state)
    key = ""
    if trigger.key_property is not None:
        values = event.traits if event.type == "identify" else event.properties
        found = lookup(values, trigger.key_property)
        if found is None:
            return Step(state=state)
        key = str(found)
    current = _state(state)
    text = _text(parsed)
    known = current.dates.get(key)
    if known is not None and known[0] == text:
        return Step(state=state)
    step = Step(state=state)
    if known is not None and known[1]:
        step.cancelled.append(known[1])
    due = next_occurrence(trigger, parsed, event.timestamp)
    timer_id = ""
    if due is not None:
        timer = _timer(trigger, customer, key, text, due)
        step.timers.append(timer)
        timer_id = timer.timer_id
    step.state = msgspec.json.encode(DateState(dates={**current.dates, key: (text, timer_id)}))
    return step


def on_timer(
    trigger: DateTrigger, state: bytes | None, customer: str, timer: TimerRequest, now: datetime | None = None
) -> Step:
    """Fire for the date, and plan the next year after `now` (years missed while down fire once, not each)."""
    current = _state(state)
    key, text = str(timer.payload.get("key", "")), str(timer.payload.get("date", ""))
    known = current.dates.get(key)
    if known is None or known != (text, timer.timer_id):
        return Step(state=state)  # the date changed since: a newer timer stands
    fire = Fire(
        fire_id=f"{trigger.id}:{customer}:{key}:{timer.due_at.date().isoformat()}",
        trigger_id=trigger.id,
        customer=customer,
        at=timer.due_at,
        reason="date",
        context={"attribute": trigger.attribute, "date": text, "key": key},
    )
    step = Step(state=state, fires=[fire])
    parsed = parse_date(text)
    after = timer.due_at if now is None else max(timer.due_at, now)
    following = next_occurrence(trigger, parsed, after) if parsed is not None else None
    dates = dict(current.dates)
    if following is None:
        del dates[key]
    else:
        renewed = _timer(trigger, customer, key, text, following)
        step.timers.append(renewed)
        dates[key] = (text, renewed.timer_id)
    step.state = msgspec.json.encode(DateState(dates=dates)) if dates else None
    return step


def schedule_timer(trigger: ScheduleTrigger, after: datetime) -> TimerRequest | None:
    """The schedule's next timer after `after`, or None when it will not fire again."""
    due = next_schedule(trigger, after)
    if due is None:
        return None
    timer_id = f"{trigger.id}:{SCHEDULED}:{due.isoformat()}"
    return TimerRequest(timer_id=timer_id, trigger_id=trigger.id, customer=SCHEDULED, due_at=due)


def on_schedule(trigger: ScheduleTrigger, timer: TimerRequest, now: datetime) -> Step:
    """Fire once for the audience and schedule the next run (cron) after `now`.

    Runs missed while the processor was down fire once, not once per missed slot.
    """
    fire = Fire(
        fire_id=f"{trigger.id}:{SCHEDULED}:{timer.due_at.isoformat()}",
        trigger_id=trigger.id,
        customer=SCHEDULED,
        at=timer.due_at,
        reason="schedule",
        context={"segment_id": trigger.segment_id},
    )
    following = schedule_timer(trigger, max(timer.due_at, now))
    return Step(state=None, fires=[fire], timers=[following] if following is not None else [])
