"""FileLog beyond the port contract: recovery, corruption, segments, the lock and the sparse index."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from marketloop.adapters.filelog import FRAME, INDEX_EVERY, FileLog, LogCorruptError
from marketloop.ports.eventlog import START, LogLockedError, Record


def _append(log: FileLog, *batches: Sequence[bytes], partition: int = 0) -> list[int]:
    async def run() -> list[int]:
        return [await log.append(partition, batch) for batch in batches]

    return asyncio.run(run())


def _value(offset: int) -> bytes:
    return f"record-{offset:05d}".encode()


def _values(start: int, stop: int) -> list[bytes]:
    return [_value(n) for n in range(start, stop)]


def _segments(directory: Path, partition: int = 0) -> list[Path]:
    return sorted((directory / f"p{partition}").glob("*.seg"))


def _frame(value: bytes) -> bytes:
    return FRAME.pack(len(value), zlib.crc32(value)) + value


def _read_all(log: FileLog) -> list[Record]:
    return list(log.read(0, START, 1_000_000))


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    return tmp_path / "log"


@pytest.fixture
def opened(directory: Path) -> Iterator[list[FileLog]]:
    """FileLogs a test opens, closed at the end even when the test fails."""
    logs: list[FileLog] = []
    yield logs
    for log in logs:
        log.close_sync()


def _open(opened: list[FileLog], directory: Path, **options: int) -> FileLog:
    log = FileLog(directory, **options)
    opened.append(log)
    return log


def _reopen(opened: list[FileLog], log: FileLog, directory: Path, **options: int) -> FileLog:
    log.close_sync()
    return _open(opened, directory, **options)


# -- torn tails ----------------------------------------------------------------

TORN_TAILS = {
    "garbage": b"\xde\xad\xbe\xef" * 7,
    "zero-filled": b"\x00" * 4096,
    "partial header": b"\x05\x00\x00",
    "header only": FRAME.pack(100, 12345),
    "truncated frame": _frame(b"y" * 100)[:60],
    "bad crc": FRAME.pack(5, zlib.crc32(b"hello") ^ 1) + b"hello",
    "good frame then garbage": _frame(b"unacknowledged")[:-1] + b"\xff" * 9,
}


@pytest.mark.parametrize("tail", TORN_TAILS.values(), ids=TORN_TAILS.keys())
def test_torn_tail_is_truncated_and_appends_continue(opened: list[FileLog], directory: Path, tail: bytes) -> None:
    log = _open(opened, directory)
    assert _append(log, _values(0, 2), _values(2, 3)) == [1, 2]
    log.close_sync()
    (segment,) = _segments(directory)
    good_size = segment.stat().st_size
    with segment.open("ab") as file:
        file.write(tail)

    log = _open(opened, directory)
    assert segment.stat().st_size == good_size, "the torn tail was not truncated"
    assert log.end_offset(0) == 2
    assert [r.value for r in _read_all(log)] == _values(0, 3)
    assert _append(log, _values(3, 5)) == [4], "offsets must continue right after the last good record"
    log = _reopen(opened, log, directory)
    assert _read_all(log) == [Record(n, _value(n)) for n in range(5)]


@pytest.mark.parametrize("tail", [b"", b"\x00" * 100], ids=["empty", "zero-filled"])
def test_crash_right_after_roll_over(opened: list[FileLog], directory: Path, tail: bytes) -> None:
    log = _open(opened, directory, segment_bytes=64)
    _append(log, *[[_value(n)] for n in range(6)])
    log.close_sync()
    # The crash came after the next segment file was created, before its first frame was durable.
    (directory / "p0" / f"{6:020d}.seg").write_bytes(tail)
    log = _open(opened, directory, segment_bytes=64)
    assert [r.value for r in _read_all(log)] == _values(0, 6)
    assert _append(log, [_value(6)], [_value(7)]) == [6, 7]
    log = _reopen(opened, log, directory, segment_bytes=64)
    assert [r.value for r in _read_all(log)] == _values(0, 8)


# -- corruption ----------------------------------------------------------------


def _three_segments(opened: list[FileLog], directory: Path) -> list[Path]:
    log = _open(opened, directory, segment_bytes=64)
    _append(log, *[[_value(n)] for n in range(9)])  # 20-byte frames: 3 per 64-byte segment
    log.close_sync()
    segments = _segments(directory)
    assert [int(path.stem) for path in segments] == [0, 3, 6]
    return segments


def _flip_byte(path: Path, position: int) -> None:
    data = bytearray(path.read_bytes())
    data[position] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("position", [FRAME.size + 3, 0], ids=["payload", "length"])
def test_corrupt_frame_in_a_closed_segment_raises(opened: list[FileLog], directory: Path, position: int) -> None:
    first = _three_segments(opened, directory)[0]
    _flip_byte(first, position)
    with pytest.raises(LogCorruptError, match=first.name):
        _open(opened, directory, segment_bytes=64)
    # A failed open must release the directory lock: the same error again, not LogLockedError.
    with pytest.raises(LogCorruptError):
        _open(opened, directory, segment_bytes=64)
    assert first.stat().st_size > 0, "a closed segment must never be truncated"


def test_missing_segment_raises(opened: list[FileLog], directory: Path) -> None:
    segments = _three_segments(opened, directory)
    segments[1].unlink()
    with pytest.raises(LogCorruptError, match="expected"):
        _open(opened, directory, segment_bytes=64)


def test_corruption_found_while_reading_raises(opened: list[FileLog], directory: Path) -> None:
    log = _open(opened, directory)
    _append(log, _values(0, 10))
    (segment,) = _segments(directory)
    _flip_byte(segment, 5 * (FRAME.size + 12) + FRAME.size + 1)  # inside record 5
    assert [r.offset for r in log.read(0, START, 5)] == [0, 1, 2, 3, 4]
    with pytest.raises(LogCorruptError, match="offset 5"):
        list(log.read(0, START, 10))


# -- segments ------------------------------------------------------------------


def test_segment_roll_over_keeps_offsets_and_reads_across_segments(opened: list[FileLog], directory: Path) -> None:
    log = _open(opened, directory, segment_bytes=200)
    batches = [_values(n, n + n % 4 + 1) for n in range(0, 120, 5)]
    lasts = _append(log, *batches)
    values = [value for batch in batches for value in batch]
    assert lasts[-1] == len(values) - 1
    segments = _segments(directory)
    assert len(segments) > 5
    bases = [int(path.stem) for path in segments]
    assert bases[0] == 0
    assert bases == sorted(bases)
    stored = _read_all(log)
    assert [r.offset for r in stored] == list(range(len(values)))
    assert [r.value for r in stored] == values
    for base in bases[1:]:
        # The first record of each segment, from just before it and from its own offset.
        assert next(log.read(0, base - 1, 1)) == Record(base, values[base])
        assert [r.offset for r in log.read(0, base - 2, 3)] == [base - 1, base, base + 1]

    log = _reopen(opened, log, directory, segment_bytes=200)
    assert [r.value for r in _read_all(log)] == values
    assert _append(log, [b"after"]) == [len(values)]
    assert _segments(directory)[: len(segments)] == segments


def test_one_append_larger_than_a_segment_stays_whole(opened: list[FileLog], directory: Path) -> None:
    log = _open(opened, directory, segment_bytes=64)
    big = [b"z" * 50] * 4
    assert _append(log, [b"a"], big, [b"b"]) == [0, 4, 5]
    assert [int(path.stem) for path in _segments(directory)] == [0, 1, 5]
    assert [r.value for r in _read_all(log)] == [b"a", *big, b"b"]


# -- the lock ------------------------------------------------------------------


def test_second_log_on_the_same_directory_is_refused(opened: list[FileLog], directory: Path) -> None:
    first = _open(opened, directory)
    with pytest.raises(LogLockedError, match="in use"):
        _open(opened, directory)
    _append(first, [b"a"])
    first.close_sync()
    second = _open(opened, directory)
    assert [r.value for r in _read_all(second)] == [b"a"]


# -- the sparse index ----------------------------------------------------------

AROUND_MARKS = sorted({0, 1} | {m + d for m in (INDEX_EVERY, 2 * INDEX_EVERY) for d in (-2, -1, 0, 1, 2)} | {3199})


def _check_seeks(log: FileLog) -> None:
    for offset in AROUND_MARKS:
        assert next(log.read(0, offset - 1, 1)) == Record(offset, _value(offset)), f"seek to {offset}"
        got = [r.offset for r in log.read(0, offset - 1, 3)]
        assert got == [n for n in (offset, offset + 1, offset + 2) if n < 3200], f"read after {offset - 1}"


@pytest.mark.parametrize("segment_bytes", [256 << 20, 4096], ids=["one segment", "many segments"])
def test_sparse_index_seeks_around_multiples_of_index_every(
    opened: list[FileLog], directory: Path, segment_bytes: int
) -> None:
    log = _open(opened, directory, segment_bytes=segment_bytes)
    # Appends of 37 records, so index marks fall inside appends, not on their edges.
    _append(log, *[_values(n, min(n + 37, 3200)) for n in range(0, 3200, 37)])
    built = list(log._parts[0].index)
    assert [entry[0] for entry in built] == [0, INDEX_EVERY, 2 * INDEX_EVERY, 3 * INDEX_EVERY]
    _check_seeks(log)

    log = _reopen(opened, log, directory, segment_bytes=segment_bytes)
    assert log._parts[0].index == built, "recovery must rebuild the same index the appends built"
    _check_seeks(log)


def test_reads_seek_past_earlier_records(opened: list[FileLog], directory: Path) -> None:
    log = _open(opened, directory)
    _append(log, _values(0, 2 * INDEX_EVERY + 10))
    (segment,) = _segments(directory)
    _flip_byte(segment, FRAME.size + 1)  # record 0 is now unreadable
    # Reading from offset 2048 must start at the index entry, never scanning record 0.
    assert next(log.read(0, 2 * INDEX_EVERY - 1, 1)) == Record(2 * INDEX_EVERY, _value(2 * INDEX_EVERY))
    with pytest.raises(LogCorruptError):
        next(log.read(0, START, 1))


def test_append_after_close_raises_instead_of_hanging(tmp_path: Path) -> None:
    async def scenario() -> None:
        log = FileLog(tmp_path / "closed")
        await log.close()
        with pytest.raises(RuntimeError, match="closed"):
            await log.append(0, [b"late"])

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("after", "count"), [(START, 5000), (1022, 3), (1023, 1), (2047, 2000), (2500, 10), (4990, 100)]
)
def test_bulk_reads_cross_segments_and_index_marks(
    opened: list[FileLog], directory: Path, after: int, count: int
) -> None:
    log = _open(opened, directory, segment_bytes=20_000)  # ~1,000 records a segment, index marks every 1,024
    _append(log, *[_values(n, n + 250) for n in range(0, 5000, 250)])
    assert len(_segments(directory)) > 4
    assert log.read_values(0, after, count) == _values(after + 1, min(after + 1 + count, 5000))
    log = _reopen(opened, log, directory, segment_bytes=20_000)
    assert log.read_values(0, after, count) == _values(after + 1, min(after + 1 + count, 5000))
