"""The hash-chained audit log: recording, listing, and tamper detection (edit, deletion, reordering)."""

from __future__ import annotations

import itertools
import threading
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from marketloop.adapters.sql.audit import SqlAuditStore, audit_head, audit_log
from marketloop.adapters.sql.engine import create_engine, upgrade
from marketloop.core.audit import GENESIS, BreakKind, entry_hash
from marketloop.core.errors import MarketloopError
from marketloop.security.audit import AuditLog, acting_as, current_actor
from marketloop.testing.clock import FrozenClock


@pytest.fixture
def engine(tmp_path: Path) -> sa.Engine:
    engine = create_engine(f"sqlite:///{tmp_path / 'state.sqlite'}")
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def log(engine: sa.Engine, clock: FrozenClock) -> AuditLog:
    audit = AuditLog(SqlAuditStore(engine), clock)
    for n in range(1, 7):
        audit.record("source.create", f"source:s{n}", details={"n": n}, actor="user:alice")
        clock.advance(timedelta(seconds=1))
    return audit


def _sql(engine: sa.Engine, statement: sa.Executable) -> None:
    with engine.begin() as connection:
        connection.execute(statement)


def test_entries_are_chained_and_verify(log: AuditLog) -> None:
    entries = sorted(log.entries(), key=lambda e: e.seq)
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5, 6]
    assert entries[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(entries))
    report = log.verify()
    assert report.ok
    assert report.checked == 6
    assert report.head_seq == 6


def test_empty_log_verifies(engine: sa.Engine, clock: FrozenClock) -> None:
    report = AuditLog(SqlAuditStore(engine), clock).verify()
    assert report.ok
    assert report.checked == 0


def test_an_edited_entry_is_named(log: AuditLog, engine: sa.Engine) -> None:
    _sql(engine, audit_log.update().where(audit_log.c.seq == 3).values(details='{"n":33}'))
    report = log.verify()
    assert report.first_break is not None
    assert (report.first_break.seq, report.first_break.kind) == (3, BreakKind.EDITED)


def test_an_edit_with_a_recomputed_hash_is_still_caught(log: AuditLog, engine: sa.Engine) -> None:
    row = next(e for e in log.entries() if e.seq == 3)
    forged = entry_hash(
        seq=3, at=row.at, actor="user:mallory", action=row.action, target=row.target, details=row.details,
        prev_hash=row.prev_hash,
    )  # fmt: skip
    _sql(engine, audit_log.update().where(audit_log.c.seq == 3).values(actor="user:mallory", hash=forged))
    report = log.verify()
    assert report.first_break is not None
    assert (report.first_break.seq, report.first_break.kind) == (3, BreakKind.EDITED)
    assert "rewritten" in report.first_break.detail


def test_a_deleted_entry_is_named(log: AuditLog, engine: sa.Engine) -> None:
    _sql(engine, audit_log.delete().where(audit_log.c.seq == 4))
    report = log.verify()
    assert report.first_break is not None
    assert (report.first_break.seq, report.first_break.kind) == (4, BreakKind.DELETED)


def test_entries_cut_off_the_end_are_caught(log: AuditLog, engine: sa.Engine) -> None:
    _sql(engine, audit_log.delete().where(audit_log.c.seq >= 5))
    report = log.verify()
    assert report.first_break is not None
    assert (report.first_break.seq, report.first_break.kind) == (5, BreakKind.DELETED)
    assert "5..6" in report.first_break.detail


def test_reordered_entries_are_named(log: AuditLog, engine: sa.Engine) -> None:
    # Swap the contents of seq 2 and 3, keeping the seq numbers where they were.
    two, three = (next(e for e in log.entries() if e.seq == n) for n in (2, 3))
    columns = ("at", "actor", "action", "target", "details", "prev_hash", "hash")
    with engine.begin() as connection:
        connection.execute(
            audit_log.update().where(audit_log.c.seq == 2).values({c: getattr(three, c) for c in columns})
        )
        connection.execute(audit_log.update().where(audit_log.c.seq == 3).values({c: getattr(two, c) for c in columns}))
    report = log.verify()
    assert report.first_break is not None
    assert (report.first_break.seq, report.first_break.kind) == (2, BreakKind.REORDERED)


def test_renumbered_entries_are_named_as_reordered(log: AuditLog, engine: sa.Engine) -> None:
    with engine.begin() as connection:
        connection.execute(audit_log.update().where(audit_log.c.seq == 2).values(seq=100))
        connection.execute(audit_log.update().where(audit_log.c.seq == 3).values(seq=2))
        connection.execute(audit_log.update().where(audit_log.c.seq == 100).values(seq=3))
    report = log.verify()
    assert report.first_break is not None
    assert (report.first_break.seq, report.first_break.kind) == (2, BreakKind.REORDERED)


def test_entries_written_around_the_log_are_caught(log: AuditLog, engine: sa.Engine) -> None:
    last = next(e for e in log.entries() if e.seq == 6)
    fields = {
        "seq": 7,
        "at": last.at,
        "actor": "x",
        "action": "a.b",
        "target": "t",
        "details": "{}",
        "prev_hash": last.hash,
    }
    _sql(engine, audit_log.insert().values(**fields, hash=entry_hash(**fields)))  # type: ignore[arg-type]
    report = log.verify()
    assert report.first_break is not None
    assert (report.first_break.seq, report.first_break.kind) == (7, BreakKind.INSERTED)


def test_a_deleted_head_is_caught(log: AuditLog, engine: sa.Engine) -> None:
    _sql(engine, audit_head.delete())
    assert not log.verify().ok


def test_list_filters(log: AuditLog, clock: FrozenClock) -> None:
    log.record("keys.rotate", "key:k2", actor="cli:root")
    assert [e.action for e in log.entries(actor="cli:root")] == ["keys.rotate"]
    assert len(log.entries(action="source.")) == 6
    assert [e.seq for e in log.entries(limit=2)] == [7, 6]
    assert [e.seq for e in log.entries(since=clock.now())] == [7]


@pytest.mark.parametrize("action", ["Source.Create", "create", "source create", ""])
def test_malformed_actions_are_refused(log: AuditLog, action: str) -> None:
    with pytest.raises(MarketloopError, match="dotted"):
        log.record(action, "source:x")


def test_the_current_actor_is_used(log: AuditLog) -> None:
    assert current_actor() == "system"
    with acting_as("user:bob"):
        entry = log.record("role.grant", "user:carol", details={"role": "approver"})
    assert entry.actor == "user:bob"
    assert current_actor() == "system"


def test_concurrent_appends_never_fork_the_chain(engine: sa.Engine, clock: FrozenClock, tmp_path: Path) -> None:
    # Separate engines behave like separate processes: their own connections to the same file.
    engines = [create_engine(f"sqlite:///{tmp_path / 'state.sqlite'}") for _ in range(4)]
    logs = [AuditLog(SqlAuditStore(e), clock) for e in engines]

    def work(audit: AuditLog, n: int) -> None:
        for i in range(25):
            audit.record("test.append", f"worker:{n}", details={"i": i})

    threads = [threading.Thread(target=work, args=(audit, n)) for n, audit in enumerate(logs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for e in engines:
        e.dispose()
    report = AuditLog(SqlAuditStore(engine), clock).verify()
    assert report.ok, report.first_break
    assert report.checked == report.head_seq == 100
