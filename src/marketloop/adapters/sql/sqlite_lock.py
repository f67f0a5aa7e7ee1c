"""One writer at a time on an SQLite file, handed over at once instead of polled.

SQLite lets one writer in at a time; a second one waits in its busy handler,
which sleeps 1, 2, 5 ... 50, 100 ms between tries. With the stream processor,
the journey runner and the dispatcher process writing the same file, those
sleeps were the tail of "event accepted -> outbox row" (writes waiting 50-200
ms for a lock that had been free for most of that time).

A connection of this factory takes an exclusive `flock` on `<database>-writer`
before its first writing statement and lets go when its transaction ends
(commit, rollback or close). The kernel wakes a waiter as soon as the holder
lets go, across threads (every connection opens its own descriptor) and
processes. SQLite's own locking stays the guard; the lock only decides who
asks next. A thread that already holds the lock through one connection does
not wait for it on another (that wait would never end): SQLite's busy timeout
answers that case, as before. A writer that does not use the lock (an older
process, the sqlite3 shell) still meets the busy timeout as before.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from typing import Any

_local = threading.local()


def _holding() -> set[str]:
    """The lock files this thread holds."""
    held: set[str] | None = getattr(_local, "held", None)
    if held is None:
        held = _local.held = set()
    return held


_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER", "WITH")


def _writes(statement: str) -> bool:
    return statement.lstrip()[:7].upper().startswith(_WRITES)


class WriterLockCursor(sqlite3.Cursor):
    def execute(self, sql: str, parameters: Any = (), /) -> WriterLockCursor:
        connection: WriterLockConnection = self.connection  # type: ignore[assignment]
        if _writes(sql):
            connection.hold()
        try:
            return super().execute(sql, parameters)
        finally:
            connection.settle()

    def executemany(self, sql: str, parameters: Any, /) -> WriterLockCursor:
        connection: WriterLockConnection = self.connection  # type: ignore[assignment]
        connection.hold()
        try:
            return super().executemany(sql, parameters)
        finally:
            connection.settle()


class WriterLockConnection(sqlite3.Connection):
    """An sqlite3 connection that holds the file's writer lock from its first write to the end of the transaction.

    `lock_path` is set by `writer_lock_factory`; None (an in-memory database) turns the lock off.
    """

    lock_path: str | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lock_fd: int | None = None
        self._held_by: set[str] | None = None  # the holding thread's set (`_holding`), while held

    def cursor(self, factory: Any = WriterLockCursor) -> Any:
        return super().cursor(factory)

    def hold(self) -> None:
        path = self.lock_path
        if self._lock_fd is not None or path is None:
            return
        held = _holding()
        if path in held:
            # This thread writes through another connection of the file already: waiting for its own lock
            # would never end. SQLite's busy timeout decides, as it did before this lock.
            return
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # blocks with the GIL released
        except BaseException:
            os.close(fd)
            raise
        self._lock_fd = fd
        self._held_by = held
        held.add(path)

    def settle(self) -> None:
        """Let go once no transaction is open (a statement outside one, or a failed BEGIN)."""
        if self._lock_fd is not None and not self.in_transaction:
            self._release()

    def _release(self) -> None:
        fd, self._lock_fd = self._lock_fd, None
        held, self._held_by = self._held_by, None
        if fd is not None:
            os.close(fd)  # closing the descriptor drops its flock
        if held is not None:  # the holder's set, even when another thread ends the transaction (a pool's close)
            held.discard(str(self.lock_path))

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self._release()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._release()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._release()


def writer_lock_factory(database: str | None) -> type[WriterLockConnection] | None:
    """A connection class locking `<database>-writer`; None for an in-memory or unnamed database."""
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        return None
    return type("FileWriterLockConnection", (WriterLockConnection,), {"lock_path": f"{database}-writer"})
