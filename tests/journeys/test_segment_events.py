"""Real-time segments on the real stores: FileLog + processor + DuckDB facts -> segment_entered / segment_exited.

The production wiring (`DuckDBCustomerFacts`, `SegmentMembership`,
`SegmentEvents`) on a real FileLog, DuckDB warehouse, OneID and SQLite
operational store, with a frozen clock: the change event is on the log when
the processor has committed the batch of its cause (no loader round needed),
a restart appends nothing again, and a crash between append and commit
re-appends the same message ids, which the loader keeps once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
import sqlalchemy as sa

from marketloop.adapters.duckdb_customer_facts import DuckDBCustomerFacts
from marketloop.adapters.duckdb_identity import DuckDBIdentityStore
from marketloop.adapters.duckdb_segments import DuckDBSegmentWarehouse
from marketloop.adapters.duckdb_warehouse import DuckDBWarehouse
from marketloop.adapters.filelog import FileLog
from marketloop.adapters.sql.realtime import SqlStreamStore, SqlTriggerRepository
from marketloop.adapters.sql.segments import SqlSegmentRepository
from marketloop.collect.loader import Loader
from marketloop.core.bank import CUSTOMERS
from marketloop.core.events import Event
from marketloop.identity.service import IdentityService
from marketloop.journeys.membership import LookupFacts, SegmentMembership
from marketloop.journeys.processor import StreamProcessor
from marketloop.journeys.segment_events import SegmentEvents, skipping_broken
from marketloop.ports.realtime import Commit
from marketloop.security.crypto import FieldCipher, FieldKeys
from marketloop.segments.catalog import ONE_ID_CATALOG
from marketloop.segments.service import SegmentService
from marketloop.testing.clock import FrozenClock
from marketloop.testing.segments import ddl

from .conftest import T0, append, event, identify, minutes

FANS = "did fund_page_view at least 3 times within 1d and not did buy_fund within 1d"


class _Stores:
    def __init__(self, root: Path, engine: sa.Engine, clock: FrozenClock) -> None:
        self.log = FileLog(root / "log", partitions=2)
        self.warehouse = DuckDBWarehouse(root / "warehouse" / "events.duckdb")
        self.identity = IdentityService(
            DuckDBIdentityStore(self.warehouse.cursor, self.warehouse.write_lock),
            FieldCipher(FieldKeys.generate()),
            clock,
        )
        self.engine, self.clock = engine, clock
        columns = {c.name: c.type for c in CUSTOMERS.columns}
        con = self.warehouse.cursor()
        con.execute(ddl("duckdb", "customers", columns))
        con.execute("INSERT INTO customers (cust_no) VALUES ('C1'), ('C2')")
        self.identity.link_customers([{"cust_no": "C1"}, {"cust_no": "C2"}], source="test")
        self.segments = SegmentService(
            SqlSegmentRepository(engine),
            DuckDBSegmentWarehouse(self.warehouse.cursor, self.warehouse.write_lock),
            clock,
            catalog=ONE_ID_CATALOG,
        )
        self.fans = self.segments.save("基金关注", FANS).segment_id

    def processor(self, store: SqlStreamStore | None = None) -> tuple[StreamProcessor, SegmentEvents]:
        """A processor as `marketloop serve` wires it, with fresh memory (a restart)."""
        membership = SegmentMembership(
            skipping_broken(self.segments.membership),
            LookupFacts(DuckDBCustomerFacts(self.warehouse.cursor, self.clock.monotonic)),
            self.clock,
        )
        events = SegmentEvents(
            membership,
            self.log,
            self.clock,
            realtime=lambda: frozenset({self.fans, "seg_missing"}),
            name_of=lambda i: self.segments.get(i).name,
        )
        processor = StreamProcessor(
            self.log,
            store or SqlStreamStore(self.engine),
            SqlTriggerRepository(self.engine),
            self.clock,
            resolver=self.identity,
            segment_events=events,
        )
        return processor, events

    def load(self) -> None:
        Loader(self.log, self.warehouse, self.clock, min_batch=1, resolver=self.identity).drain()

    def segment_events(self) -> list[Event]:
        found = []
        for partition in range(self.log.partitions):
            for value in self.log.read_values(partition, -1, 100_000):
                decoded = msgspec.json.decode(value, type=Event)
                if decoded.event in ("segment_entered", "segment_exited"):
                    found.append(decoded)
        return sorted(found, key=lambda e: (e.timestamp, e.message_id))

    def close(self) -> None:
        self.log.close_sync()
        self.warehouse.close()


@pytest.fixture
def stores(tmp_path: Path, engine: sa.Engine, clock: FrozenClock) -> Iterator[_Stores]:
    opened = _Stores(tmp_path, engine, clock)
    yield opened
    opened.close()


def _app(name: str, minute: float, user: str, **properties: Any) -> Event:
    return event(name, T0 + minutes(minute), user=user, message_id=f"{user}-{name}-{minute}", **properties)


def test_qualifying_event_appends_segment_entered_in_its_own_batch(stores: _Stores, clock: FrozenClock) -> None:
    processor, _ = stores.processor()
    # The app logs in with its own user id; OneID ties it to the customer number.
    append(stores.log, identify(T0, user="U1", cust_no="C1"), _app("fund_page_view", 1, "U1"))
    append(stores.log, _app("fund_page_view", 2, "U1"), _app("fund_page_view", 1, "U9"))
    processor.drain()
    assert stores.segment_events() == []  # not yet a member; U9 is no customer at all

    clock.advance(timedelta(milliseconds=200))
    append(stores.log, _app("fund_page_view", 3, "U1"))
    processor.process_partition(0)  # one batch: the cause's; the loader has not run
    (entered,) = stores.segment_events()
    assert entered.event == "segment_entered"
    assert entered.message_id == f"segment_entered:{stores.fans}:U1-fund_page_view-3"
    assert entered.timestamp == T0 + minutes(3)
    assert entered.received_at == clock.now()  # appended by the batch that processed the cause
    assert entered.traits == {"cust_no": "C1"}
    assert entered.properties == {
        "segment_id": stores.fans,
        "segment_name": "基金关注",
        "segment_version": 1,
        "cause": "U1-fund_page_view-3",
    }

    append(stores.log, _app("buy_fund", 10, "U1"))
    processor.drain()
    exited = stores.segment_events()[-1]
    assert (exited.event, exited.properties["cause"]) == ("segment_exited", "U1-buy_fund-10")
    assert len(stores.segment_events()) == 2


def test_restart_appends_nothing_again_and_reads_loaded_events(stores: _Stores) -> None:
    first, _ = stores.processor()
    append(stores.log, identify(T0, user="U1", cust_no="C1"), identify(T0, user="U2", cust_no="C2"))
    append(stores.log, *(_app("fund_page_view", n, "U1") for n in (1, 2, 3)))
    append(stores.log, *(_app("fund_page_view", n, "U2") for n in (1, 2)))
    first.drain()
    assert [e.traits["cust_no"] for e in stores.segment_events()] == ["C1"]
    stores.load()

    restarted, events = stores.processor()  # nothing in memory: U2's two views come from the warehouse
    restarted.drain()
    assert events.appended == 0
    append(stores.log, _app("fund_page_view", 4, "U2"))
    restarted.drain()
    assert [(e.event, e.traits["cust_no"]) for e in stores.segment_events()] == [
        ("segment_entered", "C1"),
        ("segment_entered", "C2"),
    ]


class _CrashingStore(SqlStreamStore):
    """Crashes once, before the commit of the first batch that has a change event to publish."""

    def __init__(self, engine: sa.Engine, events: list[SegmentEvents]) -> None:
        super().__init__(engine)
        self.events = events
        self.crashed = False

    def commit(self, commit: Commit) -> None:
        if not self.crashed and self.events and self.events[0].appended:
            self.crashed = True
            raise RuntimeError("power cut")
        super().commit(commit)


def test_crash_between_append_and_commit_reappends_the_same_ids_kept_once(stores: _Stores, engine: sa.Engine) -> None:
    watched: list[SegmentEvents] = []
    store = _CrashingStore(engine, watched)
    processor, events = stores.processor(store)
    watched.append(events)
    append(stores.log, identify(T0, user="U1", cust_no="C1"))
    processor.drain()
    append(stores.log, *(_app("fund_page_view", n, "U1") for n in (1, 2, 3)))
    with pytest.raises(RuntimeError, match="power cut"):
        processor.drain()
    processor.drain()  # the batch again: the same change, the same message id
    appended = stores.segment_events()
    assert len(appended) == 2  # appended twice: before the crash and by the replay
    assert len({e.message_id for e in appended}) == 1
    stores.load()
    rows = stores.warehouse.cursor().execute("SELECT count(*) FROM events WHERE event = 'segment_entered'").fetchone()
    assert rows == (1,)
    restarted, again = stores.processor()
    restarted.drain()
    assert again.appended == 0


def test_stop_after_the_log_closed_leaves_the_batch_for_the_next_start(
    stores: _Stores, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    processor, _ = stores.processor()
    append(stores.log, identify(T0, user="U1", cust_no="C1"))
    processor.drain()
    append(stores.log, *(_app("fund_page_view", n, "U1") for n in (1, 2, 3)))
    stores.log.close_sync()  # serve closes the log, then stops the processor (which drains)
    processor.stop()
    assert "processed at the next start" in caplog.text
    assert processor.lag(0) + processor.lag(1) == 3  # nothing of the batch committed

    stores.log = FileLog(tmp_path / "log", partitions=2)
    restarted, events = stores.processor()

    async def drain_inside_a_running_loop() -> None:  # as `Container.aclose` would
        restarted.drain()

    asyncio.run(drain_inside_a_running_loop())
    assert events.appended == 1
    assert [e.event for e in stores.segment_events()] == ["segment_entered"]
