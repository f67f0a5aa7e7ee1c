"""Real-time segment membership: event accepted -> segment_entered / segment_exited appended, against a raw loop.

What it does:

1. opens the stores `marketloop serve` uses, in a temp dir: a FileLog (2
   partitions), the DuckDB warehouse with `customers` and OneID, the SQLite
   operational store; saves `--segments` segments of the form
   "did E at least K times within 10m and not did buy_fund within 10m" and
   makes them real-time (`[stream] realtime_segments`);
2. appends one identify per customer (app login id U… -> cust_no C…), lets
   the processor and the loader take them in (membership recorded, nothing
   entered), then starts the processor and the loader threads, wired as
   `serve` wires them (DuckDB facts looked up per batch, events not yet
   loaded from the batch and the processor's memory);
3. appends simulated app events of `--customers` customers at `--rate`
   events/s for `--seconds` s (a durable append every 10 ms, as the
   collection API does) and notes when each append returned (accepted);
4. measures accepted -> the change event's durable append returned, for
   every segment_entered / segment_exited the processor appended;
5. as the raw baseline in the same run: the segment evaluator
   (`Membership.update`) called directly in a loop on the same events, with
   each customer's events held in a Python list — what the processor's
   per-event work would cost with no log, no SQL, no state store — and the
   number of changes it finds (the processor must find the same).

Prints one JSON line. `--quick`: 200 events/s for 10 s, 2,000 customers, 5 segments.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec

from marketloop.adapters.clock import SystemClock
from marketloop.adapters.duckdb_customer_facts import DuckDBCustomerFacts
from marketloop.adapters.duckdb_identity import DuckDBIdentityStore
from marketloop.adapters.duckdb_segments import DuckDBSegmentWarehouse
from marketloop.adapters.duckdb_warehouse import DuckDBWarehouse
from marketloop.adapters.filelog import FileLog
from marketloop.adapters.sql.engine import create_engine, upgrade
from marketloop.adapters.sql.realtime import SqlStreamStore, SqlTriggerRepository
from marketloop.adapters.sql.segments import SqlSegmentRepository
from marketloop.collect.loader import Loader
from marketloop.core.bank import CUSTOMERS
from marketloop.core.events import Event
from marketloop.identity.service import IdentityService
from marketloop.journeys.membership import LookupFacts, SegmentMembership
from marketloop.journeys.processor import StreamProcessor
from marketloop.journeys.segment_events import SOURCE, SegmentEvents, skipping_broken
from marketloop.security.crypto import FieldCipher, FieldKeys
from marketloop.segments.catalog import ONE_ID_CATALOG
from marketloop.segments.evaluate import CustomerFacts, EventFact
from marketloop.segments.service import SegmentService
from marketloop.testing.segments import ddl

NAMES = ("fund_page_view", "wealth_view", "login", "buy_fund", "yield_calc")
WEIGHTS = (35, 25, 25, 5, 10)
_decoder = msgspec.json.Decoder(Event)


def definition(number: int) -> str:
    name = NAMES[number % 3]
    return f"did {name} at least {2 + number % 3} times within 10m and not did buy_fund within 10m"


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class TimedLog:
    """The EventLog given to `SegmentEvents`: notes when each change event's durable append returned."""

    def __init__(self, log: FileLog, appended: dict[str, tuple[str, float]]) -> None:
        self._log = log
        self.appended = appended  # change message id -> (cause message id, perf_counter)

    @property
    def partitions(self) -> int:
        return self._log.partitions

    async def append(self, partition: int, records: Sequence[bytes]) -> int:
        offset = await self._log.append(partition, records)
        now = time.perf_counter()
        for record in records:
            event = _decoder.decode(record)
            self.appended[event.message_id] = (str(event.properties["cause"]), now)
        return offset

    def end_offset(self, partition: int) -> int:
        return self._log.end_offset(partition)

    def read_values(self, partition: int, after: int, max_records: int) -> list[bytes]:
        return self._log.read_values(partition, after, max_records)


class Bench:
    def __init__(self, folder: Path, args: argparse.Namespace) -> None:
        self.args = args
        self.clock = SystemClock()
        self.log = FileLog(folder / "log", partitions=2)
        self.warehouse = DuckDBWarehouse(folder / "warehouse" / "events.duckdb")
        self.identity = IdentityService(
            DuckDBIdentityStore(self.warehouse.cursor, self.warehouse.write_lock),
            FieldCipher(FieldKeys.generate()),
            self.clock,
        )
        self.engine = create_engine(f"sqlite:///{folder / 'state.sqlite'}")
        upgrade(self.engine)
        con = self.warehouse.cursor()
        con.execute(ddl("duckdb", "customers", {c.name: c.type for c in CUSTOMERS.columns}))
        con.execute(
            "INSERT INTO customers (cust_no) SELECT 'C' || lpad(i::VARCHAR, 7, '0') FROM range($n) AS t(i)",
            {"n": args.customers},
        )
        self.identity.link_customers(({"cust_no": f"C{n:07d}"} for n in range(args.customers)), source="benchmark")
        self.segments = SegmentService(
            SqlSegmentRepository(self.engine),
            DuckDBSegmentWarehouse(self.warehouse.cursor, self.warehouse.write_lock),
            self.clock,
            catalog=ONE_ID_CATALOG,
        )
        self.segment_ids = frozenset(
            self.segments.save(f"bench {n}", definition(n)).segment_id for n in range(args.segments)
        )
        self.appended: dict[str, tuple[str, float]] = {}
        self.events = SegmentEvents(
            SegmentMembership(
                skipping_broken(self.segments.membership),
                LookupFacts(DuckDBCustomerFacts(self.warehouse.cursor, self.clock.monotonic)),
                self.clock,
            ),
            TimedLog(self.log, self.appended),
            self.clock,
            realtime=lambda: self.segment_ids,
            name_of=lambda i: self.segments.get(i).name,
        )
        self.processor = StreamProcessor(
            self.log,
            SqlStreamStore(self.engine),
            SqlTriggerRepository(self.engine),
            self.clock,
            resolver=self.identity,
            segment_events=self.events,
            poll_seconds=0.005,
        )
        self.loader = Loader(self.log, self.warehouse, self.clock, min_batch=1, max_wait=1.0, resolver=self.identity)

    def partition(self, customer: int) -> int:
        return customer % self.log.partitions

    async def identify_all(self) -> None:
        now = datetime.now(UTC) - timedelta(hours=1)
        groups: dict[int, list[bytes]] = {}
        for n in range(self.args.customers):
            event = Event(
                message_id=f"id{n}",
                type="identify",
                source_id="bench",
                received_at=now,
                timestamp=now,
                user_id=f"U{n}",
                traits={"cust_no": f"C{n:07d}"},
            )
            groups.setdefault(self.partition(n), []).append(msgspec.json.encode(event))
        for partition, records in groups.items():
            await self.log.append(partition, records)

    async def produce(self, accepted: dict[str, float]) -> tuple[int, float]:
        rng = random.Random(11)
        tick, per_tick = 0.01, self.args.rate * 0.01
        owed, number = 0.0, 0
        started = time.monotonic()
        while (elapsed := time.monotonic() - started) < self.args.seconds:
            owed += per_tick
            count, owed = int(owed), owed - int(owed)
            groups: dict[int, list[tuple[str, bytes]]] = {}
            now = datetime.now(UTC)
            for _ in range(count):
                customer = rng.randrange(self.args.customers)
                event = Event(
                    message_id=f"m{number}",
                    type="track",
                    source_id="bench",
                    received_at=now,
                    timestamp=now,
                    event=rng.choices(NAMES, WEIGHTS)[0],
                    user_id=f"U{customer}",
                )
                number += 1
                groups.setdefault(self.partition(customer), []).append((event.message_id, msgspec.json.encode(event)))
            await asyncio.gather(*(self._append(p, records, accepted) for p, records in groups.items()))
            await asyncio.sleep(max(0.0, started + (elapsed // tick + 1) * tick - time.monotonic()))
        return number, time.monotonic() - started

    async def _append(self, partition: int, records: list[tuple[str, bytes]], accepted: dict[str, float]) -> None:
        await self.log.append(partition, [record for _, record in records])
        now = time.perf_counter()
        for message_id, _ in records:
            accepted[message_id] = now

    def wait_caught_up(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self.processor.lag(p) == 0 for p in range(self.log.partitions)):
                return
            time.sleep(0.05)

    def timed_events(self) -> list[Event]:
        found = []
        for partition in range(self.log.partitions):
            for value in self.log.read_values(partition, -1, 10_000_000):
                event = _decoder.decode(value)
                if event.type == "track" and event.source_id != SOURCE:
                    found.append(event)
        return sorted(found, key=lambda e: (e.timestamp, int(e.message_id[1:])))

    def close(self) -> None:
        self.log.close_sync()
        self.warehouse.close()
        self.engine.dispose()


def raw_baseline(bench: Bench, events: list[Event]) -> dict[str, Any]:
    """The evaluator called directly per event on in-memory event lists: per-call times and changes found."""
    membership = bench.segments.membership(sorted(bench.segment_ids))
    lookback = membership.lookback
    history: dict[str, list[EventFact]] = {}
    previous: dict[str, frozenset[str]] = {}
    calls: list[float] = []
    changes = 0
    started = time.perf_counter()
    for event in events:
        cust_no = f"C{int((event.user_id or 'U0')[1:]):07d}"
        known = history.setdefault(cust_no, [])
        known.append(EventFact(event=event.event, timestamp=event.timestamp, properties=event.properties))
        while known and known[0].timestamp <= event.timestamp - lookback:
            known.pop(0)
        begun = time.perf_counter()
        facts = CustomerFacts(cust_no=cust_no, attributes={"cust_no": cust_no}, events=tuple(known))
        update = membership.update(facts, event.timestamp, previous.get(cust_no, frozenset()))
        calls.append(time.perf_counter() - begun)
        previous[cust_no] = update.segments
        changes += len(update.changes)
    seconds = time.perf_counter() - started
    return {
        "raw_changes": changes,
        "raw_call_p50_us": round(percentile(calls, 0.5) * 1e6, 1),
        "raw_call_p99_us": round(percentile(calls, 0.99) * 1e6, 1),
        "raw_events_per_s": round(len(events) / seconds) if seconds else None,
    }


def run(folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    bench = Bench(folder, args)
    try:
        asyncio.run(bench.identify_all())
        bench.processor.drain()
        bench.loader.drain()
        accepted: dict[str, float] = {}
        bench.loader.start()
        bench.processor.start()
        try:
            produced, took = asyncio.run(bench.produce(accepted))
            bench.wait_caught_up()
        finally:
            bench.processor.stop()
            bench.loader.stop()
        latencies = [at - accepted[cause] for cause, at in bench.appended.values() if cause in accepted]
        entered = sum(1 for message_id in bench.appended if message_id.startswith("segment_entered:"))
        result: dict[str, Any] = {
            "benchmark": "membership",
            "rate": round(produced / took, 1),
            "seconds": round(took, 1),
            "customers": args.customers,
            "segments": args.segments,
            "events": produced,
            "changes": len(bench.appended),
            "entered": entered,
            "exited": len(bench.appended) - entered,
            "p50_ms": round(percentile(latencies, 0.5) * 1000, 1),
            "p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
            "max_ms": round(max(latencies, default=float("nan")) * 1000, 1),
            "within_1s": round(sum(1 for v in latencies if v <= 1.0) / len(latencies), 4) if latencies else None,
        }
        result.update(raw_baseline(bench, bench.timed_events()))
        return result
    finally:
        bench.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--rate", type=float, default=1000.0, help="events per second")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--segments", type=int, default=10, help="real-time segments")
    parser.add_argument("--quick", action="store_true", help="200 events/s for 10 s, 2,000 customers, 5 segments")
    args = parser.parse_args()
    if args.quick:
        args.rate, args.seconds, args.customers, args.segments = 200.0, 10.0, 2_000, 5
    with tempfile.TemporaryDirectory(prefix="marketloop-bench-membership-") as folder:
        print(json.dumps(run(Path(folder), args)))


if __name__ == "__main__":
    main()
