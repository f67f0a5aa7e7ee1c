"""The loader: a consumer that moves events from the event log into the warehouse.

It loads in batches of at least `min_batch` records, or whatever is there once
`max_wait` seconds have passed, and commits its offset in the same warehouse
transaction as the rows, so a restart neither loses nor repeats a record.
"""

from __future__ import annotations

import logging
import threading

from marketloop.ports.clock import Clock
from marketloop.ports.eventlog import EventLog
from marketloop.ports.warehouse import LoadResult, Warehouse

log = logging.getLogger(__name__)

CONSUMER = "loader"


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
    ) -> None:
        self._log = events
        self._warehouse = warehouse
        self._clock = clock
        self._min_batch = min_batch
        self._max_batch = max_batch
        self._max_wait = max_wait
        self._last_load = [clock.monotonic()] * events.partitions
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def lag(self, partition: int) -> int:
        """Durable records not yet loaded."""
        return self._log.end_offset(partition) - self._warehouse.committed_offset(CONSUMER, partition)

    def load_partition(self, partition: int, *, force: bool = False) -> LoadResult | None:
        """Load one batch from `partition` if it is due (or `force`); None when nothing was loaded."""
        committed = self._warehouse.committed_offset(CONSUMER, partition)
        available = self._log.end_offset(partition) - committed
        waited = self._clock.monotonic() - self._last_load[partition]
        if available <= 0 or not (force or available >= self._min_batch or waited >= self._max_wait):
            return None
        records = list(self._log.read(partition, committed, self._max_batch))
        result = self._warehouse.load(CONSUMER, partition, records[-1].offset, [r.value for r in records])
        self._last_load[partition] = self._clock.monotonic()
        log.debug("loaded %s records from partition %s: %s", len(records), partition, result)
        return result

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
