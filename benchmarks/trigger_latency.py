"""Event accepted -> outbox row: the stream processor, the journey runtime and the outbox at a steady rate.

M4's figure: 1M simulated customers, 5,000 events/s for at least 60 s, event
and absence triggers active; `p50_ms` / `p99_ms` from event accepted to the
touch's outbox row. Target p99 ≤ 200 ms (stretch 100 ms).

What it does:

1. a real FileLog (2 partitions), its re-partition by OneID (a second FileLog,
   as `marketloop serve` keys it) and an SQLite operational store (migrated by
   Alembic) in a temp dir; the two triggers of `benchmarks/triggers.py` (a
   large transfer in; viewed a product's detail page and did not buy within
   `--absence-seconds`); two published journeys, one per trigger: entry ->
   send (in-app message / RM task) -> exit;
2. the stream processor and the journey runner run in their threads as in
   `marketloop serve`, the processor handing its fires to the runner; the
   outbox dispatcher runs as `marketloop serve` runs it (`--dispatcher
   process`, default: a child `marketloop dispatch` on the same store, sending
   to the stored in-app inbox and RM tasks through the real send service and
   SQL ledger, contact history, lists and consent), or as a thread in this
   process (`thread`, to in-memory channels), or not at all (`off`);
3. simulated events of `--customers` customers are appended at `--rate`/s for
   `--seconds` s (a durable append every 10 ms, as the collection API does),
   each stamped with its `received_at` just before the append;
4. for every outbox row: its `created_at` (stamped in the walk whose
   transaction writes it) minus, for an event trigger, the `received_at` of the
   event that fired it, and for an absence, the due time of the timer.

Raw baseline in the same run: the processor's fire rows alone (event accepted
-> fire row), i.e. what the journey and the outbox add on top. `--quick`:
500 events/s for 10 s over 10,000 customers. `--oneid`: customers by OneID.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).parent))
from marketloop.adapters.clock import SystemClock
from marketloop.adapters.filelog import FileLog
from marketloop.adapters.sql.channel_tables import channel_deliveries
from marketloop.adapters.sql.consent import SqlConsentStore
from marketloop.adapters.sql.contact_policy import SqlContactHistory, SqlSuppressionLists
from marketloop.adapters.sql.deliveries import SqlDeliveryLedger
from marketloop.adapters.sql.journeys import SqlJourneyStore, journey_consumed_fires, journey_instances, journey_outbox
from marketloop.app.dispatch import DispatcherProcess
from marketloop.core.consent import Channel as ChannelKind
from marketloop.identity.service import IdentityService
from marketloop.journeys.channels.registry import ChannelRegistry, ConfiguredChannel
from marketloop.journeys.channels.service import SendService
from marketloop.journeys.definitions import JourneyDefinitions
from marketloop.journeys.keyed import Repartitioner
from marketloop.journeys.outbox import OutboxDispatcher
from marketloop.journeys.policy.service import ContactPolicyService
from marketloop.journeys.processor import StreamProcessor
from marketloop.journeys.runner import JourneyRunner
from marketloop.journeys.runtime import JourneyRuntime
from marketloop.journeys.walk import Walker
from marketloop.policy.consent import ConsentService
from marketloop.security.crypto import FieldCipher, FieldKeys
from marketloop.testing.channels import InMemoryChannel
from marketloop.testing.identity import MemoryIdentityStore
from triggers import open_store, percentile, produce


def journey(journey_id: str, trigger_id: str, channel: str) -> dict[str, Any]:
    return {
        "id": journey_id,
        "name": journey_id,
        "steps": [
            {
                "id": "entry",
                "type": "entry",
                "settings": {"source": "trigger", "trigger_id": trigger_id, "re_entry": "always"},
                "next": {"next": "touch"},
            },
            {
                "id": "touch",
                "type": "send",
                "settings": {"channel": channel, "template": "您有一条新的理财提醒", "purpose": "service"},
                "next": {"sent": "done", "suppressed": "done", "failed": "done"},
            },
            {"id": "done", "type": "exit"},
        ],
    }


def runner_for(engine: sa.Engine, clock: SystemClock, *, dispatch: bool) -> tuple[JourneyRunner, list[InMemoryChannel]]:
    definitions = JourneyDefinitions(SqlJourneyStore(engine), clock)
    for document in (journey("inflow", "big-inflow", "inapp"), journey("no_purchase", "no-purchase", "rm")):
        definitions.save(document)
        definitions.publish(document["id"])
    # the in-app inbox and RM tasks address the customer by number: every touch can be sent
    channels = [InMemoryChannel("inapp", ChannelKind.INAPP), InMemoryChannel("rm", ChannelKind.RM)]
    registry = ChannelRegistry(
        [ConfiguredChannel(name=c.name, kind=c.kind, channel=c, description="fake") for c in channels]
    )
    policy = ContactPolicyService(
        SqlContactHistory(engine), SqlSuppressionLists(engine), ConsentService(SqlConsentStore(engine), clock), clock
    )
    sends = SendService(registry, SqlDeliveryLedger(engine), policy, clock)
    runtime = JourneyRuntime(definitions, Walker(), clock)
    dispatcher = OutboxDispatcher(definitions.store, sends.send_many, sends.send, clock)
    return JourneyRunner(runtime, None, dispatcher if dispatch else None, poll_seconds=0.02), channels


def latencies(
    engine: sa.Engine, fires: dict[str, Any], received: dict[str, datetime]
) -> tuple[list[float], list[float], list[float]]:
    """(event trigger ms, absence ms, fire row -> outbox row ms) per outbox row, through the instance's cause
    (the fire)."""
    box, runs = journey_outbox.c, journey_instances.c
    query = sa.select(box.created_at, runs.cause).join(
        journey_instances,
        sa.and_(runs.journey_id == box.journey_id, runs.customer == box.customer, runs.run == box.run),
    )
    by_event: list[float] = []
    by_absence: list[float] = []
    after_fire: list[float] = []
    with engine.connect() as connection:
        for created_at, cause in connection.execute(query):
            fire = fires[cause]
            at = created_at.replace(tzinfo=fire.recorded_at.tzinfo)
            after_fire.append((at - fire.recorded_at).total_seconds() * 1000)
            if fire.reason == "absence":
                by_absence.append((at - fire.fired_at).total_seconds() * 1000)
            else:
                by_event.append((at - received[orjson.loads(fire.cause)[-1]]).total_seconds() * 1000)
    return by_event, by_absence, after_fire


def run(folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    clock = SystemClock()
    log = FileLog(folder / "log", partitions=2)
    engine, store, repository = open_store(folder / "state.sqlite", args.absence_seconds)
    resolver = None
    if args.oneid:
        resolver = IdentityService(MemoryIdentityStore(), FieldCipher(FieldKeys.generate()), clock)
    # as serve runs it: the processor reads the log re-partitioned by OneID (journeys.keyed), keying each round
    keyed = FileLog(folder / "keyed", partitions=2)
    keyer = Repartitioner(log, keyed, store, clock, resolver=resolver)
    processor = StreamProcessor(log, store, repository, clock, poll_seconds=0.005, keyer=keyer)
    runner, channels = runner_for(engine, clock, dispatch=args.dispatcher == "thread")
    child = DispatcherProcess(folder, None) if args.dispatcher == "process" else None
    processor.on_fires(runner.wake)
    received: dict[str, datetime] = {}
    processor.start()
    runner.start()
    if child is not None:
        child.start()
    try:
        events, took = asyncio.run(produce(log, args, received))
        time.sleep(args.absence_seconds + 2.0)  # let the last absences come due and reach the outbox
    finally:
        processor.stop()
        runner.stop()
        if child is not None:
            child.stop()
    fires = {f.fire_id: f for f in store.fires(limit=10_000_000)}
    event_ms, absence_ms, journey_ms = latencies(engine, fires, received)
    with engine.connect() as connection:
        consumed = connection.execute(sa.select(sa.func.count()).select_from(journey_consumed_fires)).scalar()
        runs = connection.execute(sa.select(sa.func.count()).select_from(journey_instances)).scalar()
        delivered = 0
        if child is not None:  # the child sent to the stored in-app inbox and RM tasks: count its ledger rows
            delivered = int(
                connection.execute(sa.select(sa.func.count()).select_from(channel_deliveries)).scalar() or 0
            )
    fire_ms = [
        (f.recorded_at - received[orjson.loads(f.cause)[-1]]).total_seconds() * 1000
        for f in fires.values()
        if f.reason == "event"
    ]
    log.close_sync()
    keyed.close_sync()
    engine.dispose()
    rows = len(event_ms) + len(absence_ms)
    return {
        "benchmark": "trigger_latency",
        "rate_target": args.rate,
        "achieved_rate": round(events / took, 1),
        "seconds": round(took, 1),
        "events": events,
        "customers": args.customers,
        "oneid": args.oneid,
        "dispatcher": args.dispatcher,
        "fires": len(fires),
        "fires_consumed": consumed,
        "runs": runs,  # a fire for a customer whose previous run is still open is consumed without an entry
        "outbox_rows": rows,
        "every_fire_consumed_every_run_queued": consumed == len(fires) and rows == runs,
        "sent": sum(len(c.sent) for c in channels) + delivered,
        "p50_ms": round(percentile(event_ms, 0.5), 2),
        "p99_ms": round(percentile(event_ms, 0.99), 2),
        "absence_p50_ms": round(percentile(absence_ms, 0.5), 2),
        "absence_p99_ms": round(percentile(absence_ms, 0.99), 2),
        "baseline_fire_row_p50_ms": round(percentile(fire_ms, 0.5), 2),
        "baseline_fire_row_p99_ms": round(percentile(fire_ms, 0.99), 2),
        # the journey's part: fire row -> outbox row (admission, walk, commit), every fire kind
        "fire_to_outbox_p50_ms": round(percentile(journey_ms, 0.5), 2),
        "fire_to_outbox_p99_ms": round(percentile(journey_ms, 0.99), 2),
        "target_p99_ms": 200,
        "meets_target": consumed == len(fires) and rows == runs and percentile(event_ms, 0.99) <= 200,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=5000.0, help="events per second")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--absence-seconds", type=float, default=2.0)
    parser.add_argument("--quick", action="store_true", help="500 events/s for 10 s, 10,000 customers")
    parser.add_argument("--oneid", action="store_true", help="key customers by OneID as serve does")
    parser.add_argument(
        "--dispatcher",
        choices=("process", "thread", "off"),
        default="process",
        help="where touches are sent: a child `marketloop dispatch` as serve runs it, a thread here, or nowhere",
    )
    args = parser.parse_args()
    if args.quick:
        args.rate, args.seconds, args.customers = 500.0, 10.0, 10_000
    with tempfile.TemporaryDirectory(prefix="marketloop-bench-latency-") as folder:
        print(json.dumps(run(Path(folder), args)))


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    main()
