"""The event log re-partitioned by OneID: what the stream processor consumes.

Collection appends each event to the partition of its collection key
(`userId`, else `anonymousId`): it cannot wait for identity resolution. But a
customer's events arrive under several keys (a device before login, the
customer number after, a WeChat openid), so partitions of the collection log
do not own customers. The `Repartitioner` reads the collection log, resolves
every event's OneID once, and appends it, with its OneID and its collection
position, to the keyed log: partition `crc32(OneID) % N`. All events of a
customer, under whatever key they came, are in one keyed partition, so the
trigger state, timers and fires of a customer belong to one partition, and a
later scale-out (M10) can give each worker its own keyed partitions: no two
workers ever touch one customer's state.

Exactly once: the re-partitioner appends durably, then (at most every
`SAVE_SECONDS`) stores its collection positions and the keyed log's ends
before that append in one transaction. A crash leaves records in the keyed
log that its stored positions do not cover; at start it reads the keyed log
after the stored ends, takes the highest collection position found per
collection partition and goes on after it, so no event is keyed twice or lost. It is the keyed log's
only writer (the log's lock file makes sure).

`through` is the time by which every record durable in the collection log
then had been keyed; the processor fires a keyed partition's timers only up to
it (an event that came in before an absence's deadline is always seen first).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import zlib
from collections.abc import Callable, Sequence
from datetime import datetime

import msgspec

from marketloop.collect.loader import Resolver
from marketloop.core.events import Event
from marketloop.journeys.segment_events import run_blocking
from marketloop.journeys.steps import partition_key
from marketloop.ports.clock import Clock
from marketloop.ports.eventlog import EventLog
from marketloop.ports.realtime import StreamStore

log = logging.getLogger(__name__)

CONSUMER = "keyer"  # collection log positions
ENDS = "keyer-ends"  # keyed log ends before the last stored round's append
# Positions are stored at most this often: the keyed log itself says how far it got (see `recover`), so a
# stale position costs a longer read at start, never a lost or repeated event; a write transaction every
# round had cost the stream processor's commits their turn at the store's write lock.
SAVE_SECONDS = 1.0


class _Written(msgspec.Struct, array_like=True):
    one_id: str
    partition: int  # in the collection log
    offset: int
    event: msgspec.Raw


class KeyedRecord(msgspec.Struct, array_like=True):
    """A keyed log record: the event, its OneID (its collection key when it has none) and where it was
    collected."""

    one_id: str
    partition: int
    offset: int
    event: Event


class _Position(msgspec.Struct, array_like=True):
    one_id: str
    partition: int
    offset: int


_encoder = msgspec.json.Encoder()
_event = msgspec.json.Decoder(Event)
_position = msgspec.json.Decoder(_Position)
keyed_decoder = msgspec.json.Decoder(KeyedRecord)


def key_partition(one_id: str, partitions: int) -> int:
    """The keyed partition of a customer."""
    return zlib.crc32(one_id.encode()) % partitions


class Repartitioner:
    """Collection log -> keyed log, by OneID, exactly once (see the module)."""

    def __init__(
        self,
        source: EventLog,
        keyed: EventLog,
        store: StreamStore,
        clock: Clock,
        *,
        resolver: Resolver | None = None,
        max_batch: int = 2_000,
        legacy_consumer: str | None = None,
    ) -> None:
        self._source = source
        self.keyed = keyed
        self._store = store
        self._clock = clock
        self._resolver = resolver
        self._max_batch = max_batch
        self._legacy = legacy_consumer
        self._positions: dict[int, int] | None = None
        self._recovering = threading.Lock()  # the first round and a status request may both ask
        self._saved_at: float | None = None
        self.through: datetime | None = None
        # Set by the processor: True while nothing reads events (no trigger, no real-time segment); the
        # re-partitioner then moves past them unkeyed, as the processor would skip them unread.
        self.idle: Callable[[], bool] | None = None

    def recover(self) -> dict[int, int]:
        """The collection positions to go on after (kept, and moved by every round): stored ones, raised by
        keyed records they do not cover.

        A data directory from before the keyed log starts where `legacy_consumer` (the processor that read
        the collection log itself) had got to, so nothing is processed twice."""
        with self._recovering:
            if self._positions is not None:
                return self._positions
            return self._recover()

    def _recover(self) -> dict[int, int]:
        stored = self._store.positions(CONSUMER)
        if not stored and self._legacy is not None:
            stored = self._store.positions(self._legacy)
        positions = {p: stored.get(p, -1) for p in range(self._source.partitions)}
        ends = self._store.positions(ENDS)
        for partition in range(self.keyed.partitions):
            after = ends.get(partition, -1)
            while values := self.keyed.read_values(partition, after, 10_000):
                for value in values:
                    found = _position.decode(value)
                    if found.offset > positions.get(found.partition, -1):
                        positions[found.partition] = found.offset
                after += len(values)
        self.save(positions, {p: self.keyed.end_offset(p) for p in range(self.keyed.partitions)})
        self._positions = positions
        return positions

    def status(self) -> list[dict[str, int]]:
        """Per collection partition: the position keyed through, the log's end and the lag."""
        positions = self._positions if self._positions is not None else self.recover()
        found = []
        for partition, after in sorted(positions.items()):
            end = self._source.end_offset(partition)
            found.append({"partition": partition, "committed": after, "end": end, "lag": end - after})
        return found

    def run_once(self) -> int:
        """Key one batch of every collection partition; returns how many records it read."""
        positions = self._positions if self._positions is not None else self.recover()
        seen_at = self._clock.now()
        read_all = True
        grouped: dict[int, list[bytes]] = {}
        moved: dict[int, int] = {}
        if self.idle is not None and self.idle():
            return self._skip(positions, seen_at)
        for partition in range(self._source.partitions):
            after = positions[partition]
            values = self._source.read_values(partition, after, self._max_batch)
            if after + len(values) < self._source.end_offset(partition):
                read_all = False
            if not values:
                continue
            self._key(partition, after, values, grouped)
            moved[partition] = after + len(values)
        if moved:
            ends = {p: self.keyed.end_offset(p) for p in range(self.keyed.partitions)}
            if grouped:
                self._append_sync(grouped)
            if self._saved_at is None or self._clock.monotonic() - self._saved_at >= SAVE_SECONDS:
                self.save(positions | moved, ends)
        read = sum(offset - positions[p] for p, offset in moved.items())
        positions.update(moved)
        if read_all:
            self.through = seen_at
        return read

    def _skip(self, positions: dict[int, int], seen_at: datetime) -> int:
        """Move past every durable record unkeyed; counted as nothing done (the loop then waits its poll)."""
        ends = {p: self._source.end_offset(p) for p in positions}
        if ends != positions:
            positions.update(ends)
            if self._saved_at is None or self._clock.monotonic() - self._saved_at >= SAVE_SECONDS:
                self.save(dict(positions), {p: self.keyed.end_offset(p) for p in range(self.keyed.partitions)})
        self.through = seen_at
        return 0

    def save(self, positions: dict[int, int], ends: dict[int, int]) -> None:
        """Store the collection positions keyed through and the keyed log's ends before their append."""
        self._store.save_positions({CONSUMER: positions, ENDS: ends})
        self._saved_at = self._clock.monotonic()

    def _append_sync(self, grouped: dict[int, list[bytes]]) -> None:
        run_blocking(self._append(grouped))

    async def _append(self, grouped: dict[int, list[bytes]]) -> None:
        await asyncio.gather(*(self.keyed.append(p, records) for p, records in grouped.items()))

    def _key(self, partition: int, after: int, values: Sequence[bytes], grouped: dict[int, list[bytes]]) -> None:
        kept: list[tuple[int, bytes, Event]] = []
        for index, value in enumerate(values, start=after + 1):
            try:
                event = _event.decode(value)
            except msgspec.DecodeError as error:
                log.warning("an event record cannot be read for keying (%s); skipped", error)
                continue
            if not event.quarantined:
                kept.append((index, value, event))
        if not kept:
            return
        if self._resolver is None:
            one_ids: list[str | None] = [None] * len(kept)
        else:
            with self._resolver.attribute([value for _, value, _ in kept]) as attribution:
                one_ids = list(attribution.one_ids)
        partitions = self.keyed.partitions
        for one_id, (offset, value, event) in zip(one_ids, kept, strict=True):
            key = one_id or partition_key(event)
            record = _encoder.encode(_Written(key, partition, offset, msgspec.Raw(value)))
            grouped.setdefault(key_partition(key, partitions), []).append(record)
