"""Dry run: a trigger against a list of events, in memory, with the same state machines as the processor.

Events are taken in time order; a timer fires when the next event is later
than its due time, and at the end every timer due by `until` fires (with no
`until`, every pending timer fires once, as if time ran on; a yearly date or
a cron does not repeat). Customers are keyed by the log's partition key.
Segment triggers need memberships: an event may list the segments the
customer is in after it under `context.segments`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from marketloop.core.events import Event
from marketloop.journeys import dates, machines
from marketloop.journeys.steps import Fire, Step, TimerRequest, observe, partition_key
from marketloop.journeys.triggers import ScheduleTrigger, Trigger, invalid_trigger

MAX_FIRES = 10_000  # a cron every minute over a year would not end


@dataclass(kw_only=True)
class DryRun:
    """What the trigger would do: its fires in order, and the timers still pending at the end."""

    fires: list[Fire] = field(default_factory=list)
    pending: list[TimerRequest] = field(default_factory=list)


def _segments(event: Event) -> frozenset[str] | None:
    listed = event.context.get("segments")
    if not isinstance(listed, list):
        return None
    return frozenset(str(segment) for segment in listed)


class _Run:
    def __init__(self, trigger: Trigger) -> None:
        self.trigger = trigger
        self.states: dict[str, bytes] = {}
        self.timers: dict[str, TimerRequest] = {}
        self.result = DryRun()

    def apply(self, customer: str, step: Step) -> None:
        if step.state is None:
            self.states.pop(customer, None)
        else:
            self.states[customer] = step.state
        for timer_id in step.cancelled:
            self.timers.pop(timer_id, None)
        for timer in step.timers:
            self.timers[timer.timer_id] = timer
        self.result.fires.extend(step.fires)

    def fire_timers(self, before: datetime | None, *, inclusive: bool, repeat: bool) -> None:
        """Fire pending timers due before `before` (all when None), earliest first.

        Without `repeat`, timers scheduled by these wake-ups (a yearly date's next year) stay pending.
        """
        eligible = None if repeat else set(self.timers)
        while len(self.result.fires) < MAX_FIRES:
            due = [
                t
                for t in self.timers.values()
                if (eligible is None or t.timer_id in eligible)
                and (before is None or t.due_at < before or (inclusive and t.due_at == before))
            ]
            if not due:
                return
            timer = min(due, key=lambda t: (t.due_at, t.timer_id))
            del self.timers[timer.timer_id]
            self.apply(timer.customer, self._wake(timer))

    def _wake(self, timer: TimerRequest) -> Step:
        trigger = self.trigger
        if isinstance(trigger, ScheduleTrigger):
            return dates.on_schedule(trigger, timer, timer.due_at)
        return machines.on_timer(trigger, self.states.get(timer.customer), timer.customer, timer)


def dry_run(
    trigger: Trigger, events: Sequence[Event], *, until: datetime | None = None, start: datetime | None = None
) -> DryRun:
    """Run `trigger` over `events` (a schedule trigger: its runs from `start` to `until`)."""
    run = _Run(trigger)
    if isinstance(trigger, ScheduleTrigger):
        begin = start or min((e.timestamp for e in events), default=None)
        if begin is None:
            raise invalid_trigger("a schedule dry run needs a start time (or events to start from)", "/start")
        first = dates.schedule_timer(trigger, begin)
        if first is not None:
            run.timers[first.timer_id] = first
    else:
        for event in sorted(events, key=lambda e: e.timestamp):
            run.fire_timers(event.timestamp, inclusive=False, repeat=True)
            customer = partition_key(event)
            step = machines.on_event(trigger, run.states.get(customer), customer, observe(event, _segments(event)))
            run.apply(customer, step)
    run.fire_timers(until, inclusive=True, repeat=until is not None)
    run.result.pending = sorted(run.timers.values(), key=lambda t: (t.due_at, t.timer_id))
    return run.result
