"""Property: the stream processor fires exactly what the dry run fires, whatever the batch size and timer timing."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from marketloop.adapters.sql.engine import create_engine, upgrade
from marketloop.adapters.sql.realtime import SqlStreamStore, SqlTriggerRepository
from marketloop.core.events import Event
from marketloop.journeys.dryrun import dry_run
from marketloop.journeys.processor import StreamProcessor
from marketloop.journeys.service import TriggerService
from marketloop.journeys.triggers import parse_trigger
from marketloop.testing.clock import FrozenClock
from marketloop.testing.eventlog import MemoryEventLog

from .conftest import T0, append, event

TRIGGERS = [
    {"kind": "event", "id": "seq", "after": [{"event": "a"}, {"event": "b"}], "expect": [{"event": "c"}],
     "within": 300},
    {"kind": "event", "id": "gone", "posture": "proactive", "after": [{"event": "a"}], "expect": [{"event": "c"}],
     "within": 240, "threshold": 2},
    {"kind": "event", "id": "many", "expect": [{"event": "b"}], "threshold": 3, "within": 600},
]  # fmt: skip

steps = st.lists(
    st.tuples(st.sampled_from(["C1", "C2", "C3"]), st.sampled_from("abcx"), st.integers(min_value=0, max_value=200)),
    min_size=1,
    max_size=60,
)


def _events(drawn: list[tuple[str, str, int]]) -> list[Event]:
    found, at = [], T0
    for number, (user, name, gap) in enumerate(drawn):
        at += timedelta(seconds=gap)
        found.append(event(name, at, user=user, message_id=f"m{number}"))
    return found


@settings(max_examples=40, deadline=None)
@given(drawn=steps, batch=st.integers(min_value=1, max_value=9), timer_every=st.integers(min_value=1, max_value=5))
def test_processor_agrees_with_the_dry_run(
    tmp_path_factory: object, drawn: list[tuple[str, str, int]], batch: int, timer_every: int
) -> None:
    events = _events(drawn)
    expected = sorted(
        (fire.fire_id, fire.at) for document in TRIGGERS for fire in dry_run(parse_trigger(document), events).fires
    )
    folder: Path = tmp_path_factory.mktemp("state")  # type: ignore[attr-defined]
    engine = create_engine(f"sqlite:///{folder / 'state.sqlite'}")
    upgrade(engine)
    try:
        clock = FrozenClock(T0)
        service = TriggerService(SqlTriggerRepository(engine), clock, store=SqlStreamStore(engine))
        for document in TRIGGERS:
            service.save(document)
        log = MemoryEventLog(partitions=2)
        processor = StreamProcessor(log, SqlStreamStore(engine), SqlTriggerRepository(engine), clock, max_batch=batch)
        for number, item in enumerate(events):
            append(log, item, partition=int(item.user_id[1:]) % 2)  # type: ignore[index]
            if number % timer_every == 0:  # the wall clock follows the events, timers fire in between
                clock.advance(max(timedelta(0), item.timestamp - clock.now()))
                processor.run_once()
        clock.advance(timedelta(days=1))
        processor.drain()
        got = sorted((fire.fire_id, fire.fired_at) for fire in SqlStreamStore(engine).fires(limit=100_000))
    finally:
        engine.dispose()
    assert got == expected
