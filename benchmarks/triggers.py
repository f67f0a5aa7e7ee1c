"""Event-to-trigger-fire latency of the stream processor at a steady event rate, against a raw loop.

What it does:

1. opens a real FileLog (2 partitions) and a SQLite operational store in a
   temp dir, and saves two triggers: an event trigger with a property filter
   (a large transfer in) and an absence trigger (viewed a product's detail
   page, did not buy within `--absence-seconds`);
2. starts the stream processor's thread and appends simulated events of
   `--customers` customers at `--rate` events/s for `--seconds` seconds (one
   durable append every 10 ms, as the collection API would), stamping each
   event's `received_at` just before its append;
3. measures, from the fires the processor committed (`trigger_fires`):
   - event fires: `recorded_at` (commit time) - `received_at` of the event
     that made it fire, i.e. accepted -> outbox row;
   - absence fires: `recorded_at` - the due time of the timer;
4. then, as the raw baseline in the same run, times a hand-written Python
   loop doing the same detection over the same records (msgspec decode, a
   dict of open episodes, a heap of deadlines), and the processor's own
   catch-up rate on the same records in a fresh store (a backlog, not paced).

Prints one JSON line. Target: fires within seconds (p99 well under 1 s).
`--quick` runs 200 events/s for 10 s. `--oneid` keys customers by OneID as
`marketloop serve` does (the identity graph in memory; serve also persists
new links to DuckDB); the catch-up and raw loop rows stay without it.
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import json
import random
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import orjson

from marketloop.adapters.clock import SystemClock
from marketloop.adapters.filelog import FileLog
from marketloop.adapters.sql.engine import create_engine, upgrade
from marketloop.adapters.sql.realtime import SqlStreamStore, SqlTriggerRepository
from marketloop.core.events import Event
from marketloop.identity.service import IdentityService
from marketloop.journeys.processor import StreamProcessor
from marketloop.journeys.service import TriggerService
from marketloop.security.crypto import FieldCipher, FieldKeys
from marketloop.testing.identity import MemoryIdentityStore

INFLOW = {
    "kind": "event",
    "id": "big-inflow",
    "expect": [{"event": "transfer_in", "where": [{"property": "amount", "op": "gte", "value": 50000}]}],
}


def absence(seconds: float) -> dict[str, Any]:
    return {
        "kind": "event",
        "id": "no-purchase",
        "posture": "proactive",
        "after": [{"event": "detail_view"}],
        "expect": [{"event": "purchase"}],
        "within": seconds,
    }


NAMES = ("fund_view", "detail_view", "purchase", "transfer_in", "login", "yield_calc")
WEIGHTS = (30, 15, 5, 10, 30, 10)


def make_event(rng: random.Random, number: int, customers: int, now: datetime) -> Event:
    name = rng.choices(NAMES, WEIGHTS)[0]
    properties: dict[str, Any] = {"product": f"WM{rng.randrange(20)}"}
    if name == "transfer_in":
        properties["amount"] = rng.choice((1000, 20000, 80000, 300000))
    return Event(
        message_id=f"m{number}",
        type="track",
        source_id="bench",
        received_at=now,
        timestamp=now,
        event=name,
        user_id=f"C{rng.randrange(customers):07d}",
        properties=properties,
    )


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def produce(log: FileLog, args: argparse.Namespace, received: dict[str, datetime]) -> tuple[int, float]:
    """Append events at `args.rate`/s for `args.seconds` s; returns (events, seconds taken)."""
    rng = random.Random(7)
    tick = 0.01
    per_tick = args.rate * tick
    owed, number = 0.0, 0
    started = time.monotonic()
    while (elapsed := time.monotonic() - started) < args.seconds:
        owed += per_tick
        count, owed = int(owed), owed - int(owed)
        groups: dict[int, list[bytes]] = {}
        now = datetime.now(UTC)
        for _ in range(count):
            event = make_event(rng, number, args.customers, now)
            number += 1
            received[event.message_id] = now
            groups.setdefault(int((event.user_id or "C0")[1:]) % log.partitions, []).append(msgspec.json.encode(event))
        for partition, records in groups.items():
            await log.append(partition, records)
        await asyncio.sleep(max(0.0, started + (elapsed // tick + 1) * tick - time.monotonic()))
    return number, time.monotonic() - started


def open_store(path: Path, absence_seconds: float) -> tuple[Any, SqlStreamStore, SqlTriggerRepository]:
    engine = create_engine(f"sqlite:///{path}")
    upgrade(engine)
    store, repository = SqlStreamStore(engine), SqlTriggerRepository(engine)
    service = TriggerService(repository, SystemClock(), store=store)
    service.save(INFLOW)
    service.save(absence(absence_seconds))
    return engine, store, repository


def raw_baseline(values: list[bytes], within: timedelta) -> tuple[int, float]:
    """The same detection by hand: returns (fires, seconds)."""
    decoder = msgspec.json.Decoder(Event)
    started = time.perf_counter()
    open_episodes: dict[str, datetime] = {}
    deadlines: list[tuple[datetime, str]] = []
    fires = 0
    for value in values:
        event = decoder.decode(value)
        customer = event.user_id or ""
        while deadlines and deadlines[0][0] < event.timestamp:
            due, who = heapq.heappop(deadlines)
            if open_episodes.get(who) == due:
                del open_episodes[who]
                fires += 1
        if event.event == "transfer_in" and event.properties.get("amount", 0) >= 50000:
            fires += 1
        elif event.event == "purchase":
            open_episodes.pop(customer, None)
        elif event.event == "detail_view" and customer not in open_episodes:
            due = event.timestamp + within
            open_episodes[customer] = due
            heapq.heappush(deadlines, (due, customer))
    fires += len(open_episodes)
    return fires, time.perf_counter() - started


def catch_up(log: FileLog, path: Path, absence_seconds: float) -> tuple[int, float]:
    """The processor draining the whole log into a fresh store: (records, seconds)."""
    engine, store, repository = open_store(path, absence_seconds)
    processor = StreamProcessor(log, store, repository, SystemClock())
    started = time.perf_counter()
    handled = processor.drain()
    seconds = time.perf_counter() - started
    engine.dispose()
    return handled, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=1000.0, help="events per second")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--absence-seconds", type=float, default=2.0)
    parser.add_argument("--quick", action="store_true", help="200 events/s for 10 s")
    parser.add_argument(
        "--oneid", action="store_true", help="key customers by OneID as serve does (in-memory identity store)"
    )
    args = parser.parse_args()
    if args.quick:
        args.rate, args.seconds, args.customers = 200.0, 10.0, 10_000
    with tempfile.TemporaryDirectory(prefix="marketloop-bench-triggers-") as folder:
        print(json.dumps(run(Path(folder), args)))


def run(folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    log = FileLog(folder / "log", partitions=2)
    engine, store, repository = open_store(folder / "state.sqlite", args.absence_seconds)
    resolver = None
    if args.oneid:
        resolver = IdentityService(MemoryIdentityStore(), FieldCipher(FieldKeys.generate()), SystemClock())
    processor = StreamProcessor(log, store, repository, SystemClock(), poll_seconds=0.005, resolver=resolver)
    received: dict[str, datetime] = {}
    processor.start()
    try:
        events, took = asyncio.run(produce(log, args, received))
        time.sleep(args.absence_seconds + 1.0)  # let the last absences come due
    finally:
        processor.stop()
    fires = store.fires(limit=10_000_000)
    event_ms = [
        (f.recorded_at - received[orjson.loads(f.cause)[-1]]).total_seconds() * 1000
        for f in fires
        if f.reason == "event"
    ]
    absence_ms = [(f.recorded_at - f.fired_at).total_seconds() * 1000 for f in fires if f.reason == "absence"]
    values = [v for p in range(log.partitions) for v in log.read_values(p, -1, 10_000_000)]
    baseline_fires, baseline_seconds = raw_baseline(values, timedelta(seconds=args.absence_seconds))
    drained, drain_seconds = catch_up(log, folder / "catch-up.sqlite", args.absence_seconds)
    log.close_sync()
    engine.dispose()
    return {
        "benchmark": "triggers",
        "rate_target": args.rate,
        "achieved_rate": round(events / took, 1),
        "seconds": round(took, 1),
        "events": events,
        "customers": args.customers,
        "oneid": args.oneid,
        "event_fires": len(event_ms),
        "absence_fires": len(absence_ms),
        "p50_ms": round(percentile(event_ms, 0.5), 2),
        "p99_ms": round(percentile(event_ms, 0.99), 2),
        "absence_p50_ms": round(percentile(absence_ms, 0.5), 2),
        "absence_p99_ms": round(percentile(absence_ms, 0.99), 2),
        "processor_catch_up_events_per_s": round(drained / drain_seconds, 1),
        "raw_loop_events_per_s": round(len(values) / baseline_seconds, 1),
        "raw_loop_fires": baseline_fires,
        "processor_fires": len(fires),
        "raw_over_processor": round((len(values) / baseline_seconds) / (drained / drain_seconds), 1),
    }


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    main()
