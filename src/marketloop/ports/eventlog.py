"""The event log port: where accepted events become durable before anyone acts on them."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import NamedTuple, Protocol


class Record(NamedTuple):
    """One record read back from the log. `offset` is its position in its partition."""

    offset: int
    value: bytes


class LogLockedError(RuntimeError):
    """Another process owns the log (embedded logs have one writer process)."""


# Offsets are record positions within a partition, from 0. A consumer that has
# read nothing asks for the records after START.
START = -1


class EventLog(Protocol):
    """Append-only, partitioned, durable log of encoded events.

    Offsets within a partition start at 0 and grow by one per record, with no
    gaps. Only durable records are ever visible to readers, so a consumer never
    acts on a record that a crash could still take back.
    """

    @property
    def partitions(self) -> int:
        """How many partitions the log has; partition numbers are 0 .. partitions-1."""
        ...

    async def append(self, partition: int, records: Sequence[bytes]) -> int:
        """Durably append `records` in order; returns the offset of the last one.

        When this returns, the records survive a process crash or power loss
        (fsync or broker acknowledgement). Concurrent calls are committed
        together (group commit). Raises `ValueError` for an empty sequence, an
        empty record or an unknown partition, and `RuntimeError` once closed.
        """
        ...

    def read(self, partition: int, after: int, max_records: int) -> Iterator[Record]:
        """Durable records with offset > `after`, in append order, at most `max_records`.

        Yields nothing when the reader is caught up. Safe to call from a thread
        other than the one that appends.
        """
        ...

    def read_values(self, partition: int, after: int, max_records: int) -> list[bytes]:
        """The values of `read(partition, after, max_records)`: record `after + 1 + i` at index i.

        The bulk form, for consumers that take whole batches (the loader).
        """
        ...

    def end_offset(self, partition: int) -> int:
        """Offset of the last durable record of the partition, or START when empty."""
        ...

    async def close(self) -> None:
        """Wait for pending appends to become durable, then release files or connections."""
        ...
