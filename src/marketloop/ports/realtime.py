"""Ports of the real-time engine: trigger definitions, and the stream processor's transactional store.

The stream processor keeps everything it decides - trigger state per
customer, durable timers, fires (its outbox) - in the operational store, and
commits each batch's changes together with the event-log offset it consumed,
in ONE transaction: a crash either keeps a batch's effects and its offset, or
neither, so a restart resumes after the last committed batch and never writes
a fire twice.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

# The partition a timer of no customer belongs to (a schedule trigger's): the embedded processor
# owns it with every log partition; in scale-out, the scheduler role does.
SCHEDULER_PARTITION = -1


class OffsetMovedError(RuntimeError):
    """The committed offset is not the one this batch started from: another worker owns the partition."""


@dataclass(frozen=True, kw_only=True)
class TriggerRecord:
    """A stored trigger: its JSON definition (see `marketloop.journeys.triggers`) and when it changed."""

    trigger_id: str
    kind: str
    definition: bytes
    enabled: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, kw_only=True)
class StoredTimer:
    """A durable timer: due at `due_at` (UTC) for `customer` of `trigger_id`, owned by `partition`."""

    timer_id: str
    trigger_id: str
    customer: str
    partition: int
    due_at: datetime
    payload: bytes = b"{}"


@dataclass(frozen=True, kw_only=True)
class StoredFire:
    """One trigger fire, the processor's outbox row. `fire_id` is unique: writing it again changes nothing.

    `fired_at` is the event or timer time it fired for; `recorded_at` is when
    the processor committed it (their difference, and `received_at` of the
    cause, give the latency).
    """

    fire_id: str
    trigger_id: str
    customer: str
    partition: int
    fired_at: datetime
    recorded_at: datetime
    reason: str
    cause: bytes = b"[]"
    context: bytes = b"{}"


@dataclass(kw_only=True)
class Commit:
    """One batch's effects, committed atomically with the consumer's offset.

    `partition` None commits no offset (a timer batch). `states` maps
    (trigger id, customer) to the new state, or None to delete it.
    """

    consumer: str
    partition: int | None = None
    after: int = -1  # the committed offset the batch started from
    offset: int = -1  # the offset of its last record
    states: dict[tuple[str, str], bytes | None] = field(default_factory=dict)
    timers: list[StoredTimer] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)  # timer ids, including the timers that fired
    fires: list[StoredFire] = field(default_factory=list)


class TriggerRepository(Protocol):
    """Trigger definitions. Ids are unique; every save bumps `revision` so processors notice changes."""

    def save(self, record: TriggerRecord, timers: Sequence[StoredTimer] = (), *, reset_state: bool = False) -> None:
        """Insert or replace the trigger and replace its scheduler timers by `timers`, in one transaction.

        Scheduler timers are those of `SCHEDULER_PARTITION` (a schedule's next
        run). With `reset_state` (the definition changed) every customer's
        state and timers of the trigger are deleted too: it starts afresh.
        """
        ...

    def get(self, trigger_id: str) -> TriggerRecord | None: ...

    def list(self) -> list[TriggerRecord]:
        """Every trigger, by id."""
        ...

    def revision(self) -> int:
        """A number that grows with every save; cheap (a processor polls it)."""
        ...


class StreamStore(Protocol):
    """The stream processor's state: offsets, trigger state, timers and fires, changed only by `commit`."""

    def committed_offset(self, consumer: str, partition: int) -> int:
        """The offset of the last record whose effects are committed, or -1 (START) when none."""
        ...

    def states(self, customers: Collection[str]) -> dict[tuple[str, str], bytes]:
        """Stored trigger state of these customers, by (trigger id, customer)."""
        ...

    def positions(self, consumer: str) -> dict[int, int]:
        """Every stored offset of `consumer`, by partition."""
        ...

    def save_positions(self, positions: dict[str, dict[int, int]]) -> None:
        """Store offsets of several consumers (by consumer, then partition) in one transaction, unchecked: for
        a consumer with one writer (the re-partitioner)."""
        ...

    def commit(self, commit: Commit) -> None:
        """Write every change of `commit` and move the offset, all or nothing.

        Fires and timers whose id exists already are left as they are (a replay
        adds nothing). Raises `OffsetMovedError`, changing nothing, when the
        stored offset is not `commit.after`.
        """
        ...

    def due_timers(self, until: datetime, partitions: Collection[int], limit: int) -> list[StoredTimer]:
        """Timers of `partitions` due at or before `until`, earliest first, at most `limit`."""
        ...

    def next_due(self, partitions: Collection[int]) -> datetime | None:
        """When the earliest timer of `partitions` is due, or None when there is none."""
        ...

    def fires(self, trigger_id: str | None = None, *, limit: int = 100) -> list[StoredFire]:
        """Recorded fires, newest first, only `trigger_id`'s when given."""
        ...
