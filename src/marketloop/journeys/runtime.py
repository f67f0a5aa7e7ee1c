"""The journey runtime (旅程运行): customers in, through the steps, touches into the outbox.

One round does three things, each committed through `JourneyStore.apply` in
transactions that keep it exactly-once:

1. entries (`admit`): every active journey takes what its entry names:
   - a trigger's new rows of `trigger_fires` (the stream processor's outbox):
     the consumed fire id is written in the same transaction as the new
     instance, so a fire lets a customer in once, across restarts and
     concurrent runners (fires recorded before the journey was first
     published are not taken); a schedule trigger's fire (customer `*`, a
     `schedule` entry) lets in the entry's segment, as of that moment;
   - a segment's members once, when the journey is first published;
   the entry's re-entry rule decides whether a customer who was in before
   enters again. A new instance is walked at once (`walk.Walker`), so its
   first touches reach the outbox in the same transaction that admits it.
   A batch entry (a segment, a schedule) commits in chunks; each instance
   carries the batch as its `cause`, so a batch resumed after a crash skips
   whoever it let in, and the batch is marked consumed with its last chunk;
2. events (`JourneyEvents`): events from the log, read with the runtime's own
   committed offsets, end runs that reach a goal (conversion) and wake waits
   for an event; the offset moves in the same transaction;
3. due instances (`advance`): every instance whose due time has come (an
   ended wait, a touch the dispatcher settled) is walked on, with the settled
   outcomes of its touches.

The outbox's dispatcher (`journeys.outbox`) sends what the walks queued.
Paused journeys neither admit nor advance anyone until resumed.
"""

from __future__ import annotations

import functools
import logging
import math
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import msgspec
import orjson

from marketloop.core.errors import ErrorKind, MarketloopError
from marketloop.journeys.channels.sending import MAX_KEY, SendOutcome
from marketloop.journeys.definitions import JourneyDefinitions
from marketloop.journeys.graph import JourneyGraph, settings_of
from marketloop.journeys.step_types import EntrySettings, GoalSettings
from marketloop.journeys.steps import SCHEDULED, Observed, lookup, matches, number
from marketloop.journeys.walk import Walk, Walker, awaited
from marketloop.ports.clock import Clock
from marketloop.ports.journeys import (
    FireAlreadyConsumedError,
    Instance,
    JourneyChange,
    JourneyRecord,
    LogRow,
    OutboxRow,
)
from marketloop.ports.realtime import StoredFire

log = logging.getLogger(__name__)

RESCAN_SECONDS = 60.0  # how often `admit` searches trigger_fires although the processor hands fires over
# Due instances are walked and committed this many at a time; between slices, waiting fires go first
# (a settled touch moving on to its next step can wait a round; a customer who just acted should not).
ADVANCE_SLICE = 100
Audience = Callable[[str], Sequence[str]]  # segment id -> its members now (cust_no)
_outcome = msgspec.json.Decoder(SendOutcome)


def entry_of(graph: JourneyGraph) -> tuple[str, EntrySettings]:
    step = next(s for s in graph.steps if s.type == "entry")
    settings: EntrySettings = settings_of(step)
    return step.id, settings


class JourneyRuntime:
    """Entries, events for goals and waits, and walking due instances (see the module)."""

    def __init__(
        self,
        definitions: JourneyDefinitions,
        walker: Walker,
        clock: Clock,
        *,
        batch: int = 500,
        chunk: int = 20_000,
        audience: Audience | None = None,
    ) -> None:
        self.definitions = definitions
        self.store = definitions.store
        self._walker = walker
        self._clock = clock
        self._batch = batch
        self._chunk = chunk
        self._audience = audience
        self._lock = threading.Lock()
        self._fresh: list[StoredFire] = []  # fires handed over by the stream processor (`offer`)
        self._offered = False
        self._running: set[tuple[str, int]] = set()
        self._next_scan = 0.0
        self._batches_done: set[tuple[str, str]] = set()  # (journey, batch) consumed: not asked again
        self.failures = 0

    # -- entries --------------------------------------------------------------------------------

    def offer(self, fires: Sequence[StoredFire]) -> None:
        """Fires the stream processor just committed: the next `admit` takes them without searching the
        table for them (see `admit`)."""
        with self._lock:
            self._offered = True
            self._fresh.extend(fires)

    def admit(self) -> int:
        """Take every active journey's new entries; returns how many fires and customers were taken.

        Fires come from `trigger_fires`. While the stream processor hands its fires over (`offer`), a
        round takes those; every `RESCAN_SECONDS`, at the first round and when the set of active
        journeys changes, it searches the table for unconsumed fires instead (fires committed by another
        process, before a restart, or while a journey was paused). Either way the consumed-fire row keeps
        each fire to one entry."""
        active = self.definitions.active()
        now = self._clock.monotonic()
        running = {(record.journey_id, record.version) for record in active}
        with self._lock:
            scan = not self._offered or running != self._running or now >= self._next_scan
            fresh, self._fresh = self._fresh, []
        if scan:
            self._running, self._next_scan = running, now + RESCAN_SECONDS
        by_trigger: dict[str, list[StoredFire]] = {}
        for fire in fresh:
            by_trigger.setdefault(fire.trigger_id, []).append(fire)
        consumed = 0
        for record in active:
            graph = self.definitions.graph(record.journey_id, record.version)
            _, entry = entry_of(graph)
            if entry.source == "segment":
                consumed += self._admit_segment(record, graph, entry)
                continue
            if entry.trigger_id is None:  # an API entry: customers come in through `enter`
                continue
            since = self.definitions.first_published(record.journey_id)
            if not scan:
                offered = [f for f in by_trigger.get(entry.trigger_id, ()) if f.recorded_at >= since]
                for start in range(0, len(offered), self._batch):
                    consumed += self._take(record, graph, entry, offered[start : start + self._batch])
                continue
            while True:
                fires = self.store.unconsumed_fires(record.journey_id, entry.trigger_id, since, self._batch)
                consumed += self._take(record, graph, entry, fires)
                if len(fires) < self._batch:
                    break
        return consumed

    def _take(
        self, record: JourneyRecord, graph: JourneyGraph, entry: EntrySettings, fires: Sequence[StoredFire]
    ) -> int:
        """Let in the customers of these fires (each fire consumed once, in the transaction of its entry)."""
        consumed = 0
        latest = self.store.latest_instances(record.journey_id, {f.customer for f in fires if f.customer != SCHEDULED})
        change, seen = JourneyChange(fire_journey=record.journey_id), set[str]()
        for fire in fires:
            if fire.customer == SCHEDULED:
                consumed += self._commit_entries(change)
                change, seen = JourneyChange(fire_journey=record.journey_id), set[str]()
                consumed += self._admit_batch(record, graph, fire, self._members(entry), fire.context)
                continue
            if fire.customer in seen:  # the re-entry rule must see the first entry committed
                consumed += self._commit_entries(change)
                change, seen = JourneyChange(fire_journey=record.journey_id), set[str]()
                latest = latest | self.store.latest_instances(record.journey_id, {fire.customer})
            seen.add(fire.customer)
            self._enter(record, graph, fire, change, latest.get(fire.customer))
        consumed += self._commit_entries(change)
        return consumed

    def enter(self, journey_id: str, customers: Sequence[str], *, key: str, context: dict[str, Any]) -> int:
        """Let `customers` into an active journey now (an API entry); `key` names the request, so sending it
        again lets no one in twice. Returns how many entered (the re-entry rule may keep some out)."""
        record = self.definitions.store.get(journey_id)
        if record is None or record.status != "active" or record.version == 0:
            raise MarketloopError(
                kind=ErrorKind.CONFLICT, code="journeys.not-active", title=f"Journey {journey_id!r} is not active"
            )
        graph = self.definitions.graph(journey_id, record.version)
        _, entry = entry_of(graph)
        if entry.source != "api":
            raise MarketloopError(
                kind=ErrorKind.CONFLICT,
                code="journeys.not-api-entry",
                title=f"Journey {journey_id!r} is not entered through the API",
                detail=f"its entry is {entry.source}",
            )
        marker = _batch_marker(f"api:{key}", "api", self._clock.now(), orjson.dumps(context))
        return self._admit_once(record, graph, marker, lambda: customers)

    def _members(self, entry: EntrySettings) -> Sequence[str]:
        if self._audience is None or entry.segment_id is None:
            raise RuntimeError("a batch entry needs its segment and the segment audience")  # refused at publish
        return self._audience(entry.segment_id)

    def _admit_segment(self, record: JourneyRecord, graph: JourneyGraph, entry: EntrySettings) -> int:
        """A segment entry lets in the segment's members once, when the journey is first published."""
        since = self.definitions.first_published(record.journey_id)
        marker = _batch_marker(f"segment:{entry.segment_id}:{since.isoformat()}", "segment", since, b"{}")
        return self._admit_once(record, graph, marker, lambda: self._members(entry))

    def _admit_once(
        self, record: JourneyRecord, graph: JourneyGraph, marker: StoredFire, customers: Callable[[], Sequence[str]]
    ) -> int:
        """A batch entry named by `marker`, unless the journey consumed it before (remembered: asked once)."""
        key = (record.journey_id, marker.fire_id)
        if key in self._batches_done or self.store.is_consumed(*key):
            self._batches_done.add(key)
            return 0
        admitted = self._admit_batch(record, graph, marker, customers(), marker.context)
        self._batches_done.add(key)
        return admitted

    def _admit_batch(
        self, record: JourneyRecord, graph: JourneyGraph, fire: StoredFire, customers: Sequence[str], context: bytes
    ) -> int:
        """Let a batch in, `chunk` customers per transaction, in order; the batch is consumed with the last chunk.

        A writer thread commits chunk n while chunk n + 1 is built (the database works outside the GIL);
        chunk n + 1 is handed over only once chunk n committed, so a failure stops the batch there."""
        todo = self._batch_todo(record, graph, fire, customers)
        chunks = self._batch_chunks(record, graph, fire, todo, context)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="journey-batch") as writer:
            pending: Future[None] | None = None
            try:
                for change in chunks:
                    if pending is not None:
                        pending.result()
                    pending = writer.submit(self.store.apply, change)
                if pending is not None:
                    pending.result()
            except FireAlreadyConsumedError:  # another runner finished the batch meanwhile
                return 0
        log.info("journey %s let in %d customers (%s)", record.journey_id, len(todo), fire.fire_id)
        return len(todo)

    def _batch_todo(
        self, record: JourneyRecord, graph: JourneyGraph, fire: StoredFire, customers: Sequence[str]
    ) -> list[tuple[str, int]]:
        """(customer, run) of each who enters: not let in by this batch before, and allowed by the re-entry rule."""
        _, entry = entry_of(graph)
        now = self._clock.now()
        latest = self.store.latest_runs(record.journey_id)
        todo = []
        for customer in sorted(set(customers)):
            previous = latest.get(customer)
            if previous is None or (previous.cause != fire.fire_id and _may_enter(entry, previous, now)):
                todo.append((customer, previous.run + 1 if previous else 1))
        return todo

    def _batch_chunks(
        self, record: JourneyRecord, graph: JourneyGraph, fire: StoredFire, todo: list[tuple[str, int]], context: bytes
    ) -> Iterator[JourneyChange]:
        """The batch's changes, `chunk` customers each; the last one consumes the batch's fire."""
        now = self._clock.now()
        data = orjson.dumps({"fire_id": fire.fire_id, "context": orjson.loads(context)})
        entry_id, _ = entry_of(graph)
        templates: dict[int, _Template | None] = {}
        for start in range(0, max(len(todo), 1), self._chunk):
            change = JourneyChange(fire_journey=record.journey_id)
            for customer, run in todo[start : start + self._chunk]:
                if run not in templates:
                    templates[run] = self._template(record, graph, entry_id, run, data, fire.fire_id, now)
                template = templates[run]
                if template is not None and template.fits(customer):
                    template.add(customer, change)
                else:
                    self._start(record, graph, entry_id, customer, run, data, fire.fire_id, change, now)
            if start + self._chunk >= len(todo):
                change.fires.append(fire)
            yield change

    def _commit_entries(self, change: JourneyChange) -> int:
        """Commit a batch of entries; when a fire in it was taken meanwhile (another runner), one by one."""
        if not change.fires:
            return 0
        try:
            self.store.apply(change)
            return len(change.fires)
        except FireAlreadyConsumedError:
            pass
        done = 0
        for fire in change.fires:
            single = JourneyChange(fire_journey=change.fire_journey, fires=[fire])
            single.instances = [i for i in change.instances if i.customer == fire.customer]
            single.log = [r for r in change.log if r.customer == fire.customer]
            single.outbox = [r for r in change.outbox if r.customer == fire.customer]
            try:
                self.store.apply(single)
                done += 1
            except FireAlreadyConsumedError:
                continue
        return done

    def _enter(
        self,
        record: JourneyRecord,
        graph: JourneyGraph,
        fire: StoredFire,
        change: JourneyChange,
        previous: Instance | None,
    ) -> None:
        now = self._clock.now()
        entry_id, entry = entry_of(graph)
        change.fires.append(fire)
        if _may_enter(entry, previous, now):
            run = (previous.run + 1) if previous else 1
            data = orjson.dumps({"fire_id": fire.fire_id, "context": orjson.loads(fire.context)})
            self._start(record, graph, entry_id, fire.customer, run, data, fire.fire_id, change, now)

    def _start(
        self,
        record: JourneyRecord,
        graph: JourneyGraph,
        entry_id: str,
        customer: str,
        run: int,
        data: bytes,
        cause: str,
        change: JourneyChange,
        now: datetime,
    ) -> Walk | None:
        """A new run at the entry, walked at once: its first touches are queued with it (None: the walk failed)."""
        instance = Instance(
            journey_id=record.journey_id,
            customer=customer,
            run=run,
            version=record.version,
            step=entry_id,
            status="active",
            due_at=now,
            entered_at=now,
            updated_at=now,
            data=data,
            cause=cause,
        )
        # the entry's "entered" is the instance itself (its `cause`, `entered_at`): no step-log row
        return self._walk_into(change, graph, instance, now, {})

    def _template(
        self,
        record: JourneyRecord,
        graph: JourneyGraph,
        entry_id: str,
        run: int,
        data: bytes,
        cause: str,
        now: datetime,
    ) -> _Template | None:
        """A batch's customers enter with the same context at the same time: until a step reads the customer
        (a branch on facts, a split), their walks are the same but for the customer. Walk a stand-in once;
        None when the walk read the customer (then each customer is walked)."""
        change = JourneyChange()
        walked = self._start(record, graph, entry_id, STAND_IN, run, data, cause, change, now)
        if walked is None or walked.personal:
            return None
        return _Template(instance=change.instances[0], log=change.log, outbox=change.outbox)

    def _walk_into(
        self,
        change: JourneyChange,
        graph: JourneyGraph,
        instance: Instance,
        now: datetime,
        settled: dict[str, SendOutcome],
    ) -> Walk | None:
        try:
            walked: Walk = self._walker.walk(graph, instance, now, settled)
        except Exception:
            # A defect in one run must not stop every other: it is retried after a minute, loudly.
            self.failures += 1
            log.exception("journey %s failed for customer %s", instance.journey_id, instance.customer)
            change.instances.append(replace(instance, due_at=now + timedelta(minutes=1)))
            return None
        change.instances.append(walked.finish())
        change.log.extend(walked.log)
        change.outbox.extend(walked.outbox)
        return walked

    # -- events ---------------------------------------------------------------------------------

    def observe(self, events: Sequence[tuple[str, Observed]], change: JourneyChange) -> JourneyChange:
        """Add to `change` what these (customer, event) do to open instances: goals reached, waits woken."""
        if not events:
            return change
        now = self._clock.now()
        open_runs = self.store.open_instances({customer for customer, _ in events})
        by_customer: dict[str, list[Instance]] = {}
        for instance in open_runs:
            by_customer.setdefault(instance.customer, []).append(instance)
        changed: dict[tuple[str, str, int], Instance] = {}
        for customer, event in events:
            for index, instance in enumerate(by_customer.get(customer, [])):
                key = (instance.journey_id, instance.customer, instance.run)
                current = changed.get(key, instance)
                if current.status == "done":
                    continue
                updated = self._on_event(current, event, change, now)
                if updated is not current:
                    changed[key] = updated
                    by_customer[customer][index] = updated
        change.instances.extend(changed.values())
        return change

    def _on_event(self, instance: Instance, event: Observed, change: JourneyChange, now: datetime) -> Instance:
        graph = self.definitions.graph(instance.journey_id, instance.version)
        if event.timestamp < instance.entered_at:
            return instance
        for step in graph.steps:
            if step.type != "goal":
                continue
            goal: GoalSettings = settings_of(step)
            in_time = goal.within is None or event.timestamp <= instance.entered_at + goal.within
            if in_time and matches(goal.event, event):
                change.log.append(_row(instance, step.id, "converted", now, conversion_detail(goal, event)))
                return replace(instance, status="done", due_at=None, updated_at=now)
        for index, rule in enumerate(graph.policy.exit_on):
            if matches(rule, event):
                change.log.append(_row(instance, instance.step, "exited", now, f"exit_on/{index}: {rule.event}"))
                return replace(instance, status="done", due_at=None, updated_at=now)
        data: dict[str, Any] = msgspec.json.decode(instance.data)
        match = awaited(data)
        if instance.status == "waiting" and match is not None and matches(match, event):
            target = next(s for s in graph.steps if s.id == instance.step).next["event"]
            data.pop("wait", None)
            change.log.append(_row(instance, target, "entered", now, f"{instance.step}.event"))
            return replace(instance, step=target, status="active", due_at=now, updated_at=now, data=orjson.dumps(data))
        return instance

    # -- due instances --------------------------------------------------------------------------

    def advance(self) -> int:
        """Walk every due instance of the active journeys; returns how many were walked."""
        active = [record.journey_id for record in self.definitions.active()]
        if not active:
            return 0
        # One transaction per slice: a crash before it repeats the slice's walks, and the touches they
        # queue again are already in the outbox under the same keys, so nothing is sent twice.
        now = self._clock.now()
        walked = 0
        while walked < self._batch:
            due = self.store.due(active, now, ADVANCE_SLICE)
            keys = [key for instance in due if (key := _sending(instance)) is not None]
            found = self.store.outcomes(keys) if keys else {}
            settled = {key: _outcome.decode(outcome) for key, outcome in found.items()}
            change = JourneyChange()
            for instance in due:
                graph = self.definitions.graph(instance.journey_id, instance.version)
                self._walk_into(change, graph, instance, now, settled)
            if change.instances:
                self.store.apply(change)
            walked += len(due)
            if len(due) < ADVANCE_SLICE or self.offered():  # fires waiting go first; the rest is due next round
                break
        return walked

    def offered(self) -> bool:
        """Fires handed over by the stream processor wait for the next `admit`."""
        return bool(self._fresh)

    def next_due(self) -> datetime | None:
        return self.store.next_due([record.journey_id for record in self.definitions.active()])


STAND_IN = "@@ml-customer@@"  # the customer of a template walk: replaced by each customer's id
_STAND_IN = STAND_IN.encode()
_PLAIN = re.compile(r"[A-Za-z0-9_.:@\-]{1,64}")  # ids that read the same in JSON, keys and text


@dataclass(frozen=True, kw_only=True)
class _Template:
    """A stand-in's walk from the entry; `add` writes the same rows for a customer (see `_template`)."""

    instance: Instance
    log: list[LogRow]
    outbox: list[OutboxRow]

    @functools.cached_property
    def _room(self) -> int:
        longest = max((len(row.key) for row in self.outbox), default=0)
        return MAX_KEY - 4 - (longest - len(STAND_IN))

    def fits(self, customer: str) -> bool:
        """The customer's rows are the stand-in's with the id replaced (a plain id; keys stay unhashed)."""
        return len(customer) <= self._room and _PLAIN.fullmatch(customer) is not None and STAND_IN not in customer

    def add(self, customer: str, change: JourneyChange) -> None:
        i, raw = self.instance, customer.encode()
        change.instances.append(
            Instance(
                journey_id=i.journey_id,
                customer=customer,
                run=i.run,
                version=i.version,
                step=i.step,
                status=i.status,
                due_at=i.due_at,
                entered_at=i.entered_at,
                updated_at=i.updated_at,
                data=i.data.replace(_STAND_IN, raw),
                cause=i.cause,
            )
        )
        change.log.extend(
            LogRow(
                journey_id=r.journey_id,
                version=r.version,
                customer=customer,
                run=r.run,
                step=r.step,
                kind=r.kind,
                at=r.at,
                detail=r.detail.replace(STAND_IN, customer),
            )
            for r in self.log
        )
        change.outbox.extend(
            OutboxRow(
                key=o.key.replace(STAND_IN, customer),
                journey_id=o.journey_id,
                version=o.version,
                customer=customer,
                run=o.run,
                step=o.step,
                channel=o.channel,
                request=o.request.replace(_STAND_IN, raw),
                created_at=o.created_at,
                not_before=o.not_before,
            )
            for o in self.outbox
        )


def conversion_detail(goal: GoalSettings, event: Observed) -> str:
    """The `converted` row's detail: the event's message id, and ` value=<number>` when the goal names a
    `value_property` the event holds as a number (what a split's experiment reads as revenue)."""
    if goal.value_property is None:
        return event.message_id
    value = number(lookup(event.properties, goal.value_property))
    if value is None or not math.isfinite(value):
        log.warning("goal value %s of event %s is not a number", goal.value_property, event.message_id)
        return event.message_id
    return f"{event.message_id} value={value!r}"


def _batch_marker(fire_id: str, reason: str, at: datetime, context: bytes) -> StoredFire:
    """The consumed-fire row of a batch entry (a segment at publish, an API request): it names the batch."""
    return StoredFire(
        fire_id=fire_id,
        trigger_id="",
        customer=SCHEDULED,
        partition=0,
        fired_at=at,
        recorded_at=at,
        reason=reason,
        context=context,
    )


def _sending(instance: Instance) -> str | None:
    """The outbox key of the touch a settled instance was waiting for (cheap test before decoding)."""
    if b'"sending"' not in instance.data:
        return None
    key = msgspec.json.decode(instance.data).get("sending")
    return key if isinstance(key, str) else None


def _may_enter(entry: EntrySettings, previous: Instance | None, now: datetime) -> bool:
    if previous is None:
        return True
    if previous.status != "done" or entry.re_entry == "never":
        return False
    if entry.re_entry == "after_exit" and entry.re_entry_after is not None:
        return now >= previous.updated_at + entry.re_entry_after
    return True


def _row(instance: Instance, step: str, kind: str, at: datetime, detail: str = "") -> LogRow:
    return LogRow(
        journey_id=instance.journey_id,
        version=instance.version,
        customer=instance.customer,
        run=instance.run,
        step=step,
        kind=kind,
        at=at,
        detail=detail,
    )
