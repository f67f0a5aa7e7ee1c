"""The journey runtime (旅程运行): trigger fires in, customers through the steps, touches out.

One round (`run_once`) does three things, each committed through
`JourneyStore.apply` in transactions that keep it exactly-once:

1. entries: every active journey whose entry names a trigger consumes that
   trigger's new rows of `trigger_fires` (the stream processor's outbox); the
   consumed fire id is written in the same transaction as the new instance, so
   a fire lets a customer in once, across restarts and concurrent runners
   (fires recorded before the journey was first published are not taken);
   the entry's re-entry rule decides whether a customer who was in before
   enters again;
2. events (`JourneyEvents`): events from the log, read with the runtime's own
   committed offsets, end runs that reach a goal (conversion) and wake waits
   for an event; the offset moves in the same transaction;
3. due instances: every instance whose due time has come (a new entry, an
   ended wait, a deferred send) is walked on (`walk.Walker`).

Paused journeys neither admit nor advance anyone until resumed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import msgspec
import orjson

from marketloop.journeys.definitions import JourneyDefinitions
from marketloop.journeys.graph import JourneyGraph, settings_of
from marketloop.journeys.step_types import EntrySettings, GoalSettings
from marketloop.journeys.steps import Observed, matches
from marketloop.journeys.walk import Walker, awaited
from marketloop.ports.clock import Clock
from marketloop.ports.journeys import FireAlreadyConsumedError, Instance, JourneyChange, JourneyRecord, LogRow
from marketloop.ports.realtime import StoredFire

log = logging.getLogger(__name__)


def entry_of(graph: JourneyGraph) -> tuple[str, EntrySettings]:
    step = next(s for s in graph.steps if s.type == "entry")
    settings: EntrySettings = settings_of(step)
    return step.id, settings


class JourneyRuntime:
    """Entries from trigger fires, events for goals and waits, and walking due instances (see the module)."""

    def __init__(self, definitions: JourneyDefinitions, walker: Walker, clock: Clock, *, batch: int = 500) -> None:
        self.definitions = definitions
        self.store = definitions.store
        self._walker = walker
        self._clock = clock
        self._batch = batch
        self.failures = 0

    # -- entries --------------------------------------------------------------------------------

    def admit(self) -> int:
        """Consume new fires of every active journey's entry trigger; returns how many fires were consumed."""
        consumed = 0
        for record in self.definitions.active():
            graph = self.definitions.graph(record.journey_id, record.version)
            _, entry = entry_of(graph)
            if entry.source != "trigger" or entry.trigger_id is None:
                continue
            since = self.definitions.first_published(record.journey_id)
            fires = self.store.unconsumed_fires(record.journey_id, entry.trigger_id, since, self._batch)
            change, seen = JourneyChange(fire_journey=record.journey_id), set[str]()
            for fire in fires:
                if fire.customer in seen:  # the re-entry rule must see the first entry committed
                    consumed += self._commit_entries(change)
                    change, seen = JourneyChange(fire_journey=record.journey_id), set[str]()
                seen.add(fire.customer)
                self._enter(record, graph, fire, change)
            consumed += self._commit_entries(change)
        return consumed

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
            try:
                self.store.apply(single)
                done += 1
            except FireAlreadyConsumedError:
                continue
        return done

    def _enter(self, record: JourneyRecord, graph: JourneyGraph, fire: StoredFire, change: JourneyChange) -> None:
        now = self._clock.now()
        entry_id, entry = entry_of(graph)
        previous = self.store.latest_instance(record.journey_id, fire.customer)
        change.fires.append(fire)
        if _may_enter(entry, previous, now):
            instance = Instance(
                journey_id=record.journey_id,
                customer=fire.customer,
                run=(previous.run + 1) if previous else 1,
                version=record.version,
                step=entry_id,
                status="active",
                due_at=now,
                entered_at=now,
                updated_at=now,
                data=orjson.dumps({"fire_id": fire.fire_id, "context": orjson.loads(fire.context)}),
            )
            change.instances.append(instance)
            change.log.append(_row(instance, entry_id, "entered", now, fire.fire_id))

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
                change.log.append(_row(instance, step.id, "converted", now, event.message_id))
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
        # One transaction for the batch: a crash before it repeats the walks, and their sends
        # answer "sent before" from the delivery ledger (idempotency keys), so nothing is sent twice.
        change = JourneyChange()
        due = self.store.due(active, self._clock.now(), self._batch)
        for instance in due:
            try:
                graph = self.definitions.graph(instance.journey_id, instance.version)
                result = self._walker.walk(graph, instance, self._clock.now())
            except Exception:
                # A defect in one run must not stop every other: it is retried after a minute, loudly.
                self.failures += 1
                log.exception("journey %s failed for customer %s", instance.journey_id, instance.customer)
                change.instances.append(replace(instance, due_at=self._clock.now() + timedelta(minutes=1)))
                continue
            change.instances.append(result.finish())
            change.log.extend(result.log)
        if change.instances:
            self.store.apply(change)
        return len(due)

    def next_due(self) -> datetime | None:
        return self.store.next_due([record.journey_id for record in self.definitions.active()])


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
