"""Journey runtime throughput: trigger fires -> entered -> a push touch -> exited, on the stores `serve` uses.

What it does:

1. opens the SQLite operational store in a temp dir and writes `--customers`
   trigger fires to `trigger_fires` (as the stream processor commits them);
2. publishes a journey entry (that trigger) -> send (push) -> exit, with the
   real send service (contact policy with consent granted, idempotent delivery
   ledger) over the public in-memory channel and SQL-free policy fakes;
3. times `JourneyRunner.drain()` until every customer has exited, and checks
   that every customer got exactly one push;
4. as the raw baseline in the same run: the same sends called directly in a
   loop (no journey state, no commit per instance).

Prints one JSON line with `customers_per_s` and the baseline's rate. This is
NOT the issue's `benchmarks/journey_throughput.py` (a scheduled batch journey
over 1M customers): batch entries are not built yet. `--quick`: 1,000 customers.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson

from marketloop.adapters.sql.engine import create_engine, upgrade
from marketloop.adapters.sql.journeys import SqlJourneyStore
from marketloop.adapters.sql.realtime import SqlStreamStore
from marketloop.core.consent import Channel as ChannelKind
from marketloop.core.consent import ConsentStatus, Purpose
from marketloop.journeys.channels.registry import ChannelRegistry, ConfiguredChannel
from marketloop.journeys.channels.sending import Message, SendRequest
from marketloop.journeys.channels.service import SendService
from marketloop.journeys.definitions import JourneyDefinitions
from marketloop.journeys.policy.rules import DEFAULT_POLICY
from marketloop.journeys.policy.service import ContactPolicyService
from marketloop.journeys.runner import JourneyRunner
from marketloop.journeys.runtime import JourneyRuntime
from marketloop.journeys.walk import Walker
from marketloop.policy.consent import ConsentService
from marketloop.ports.realtime import Commit, StoredFire
from marketloop.testing.channels import (
    InMemoryChannel,
    InMemoryConsentStore,
    InMemoryContactHistory,
    InMemoryDeliveryLedger,
    InMemorySuppressionLists,
)
from marketloop.testing.clock import FrozenClock

MORNING = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
JOURNEY = {
    "id": "bench",
    "name": "bench",
    "steps": [
        {
            "id": "entry",
            "type": "entry",
            "settings": {"source": "trigger", "trigger_id": "t"},
            "next": {"next": "push"},
        },
        {
            "id": "push",
            "type": "send",
            "settings": {"channel": "push", "template": "您好"},
            "next": {"sent": "done", "suppressed": "done", "failed": "done"},
        },
        {"id": "done", "type": "exit"},
    ],
}


def _sends(clock: FrozenClock, customers: list[str]) -> tuple[SendService, InMemoryChannel]:
    consent = ConsentService(InMemoryConsentStore(), clock)
    for customer in customers:
        consent.record(customer, ChannelKind.PUSH, Purpose.MARKETING, ConsentStatus.GRANTED, source="bench")
    policy = ContactPolicyService(
        InMemoryContactHistory(), InMemorySuppressionLists(), consent, clock, policy=DEFAULT_POLICY
    )
    push = InMemoryChannel("push", ChannelKind.PUSH)
    registry = ChannelRegistry([ConfiguredChannel(name="push", kind=push.kind, channel=push, description="fake")])
    return SendService(registry, InMemoryDeliveryLedger(), policy, clock), push


def _fires(count: int, clock: FrozenClock) -> list[StoredFire]:
    context = orjson.dumps({"properties": {"addresses": {"push": "token"}}})
    now = clock.now()
    return [
        StoredFire(
            fire_id=f"f{n}",
            trigger_id="t",
            customer=f"C{n}",
            partition=0,
            fired_at=now,
            recorded_at=now,
            reason="event",
            context=context,
        )
        for n in range(count)
    ]


def run(customers: int) -> dict[str, object]:
    clock = FrozenClock(MORNING)
    names = [f"C{n}" for n in range(customers)]
    with tempfile.TemporaryDirectory(prefix="marketloop-bench-") as folder:
        engine = create_engine(f"sqlite:///{Path(folder) / 'state.sqlite'}")
        upgrade(engine)
        definitions = JourneyDefinitions(SqlJourneyStore(engine), clock)
        definitions.save(JOURNEY)
        definitions.publish("bench")
        SqlStreamStore(engine).commit(Commit(consumer="stream", fires=_fires(customers, clock)))
        sends, push = _sends(clock, names)
        runner = JourneyRunner(JourneyRuntime(definitions, Walker(sends.send), clock), None)
        started = time.perf_counter()
        runner.drain()
        seconds = time.perf_counter() - started
        exited = definitions.counts("bench")["done"]["exited"]
        engine.dispose()
    once = len({t.customer for t in push.sent}) == customers == len(push.sent) == exited
    raw_sends, _ = _sends(clock, names)
    started = time.perf_counter()
    for name in names:
        request = SendRequest(
            idempotency_key=f"raw:{name}",
            customer=name,
            channel="push",
            message=Message(text="您好"),
            addresses={ChannelKind.PUSH: "token"},
        )
        raw_sends.send(request)
    raw_seconds = time.perf_counter() - started
    return {
        "benchmark": "journey_runtime",
        "customers": customers,
        "seconds": round(seconds, 3),
        "customers_per_s": round(customers / seconds, 1),
        "each_sent_once": once,
        "raw_send_loop_per_s": round(customers / raw_seconds, 1),
        "ratio_to_raw": round((customers / seconds) / (customers / raw_seconds), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true", help="1,000 customers")
    args = parser.parse_args()
    print(json.dumps(run(1_000 if args.quick else args.customers)))


if __name__ == "__main__":
    main()
