"""The journey runner: the runtime's and the outbox dispatcher's loops beside the stream processor (start, stop,
drain), and its event reader.

`JourneyEvents` reads the event log with its own committed offsets (consumer
`journeys`): it keeps only events whose name a goal or an event wait of an
active journey listens for, keys them by customer as the stream processor
does (OneID when the resolver gives one), and commits what they did to the
instances together with the new offset. Only the events it keeps are
attributed, so the loader and the processor are not slowed by a second full
pass over identity.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import msgspec

from marketloop.collect.loader import Resolver
from marketloop.core.events import Event
from marketloop.journeys.graph import settings_of
from marketloop.journeys.outbox import OutboxDispatcher
from marketloop.journeys.rounds import Rounds
from marketloop.journeys.runtime import JourneyRuntime
from marketloop.journeys.steps import Observed, observe, partition_key
from marketloop.ports.eventlog import EventLog
from marketloop.ports.journeys import JourneyChange
from marketloop.ports.realtime import StoredFire, StreamStore

log = logging.getLogger(__name__)

CONSUMER = "journeys"
DISPATCH_PACE_SECONDS = 0.1
WALK_PACE_SECONDS = 0.02  # a busy runner gathers 20 ms of fires into one transaction
_decoder = msgspec.json.Decoder(Event)


class JourneyEvents:
    """Events for goals and waits, exactly once per event per instance (offset and changes in one transaction)."""

    def __init__(
        self,
        runtime: JourneyRuntime,
        events: EventLog,
        offsets: StreamStore,
        *,
        resolver: Resolver | None = None,
        max_batch: int = 2000,
    ) -> None:
        self._runtime = runtime
        self._log = events
        self._offsets = offsets
        self._resolver = resolver
        self._max_batch = max_batch

    def listened(self) -> set[str]:
        """Event names a goal, an event wait or an exit rule of a published journey listens for (`*`: any).

        Paused journeys listen too: a conversion or an awaited event during a pause is kept (the
        instance moves on when the journey resumes). Every version still running counts.
        """
        names: set[str] = set()
        definitions = self._runtime.definitions
        for journey_id, version in definitions.store.running_versions():
            graph = definitions.graph(journey_id, version)
            names.update(rule.event for rule in graph.policy.exit_on)
            for step in graph.steps:
                if step.type in ("goal", "wait") and settings_of(step).event is not None:
                    names.add(settings_of(step).event.event)
        return names

    def process_partition(self, partition: int) -> int:
        after = self._offsets.committed_offset(CONSUMER, partition)
        names = self.listened()
        if not names:  # nothing listens: skip to the end without reading (the loader keeps the disk to itself)
            end = self._log.end_offset(partition)
            if end > after:
                self._runtime.store.apply(JourneyChange(offset=(CONSUMER, partition, after, end)))
            return 0
        values = self._log.read_values(partition, after, self._max_batch)
        if not values:
            return 0
        change = JourneyChange(offset=(CONSUMER, partition, after, after + len(values)))
        self._runtime.store.apply(self._runtime.observe(self._keyed(values, names), change))
        return len(values)

    def _keyed(self, values: Sequence[bytes], names: set[str]) -> list[tuple[str, Observed]]:
        kept: list[tuple[bytes, Event]] = []
        for value in values:
            try:
                event = _decoder.decode(value)
            except msgspec.DecodeError as error:
                log.warning("an event record cannot be read by the journey runner (%s); skipped", error)
                continue
            if not event.quarantined and ("*" in names or (event.event or event.type) in names):
                kept.append((value, event))
        if self._resolver is None or not kept:
            return [(partition_key(event), observe(event)) for _, event in kept]
        with self._resolver.attribute([value for value, _ in kept]) as attribution:
            one_ids = list(attribution.one_ids)
        return [(one_id or partition_key(e), observe(e)) for one_id, (_, e) in zip(one_ids, kept, strict=True)]

    def run_once(self) -> int:
        return sum(self.process_partition(p) for p in range(self._log.partitions))


class JourneyRunner:
    """Runs rounds of entries, events and due instances in one thread and the outbox dispatcher in another
    (a slow channel does not hold up the walks); `stop` drains what is due."""

    def __init__(
        self,
        runtime: JourneyRuntime,
        events: JourneyEvents | None,
        dispatcher: OutboxDispatcher | None = None,
        *,
        poll_seconds: float = 0.2,
    ) -> None:
        self.runtime = runtime
        self.events = events
        self.dispatcher = dispatcher
        self._threaded: OutboxDispatcher | None = None  # what the thread dispatches when not all of it
        self._rounds = Rounds(
            "journey runner", self.walk_once, poll_seconds=poll_seconds, pace_seconds=WALK_PACE_SECONDS
        )
        # at most ten dispatch rounds a second: sends go out in batches of up to `batch` (contact policy,
        # ledger and settling are a few transactions per batch, not per touch), and the walks and the
        # stream processor keep the interpreter the rest of the time
        self._dispatch = Rounds(
            "journey dispatcher", self.dispatch_once, poll_seconds=poll_seconds, pace_seconds=DISPATCH_PACE_SECONDS
        )

    def walk_once(self) -> int:
        """One round of entries, events and due instances; returns how many it handled."""
        handled = self.runtime.admit()
        if self.events is not None:
            handled += self.events.run_once()
        handled += self.runtime.advance()
        if handled:
            self._dispatch.wake()  # what the walks queued goes out now, not at the next poll
        return handled

    def dispatch_once(self) -> int:
        """Send one batch of the outbox; the settled instances are walked on at once."""
        dispatcher = self._threaded or self.dispatcher
        sent = dispatcher.dispatch_once() if dispatcher is not None else 0
        if sent:
            self._rounds.wake()
        return sent

    def run_once(self) -> int:
        """One round of both; returns how many fires, events, instances and touches it handled."""
        return self.walk_once() + self.dispatch_once()

    def wake(self, fires: Sequence[StoredFire] = ()) -> None:
        """New trigger fires were committed: admit them now (`JourneyRuntime.offer`)."""
        if fires:
            self.runtime.offer(fires)
        self._rounds.wake()

    def drain(self) -> int:
        total = 0
        for _ in range(10_000):  # bounded: a send deferred to "now" must not spin for ever
            handled = self.run_once()
            total += handled
            if handled == 0:
                break
        return total

    def start(self, *, sends_elsewhere: bool = False) -> None:
        """Start the walks and the dispatcher thread; `sends_elsewhere`: another process sends the touches
        (`marketloop dispatch`), this one only performs tag updates."""
        if sends_elsewhere and self.dispatcher is not None:
            self._threaded = self.dispatcher.only("updates")
        self._rounds.start()
        if self.dispatcher is not None:
            self._dispatch.start()

    def stop(self) -> None:
        """Stop the threads, then run what is due now (drain on SIGTERM)."""
        self._rounds.stop()
        self._dispatch.stop()
        self.drain()
