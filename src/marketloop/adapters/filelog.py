"""FileLog: the embedded event log. CRC-framed, append-only segment files with group-commit fsync.

Layout: `DIR/p{partition}/{base_offset:020d}.seg`. Each record is framed as
`<u32 length><u32 crc32>payload`. Appends that arrive while an fsync is in
flight are written and synced together (group commit), so throughput grows
with concurrency while every acknowledged record is on disk.

Recovery on open scans the segments: a torn or corrupt tail of the last
segment (a write that was never acknowledged) is truncated; corruption in an
older segment is an error, never silently skipped. One process owns a log
directory at a time (an exclusive `flock` on `DIR/LOCK`).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import fcntl
import os
import struct
import threading
import zlib
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from marketloop.ports.eventlog import START, LogLockedError, Record

FRAME = struct.Struct("<II")
INDEX_EVERY = 1024  # records between sparse index entries
READ_CHUNK = 4 << 20


class LogCorruptError(RuntimeError):
    """A segment other than the last one has a bad frame: the disk lost acknowledged data."""


@dataclass
class _Segment:
    base: int
    path: Path
    size: int = 0


@dataclass
class _Pending:
    frames: bytes
    count: int
    future: asyncio.Future[int]


@dataclass
class _Partition:
    directory: Path
    segments: list[_Segment] = field(default_factory=list)
    index: list[tuple[int, int, int]] = field(default_factory=list)  # (offset, segment no, byte pos)
    next_offset: int = 0
    durable: int = START
    fd: int = -1
    pending: list[_Pending] = field(default_factory=list)
    flushing: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)
    pending_lock: threading.Lock = field(default_factory=threading.Lock)  # pending and flushing


def _frames(records: Sequence[bytes]) -> bytes:
    # Headers and records interleaved, then one join: no per-record concatenation (the hot path).
    parts: list[bytes] = [b""] * (2 * len(records))
    parts[1::2] = records
    parts[0::2] = [FRAME.pack(len(r), zlib.crc32(r)) for r in records]
    return b"".join(parts)


def _wake(batch: list[_Pending], result: int | Exception) -> None:
    """From the sync thread: settle the group's futures on their event loop."""
    for loop in {pending.future.get_loop() for pending in batch}:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting any more
            loop.call_soon_threadsafe(_settle, batch, result)


def _settle(batch: list[_Pending], result: int | Exception) -> None:
    """On the event loop: each append learns the offset of its last record, or the error."""
    loop = asyncio.get_running_loop()
    offset = result - sum(p.count for p in batch) if isinstance(result, int) else 0
    for pending in batch:
        offset += pending.count
        # A caller cancelled while waiting (client gone, timeout) has a done future;
        # setting it would raise and strand every later caller.
        if pending.future.get_loop() is not loop or pending.future.done():
            continue
        if isinstance(result, int):
            pending.future.set_result(offset)
        else:
            pending.future.set_exception(result)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileLog:
    """The `EventLog` port on local files."""

    def __init__(self, directory: Path, *, partitions: int = 1, segment_bytes: int = 256 << 20) -> None:
        self._directory = directory
        self._segment_bytes = segment_bytes
        directory.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(directory / "LOCK", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise LogLockedError(f"{directory} is in use by another marketloop process") from None
        # one writer per partition: each partition's groups are written and fsynced in order, and the
        # partitions' fsyncs overlap (an append to every partition waits for one fsync, not one each)
        self._io = ThreadPoolExecutor(max_workers=max(1, partitions), thread_name_prefix="filelog-sync")
        self._parts: list[_Partition] = []
        try:
            for n in range(partitions):
                self._parts.append(self._open_partition(directory / f"p{n}"))
        except BaseException:
            # Recovery failed (e.g. LogCorruptError): release the lock and the files,
            # or the next open in this process would wrongly report LogLockedError.
            self.close_sync()
            raise

    @property
    def partitions(self) -> int:
        return len(self._parts)

    # -- recovery --------------------------------------------------------

    def _open_partition(self, directory: Path) -> _Partition:
        directory.mkdir(parents=True, exist_ok=True)
        part = _Partition(directory=directory)
        paths = sorted(directory.glob("*.seg"))
        for number, path in enumerate(paths):
            segment = _Segment(base=int(path.stem), path=path)
            part.segments.append(segment)
            self._scan(part, number, last=number == len(paths) - 1)
        if not part.segments:
            self._new_segment(part)
        else:
            part.fd = os.open(part.segments[-1].path, os.O_WRONLY | os.O_APPEND)
        part.durable = part.next_offset - 1
        return part

    def _scan(self, part: _Partition, number: int, *, last: bool) -> None:
        segment = part.segments[number]
        if segment.base != part.next_offset:
            raise LogCorruptError(f"{segment.path}: starts at {segment.base}, expected {part.next_offset}")
        data = segment.path.read_bytes()
        pos, offset = 0, segment.base
        while pos + FRAME.size <= len(data):
            length, crc = FRAME.unpack_from(data, pos)
            end = pos + FRAME.size + length
            # length 0 is never written (append refuses empty records): a zero-filled
            # tail, which a crash can leave, would otherwise pass as empty records.
            if length == 0 or end > len(data) or zlib.crc32(data[pos + FRAME.size : end]) != crc:
                break
            if offset % INDEX_EVERY == 0:
                part.index.append((offset, number, pos))
            pos, offset = end, offset + 1
        if pos != len(data):
            if not last:
                raise LogCorruptError(f"{segment.path}: bad frame at byte {pos} in a closed segment")
            # The torn tail of a write that was never acknowledged.
            os.truncate(segment.path, pos)
        segment.size = pos
        part.next_offset = offset

    def _new_segment(self, part: _Partition) -> None:
        if part.fd >= 0:
            os.close(part.fd)
        path = part.directory / f"{part.next_offset:020d}.seg"
        part.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        _fsync_dir(part.directory)
        part.segments.append(_Segment(base=part.next_offset, path=path))

    # -- append ------------------------------------------------------------

    async def append(self, partition: int, records: Sequence[bytes]) -> int:
        if not records:
            raise ValueError("append needs at least one record")
        if not 0 <= partition < len(self._parts):
            # Checked because a negative index would silently append to another partition.
            raise ValueError(f"unknown partition {partition}; the log has {len(self._parts)}")
        if not all(records):
            raise ValueError("a record cannot be empty: recovery could not tell it from a zero-filled torn tail")
        if self._lock_fd < 0:
            raise RuntimeError("the log is closed")
        part = self._parts[partition]
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        with part.pending_lock:
            part.pending.append(_Pending(_frames(records), len(records), future))
            start, part.flushing = not part.flushing, True
        if start:
            self._io.submit(self._commit, part)
        return await future

    def _commit(self, part: _Partition) -> None:
        """In the sync thread: write and fsync what is pending, group after group, until nothing is.

        Each group starts as soon as the previous one is durable, not when a busy event loop
        gets round to it; the callers of a group are woken with one callback on their loop,
        with the group's error when the write or the fsync failed (nothing of it is kept).
        """
        while True:
            with part.pending_lock:
                batch, part.pending = part.pending, []
                if not batch:
                    part.flushing = False
                    return
            try:
                result: int | Exception = self._write(part, batch)
            except Exception as error:  # noqa: BLE001 - not swallowed: every caller of the group gets it
                result = error
            _wake(batch, result)

    def _write(self, part: _Partition, batch: list[_Pending]) -> int:
        """Write and fsync a group of appends; returns the offset of the last record."""
        data = b"".join(p.frames for p in batch)
        count = sum(p.count for p in batch)
        segment = part.segments[-1]
        if segment.size and segment.size + len(data) > self._segment_bytes:
            self._new_segment(part)
            segment = part.segments[-1]
        start = segment.size
        try:
            view = memoryview(data)
            while view:
                written = os.write(part.fd, view)
                view = view[written:]
            os.fdatasync(part.fd)
        except OSError:
            os.ftruncate(part.fd, start)  # leave no partial group behind
            raise
        self._index_group(part, batch, start, count)
        segment.size = start + len(data)
        part.next_offset += count
        part.durable = part.next_offset - 1
        return part.durable

    def _index_group(self, part: _Partition, batch: list[_Pending], start: int, count: int) -> None:
        """Index the group written at byte `start`: frame by frame only through the appends a mark falls
        in, skipping the others whole (this runs with the GIL, beside the event loop)."""
        offset = part.next_offset
        next_mark = -(-offset // INDEX_EVERY) * INDEX_EVERY
        if next_mark >= offset + count:
            return
        number = len(part.segments) - 1
        entries = []
        pos = start
        for pending in batch:
            end, at = offset + pending.count, 0
            while next_mark < end:
                while offset < next_mark:
                    (length, _) = FRAME.unpack_from(pending.frames, at)
                    at += FRAME.size + length
                    offset += 1
                entries.append((next_mark, number, pos + at))
                next_mark += INDEX_EVERY
            offset, pos = end, pos + len(pending.frames)
        with part.lock:
            part.index.extend(entries)

    # -- read ----------------------------------------------------------------

    def end_offset(self, partition: int) -> int:
        return self._parts[partition].durable

    def read(self, partition: int, after: int, max_records: int) -> Iterator[Record]:
        first = max(after + 1, 0)
        for offset, value in enumerate(self.read_values(partition, after, max_records), start=first):
            yield Record(offset, value)

    def read_values(self, partition: int, after: int, max_records: int) -> list[bytes]:
        part = self._parts[partition]
        durable = part.durable
        target = after + 1
        if target > durable or max_records <= 0:
            return []
        number, pos, offset = self._seek(part, target)
        want = min(max_records, durable - target + 1)
        values: list[bytes] = []
        while len(values) < want:
            needed = max(target - offset, 0) + want - len(values)  # with the records before the target
            for first, chunk in self._read_segment(part.segments[number], pos, offset, needed):
                skip = max(target - first, 0)
                values.extend(chunk[skip : skip + want - len(values)])
                offset = first + len(chunk)
                if len(values) == want:
                    break
            number, pos = number + 1, 0
        return values

    def _seek(self, part: _Partition, target: int) -> tuple[int, int, int]:
        with part.lock:
            at = bisect.bisect_right(part.index, (target, len(part.segments), 1 << 62)) - 1
            offset, number, pos = part.index[at] if at >= 0 else (0, 0, 0)
        return number, pos, offset

    @staticmethod
    def _read_segment(segment: _Segment, pos: int, offset: int, limit: int) -> Iterator[tuple[int, list[bytes]]]:
        """At most `limit` records of `segment` from byte `pos` (record `offset`) on, a chunk at a time:
        (offset of the chunk's first record, the records' values). A tight loop: the loader's read."""
        unpack, crc32, header = FRAME.unpack_from, zlib.crc32, FRAME.size
        with open(segment.path, "rb") as file:
            file.seek(pos)
            buffer = b""
            while chunk := file.read(READ_CHUNK):
                buffer += chunk
                values: list[bytes] = []
                at, size = 0, len(buffer)
                while at + header <= size and len(values) < limit:
                    length, crc = unpack(buffer, at)
                    end = at + header + length
                    if end > size:
                        break
                    value = buffer[at + header : end]
                    if crc32(value) != crc:
                        raise LogCorruptError(f"{segment.path}: bad frame for offset {offset + len(values)}")
                    values.append(value)
                    at = end
                if values:
                    yield offset, values
                    offset += len(values)
                    limit -= len(values)
                    if limit <= 0:
                        return
                buffer = buffer[at:]

    async def close(self) -> None:
        for part in self._parts:
            while part.flushing or part.pending:
                await asyncio.sleep(0.001)
        self.close_sync()

    def close_sync(self) -> None:
        """Release files; appends still pending are not waited for (use `close`)."""
        self._io.shutdown(wait=True)
        for part in self._parts:
            if part.fd >= 0:
                os.close(part.fd)
                part.fd = -1
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1
