"""The loader: when it loads, how much, and that a restart neither loses nor repeats a record."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest

from marketloop.adapters.duckdb_warehouse import DuckDBWarehouse
from marketloop.adapters.filelog import FileLog
from marketloop.collect.loader import CONSUMER, Loader
from marketloop.core.events import Event
from marketloop.ports.eventlog import EventLog
from marketloop.ports.warehouse import LoadResult
from marketloop.testing.clock import FrozenClock
from marketloop.testing.eventlog import MemoryEventLog


def _record(clock: FrozenClock, message_id: str) -> bytes:
    now = clock.now()
    return msgspec.json.encode(
        Event(
            message_id=message_id,
            type="track",
            source_id="src-app",
            received_at=now,
            timestamp=now,
            event="fund_page_view",
            user_id="C0001",
        )
    )


def _append(log: EventLog, clock: FrozenClock, message_ids: Sequence[str], partition: int = 0) -> int:
    return asyncio.run(log.append(partition, [_record(clock, m) for m in message_ids]))


def _ids(prefix: str, count: int) -> list[str]:
    return [f"{prefix}{n}" for n in range(count)]


def _wait_until(condition: Any, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting until {what}")
        time.sleep(0.01)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def warehouse(tmp_path: Path) -> Iterator[DuckDBWarehouse]:
    warehouse = DuckDBWarehouse(tmp_path / "warehouse" / "events.duckdb")
    yield warehouse
    warehouse.close()


@pytest.fixture
def log() -> MemoryEventLog:
    return MemoryEventLog(partitions=2)


def test_loads_once_min_batch_is_reached_or_max_wait_has_passed(
    log: MemoryEventLog, warehouse: DuckDBWarehouse, clock: FrozenClock
) -> None:
    loader = Loader(log, warehouse, clock, min_batch=10, max_wait=1.0)
    _append(log, clock, _ids("a", 3))
    assert loader.load_partition(0) is None, "3 records, no time passed: not due"
    clock.advance(timedelta(seconds=0.9))
    assert loader.load_partition(0) is None
    clock.advance(timedelta(seconds=0.1))
    assert loader.load_partition(0) == LoadResult(inserted=3, duplicates=0, quarantined=0, violations=0)

    _append(log, clock, _ids("b", 9))
    assert loader.load_partition(0) is None, "9 < min_batch, and the wait starts again after a load"
    _append(log, clock, ["b9"])
    result = loader.load_partition(0)
    assert result is not None
    assert result.inserted == 10
    assert warehouse.count_events() == 13


def test_force_loads_whatever_is_there_and_nothing_when_caught_up(
    log: MemoryEventLog, warehouse: DuckDBWarehouse, clock: FrozenClock
) -> None:
    loader = Loader(log, warehouse, clock, min_batch=100)
    assert loader.load_partition(0, force=True) is None, "nothing in the log"
    _append(log, clock, ["a"])
    assert loader.load_partition(0, force=True) is not None
    assert loader.load_partition(0, force=True) is None, "caught up"
    assert warehouse.committed_offset(CONSUMER, 0) == 0


def test_one_load_takes_at_most_max_batch(log: MemoryEventLog, warehouse: DuckDBWarehouse, clock: FrozenClock) -> None:
    loader = Loader(log, warehouse, clock, min_batch=1, max_batch=7)
    _append(log, clock, _ids("a", 20))
    assert loader.lag(0) == 20
    loader.load_partition(0)
    assert warehouse.committed_offset(CONSUMER, 0) == 6
    assert loader.lag(0) == 13


def test_drain_loads_every_partition(log: MemoryEventLog, warehouse: DuckDBWarehouse, clock: FrozenClock) -> None:
    loader = Loader(log, warehouse, clock, min_batch=1000, max_batch=7)
    _append(log, clock, _ids("a", 30), partition=0)
    _append(log, clock, _ids("b", 12), partition=1)
    _append(log, clock, ["a1", "b1"], partition=1)  # client retries, logged twice
    assert loader.drain() == 44
    assert [loader.lag(p) for p in range(2)] == [0, 0]
    assert [warehouse.committed_offset(CONSUMER, p) for p in range(2)] == [29, 13]
    assert warehouse.count_events() == 42
    assert loader.drain() == 0


def test_restart_from_the_committed_offset_loads_nothing_twice(tmp_path: Path, clock: FrozenClock) -> None:
    log_dir, db = tmp_path / "log", tmp_path / "warehouse" / "events.duckdb"
    log, warehouse = FileLog(log_dir), DuckDBWarehouse(db)
    try:
        _append(log, clock, _ids("a", 25))
        Loader(log, warehouse, clock, min_batch=1, max_batch=10).load_partition(0)
        _append(log, clock, _ids("b", 5))
    finally:
        log.close_sync()
        warehouse.close()

    log, warehouse = FileLog(log_dir), DuckDBWarehouse(db)
    try:
        assert warehouse.committed_offset(CONSUMER, 0) == 9
        loader = Loader(log, warehouse, clock, min_batch=1, max_batch=10)
        assert loader.drain() == 20, "only the records after the committed offset are read again"
        assert warehouse.count_events() == 30
        rows = warehouse.cursor().execute("SELECT count(DISTINCT message_id), count(*) FROM events").fetchall()
        assert rows == [(30, 30)]
    finally:
        log.close_sync()
        warehouse.close()


def test_a_failed_load_is_retried_from_the_same_offset(
    log: MemoryEventLog, warehouse: DuckDBWarehouse, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    loader = Loader(log, warehouse, clock, min_batch=1)
    _append(log, clock, _ids("a", 5))
    real_load = warehouse.load
    failures = [OSError("the disk went away")]

    def flaky_load(*args: Any) -> LoadResult:
        if failures:
            raise failures.pop()
        return real_load(*args)

    monkeypatch.setattr(warehouse, "load", flaky_load)
    with pytest.raises(OSError, match="went away"):
        loader.load_partition(0)
    assert loader.lag(0) == 5
    assert loader.drain() == 5
    assert warehouse.count_events() == 5


def test_background_loader_loads_and_stop_drains_the_rest(
    log: MemoryEventLog, warehouse: DuckDBWarehouse, clock: FrozenClock
) -> None:
    # The frozen clock never lets max_wait pass: the thread loads only full batches.
    loader = Loader(log, warehouse, clock, min_batch=10, max_wait=1.0)
    loader.start()
    try:
        _append(log, clock, _ids("a", 10))
        _wait_until(lambda: warehouse.count_events() == 10, "the thread loads a full batch")
        _append(log, clock, _ids("b", 3))  # a partial batch: the thread leaves it (time is frozen)
    finally:
        loader.stop()
    assert warehouse.count_events() == 13, "stop() drains what the thread left"


def test_background_loader_retries_after_a_failure(
    log: MemoryEventLog,
    warehouse: DuckDBWarehouse,
    clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    real_load = warehouse.load
    failures = [OSError("the disk went away")]

    def flaky_load(*args: Any) -> LoadResult:
        if failures:
            raise failures.pop()
        return real_load(*args)

    monkeypatch.setattr(warehouse, "load", flaky_load)
    loader = Loader(log, warehouse, clock, min_batch=1)
    _append(log, clock, _ids("a", 4))
    loader.start()
    try:
        _wait_until(lambda: warehouse.count_events() == 4, "the thread retries the failed batch")
    finally:
        loader.stop()
    assert "retrying" in caplog.text
    assert warehouse.committed_offset(CONSUMER, 0) == 3


def test_drain_beside_the_running_thread_loads_everything_once(
    log: MemoryEventLog, warehouse: DuckDBWarehouse, clock: FrozenClock
) -> None:
    # A CLI command or a test drains while the background thread loads: they take turns.
    loader = Loader(log, warehouse, clock, min_batch=1, max_wait=1.0)
    loader.start()
    try:
        for batch in range(20):
            _append(log, clock, _ids(f"m{batch}-", 25))
            loader.drain()
    finally:
        loader.stop()
    assert warehouse.count_events() == 500
    assert warehouse.committed_offset("loader", 0) == 499
