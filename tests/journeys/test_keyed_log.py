"""The event log re-partitioned by OneID: one customer's events under several collection keys meet in one
keyed partition; a crash between the append and the stored positions keys nothing twice; a data directory
from before the keyed log goes on where its processor had got to; the processor reads the keyed log."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
import sqlalchemy as sa

from marketloop.adapters.filelog import FileLog
from marketloop.adapters.sql.realtime import SqlStreamStore, SqlTriggerRepository
from marketloop.core.events import Event
from marketloop.identity.service import IdentityService
from marketloop.journeys.keyed import KeyedRecord, Repartitioner, key_partition
from marketloop.journeys.processor import CONSUMER, StreamProcessor
from marketloop.journeys.service import TriggerService
from marketloop.security.crypto import FieldCipher, FieldKeys
from marketloop.testing.clock import FrozenClock
from marketloop.testing.eventlog import MemoryEventLog
from marketloop.testing.identity import MemoryIdentityStore

from .conftest import T0, append, event, minutes
from .test_processor import SEQUENCE


def _anonymous(message_id: str, name: str, device: str, **fields: str) -> Event:
    return Event(
        message_id=message_id,
        type="identify" if name == "identify" else "track",
        source_id="s",
        received_at=T0,
        timestamp=T0,
        event=None if name == "identify" else name,
        anonymous_id=device,
        **fields,  # type: ignore[arg-type]
    )


def _keyed(log: FileLog | MemoryEventLog) -> dict[int, list[KeyedRecord]]:
    decoder = msgspec.json.Decoder(KeyedRecord)
    return {p: [decoder.decode(v) for v in log.read_values(p, -1, 1000)] for p in range(log.partitions)}


@pytest.fixture
def identity(clock: FrozenClock) -> IdentityService:
    return IdentityService(MemoryIdentityStore(), FieldCipher(FieldKeys.generate()), clock)


def test_a_customers_events_under_several_keys_meet_in_one_keyed_partition(
    engine: sa.Engine, clock: FrozenClock, identity: IdentityService
) -> None:
    source, keyed = MemoryEventLog(partitions=4), MemoryEventLog(partitions=4)
    # the device's events before login and the customer number's after land in different collection partitions
    append(source, _anonymous("m1", "fund_view", "dev-9"), partition=1)
    append(source, _anonymous("m2", "identify", "dev-9", user_id="U9"), partition=1)
    append(source, event("calc", T0 + minutes(2), user="U9", message_id="m3"), partition=3)
    keyer = Repartitioner(source, keyed, SqlStreamStore(engine), clock, resolver=identity)
    assert keyer.run_once() == 3
    one_id = identity.resolve(identity.identifier("user_id", "U9"))
    assert one_id is not None
    found = _keyed(keyed)
    home = key_partition(one_id, 4)
    assert [(r.one_id, r.event.message_id) for r in found[home]] == [(one_id, "m1"), (one_id, "m2"), (one_id, "m3")]
    assert sum(len(records) for records in found.values()) == 3
    assert [(r.partition, r.offset) for r in found[home]] == [(1, 0), (1, 1), (3, 0)]
    assert keyer.run_once() == 0
    assert keyer.through == clock.now()


def test_a_kill_after_the_append_keys_nothing_twice(engine: sa.Engine, clock: FrozenClock, tmp_path: Path) -> None:
    source = MemoryEventLog(partitions=2)
    for n in range(5):
        append(source, event("view", T0 + minutes(n), user=f"C{n}", message_id=f"a{n}"), partition=n % 2)
    keyed = FileLog(tmp_path / "keyed", partitions=2)
    try:
        store = SqlStreamStore(engine)
        crashing = Repartitioner(source, keyed, store, clock)
        assert crashing.run_once() == 5
        # killed now: appended, and its positions not stored after the append (they are, at most every second)
        assert store.positions("keyer") == {0: -1, 1: -1}
        assert sum(len(r) for r in _keyed(keyed).values()) == 5
        append(source, event("view", T0 + minutes(9), user="C9", message_id="a9"), partition=1)
        restarted = Repartitioner(source, keyed, store, clock)
        assert restarted.run_once() == 1, "only the event after the crash is new"
        ids = sorted(r.event.message_id for records in _keyed(keyed).values() for r in records)
        assert ids == ["a0", "a1", "a2", "a3", "a4", "a9"]
    finally:
        keyed.close_sync()


def test_a_data_directory_from_before_the_keyed_log_goes_on_where_its_processor_was(
    engine: sa.Engine, clock: FrozenClock
) -> None:
    source, keyed = MemoryEventLog(partitions=1), MemoryEventLog(partitions=1)
    append(source, *(event("view", T0, user="C1", message_id=f"old{n}") for n in range(3)))
    store = SqlStreamStore(engine)
    store.save_positions({CONSUMER: {0: 2}})  # the processor had read the collection log through offset 2
    append(source, event("view", T0, user="C1", message_id="new"))
    keyer = Repartitioner(source, keyed, store, clock, legacy_consumer=CONSUMER)
    assert keyer.run_once() == 1
    assert [r.event.message_id for r in _keyed(keyed)[0]] == ["new"]


def test_the_processor_reads_the_keyed_log(
    engine: sa.Engine, triggers: TriggerService, clock: FrozenClock, identity: IdentityService
) -> None:
    triggers.save(SEQUENCE)
    source, keyed = MemoryEventLog(partitions=2), MemoryEventLog(partitions=2)
    append(source, _anonymous("m1", "fund_view", "dev-9"), partition=0)
    append(source, _anonymous("m2", "identify", "dev-9", user_id="U9"), partition=0)
    append(source, event("calc", T0 + minutes(2), user="U9", message_id="m3"), partition=1)
    store = SqlStreamStore(engine)
    keyer = Repartitioner(source, keyed, store, clock, resolver=identity)
    processor = StreamProcessor(source, store, SqlTriggerRepository(engine), clock, keyer=keyer)
    processor.drain()
    fires = store.fires()
    assert [f.reason for f in fires] == ["sequence"]
    one_id = identity.resolve(identity.identifier("anonymous_id", "dev-9"))
    assert fires[0].customer == one_id
    assert fires[0].partition == key_partition(str(one_id), 2)
    status = processor.status()
    assert all(p["lag"] == 0 for p in status["partitions"] + status["keying"])


def test_while_no_trigger_reads_events_they_are_passed_unkeyed(
    engine: sa.Engine, triggers: TriggerService, clock: FrozenClock
) -> None:
    source, keyed = MemoryEventLog(partitions=2), MemoryEventLog(partitions=2)
    store = SqlStreamStore(engine)
    keyer = Repartitioner(source, keyed, store, clock)
    processor = StreamProcessor(source, store, SqlTriggerRepository(engine), clock, keyer=keyer)
    append(source, event("fund_view", T0, user="C1", message_id="early"))
    processor.drain()
    assert sum(len(r) for r in _keyed(keyed).values()) == 0, "collection alone pays for nothing it does not use"
    assert [p["lag"] for p in processor.status()["keying"]] == [0, 0]
    triggers.save(SEQUENCE)
    append(source, event("fund_view", T0, user="C1", message_id="m1"))
    append(source, event("calc", T0 + minutes(1), user="C1", message_id="m2"))
    processor.drain()
    assert sorted(r.event.message_id for records in _keyed(keyed).values() for r in records) == ["m1", "m2"]
    assert [f.reason for f in store.fires()] == ["sequence"]
