"""The stream processor: fires commit with the offset, restarts resume, crashes never duplicate or lose."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from marketloop.adapters.filelog import FileLog
from marketloop.adapters.sql.engine import create_engine, upgrade
from marketloop.adapters.sql.realtime import SqlStreamStore, SqlTriggerRepository
from marketloop.core.events import Event
from marketloop.identity.service import IdentityService
from marketloop.journeys.processor import CONSUMER, StreamProcessor
from marketloop.journeys.service import TriggerService
from marketloop.ports.eventlog import EventLog
from marketloop.ports.realtime import OffsetMovedError
from marketloop.security.crypto import FieldCipher, FieldKeys
from marketloop.testing.clock import FrozenClock
from marketloop.testing.eventlog import MemoryEventLog
from marketloop.testing.identity import MemoryIdentityStore

from .conftest import T0, append, event, minutes

ABSENCE = {
    "kind": "event",
    "id": "no-purchase",
    "posture": "proactive",
    "after": [{"event": "detail_view"}],
    "expect": [{"event": "purchase"}],
    "within": 600,
}
SEQUENCE = {
    "kind": "event",
    "id": "view-calc",
    "after": [{"event": "fund_view"}],
    "expect": [{"event": "calc"}],
    "within": 300,
}
THRESHOLD = {"kind": "event", "id": "three-views", "expect": [{"event": "fund_view"}], "threshold": 3, "within": 3600}


def _processor(log: EventLog, engine: sa.Engine, clock: FrozenClock, **options: Any) -> StreamProcessor:
    return StreamProcessor(log, SqlStreamStore(engine), SqlTriggerRepository(engine), clock, **options)


def _fires(engine: sa.Engine) -> list[tuple[str, datetime]]:
    return sorted((f.fire_id, f.fired_at) for f in SqlStreamStore(engine).fires(limit=1_000_000))


def _traffic(customers: int, rounds: int) -> list[Event]:
    """A deterministic mix: views, calculators, detail views, some purchases, over `rounds` minutes."""
    found = []
    for minute in range(rounds):
        for number in range(customers):
            user = f"C{number:03d}"
            name = ("fund_view", "calc", "detail_view", "fund_view", "purchase", "login")[(minute * 7 + number) % 6]
            if name == "purchase" and number % 3 == 0:
                name = "login"
            found.append(event(name, T0 + minutes(minute), user=user, message_id=f"{user}-{minute}"))
    return found


def _spread(log: EventLog, events: list[Event]) -> None:
    for item in events:
        append(log, item, partition=int(item.user_id[1:]) % log.partitions)  # type: ignore[index]


def test_fires_commit_with_the_offset_and_a_restart_adds_nothing(
    engine: sa.Engine, triggers: TriggerService, clock: FrozenClock
) -> None:
    triggers.save(SEQUENCE)
    log = MemoryEventLog(partitions=2)
    append(log, event("fund_view", T0), event("calc", T0 + minutes(1)))
    processor = _processor(log, engine, clock)
    assert processor.drain() == 2
    assert [f[0] for f in _fires(engine)] == ["view-calc:C1:C1-calc-2026-01-05T09:01:00+00:00"]
    assert SqlStreamStore(engine).committed_offset(CONSUMER, 0) == 1

    restarted = _processor(log, engine, clock)
    assert restarted.drain() == 0
    append(log, event("fund_view", T0 + minutes(10)), event("calc", T0 + minutes(11)))
    restarted.drain()
    assert len(_fires(engine)) == 2
    assert restarted.lag(0) == 0


def test_absence_timer_survives_a_restart_and_fires_at_once_when_overdue(
    engine: sa.Engine, triggers: TriggerService, clock: FrozenClock
) -> None:
    triggers.save(ABSENCE)
    log = MemoryEventLog()
    append(log, event("detail_view", T0))
    first = _processor(log, engine, clock)
    first.drain()
    assert _fires(engine) == []
    assert SqlStreamStore(engine).next_due([0]) == T0 + minutes(10)
    del first  # the process dies; the timer is in the store

    clock.advance(timedelta(hours=3))
    second = _processor(log, engine, clock)
    assert second.fire_due_timers() == 0, "nothing fires before the partition is read"
    assert second.run_once() == 1, "the first round reads the log, then fires the overdue timer"
    fires = SqlStreamStore(engine).fires()
    assert [(f.reason, f.fired_at, f.recorded_at) for f in fires] == [("absence", T0 + minutes(10), clock.now())]
    assert SqlStreamStore(engine).next_due([0]) is None
    assert second.fire_due_timers() == 0


def test_a_timer_fires_on_time_and_not_before(engine: sa.Engine, triggers: TriggerService, clock: FrozenClock) -> None:
    triggers.save(ABSENCE)
    log = MemoryEventLog()
    append(log, event("detail_view", clock.now()))
    processor = _processor(log, engine, clock)
    processor.drain()
    clock.advance(minutes(10))
    assert processor.run_once() == 0, "at the deadline a purchase stamped then still counts"
    clock.advance(timedelta(milliseconds=1))
    assert processor.run_once() == 1
    assert [f.reason for f in SqlStreamStore(engine).fires()] == ["absence"]


def test_a_timer_waits_until_its_partition_is_read_to_the_end(
    engine: sa.Engine, triggers: TriggerService, clock: FrozenClock
) -> None:
    triggers.save(ABSENCE)
    log = MemoryEventLog()
    append(log, event("detail_view", T0))
    processor = _processor(log, engine, clock)
    processor.drain()
    append(log, event("purchase", T0 + minutes(8)))  # in time, but not read yet when the deadline passes
    clock.advance(minutes(30))
    assert processor.fire_due_timers() == 0, "the partition has unread records: its timers wait"
    processor.drain()
    assert _fires(engine) == []
    assert SqlStreamStore(engine).next_due([0]) is None


class _CrashError(RuntimeError):
    pass


class _Killer:
    """Kills the processor mid-transaction: after `arm(n)`, the n-th write of fires or offsets raises."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        self._left: int | None = None
        sa.event.listen(engine, "before_cursor_execute", self._before)

    def arm(self, writes: int) -> None:
        self._left = writes

    def _before(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if self._left is None or not statement.lstrip().upper().startswith(("INSERT", "UPDATE")):
            return
        if "trigger_fires" in statement or "stream_offsets" in statement:
            self._left -= 1
            if self._left == 0:
                self._left = None
                raise _CrashError("killed mid-transaction")

    def close(self) -> None:
        sa.event.remove(self._engine, "before_cursor_execute", self._before)


def _run(log: EventLog, engine: sa.Engine, clock: FrozenClock, *, kill: bool) -> int:
    """Process the log, then the timers an hour later; with `kill`, die often and restart on the same store."""
    killer = _Killer(engine) if kill else None
    crashes = 0
    try:
        for phase in range(2):
            while True:
                if killer is not None and crashes < 12:
                    killer.arm(2 + crashes % 4)
                try:
                    _processor(log, engine, clock, max_batch=7, timer_batch=5).drain()
                    break
                except _CrashError:
                    crashes += 1  # a new processor (a restarted process) takes over from the store
            if phase == 0:
                clock.advance(timedelta(hours=1))
    finally:
        if killer is not None:
            killer.close()
    return crashes


def _fresh_engine(path: Path) -> sa.Engine:
    engine = create_engine(f"sqlite:///{path}")
    upgrade(engine)
    return engine


def test_killed_mid_stream_again_and_again_nothing_is_lost_or_duplicated(tmp_path: Path) -> None:
    traffic = _traffic(customers=12, rounds=25)
    results = []
    for name, kill in (("calm", False), ("killed", True)):
        engine = _fresh_engine(tmp_path / f"{name}.sqlite")
        clock = FrozenClock(T0 + minutes(30))
        service = TriggerService(SqlTriggerRepository(engine), clock, store=SqlStreamStore(engine))
        for document in (ABSENCE, SEQUENCE, THRESHOLD):
            service.save(document)
        log = MemoryEventLog(partitions=3)
        _spread(log, traffic)
        crashes = _run(log, engine, clock, kill=kill)
        fires = _fires(engine)
        assert len(fires) == len({f[0] for f in fires})
        results.append((crashes, fires, [SqlStreamStore(engine).committed_offset(CONSUMER, p) for p in range(3)]))
        engine.dispose()
    (calm_crashes, expected, calm_offsets), (crashes, got, offsets) = results
    assert calm_crashes == 0
    assert crashes >= 10, "the kills happened"
    assert {f[0].split(":")[0] for f in expected} == {"no-purchase", "view-calc", "three-views"}
    assert got == expected
    assert offsets == calm_offsets


def test_a_real_filelog_resumes_after_a_restart(tmp_path: Path, engine: sa.Engine, clock: FrozenClock) -> None:
    service = TriggerService(SqlTriggerRepository(engine), clock, store=SqlStreamStore(engine))
    service.save(SEQUENCE)
    service.save(ABSENCE)
    traffic = _traffic(customers=6, rounds=20)
    log = FileLog(tmp_path / "log", partitions=2)
    try:
        _spread(log, traffic[: len(traffic) // 2])
        processor = _processor(log, engine, clock, max_batch=10)
        processor.process_partition(0)
        processor.process_partition(1)
    finally:
        log.close_sync()
    reopened = FileLog(tmp_path / "log", partitions=2)
    try:
        _spread(reopened, traffic[len(traffic) // 2 :])
        _processor(reopened, engine, clock, max_batch=10).drain()
        clock.advance(timedelta(hours=2))
        _processor(reopened, engine, clock).drain()
        ends = [reopened.end_offset(p) for p in range(2)]
    finally:
        reopened.close_sync()
    assert [SqlStreamStore(engine).committed_offset(CONSUMER, p) for p in range(2)] == ends

    other = _fresh_engine(tmp_path / "expected.sqlite")
    expected_service = TriggerService(SqlTriggerRepository(other), clock, store=SqlStreamStore(other))
    expected_service.save(SEQUENCE)
    expected_service.save(ABSENCE)
    memory = MemoryEventLog(partitions=2)
    _spread(memory, traffic)
    _processor(memory, other, clock).drain()
    assert _fires(engine) == _fires(other)
    assert len(_fires(engine)) > 5
    other.dispose()


def test_a_second_worker_on_the_same_partition_is_refused(
    engine: sa.Engine, triggers: TriggerService, clock: FrozenClock
) -> None:
    triggers.save(SEQUENCE)
    log = MemoryEventLog()
    first, second = _processor(log, engine, clock), _processor(log, engine, clock)
    assert first.committed(0) == second.committed(0) == -1
    append(log, event("fund_view", T0), event("calc", T0 + minutes(1)))
    first.process_partition(0)
    with pytest.raises(OffsetMovedError):
        second.process_partition(0)
    assert len(_fires(engine)) == 1


def test_customers_are_keyed_by_oneid_across_anonymous_and_login(
    engine: sa.Engine, triggers: TriggerService, clock: FrozenClock
) -> None:
    triggers.save(SEQUENCE)
    identity = IdentityService(MemoryIdentityStore(), FieldCipher(FieldKeys.generate()), clock)
    log = MemoryEventLog()
    browse = Event(
        message_id="m1",
        type="track",
        source_id="s",
        received_at=T0,
        timestamp=T0,
        event="fund_view",
        anonymous_id="dev-9",
    )
    login = Event(
        message_id="m2",
        type="identify",
        source_id="s",
        received_at=T0,
        timestamp=T0,
        anonymous_id="dev-9",
        user_id="U9",
    )
    calc = event("calc", T0 + minutes(2), user="U9", message_id="m3")
    append(log, browse, login, calc)
    _processor(log, engine, clock, resolver=identity).drain()
    fires = SqlStreamStore(engine).fires()
    assert [f.reason for f in fires] == ["sequence"]
    assert fires[0].customer == identity.resolve(identity.identifier("user_id", "U9"))
    assert fires[0].customer == identity.resolve(identity.identifier("anonymous_id", "dev-9"))


class _Membership:
    def __init__(self) -> None:
        self.vips: set[str] = set()

    def segments_of(self, customer: str, event: Event, segment_ids: frozenset[str]) -> frozenset[str]:
        if event.event == "became_vip":
            self.vips.add(customer)
        return frozenset({"seg_vip"} & segment_ids) if customer in self.vips else frozenset()


def test_segment_entered_through_the_membership_port(
    engine: sa.Engine, triggers: TriggerService, clock: FrozenClock
) -> None:
    triggers.save({"kind": "segment", "id": "vip-in", "segment_id": "seg_vip"})
    log = MemoryEventLog()
    append(log, event("login", T0), event("became_vip", T0 + minutes(1)), event("login", T0 + minutes(2)))
    _processor(log, engine, clock, membership=_Membership()).drain()
    assert [(f.reason, f.fired_at) for f in SqlStreamStore(engine).fires()] == [("segment.entered", T0 + minutes(1))]


def test_schedule_fires_once_after_downtime_and_plans_the_next_run(
    engine: sa.Engine, triggers: TriggerService, clock: FrozenClock
) -> None:
    triggers.save({"kind": "schedule", "id": "daily", "cron": "0 10 * * *", "timezone": "UTC", "segment_id": "seg_all"})
    log = MemoryEventLog()
    processor = _processor(log, engine, clock)
    assert processor.run_once() == 0
    clock.advance(timedelta(days=3, hours=2))  # down over three 10:00 runs
    assert processor.run_once() == 1
    assert [(f.customer, f.fired_at) for f in SqlStreamStore(engine).fires()] == [("*", T0 + timedelta(hours=1))]
    assert SqlStreamStore(engine).next_due([-1]) == T0 + timedelta(days=4, hours=1)


def test_api_trigger_call_goes_through_the_log_once(engine: sa.Engine, clock: FrozenClock) -> None:
    log = MemoryEventLog(partitions=2)
    service = TriggerService(SqlTriggerRepository(engine), clock, events=log, store=SqlStreamStore(engine))
    service.save({"kind": "api", "id": "rm-referral", "required": ["product"]})
    for _ in range(2):  # a client retry with the same idempotency key
        asyncio.run(service.fire("rm-referral", "C7", {"product": "WM1"}, idempotency_key="k1"))
    _processor(log, engine, clock).drain()
    fires = service.fires("rm-referral")
    assert [(f.customer, f.reason) for f in fires] == [("C7", "api")]


def test_changing_a_trigger_starts_its_state_afresh(
    engine: sa.Engine, triggers: TriggerService, clock: FrozenClock
) -> None:
    two_steps = {"kind": "event", "id": "seq", "after": [{"event": "a"}, {"event": "b"}], "expect": [{"event": "c"}],
                 "within": 600}  # fmt: skip
    triggers.save(two_steps)
    log = MemoryEventLog()
    append(log, event("a", T0), event("b", T0 + minutes(1)))
    processor = _processor(log, engine, clock)
    processor.drain()
    assert SqlStreamStore(engine).states(["C1"]), "half-way through the sequence"
    triggers.save(two_steps | {"name": "renamed"}, replace=True)
    assert SqlStreamStore(engine).states(["C1"]), "a new name keeps the state"
    triggers.set_enabled("seq", False)
    assert SqlStreamStore(engine).states(["C1"]) == {}, "disabled: no open episodes are kept"
    triggers.set_enabled("seq", True)
    append(log, event("a", T0 + minutes(1.5)))
    processor.drain()
    assert SqlStreamStore(engine).states(["C1"])
    triggers.save(two_steps | {"after": [{"event": "b"}]}, replace=True)
    assert SqlStreamStore(engine).states(["C1"]) == {}
    append(log, event("c", T0 + minutes(2)), event("b", T0 + minutes(3)), event("c", T0 + minutes(4)))
    processor.drain()
    assert [orjson.loads(f.cause) for f in SqlStreamStore(engine).fires()] == [
        [f"C1-{name}-{(T0 + minutes(m)).isoformat()}" for name, m in (("b", 3), ("c", 4))]
    ]
    assert processor.failures == 0


def test_a_failing_trigger_is_skipped_and_the_others_go_on(
    engine: sa.Engine, triggers: TriggerService, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from marketloop.journeys import machines

    triggers.save(SEQUENCE)
    triggers.save({"kind": "event", "id": "broken", "expect": [{"event": "calc"}]})
    real = machines.on_event

    def on_event(trigger: Any, *args: Any) -> Any:
        if trigger.id == "broken":
            raise ZeroDivisionError("a defect")
        return real(trigger, *args)

    monkeypatch.setattr(machines, "on_event", on_event)
    log = MemoryEventLog()
    append(log, event("fund_view", T0), event("calc", T0 + minutes(1)))
    processor = _processor(log, engine, clock)
    processor.drain()
    assert [f.trigger_id for f in SqlStreamStore(engine).fires()] == ["view-calc"]
    assert processor.failures == 2
    assert processor.lag(0) == 0


def test_a_birthday_timer_survives_a_restart_and_plans_next_year(
    engine: sa.Engine, triggers: TriggerService, clock: FrozenClock
) -> None:
    from .conftest import identify

    triggers.save({"kind": "date", "id": "birthday", "attribute": "birthday", "yearly": True, "timezone": "UTC"})
    log = MemoryEventLog()
    append(log, identify(T0, birthday="1990-02-01"))
    _processor(log, engine, clock).drain()
    first_due = datetime.fromisoformat("2026-02-01T09:00:00+00:00")
    assert SqlStreamStore(engine).next_due([0]) == first_due
    clock.advance(timedelta(days=60))  # the server was down on the day
    restarted = _processor(log, engine, clock)
    restarted.drain()
    assert [(f.reason, f.fired_at) for f in SqlStreamStore(engine).fires()] == [("date", first_due)]
    assert SqlStreamStore(engine).next_due([0]) == datetime.fromisoformat("2027-02-01T09:00:00+00:00")

    clock.advance(timedelta(days=3 * 365))  # down again, over three birthdays: one fire, then the next one
    restarted.drain()
    assert len(SqlStreamStore(engine).fires()) == 2
    assert SqlStreamStore(engine).next_due([0]) == datetime.fromisoformat("2030-02-01T09:00:00+00:00")


def test_with_no_trigger_the_processor_moves_past_events_without_reading_them(
    engine: sa.Engine, triggers: TriggerService, clock: FrozenClock
) -> None:
    log = MemoryEventLog()
    append(log, event("fund_view", T0))
    asyncio.run(log.append(0, [b"not an event: an idle processor never decodes it"]))
    processor = _processor(log, engine, clock)
    processor.drain()
    assert SqlStreamStore(engine).committed_offset(CONSUMER, 0) == 1
    assert processor.lag(0) == 0
    # A trigger saved now sees the events from now on, not the ones passed while idle.
    triggers.save(SEQUENCE)
    append(log, event("fund_view", T0 + minutes(5)), event("calc", T0 + minutes(6)))
    processor.drain()
    assert len(_fires(engine)) == 1
