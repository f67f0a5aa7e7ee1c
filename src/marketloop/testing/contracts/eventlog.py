"""The contract of the `EventLog` port, as tests that every adapter must pass.

A test module runs the suite against its adapters by importing the tests and
providing a `log_factory` fixture (see `tests/contract/test_eventlog.py`):

    from marketloop.testing.contracts.eventlog import *  # noqa: F403

    @pytest.fixture(params=["file", "memory"])
    def log_factory(request: pytest.FixtureRequest, tmp_path: Path) -> LogFactory:
        ...

`LogFactory.open` opens a log on the fixture's storage, which is empty the first
time; opening it again after `close` is a restart. An adapter whose records do
not outlive its process (the in-memory fake) sets `restartable = False`, and
the restart tests skip it. A new adapter is done when this suite passes.

The tests are plain functions; each runs its own event loop and fails with a
clear message, rather than hanging, when an append never completes.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, ParamSpec, Protocol

import pytest

from marketloop.ports.eventlog import START, EventLog, Record

__all__ = [
    "LogFactory",
    "test_acknowledged_records_survive_restart",
    "test_append_returns_offset_of_last_record",
    "test_appends_pending_at_close_are_durable",
    "test_cancelled_append_does_not_stall_others",
    "test_concurrent_appends_get_distinct_gapless_offsets",
    "test_concurrent_appends_survive_restart",
    "test_empty_append_raises_value_error",
    "test_empty_record_raises_value_error",
    "test_end_offset_follows_appends",
    "test_offsets_start_at_zero_and_are_gapless",
    "test_partitions_are_independent",
    "test_read_pages_after_an_offset",
    "test_reader_thread_sees_a_gapless_prefix",
    "test_records_are_binary_safe",
    "test_unknown_partition_raises_value_error",
]

TEST_TIMEOUT = 30.0  # seconds; an append that never completes fails the test instead of hanging it

P = ParamSpec("P")


class LogFactory(Protocol):
    """How the suite gets logs of the adapter under test."""

    @property
    def restartable(self) -> bool:
        """Whether records outlive `close` (a restart); False skips the restart tests."""
        ...

    async def open(self, *, partitions: int = 1) -> EventLog:
        """A log on this factory's storage: empty at first, what was appended before after a restart."""
        ...


def _async_test(test: Callable[P, Coroutine[Any, Any, None]]) -> Callable[P, None]:
    """Run an async test in a fresh event loop, bounded by `TEST_TIMEOUT`."""

    @functools.wraps(test)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        async def bounded() -> None:
            try:
                await asyncio.wait_for(test(*args, **kwargs), TEST_TIMEOUT)
            except TimeoutError:
                pytest.fail(f"{test.__name__} did not finish within {TEST_TIMEOUT} s: an append or close hangs")

        asyncio.run(bounded())

    return run


class _Opened:
    """The log under test; `restart` closes it and opens it again on the same storage."""

    def __init__(self, factory: LogFactory, log: EventLog, partitions: int) -> None:
        self.factory = factory
        self.log = log
        self.partitions = partitions

    async def restart(self) -> EventLog:
        if not self.factory.restartable:
            pytest.skip("this adapter's records do not outlive a restart")
        await self.log.close()
        self.log = await self.factory.open(partitions=self.partitions)
        return self.log


@asynccontextmanager
async def _opened(factory: LogFactory, *, partitions: int = 1) -> AsyncIterator[_Opened]:
    opened = _Opened(factory, await factory.open(partitions=partitions), partitions)
    try:
        yield opened
    finally:
        await opened.log.close()


def _all(log: EventLog, partition: int = 0) -> list[Record]:
    return list(log.read(partition, START, 1_000_000))


def _values(log: EventLog, partition: int = 0) -> list[bytes]:
    return [record.value for record in _all(log, partition)]


# -- offsets -------------------------------------------------------------------


@_async_test
async def test_offsets_start_at_zero_and_are_gapless(log_factory: LogFactory) -> None:
    async with _opened(log_factory) as opened:
        log = opened.log
        assert log.end_offset(0) == START
        assert list(log.read(0, START, 10)) == []
        await log.append(0, [b"a"])
        await log.append(0, [b"b", b"c"])
        await log.append(0, [b"d"])
        assert _all(log) == [Record(0, b"a"), Record(1, b"b"), Record(2, b"c"), Record(3, b"d")]


@_async_test
async def test_append_returns_offset_of_last_record(log_factory: LogFactory) -> None:
    async with _opened(log_factory) as opened:
        expected = START
        for size in (1, 3, 1, 7, 2):
            expected += size
            records = [f"{expected}-{n}".encode() for n in range(size)]
            assert await opened.log.append(0, records) == expected
            assert next(opened.log.read(0, expected - 1, 1)) == Record(expected, records[-1])


@_async_test
async def test_end_offset_follows_appends(log_factory: LogFactory) -> None:
    async with _opened(log_factory) as opened:
        log = opened.log
        assert log.end_offset(0) == START
        last = await log.append(0, [b"x"] * 5)
        assert log.end_offset(0) == last == 4
        last = await log.append(0, [b"y"])
        assert log.end_offset(0) == last == 5


@_async_test
async def test_records_are_binary_safe(log_factory: LogFactory) -> None:
    records = [b"\x00", b"line\nbreak", bytes(range(256)), "客群".encode(), b"x" * 100_000]
    async with _opened(log_factory) as opened:
        await opened.log.append(0, records)
        assert _values(opened.log) == records


# -- bad calls -----------------------------------------------------------------


@_async_test
async def test_empty_append_raises_value_error(log_factory: LogFactory) -> None:
    async with _opened(log_factory) as opened:
        with pytest.raises(ValueError, match="at least one record"):
            await opened.log.append(0, [])
        assert await opened.log.append(0, [b"a"]) == 0, "a refused append must not use up an offset"


@_async_test
async def test_empty_record_raises_value_error(log_factory: LogFactory) -> None:
    # An empty record could not be told apart from a zero-filled torn tail after a crash.
    async with _opened(log_factory) as opened:
        with pytest.raises(ValueError, match="empty"):
            await opened.log.append(0, [b"a", b""])
        assert opened.log.end_offset(0) == START, "a refused append must write nothing"


@_async_test
async def test_unknown_partition_raises_value_error(log_factory: LogFactory) -> None:
    async with _opened(log_factory, partitions=2) as opened:
        for partition in (2, -1):
            with pytest.raises(ValueError, match="partition"):
                await opened.log.append(partition, [b"a"])
        assert opened.log.end_offset(0) == opened.log.end_offset(1) == START


# -- concurrency ---------------------------------------------------------------


async def _append_concurrently(log: EventLog, appends: int) -> dict[int, list[bytes]]:
    """`appends` concurrent appends of 1..5 records each; returns {returned offset: records}."""
    batches = [[f"{n}.{i}".encode() for i in range(n % 5 + 1)] for n in range(appends)]
    offsets = await asyncio.gather(*(log.append(0, batch) for batch in batches))
    return dict(zip(offsets, batches, strict=True))


def _check_concurrent(log: EventLog, by_offset: dict[int, list[bytes]], appends: int) -> None:
    total = sum(len(batch) for batch in by_offset.values())
    assert len(by_offset) == appends, "two appends returned the same offset"
    stored = _all(log)
    assert [r.offset for r in stored] == list(range(total)), "offsets are not gapless from 0"
    position = {record.value: record.offset for record in stored}
    assert len(position) == total, "a record was stored twice"
    for last, batch in by_offset.items():
        offsets = [position[value] for value in batch]
        assert offsets == sorted(offsets), f"records of one append are out of order: {batch}"
        assert offsets[-1] == last, "append did not return the offset of its last record"


@_async_test
async def test_concurrent_appends_get_distinct_gapless_offsets(log_factory: LogFactory) -> None:
    async with _opened(log_factory) as opened:
        by_offset = await _append_concurrently(opened.log, 300)
        _check_concurrent(opened.log, by_offset, 300)
        assert opened.log.end_offset(0) == max(by_offset)


@_async_test
async def test_cancelled_append_does_not_stall_others(log_factory: LogFactory) -> None:
    async with _opened(log_factory) as opened:
        log = opened.log
        tasks = [asyncio.create_task(log.append(0, [f"c{n}".encode()])) for n in range(50)]
        await asyncio.sleep(0)  # every append has started and is waiting for the commit
        tasks[25].cancel()
        try:
            results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 10)
        except TimeoutError:
            pytest.fail("the other appends never completed after one was cancelled")
        offsets = [r for n, r in enumerate(results) if n != 25]
        assert all(isinstance(o, int) for o in offsets), offsets
        assert len(set(offsets)) == 49
        # The cancelled append may or may not have been committed; nothing else may be missing.
        values = set(_values(log))
        assert {f"c{n}".encode() for n in range(50) if n != 25} <= values
        assert len(values) in (49, 50)
        assert await log.append(0, [b"after"]) == log.end_offset(0) == len(values)


@_async_test
async def test_reader_thread_sees_a_gapless_prefix(log_factory: LogFactory) -> None:
    total = 2000
    seen: list[Record] = []
    done = threading.Event()

    async with _opened(log_factory) as opened:
        log = opened.log

        def follow() -> None:
            after = START
            while len(seen) < total and not done.is_set():
                for record in log.read(0, after, 97):
                    seen.append(record)
                    after = record.offset

        reader = threading.Thread(target=follow, name="contract-reader", daemon=True)
        reader.start()
        try:
            for start in range(0, total, 40):
                await log.append(0, [f"r{n}".encode() for n in range(start, start + 40)])
            await asyncio.to_thread(reader.join, 10)
        finally:
            done.set()
            reader.join(10)
    assert [r.offset for r in seen] == list(range(total)), "the reader skipped or repeated offsets"
    assert [r.value for r in seen] == [f"r{n}".encode() for n in range(total)]


# -- paging and partitions -----------------------------------------------------


@_async_test
async def test_read_pages_after_an_offset(log_factory: LogFactory) -> None:
    async with _opened(log_factory) as opened:
        log = opened.log
        values = [f"v{n}".encode() for n in range(25)]
        await log.append(0, values[:10])
        await log.append(0, values[10:])
        pages, after = [], START
        while page := list(log.read(0, after, 7)):
            pages.append(page)
            after = page[-1].offset
        assert [len(page) for page in pages] == [7, 7, 7, 4]
        assert [r.value for page in pages for r in page] == values
        assert [r.offset for r in log.read(0, 9, 3)] == [10, 11, 12]
        assert list(log.read(0, 24, 10)) == [], "a caught-up reader gets nothing"
        assert list(log.read(0, 100, 10)) == []
        assert list(log.read(0, START, 0)) == []
        assert list(log.read(0, 3, 5)) == list(log.read(0, 3, 5)), "reads are repeatable"
        assert log.read_values(0, 3, 5) == values[4:9], "the bulk read gives the same values"
        assert log.read_values(0, 20, 100) == values[21:]
        assert log.read_values(0, 24, 10) == []


@_async_test
async def test_partitions_are_independent(log_factory: LogFactory) -> None:
    async with _opened(log_factory, partitions=3) as opened:
        log = opened.log
        assert log.partitions == 3
        assert await log.append(0, [b"a0", b"a1"]) == 1
        assert await log.append(2, [b"c0"]) == 0
        assert await log.append(0, [b"a2"]) == 2
        assert _values(log, 0) == [b"a0", b"a1", b"a2"]
        assert _values(log, 1) == []
        assert _values(log, 2) == [b"c0"]
        assert [log.end_offset(p) for p in range(3)] == [2, START, 0]


# -- durability ----------------------------------------------------------------


@_async_test
async def test_acknowledged_records_survive_restart(log_factory: LogFactory) -> None:
    async with _opened(log_factory, partitions=2) as opened:
        first = await opened.log.append(0, [b"a", b"b"])
        await opened.log.append(1, [b"z"])
        log = await opened.restart()
        assert first == 1
        assert _all(log, 0) == [Record(0, b"a"), Record(1, b"b")]
        assert _values(log, 1) == [b"z"]
        assert [log.end_offset(0), log.end_offset(1)] == [1, 0]
        assert await log.append(0, [b"c"]) == 2, "offsets continue after a restart"
        log = await opened.restart()
        assert _values(log, 0) == [b"a", b"b", b"c"]


@_async_test
async def test_concurrent_appends_survive_restart(log_factory: LogFactory) -> None:
    async with _opened(log_factory) as opened:
        by_offset = await _append_concurrently(opened.log, 200)
        log = await opened.restart()
        _check_concurrent(log, by_offset, 200)


@_async_test
async def test_appends_pending_at_close_are_durable(log_factory: LogFactory) -> None:
    if not log_factory.restartable:
        pytest.skip("this adapter's records do not outlive a restart")
    log = await log_factory.open()
    tasks = [asyncio.create_task(log.append(0, [f"p{n}".encode()])) for n in range(30)]
    await asyncio.sleep(0)  # the appends are in flight
    await log.close()
    offsets = await asyncio.wait_for(asyncio.gather(*tasks), 10)
    async with _opened(log_factory) as opened:
        assert sorted(offsets) == list(range(30))
        assert sorted(_values(opened.log)) == sorted(f"p{n}".encode() for n in range(30))
