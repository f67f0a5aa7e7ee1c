"""The analytics warehouse port: where events are loaded and counted."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, kw_only=True)
class LoadResult:
    """What one load did: rows inserted, duplicates dropped, events quarantined, violations stored."""

    inserted: int
    duplicates: int
    quarantined: int
    violations: int


class Warehouse(Protocol):
    """Columnar store of loaded events (DuckDB embedded, ClickHouse scale-out)."""

    def load(self, consumer: str, partition: int, last_offset: int, records: Sequence[bytes]) -> LoadResult:
        """Load JSON-encoded `Event` records and commit `last_offset` for (consumer, partition).

        Atomic: either the rows and the new offset are both committed or neither
        is, so a consumer that restarts from `committed_offset` loads every
        record exactly once. Rows whose `message_id` was already loaded within
        the dedupe window, or appears earlier in the same call, are dropped and
        counted as duplicates. Quarantined events go to the quarantine, not to
        `events`; every tracking-plan violation is stored.
        """
        ...

    def committed_offset(self, consumer: str, partition: int) -> int:
        """The last offset loaded for (consumer, partition), or -1 when none was."""
        ...

    def count_events(self, event: str | None = None) -> int:
        """How many events are loaded, optionally only those with this event name."""
        ...

    def close(self) -> None:
        """Flush and release the store."""
        ...
