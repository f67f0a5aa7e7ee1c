"""The stream processor: event log -> trigger state machines -> fires, exactly once.

It reads each partition after its committed offset — in `marketloop serve`,
of the event log re-partitioned by OneID (`marketloop.journeys.keyed`, whose
records carry their OneID), else of the collection log, keying every event by
customer itself (its OneID when the resolver gives one, else the log's
partition key `user_id or anonymous_id or message_id`) — runs every enabled
trigger's state machine, and commits the new trigger state, the timers and the fires together
with the partition's new offset in ONE transaction of the operational store.
A crash before that commit loses nothing (the batch is read again); after it,
nothing is repeated. Fire ids are unique per cause as a second guard.

A processor owns a set of partitions (embedded: all of them plus the
scheduler's timers); a later scale-out gives each worker its own set, and the
store refuses a commit from a worker whose offset moved under it
(`OffsetMovedError`).

Durable timers (absences, dates, schedules) fire from the same loop once due,
but only for partitions whose log is read to the end: an event that arrived
before the deadline is always seen before the timer says it never came.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

import msgspec
import orjson

from marketloop.collect.loader import Resolver
from marketloop.core.events import Event
from marketloop.journeys import dates, machines
from marketloop.journeys.active import ActiveTriggers
from marketloop.journeys.keyed import Repartitioner, keyed_decoder
from marketloop.journeys.rounds import Rounds
from marketloop.journeys.segment_events import NotAppendedError, SegmentEvents
from marketloop.journeys.steps import Fire, Step, TimerRequest, observe, partition_key
from marketloop.journeys.triggers import ScheduleTrigger
from marketloop.ports.clock import Clock
from marketloop.ports.eventlog import EventLog
from marketloop.ports.realtime import (
    SCHEDULER_PARTITION,
    Commit,
    StoredFire,
    StoredTimer,
    StreamStore,
    TriggerRepository,
)

log = logging.getLogger(__name__)

CONSUMER = "stream"  # reading the collection log itself (no re-partitioner)
KEYED_CONSUMER = "stream-keyed"  # reading the keyed log (see `marketloop.journeys.keyed`)
_TICK = timedelta(microseconds=1)
# Timers written by others (a schedule trigger saved through the API) are seen within this long; the
# processor's own timers are known the moment it commits them.
TIMER_RESCAN = timedelta(seconds=1)
# A busy re-partitioner keys at most this often: each round is a durable append (an fsync per keyed
# partition), and 10 ms of events in one append cost less than ten appends of 1 ms each.
KEYING_PACE_SECONDS = 0.01
_decoder = msgspec.json.Decoder(Event)


class Membership(Protocol):
    """Real-time segment membership (implemented by the segments engine's real-time evaluator).

    The processor keeps each customer's previous membership in its own
    committed state and derives entered / exited itself, so an implementation
    only answers the present and may be stateless; it must be deterministic
    for the same event (a replay after a crash asks again).
    """

    def segments_of(self, customer: str, event: Event, segment_ids: frozenset[str]) -> frozenset[str]:
        """Which of `segment_ids` the customer belongs to just after `event`."""
        ...


class _Batch:
    """The changes of one batch, with the working copy of the state its steps read."""

    def __init__(self, commit: Commit, states: dict[tuple[str, str], bytes], clock: Clock) -> None:
        self.commit = commit
        self.states = states
        self._timers: dict[str, StoredTimer] = {}
        self._cancelled: dict[str, None] = {}
        self._clock = clock

    def state(self, trigger_id: str, customer: str) -> bytes | None:
        return self.states.get((trigger_id, customer))

    def apply(self, trigger_id: str, customer: str, step: Step, partition: int) -> None:
        key = (trigger_id, customer)
        if step.state != self.states.get(key):
            self.commit.states[key] = step.state
            if step.state is None:
                del self.states[key]
            else:
                self.states[key] = step.state
        for timer_id in step.cancelled:
            self._timers.pop(timer_id, None)
            self._cancelled[timer_id] = None
        for timer in step.timers:
            self._cancelled.pop(timer.timer_id, None)
            self._timers[timer.timer_id] = _stored_timer(timer, partition)
        now = self._clock.now()
        self.commit.fires.extend(_stored_fire(fire, partition, now) for fire in step.fires)

    def cancel(self, timer_id: str) -> None:
        self._cancelled[timer_id] = None

    def finish(self) -> Commit:
        self.commit.timers = list(self._timers.values())
        self.commit.cancelled = list(self._cancelled)
        return self.commit


def _stored_timer(timer: TimerRequest, partition: int) -> StoredTimer:
    return StoredTimer(
        timer_id=timer.timer_id,
        trigger_id=timer.trigger_id,
        customer=timer.customer,
        partition=partition,
        due_at=timer.due_at,
        payload=orjson.dumps(dict(timer.payload)),
    )


def _stored_fire(fire: Fire, partition: int, now: datetime) -> StoredFire:
    return StoredFire(
        fire_id=fire.fire_id,
        trigger_id=fire.trigger_id,
        customer=fire.customer,
        partition=partition,
        fired_at=fire.at,
        recorded_at=now,
        reason=fire.reason,
        cause=orjson.dumps(list(fire.cause)),
        context=orjson.dumps(dict(fire.context), default=str),
    )


class StreamProcessor:
    def __init__(
        self,
        events: EventLog,
        store: StreamStore,
        triggers: TriggerRepository,
        clock: Clock,
        *,
        resolver: Resolver | None = None,
        membership: Membership | None = None,
        segment_events: SegmentEvents | None = None,
        partitions: Sequence[int] | None = None,
        keyer: Repartitioner | None = None,
        max_batch: int = 2_000,
        timer_batch: int = 1_000,
        poll_seconds: float = 0.02,
    ) -> None:
        # With a re-partitioner the processor reads its keyed log (partitioned by OneID, each record with
        # its OneID) and runs it first every round; else the collection log, resolving OneIDs itself.
        self._keyer = keyer
        if keyer is not None:
            events = keyer.keyed
            keyer.idle = self._nothing_reads
        self._log = events
        self._consumer = CONSUMER if keyer is None else KEYED_CONSUMER
        self._store = store
        self._clock = clock
        self._resolver = resolver
        self._membership = membership
        # Real-time segments as segment_entered / segment_exited events; answers the segment triggers too.
        self._segment_events = segment_events
        self._partitions = list(range(events.partitions) if partitions is None else partitions)
        self._owned = [*self._partitions, SCHEDULER_PARTITION]
        self._active = ActiveTriggers(triggers)
        self._max_batch = max_batch
        self._timer_batch = timer_batch
        self._offsets: dict[int, int] = {}
        self.failures = 0  # trigger steps that raised and were skipped (see `_advance`)
        # Per partition: a time by which every durable record had been read (see `fire_due_timers`).
        self._read_through: dict[int, datetime] = {}
        # The earliest owned timer as far as this processor knows (None: none) and when it last asked the
        # store (None: ask next round); rounds in between ask nothing.
        self._next_timer: datetime | None = None
        self._timers_asked_at: datetime | None = None
        self._rounds = Rounds("stream processor", self.run_once, poll_seconds=poll_seconds)
        self._poll = poll_seconds
        self._keying: Rounds | None = None  # the re-partitioner's own thread, while started
        self._on_fires: list[Callable[[Sequence[StoredFire]], None]] = []

    def on_fires(self, callback: Callable[[Sequence[StoredFire]], None]) -> None:
        """Call `callback` with the fires of every commit that recorded some, after the commit (the journey
        runner takes them at once instead of searching `trigger_fires`)."""
        self._on_fires.append(callback)

    def _commit(self, commit: Commit) -> None:
        self._store.commit(commit)
        if commit.timers:
            earliest = min(timer.due_at for timer in commit.timers)
            if self._next_timer is None or earliest < self._next_timer:
                self._next_timer = earliest
        if commit.fires:
            for callback in self._on_fires:
                callback(commit.fires)

    @property
    def partitions(self) -> list[int]:
        return list(self._partitions)

    def committed(self, partition: int) -> int:
        if partition not in self._offsets:
            self._offsets[partition] = self._store.committed_offset(self._consumer, partition)
        return self._offsets[partition]

    def lag(self, partition: int) -> int:
        """Durable records whose effects are not committed yet."""
        return self._log.end_offset(partition) - self.committed(partition)

    def status(self) -> dict[str, Any]:
        """Per partition: the committed offset, the log's end and the lag (also of the re-partitioner, by
        collection partition); failures; the next timer due."""
        partitions = []
        for partition in self._partitions:
            committed = self._store.committed_offset(self._consumer, partition)
            end = self._log.end_offset(partition)
            partitions.append({"partition": partition, "committed": committed, "end": end, "lag": end - committed})
        next_due = self._store.next_due(self._owned)
        return {
            "partitions": partitions,  # of the log the processor reads (the keyed log when re-partitioned)
            "keying": self._keyer.status() if self._keyer is not None else [],  # collection log -> keyed log
            "failures": self.failures,
            "next_timer_due": None if next_due is None else next_due.isoformat(),
        }

    # -- events -------------------------------------------------------------------------------

    def process_partition(self, partition: int) -> int:
        """Process one batch of `partition` and commit it; returns how many records it consumed."""
        after = self.committed(partition)
        seen_at, end = self._seen(), self._log.end_offset(partition)
        if end <= after:
            self._mark_read(partition, seen_at)
            return 0
        self._active.refresh()
        if self._idle():
            self._skip(partition, after, end, seen_at)
            return 0
        values = self._log.read_values(partition, after, self._max_batch)
        keyed = self._keyed(values)
        realtime = self._segment_events.watched(self._active.segment_ids) if self._segment_events else frozenset()
        stateful = bool(self._active.per_customer or realtime)
        batch = _Batch(
            Commit(consumer=self._consumer, partition=partition, after=after, offset=after + len(values)),
            self._store.states({customer for customer, _ in keyed}) if stateful else {},
            self._clock,
        )
        if self._segment_events is not None:
            self._segment_events.prepare(keyed, realtime)
        for customer, event in keyed:
            self._advance(batch, customer, event, partition)
        try:
            if self._segment_events is not None:
                self._segment_events.publish()  # durable before the commit: a replay re-appends the same ids
            self._commit(batch.finish())
        except BaseException:
            self._offsets.pop(partition, None)  # read it again from the store: it may have moved
            raise
        self._offsets[partition] = after + len(values)
        if after + len(values) >= end:
            self._mark_read(partition, seen_at)
        return len(values)

    def _nothing_reads(self) -> bool:
        """`_idle` with the triggers read again if any was saved (asked by the re-partitioner's thread)."""
        self._active.refresh()
        return self._idle()

    def _idle(self) -> bool:
        """No enabled trigger reads events and no segment is watched in real time."""
        if self._active.per_customer:
            return False
        segment_events = self._segment_events
        return segment_events is None or not segment_events.watched(self._active.segment_ids)

    def _seen(self) -> datetime | None:
        """Now, for the collection log; for the keyed log, the time by which everything durable in the
        collection log had been keyed (None: not yet), taken before the keyed log's end is read."""
        return self._clock.now() if self._keyer is None else self._keyer.through

    def _mark_read(self, partition: int, seen_at: datetime | None) -> None:
        if seen_at is not None:
            self._read_through[partition] = seen_at

    def _skip(self, partition: int, after: int, end: int, seen_at: datetime | None) -> None:
        """No trigger reads events: move the offset past them unread, so that an idle processor costs the
        collection path nothing (it shares the GIL with the API). Counted as nothing handled: the loop
        then waits its poll interval, so the offset commits at most that often."""
        batch = _Batch(Commit(consumer=self._consumer, partition=partition, after=after, offset=end), {}, self._clock)
        try:
            self._commit(batch.finish())
        except BaseException:
            self._offsets.pop(partition, None)
            raise
        self._offsets[partition] = end
        self._mark_read(partition, seen_at)

    def _keyed(self, values: Sequence[bytes]) -> list[tuple[str, Event]]:
        if self._keyer is not None:
            return self._from_keyed_log(values)
        events: list[Event] = []
        kept: list[bytes] = []
        for value in values:
            try:
                event = _decoder.decode(value)
            except msgspec.DecodeError as error:
                log.warning("an event record cannot be read by the stream processor (%s); skipped", error)
                continue
            if not event.quarantined:
                events.append(event)
                kept.append(value)
        if self._resolver is None or not events:
            return [(partition_key(event), event) for event in events]
        with self._resolver.attribute(kept) as attribution:
            one_ids = list(attribution.one_ids)
        return [(one_id or partition_key(event), event) for one_id, event in zip(one_ids, events, strict=True)]

    @staticmethod
    def _from_keyed_log(values: Sequence[bytes]) -> list[tuple[str, Event]]:
        keyed: list[tuple[str, Event]] = []
        for value in values:
            try:
                record = keyed_decoder.decode(value)
            except msgspec.DecodeError as error:
                log.warning("a keyed log record cannot be read by the stream processor (%s); skipped", error)
                continue
            keyed.append((record.one_id, record.event))
        return keyed

    def _segments(self, batch: _Batch, customer: str, event: Event, partition: int) -> frozenset[str] | None:
        """The customer's segments just after `event` among those segment triggers watch; None: not asked."""
        watched = self._active.segment_ids
        if self._segment_events is not None:
            found = self._segment_events.observe(
                batch, customer, event, self._segment_events.watched(watched), partition
            )
            return None if found is None or not watched else found & watched
        if watched and self._membership is not None:
            return self._membership.segments_of(customer, event, watched)
        return None

    def _advance(self, batch: _Batch, customer: str, event: Event, partition: int) -> None:
        active = self._active
        observed = observe(event, self._segments(batch, customer, event, partition))
        for trigger in active.per_customer:
            try:
                step = machines.on_event(trigger, batch.state(trigger.id, customer), customer, observed)
            except Exception:
                # A defect in one trigger must not stop the stream for every other one: this trigger
                # skips this event (its state unchanged), loudly.
                self.failures += 1
                log.exception("trigger %s failed on event %s; skipped", trigger.id, event.message_id)
                continue
            batch.apply(trigger.id, customer, step, partition)

    # -- timers -------------------------------------------------------------------------------

    def fire_due_timers(self) -> int:
        """Fire the due timers whose partitions are read past their due time; returns how many.

        A partition's timers fire only up to the time by which everything then
        durable in it had been processed, so an event that came in before a
        deadline is always seen before its absence timer; after a restart the
        first round reads each partition and fires every overdue timer. Between
        rounds that ask the store, the processor knows the earliest timer it
        wrote, so a round with nothing due asks nothing (asked at least every
        `TIMER_RESCAN`, and at once after a trigger is saved).
        """
        now = self._clock.now()
        if self._active.refresh():
            self._timers_asked_at = None  # a trigger was saved: a schedule's timer may have come with it
        if self._nothing_due(now):
            return 0
        self._timers_asked_at = now
        read = [self._read_through.get(p) for p in self._partitions]
        due = self._store.due_timers(now, [SCHEDULER_PARTITION], self._timer_batch)
        if self._partitions and None not in read:
            # Strictly before: an event stamped exactly at the deadline is still "within" it.
            until = min(now, *(moment for moment in read if moment is not None)) - _TICK
            due += self._store.due_timers(until, self._partitions, self._timer_batch)
        if not due:
            self._next_timer = self._store.next_due(self._owned)
            return 0
        self._timers_asked_at = None  # asked again next round: more may be due, and the fired ones are gone
        batch = _Batch(Commit(consumer=self._consumer), self._store.states({t.customer for t in due}), self._clock)
        for timer in due:
            batch.cancel(timer.timer_id)  # a timer fires once; a step may schedule the next
            self._wake(batch, timer)
        self._commit(batch.finish())
        return len(due)

    def _nothing_due(self, now: datetime) -> bool:
        """True when no owned timer can be due: asked within `TIMER_RESCAN` and the earliest known is later."""
        asked = self._timers_asked_at
        if asked is None or now - asked >= TIMER_RESCAN or now < asked:
            return False
        return self._next_timer is None or self._next_timer > now

    def _wake(self, batch: _Batch, timer: StoredTimer) -> None:
        trigger = self._active.by_id.get(timer.trigger_id)
        if trigger is None:
            log.info("timer %s of a removed or disabled trigger dropped", timer.timer_id)
            return
        request = TimerRequest(
            timer_id=timer.timer_id,
            trigger_id=timer.trigger_id,
            customer=timer.customer,
            due_at=timer.due_at,
            payload=orjson.loads(timer.payload),
        )
        if isinstance(trigger, ScheduleTrigger):
            step = dates.on_schedule(trigger, request, self._clock.now())
        else:
            state = batch.state(trigger.id, timer.customer)
            step = machines.on_timer(trigger, state, timer.customer, request, self._clock.now())
        batch.apply(trigger.id, timer.customer, step, timer.partition)

    # -- running ------------------------------------------------------------------------------

    def run_once(self) -> int:
        """One round: the re-partitioner's batch (unless its thread runs), a batch from every partition, then
        the due timers; returns records + timers handled."""
        handled = self._keyer.run_once() if self._keyer is not None and self._keying is None else 0
        handled += sum(self.process_partition(p) for p in self._partitions)
        return handled + self.fire_due_timers()

    def drain(self) -> int:
        """Process everything durable now and fire what is due; returns how many records and timers."""
        total = 0
        while True:
            handled = self.run_once()
            total += handled
            if handled == 0:
                return total

    def start(self) -> None:
        """Start the processor's thread and, with a re-partitioner, the keying thread beside it (keying the
        next batch, waiting for its append to be durable, overlaps processing this one)."""
        if self._keyer is not None:
            self._keying = Rounds("keyer", self._key_round, poll_seconds=self._poll, pace_seconds=KEYING_PACE_SECONDS)
            self._keying.start()
        self._rounds.start()

    def _key_round(self) -> int:
        keyed = self._keyer.run_once() if self._keyer is not None else 0
        if keyed:
            self._rounds.wake()
        return keyed

    def stop(self) -> None:
        """Stop the threads, then process what is left (drain on SIGTERM)."""
        if self._keying is not None:
            self._keying.stop()
            self._keying = None
        self._rounds.stop()
        try:
            self.drain()
        except NotAppendedError as error:
            # The log closed first: the batch is not committed, so the next start processes it again.
            log.warning("stopped before processing everything: %s; the rest is processed at the next start", error)
