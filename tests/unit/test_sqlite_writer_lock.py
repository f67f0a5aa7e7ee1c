"""The SQLite writer lock: writers queue on `<database>-writer`, readers never take it, and every way a
transaction ends lets it go."""

from __future__ import annotations

import fcntl
import os
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from marketloop.adapters.sql.engine import create_engine
from marketloop.adapters.sql.sqlite_lock import writer_lock_factory


def _held(path: Path) -> bool:
    """Whether some descriptor holds the writer lock now (tried without waiting from a fresh descriptor)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


@pytest.fixture
def engine(tmp_path: Path) -> sa.Engine:
    made = create_engine(f"sqlite:///{tmp_path / 'state.sqlite'}")
    with made.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    return made


def test_a_write_holds_the_lock_until_commit_and_a_read_never_takes_it(engine: sa.Engine, tmp_path: Path) -> None:
    lock = tmp_path / "state.sqlite-writer"
    with engine.connect() as connection:
        connection.exec_driver_sql("SELECT count(*) FROM t").scalar()
        assert not _held(lock)
        connection.exec_driver_sql("INSERT INTO t (v) VALUES ('a')")
        assert _held(lock)
        connection.commit()
        assert not _held(lock)


def test_rollback_and_a_failed_statement_let_go(engine: sa.Engine, tmp_path: Path) -> None:
    lock = tmp_path / "state.sqlite-writer"
    with engine.connect() as connection:
        connection.exec_driver_sql("INSERT INTO t (v) VALUES ('a')")
        connection.rollback()
    assert not _held(lock)

    def twice() -> None:
        with engine.begin() as connection:
            connection.exec_driver_sql("INSERT INTO t (id, v) VALUES (1, 'a')")
            connection.exec_driver_sql("INSERT INTO t (id, v) VALUES (1, 'b')")

    with pytest.raises(sa.exc.IntegrityError):
        twice()
    assert not _held(lock)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM t").scalar() == 0


def test_a_second_writer_waits_and_goes_as_soon_as_the_first_commits(engine: sa.Engine) -> None:
    first_wrote, second_done = threading.Event(), threading.Event()
    committed_at: list[float] = []

    def second() -> None:
        first_wrote.wait()
        with engine.begin() as connection:
            connection.exec_driver_sql("INSERT INTO t (v) VALUES ('second')")
        committed_at.append(time.monotonic())
        second_done.set()

    thread = threading.Thread(target=second)
    thread.start()
    with engine.begin() as connection:
        connection.exec_driver_sql("INSERT INTO t (v) VALUES ('first')")
        first_wrote.set()
        assert not second_done.wait(0.2), "the second writer must wait for the first"
        released_at = time.monotonic()
    thread.join()
    # handed over, not polled: SQLite's own busy handler sleeps up to 100 ms between tries
    assert committed_at[0] - released_at < 0.1
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT v FROM t ORDER BY id").scalars().all() == ["first", "second"]


def test_memory_databases_have_no_lock_file() -> None:
    assert writer_lock_factory(None) is None
    assert writer_lock_factory(":memory:") is None
    assert writer_lock_factory("/data/state.sqlite") is not None


def test_a_thread_writing_on_two_connections_does_not_wait_for_itself(engine: sa.Engine) -> None:
    # the inner write meets SQLite's own lock (held by the outer transaction) and its busy timeout, as
    # without the writer lock; it must not wait for ever on the lock file
    other = create_engine(engine.url.render_as_string(hide_password=False))
    with engine.begin() as outer:
        outer.exec_driver_sql("INSERT INTO t (v) VALUES ('outer')")
        with other.connect() as inner:
            inner.exec_driver_sql("PRAGMA busy_timeout = 200")
            with pytest.raises(sa.exc.OperationalError, match="locked"):
                inner.exec_driver_sql("INSERT INTO t (v) VALUES ('inner')")
    other.dispose()
