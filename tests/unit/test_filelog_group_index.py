"""FileLog group commit: one fsync for concurrent appends, errors to the whole group, and the sparse
index built per group equal to the one recovery builds by scanning."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marketloop.adapters.filelog import INDEX_EVERY, FileLog, _Partition, _Pending


def _record(offset: int) -> bytes:
    return b'{"n":%d,"pad":"%s"}' % (offset, b"x" * (offset % 37))


async def _append_concurrently(log: FileLog, sizes: list[int]) -> None:
    offsets = iter(range(sum(sizes)))
    appends = [[_record(next(offsets)) for _ in range(size)] for size in sizes]
    # Concurrent appends are written and synced together: groups of several appends.
    await asyncio.gather(*(log.append(0, records) for records in appends))


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=700), min_size=1, max_size=12))
def test_group_index_equals_recovered_index_and_seeks_land_on_the_record(
    tmp_path_factory: pytest.TempPathFactory, sizes: list[int]
) -> None:
    directory = tmp_path_factory.mktemp("log")
    log = FileLog(directory)
    asyncio.run(_append_concurrently(log, sizes))
    built = list(log._parts[0].index)
    total = sum(sizes)
    for after in sorted({-1, 0, total // 2, total - 2, *range(INDEX_EVERY - 2, total, INDEX_EVERY)}):
        if -1 <= after < total - 1:
            (record,) = log.read(0, after=after, max_records=1)
            assert record.offset == after + 1
            assert record.value == _record(after + 1)
    log.close_sync()
    reopened = FileLog(directory)
    assert reopened._parts[0].index == built
    reopened.close_sync()


def test_concurrent_appends_share_one_fsync_and_all_learn_their_offsets(tmp_path: Path) -> None:
    log = FileLog(tmp_path / "log")
    writes: list[int] = []
    write = log._write

    def counting(part: _Partition, batch: list[_Pending]) -> int:
        writes.append(len(batch))
        return write(part, batch)

    log._write = counting  # type: ignore[method-assign]

    async def run() -> list[int]:
        return await asyncio.gather(*(log.append(0, [_record(n)]) for n in range(200)))

    offsets = asyncio.run(run())
    log.close_sync()
    assert offsets == list(range(200))
    assert sum(writes) == 200
    assert len(writes) < 200  # grouped: appends that arrive during a write and fsync go together


def test_a_failed_write_fails_its_whole_group_and_the_log_carries_on(tmp_path: Path) -> None:
    log = FileLog(tmp_path / "log")
    write = log._write
    failures = [OSError(28, "No space left on device")]

    def failing_once(part: _Partition, batch: list[_Pending]) -> int:
        if failures:
            raise failures.pop()
        return write(part, batch)

    log._write = failing_once  # type: ignore[method-assign]

    async def run() -> tuple[list[int | BaseException], int]:
        first = await asyncio.gather(*(log.append(0, [b"x"]) for _ in range(5)), return_exceptions=True)
        return first, await log.append(0, [b"y"])

    first, after = asyncio.run(run())
    log.close_sync()
    failed = [r for r in first if isinstance(r, OSError)]
    kept = sorted(r for r in first if isinstance(r, int))
    assert failed  # every caller of the failed group got the error...
    assert len(failed) + len(kept) == 5
    assert kept == list(range(len(kept)))  # ...and nothing of its records was kept
    assert after == len(kept)


def test_a_cancelled_caller_does_not_strand_the_others(tmp_path: Path) -> None:
    log = FileLog(tmp_path / "log")

    async def run() -> list[int]:
        waiting = [asyncio.ensure_future(log.append(0, [_record(n)])) for n in range(10)]
        await asyncio.sleep(0)
        waiting[3].cancel()
        done = await asyncio.gather(*waiting, return_exceptions=True)
        return [r for r in done if isinstance(r, int)]

    offsets = asyncio.run(run())
    log.close_sync()
    assert len(offsets) == 9
