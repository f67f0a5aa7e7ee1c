"""The analytics warehouse port: where events are loaded and counted, and tracking-plan findings kept."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from marketloop.core.events import Event


@dataclass(frozen=True, kw_only=True)
class LoadResult:
    """What one load did: rows inserted, duplicates dropped, events quarantined, violations stored."""

    inserted: int
    duplicates: int
    quarantined: int
    violations: int


@dataclass(frozen=True, kw_only=True)
class ViolationFilter:
    """Which stored violations to read: all of them when every field is None."""

    source: str | None = None  # source id
    event: str | None = None  # event name
    since: datetime | None = None  # received at or after


@dataclass(frozen=True, kw_only=True)
class StoredViolation:
    """One tracking-plan violation of one event, as the loader stored it."""

    message_id: str
    source: str
    type: str
    event: str | None
    received_at: datetime
    violation: str
    quarantined: bool


@dataclass(frozen=True, kw_only=True)
class ViolationCount:
    """How often one violation was found for one event name, and when it was last seen."""

    type: str
    event: str | None
    violation: str
    count: int
    messages: int  # distinct message ids: a client retry is not a second occurrence
    last_seen: datetime


@dataclass(frozen=True, kw_only=True)
class QuarantinedEvent:
    """A blocked event kept out of `events`, with the violations that blocked it."""

    message_id: str
    source: str
    event: str | None
    received_at: datetime
    released_at: datetime | None
    violations: list[str]
    record: Event


@dataclass(frozen=True, kw_only=True)
class Attribution:
    """The OneID of each identity group of one load, in the order of `Staged.firsts` (None where none).

    `id_types` / `id_values` name the identifier each event was resolved by
    (its highest-priority one; protected values hashed), so that an unmerge
    can move exactly the events of the identifiers it moves.
    """

    one_ids: Sequence[str | None]
    id_types: Sequence[str | None]
    id_values: Sequence[str | None]


# Where an identifier can be in a JSON-encoded `Event`: a top-level field (`("user_id",)`) or a
# path into one of its objects (`("context", "device", "id")`).
KeyPath = tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class Staged:
    """A batch of records parsed into the warehouse's staging area, ready for `Warehouse.load`.

    `firsts` groups the records by identity: the records that agree on every
    key path given to `stage` form one group, named by the index (0-based, in
    record order) of its first record. Quarantined records are in no group.
    Attributing one record per group attributes the whole batch, so identity
    resolution does per-person work, not per-event work.
    """

    consumer: str
    partition: int
    count: int
    firsts: Sequence[int]


class Warehouse(Protocol):
    """Columnar store of loaded events (DuckDB embedded, ClickHouse scale-out)."""

    def stage(
        self, consumer: str, partition: int, records: Sequence[bytes], *, key_paths: Sequence[KeyPath] = ()
    ) -> Staged:
        """Parse JSON-encoded `Event` records for a load, grouped by the identifiers at `key_paths`.

        Nothing is visible to readers yet. One batch is staged at a time: a
        second `stage` replaces the first. Raises `ValueError` for a record
        that is not an `Event` and for an unknown key path.
        """
        ...

    def load(self, staged: Staged, last_offset: int, *, attribution: Attribution | None = None) -> LoadResult:
        """Load the staged records and commit `last_offset` for the staged (consumer, partition).

        `attribution`, when given, holds one entry per group of `staged.firsts`,
        in that order: every row of the group stores it (`one_id`, `id_type`,
        `id_value`); without it those are NULL.

        Atomic: either the rows and the new offset are both committed or neither
        is, so a consumer that restarts from `committed_offset` loads every
        record exactly once. Rows whose `message_id` was already loaded within
        the dedupe window, or appears earlier in the same batch, are dropped and
        counted as duplicates. Quarantined events go to the quarantine, not to
        `events`; every tracking-plan violation is stored. Raises `ValueError`
        when `staged` is not the batch staged last.
        """
        ...

    def committed_offset(self, consumer: str, partition: int) -> int:
        """The last offset loaded for (consumer, partition), or -1 when none was."""
        ...

    def count_events(self, event: str | None = None) -> int:
        """How many events are loaded, optionally only those with this event name."""
        ...

    def promote(self, prop: str, kind: str) -> str:
        """Give the event property `prop` a typed column on `events`; returns the column name.

        `kind` is a tracking-plan type: string, integer, number, boolean or
        datetime. Loaded and future rows get the value cast to that type (NULL
        where it does not cast). Idempotent; promoting the same property with
        another type retypes its column. Raises `ValueError` when the property
        cannot be a column or its column name is taken by another property.
        """
        ...

    def violations(self, where: ViolationFilter, *, limit: int) -> list[StoredViolation]:
        """Stored violations matching `where`, newest first (by `received_at`), at most `limit`."""
        ...

    def violation_summary(self, where: ViolationFilter) -> list[ViolationCount]:
        """Violations matching `where` grouped by (type, event, violation), most frequent first."""
        ...

    def quarantined(
        self,
        *,
        source: str | None = None,
        include_released: bool = False,
        after: tuple[datetime, str] | None = None,
        limit: int,
    ) -> list[QuarantinedEvent]:
        """Quarantined events, oldest first by (`received_at`, `message_id`), at most `limit`.

        Only unreleased ones unless `include_released`. `after` is the
        (`received_at`, `message_id`) of the last event of the previous page,
        for paging through a large quarantine.
        """
        ...

    def release(self, message_ids: Sequence[str], released_at: datetime) -> int:
        """Mark these quarantined events released (replayed); returns how many were unreleased.

        Idempotent: an event released before keeps its first `released_at`.
        Released events stay in the quarantine, for audit.
        """
        ...

    def close(self) -> None:
        """Flush and release the store."""
        ...
