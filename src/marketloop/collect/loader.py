"""The loader: a consumer that moves events from the event log into the warehouse.

It loads in batches of at least `min_batch` records, or whatever is there once
`max_wait` seconds have passed, and commits its offset in the same warehouse
transaction as the rows, so a restart neither loses nor repeats a record.

With a `resolver` (the OneID service), each batch is attributed first - every
event gets the OneID of its highest-priority identifier, and the identity
links the batch implies are persisted - then loaded with those OneIDs, while
the resolver holds its lock, so that no unmerge falls between the two. The
warehouse groups the staged batch by the identifiers each record carries, and
the resolver sees the first record of each group only: its Python work grows
with the people in a batch, not with their events.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Protocol

from marketloop.ports.clock import Clock
from marketloop.ports.eventlog import EventLog
from marketloop.ports.warehouse import Attribution, KeyPath, LoadResult, Warehouse

log = logging.getLogger(__name__)

CONSUMER = "loader"


class Resolver(Protocol):
    """Gives each event of a batch its OneID (implemented by `marketloop.identity.IdentityService`)."""

    @property
    def key_paths(self) -> Sequence[KeyPath]:
        """Every place in an event record an identifier is read from (see `Warehouse.stage`)."""
        ...

    def attribute(self, records: Sequence[bytes]) -> AbstractContextManager[Attribution]:
        """The attribution of JSON-encoded `Event` records, in order, valid while the context is open.

        Identity changes the records imply are persisted before the context
        is entered; links are idempotent, so attributing a batch again after a
        failed load changes nothing and gives the same OneIDs.
        """
        ...


class Loader:
    def __init__(
        self,
        events: EventLog,
        warehouse: Warehouse,
        clock: Clock,
        *,
        min_batch: int = 10_000,
        max_batch: int = 200_000,
        max_wait: float = 1.0,
        resolver: Resolver | None = None,
    ) -> None:
        self._log = events
        self._warehouse = warehouse
        self._resolver = resolver
        self._clock = clock
        self._min_batch = min_batch
        self._max_batch = max_batch
        self._max_wait = max_wait
        self._last_load = [clock.monotonic()] * events.partitions
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # One load at a time: the background thread and a caller's `drain` (CLI, tests, shutdown) share
        # the warehouse's staging area, and each reads the committed offset it continues from.
        self._loading = threading.Lock()

    def lag(self, partition: int) -> int:
        """Durable records not yet loaded."""
        return self._log.end_offset(partition) - self._warehouse.committed_offset(CONSUMER, partition)

    def load_partition(self, partition: int, *, force: bool = False) -> LoadResult | None:
        """Load one batch from `partition` if it is due (or `force`); None when nothing was loaded."""
        with self._loading:
            return self._load_due(partition, force=force)

    def _load_due(self, partition: int, *, force: bool) -> LoadResult | None:
        committed = self._warehouse.committed_offset(CONSUMER, partition)
        available = self._log.end_offset(partition) - committed
        waited = self._clock.monotonic() - self._last_load[partition]
        if available <= 0 or not (force or available >= self._min_batch or waited >= self._max_wait):
            return None
        values = self._log.read_values(partition, committed, self._max_batch)
        result = self._load(partition, committed + len(values), values)
        self._last_load[partition] = self._clock.monotonic()
        log.debug("loaded %s records from partition %s: %s", len(values), partition, result)
        return result

    def _load(self, partition: int, last_offset: int, values: list[bytes]) -> LoadResult:
        resolver = self._resolver
        if resolver is None:
            return self._warehouse.load(self._warehouse.stage(CONSUMER, partition, values), last_offset)
        # DuckDB groups the batch by identity (in C++, without the GIL); the resolver reads one
        # record per person, not every event.
        staged = self._warehouse.stage(CONSUMER, partition, values, key_paths=resolver.key_paths)
        with resolver.attribute([values[i] for i in staged.firsts]) as attribution:
            return self._warehouse.load(staged, last_offset, attribution=attribution)

    def drain(self) -> int:
        """Load everything durable now; returns how many records were loaded."""
        total = 0
        for partition in range(self._log.partitions):
            while self.lag(partition) > 0:
                before = self._warehouse.committed_offset(CONSUMER, partition)
                self.load_partition(partition, force=True)
                total += self._warehouse.committed_offset(CONSUMER, partition) - before
        return total

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="loader", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        backoff = 0.05
        while not self._stop.is_set():
            try:
                loaded = [self.load_partition(p) for p in range(self._log.partitions)]
            except Exception:
                # The records stay in the log and the offset did not move: retry the same batch.
                log.exception("loading into the warehouse failed; retrying in %.1f s", backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            backoff = 0.05
            if not any(result is not None for result in loaded):
                self._stop.wait(0.05)

    def stop(self) -> None:
        """Stop the background thread, then load what is left."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.drain()
