"""An in-memory `EventLog` for tests: the same contract as FileLog, without files.

It passes `marketloop.testing.contracts.eventlog` except the restart tests: a
process crash takes its records with it (`RESTARTABLE = False`).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Sequence

from marketloop.ports.eventlog import START, Record


class MemoryEventLog:
    """The `EventLog` port on Python lists; safe to read from another thread."""

    RESTARTABLE = False

    def __init__(self, *, partitions: int = 1) -> None:
        if partitions < 1:
            raise ValueError("a log needs at least one partition")
        self._records: list[list[bytes]] = [[] for _ in range(partitions)]
        self._lock = threading.Lock()
        self._closed = False

    @property
    def partitions(self) -> int:
        return len(self._records)

    def _check(self, partition: int) -> list[bytes]:
        if not 0 <= partition < len(self._records):
            raise ValueError(f"unknown partition {partition}; the log has {len(self._records)}")
        return self._records[partition]

    async def append(self, partition: int, records: Sequence[bytes]) -> int:
        if not records:
            raise ValueError("append needs at least one record")
        if not all(records):
            raise ValueError("a record cannot be empty")
        if self._closed:
            raise RuntimeError("the log is closed")
        stored = self._check(partition)
        # Yield once, as a real log does while it waits for the disk or the
        # broker, so concurrent appends in tests interleave.
        await asyncio.sleep(0)
        with self._lock:
            stored.extend(bytes(r) for r in records)
            return len(stored) - 1

    def read(self, partition: int, after: int, max_records: int) -> Iterator[Record]:
        start = max(after + 1, 0)
        for number, value in enumerate(self.read_values(partition, after, max_records)):
            yield Record(start + number, value)

    def read_values(self, partition: int, after: int, max_records: int) -> list[bytes]:
        stored = self._check(partition)
        start = max(after + 1, 0)
        with self._lock:
            return stored[start : start + max(max_records, 0)]

    def end_offset(self, partition: int) -> int:
        with self._lock:
            return START + len(self._check(partition))

    def values(self, partition: int = 0) -> list[bytes]:
        """Every record of `partition`, in order (for assertions)."""
        with self._lock:
            return list(self._check(partition))

    async def close(self) -> None:
        self._closed = True
