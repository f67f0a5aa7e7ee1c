"""Ports of the journey runtime: journeys with immutable versions, instances per customer, the step log.

Every change the runtime makes to instances goes through `JourneyStore.apply`,
one transaction: the consumed trigger fire (entry), the event-log offset
(waits for events, goals), the instances and the step-log rows commit together
or not at all, so a crash repeats nothing that was committed and loses nothing
that was not.
"""

from __future__ import annotations

import builtins
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from marketloop.ports.realtime import StoredFire


class FireAlreadyConsumedError(RuntimeError):
    """The journey consumed this trigger fire before: the change was not written."""


@dataclass(frozen=True, kw_only=True)
class JourneyRecord:
    """A journey: its draft (JSON graph), status (draft, active, paused) and published version (0: none)."""

    journey_id: str
    name: str
    status: str
    draft: bytes
    version: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, kw_only=True)
class VersionRecord:
    journey_id: str
    version: int
    definition: bytes
    published_at: datetime
    published_by: str


@dataclass(frozen=True, kw_only=True)
class Instance:
    """One customer's run (`run` counts re-entries from 1) of one journey, pinned to `version`.

    `status`: `active` (to be advanced at `due_at`), `waiting` (a wait, until `due_at`), `sending`
    (a touch is in the outbox; due again when the dispatcher settles it), `done`. `data` is JSON: the
    entry's context, split assignments, the awaited event, the touch it is sending.
    """

    journey_id: str
    customer: str
    run: int
    version: int
    step: str
    status: str
    due_at: datetime | None
    entered_at: datetime
    updated_at: datetime
    data: bytes = b"{}"
    cause: str = ""  # what let the customer in: the trigger fire id, or the batch entry's id


@dataclass(frozen=True, kw_only=True)
class LogRow:
    """Something that happened at a step: entered, sent, suppressed, failed, assigned, converted, exited."""

    journey_id: str
    version: int
    customer: str
    run: int
    step: str
    kind: str
    at: datetime
    detail: str = ""


UPDATE_CHANNEL = "@update"  # the outbox channel of tag updates (no channel has a name starting with @)


@dataclass(frozen=True, kw_only=True)
class OutboxRow:
    """A touch a walk decided to make (发送队列): written with the instance that made it, sent by the dispatcher.

    `key` is the touch's idempotency key (primary key: a walk repeated after a crash adds nothing);
    `request` the encoded `SendRequest`. `outcome` (encoded `SendOutcome`) is set when it is settled.
    """

    key: str
    journey_id: str
    version: int
    customer: str
    run: int
    step: str
    channel: str
    request: bytes
    created_at: datetime
    status: str = "queued"  # queued, done
    not_before: datetime | None = None
    attempts: int = 0
    outcome: bytes | None = None


@dataclass(kw_only=True)
class JourneyChange:
    """One transaction's worth of runtime changes.

    `fires`: recorded as consumed by `fire_journey` first; the whole change is refused with
    `FireAlreadyConsumedError` when any of them was consumed before. `offset` set: (consumer, partition, after, offset)
    moves an event-log offset like the stream processor's commit (`OffsetMovedError` when it moved).
    `outbox`: the touches the walks in this change queued, committed with them (transactional outbox).
    """

    instances: list[Instance] = field(default_factory=list)
    log: list[LogRow] = field(default_factory=list)
    fire_journey: str = ""
    fires: list[StoredFire] = field(default_factory=list)
    offset: tuple[str, int, int, int] | None = None
    outbox: list[OutboxRow] = field(default_factory=list)  # inserted unless the key is there (a repeated walk)


class TagWriter(Protocol):
    """Where a journey's update step sets tags (the tag service)."""

    def assign(self, name: str, cust_no: str, value: str | None, *, at: datetime) -> bool:
        """Set (None: remove) one customer's value of the static tag `name`; whether it changed.

        Idempotent: the same value again changes nothing. Raises `MarketloopError` (INVALID / NOT_FOUND) for an
        unknown tag, a tag that is not static, or a value the tag does not take.
        """
        ...


# A custom profile field's name: a lower-case identifier of at most 64 characters (the step's schema and the
# store both check it).
FIELD_NAME = "^[a-z][a-z0-9_]{0,63}$"


class AttributeWriter(Protocol):
    """Where a journey's update step sets custom profile attributes (自定义属性)."""

    def set_attribute(self, name: str, cust_no: str, value: str | None, *, at: datetime) -> bool:
        """Set (None: remove) one customer's value of attribute `name`; whether it changed. Idempotent: the same
        value again changes nothing. Raises `MarketloopError` (INVALID) for a bad name or value or an unknown
        customer."""
        ...


class JourneyStore(Protocol):
    """Journeys, versions and instances in the operational store."""

    def save(self, record: JourneyRecord) -> None:
        """Insert or replace the journey row (name, status, draft, version, times)."""
        ...

    def get(self, journey_id: str) -> JourneyRecord | None: ...

    def list(self) -> builtins.list[JourneyRecord]:
        """Every journey, by id."""
        ...

    def publish(self, journey_id: str, definition: bytes, at: datetime, by: str) -> int:
        """Store the next version (immutable) and make it the journey's current one, status active; its number."""
        ...

    def version(self, journey_id: str, version: int) -> VersionRecord | None: ...

    def versions(self, journey_id: str) -> builtins.list[VersionRecord]: ...

    def unconsumed_fires(
        self, journey_id: str, trigger_id: str, since: datetime, limit: int
    ) -> builtins.list[StoredFire]:
        """Fires of `trigger_id` recorded at or after `since` that the journey has not consumed, oldest first."""
        ...

    def latest_instances(self, journey_id: str, customers: Collection[str]) -> dict[str, Instance]:
        """The newest run of the journey of each of these customers (those with none are missing)."""
        ...

    def due(self, journey_ids: Collection[str], until: datetime, limit: int) -> builtins.list[Instance]:
        """Active or waiting instances of these journeys due at or before `until`, earliest first."""
        ...

    def open_instances(self, customers: Collection[str]) -> builtins.list[Instance]:
        """Instances of these customers that are not done (any journey)."""
        ...

    def running_versions(self) -> builtins.list[tuple[str, int]]:
        """(journey id, version) of every current published version and every version with open instances."""
        ...

    def apply(self, change: JourneyChange) -> None:
        """Write `change` in one transaction (see `JourneyChange`)."""
        ...

    def counts(self, journey_id: str) -> dict[str, dict[str, int]]:
        """Per step: the step-log counts by kind, and `waiting` / `sending` (instances now there)."""
        ...

    def entries(self, journey_id: str) -> dict[int, int]:
        """Runs started, per version (each run is one entry: the entry step writes no step-log row)."""
        ...

    def next_due(self, journey_ids: Collection[str]) -> datetime | None: ...

    def is_consumed(self, journey_id: str, fire_id: str) -> bool:
        """Whether the journey consumed this fire (or batch entry) before."""
        ...

    def latest_runs(self, journey_id: str) -> dict[str, Instance]:
        """Each customer's newest run of the journey (the re-entry rule of a batch entry; its `cause` tells a
        batch resumed after a crash which customers it let in already)."""
        ...

    def queued(self, until: datetime, limit: int, *, channels: str = "all") -> builtins.list[OutboxRow]:
        """Queued outbox rows whose `not_before` is at or before `until`, oldest first; `channels`: "all",
        "touches" (every channel but `@update`) or "updates" (only `@update`)."""
        ...

    def settle(
        self, done: Collection[tuple[OutboxRow, bytes]], later: Collection[tuple[str, datetime]], at: datetime
    ) -> None:
        """In one transaction: `done` rows get their outcome and their instance (still `sending`) is due at `at`;
        `later` rows stay queued until the given time (deferred, throttled, retrying)."""
        ...

    def outcomes(self, keys: Collection[str]) -> dict[str, bytes]:
        """The settled outcomes of these outbox keys (missing: not settled yet)."""
        ...
