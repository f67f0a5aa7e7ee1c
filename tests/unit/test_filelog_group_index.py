"""FileLog's sparse index, built per group commit, equals the one recovery builds by scanning."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marketloop.adapters.filelog import INDEX_EVERY, FileLog


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
