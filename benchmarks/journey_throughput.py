"""Scheduled batch journey throughput: a schedule fires, 1M customers reach the outbox.

What it does (M4's figure: ≥ 20,000 customers/s into the outbox):

1. builds a DuckDB warehouse with `--customers` customers (cust_no, AUM) and an
   SQLite operational store in a temp dir (what `marketloop serve` uses
   embedded), migrated by Alembic;
2. publishes a journey: entry `schedule` (trigger `monthly`, segment
   `all_customers`) -> send (push, with the journey's own cap and priority) -> exit;
   the segment's members come from DuckDB SQL over the warehouse (as
   `SegmentService.members` does, without the snapshot bookkeeping);
3. commits the schedule's fire (customer `*`) as the stream processor does and
   times `JourneyRuntime.admit()`: the audience, the re-entry check, a new
   instance per customer walked at once, its step log and its outbox row,
   committed in chunks of 5,000 — until every customer's touch is in the outbox;
4. checks: one outbox row per customer, one instance each, counts match;
5. raw baseline in the same run: the same instance and outbox rows written by
   hand-written SQLite `executemany` (no journey logic), the floor for this store;
6. `--dispatch N`: then times the outbox dispatcher sending the first N rows
   through the real send service on the SQL stores `serve` uses (contact
   policy, consent, lists, delivery ledger; consent granted for those
   customers) to an in-memory in-app channel — the send side, reported
   separately (it is paced by the channels' rate limits in production).

Prints one JSON line. `--quick`: 20,000 customers.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import sqlalchemy as sa

from marketloop.adapters.sql.consent import SqlConsentStore
from marketloop.adapters.sql.contact_policy import SqlContactHistory, SqlSuppressionLists
from marketloop.adapters.sql.deliveries import SqlDeliveryLedger
from marketloop.adapters.sql.engine import create_engine, upgrade
from marketloop.adapters.sql.journeys import SqlJourneyStore, journey_instances, journey_outbox
from marketloop.adapters.sql.realtime import SqlStreamStore
from marketloop.core.consent import Channel as ChannelKind
from marketloop.core.consent import ConsentStatus, Purpose
from marketloop.journeys.channels.registry import ChannelRegistry, ConfiguredChannel
from marketloop.journeys.channels.service import SendService
from marketloop.journeys.definitions import JourneyDefinitions
from marketloop.journeys.outbox import OutboxDispatcher
from marketloop.journeys.policy.rules import DEFAULT_POLICY
from marketloop.journeys.policy.service import ContactPolicyService
from marketloop.journeys.runtime import JourneyRuntime
from marketloop.journeys.walk import Walker
from marketloop.policy.consent import ConsentService
from marketloop.ports.realtime import Commit, StoredFire
from marketloop.testing.channels import (
    InMemoryChannel,
)
from marketloop.testing.clock import FrozenClock

MORNING = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
JOURNEY = {
    "id": "monthly_offer",
    "name": "月度理财推荐",
    "policy": {"priority": 5, "caps": [{"limit": 2, "period": "week"}]},
    "steps": [
        {
            "id": "entry",
            "type": "entry",
            "settings": {"source": "schedule", "trigger_id": "monthly", "segment_id": "all_customers"},
            "next": {"next": "push"},
        },
        {
            "id": "push",
            "type": "send",
            "settings": {"channel": "inapp", "template": "本月理财精选 {month}", "variables": {"month": "1月"}},
            "next": {"sent": "done", "suppressed": "done", "failed": "done"},
        },
        {"id": "done", "type": "exit"},
    ],
}


def warehouse(customers: int) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    connection.execute(
        "CREATE TABLE customers AS SELECT 'C' || lpad(i::VARCHAR, 8, '0') AS cust_no, (i % 1000) * 1000.0 AS aum "
        f"FROM range({customers}) t(i)"
    )
    return connection


def audience(connection: duckdb.DuckDBPyConnection) -> list[str]:
    return [row[0] for row in connection.execute("SELECT cust_no FROM customers WHERE aum >= 0").fetchall()]


def schedule_fire(clock: FrozenClock) -> StoredFire:
    now = clock.now()
    return StoredFire(
        fire_id=f"monthly:*:{now.isoformat()}",
        trigger_id="monthly",
        customer="*",
        partition=0,
        fired_at=now,
        recorded_at=now,
        reason="schedule",
    )


def count(engine_path: Path, table: str) -> int:
    with sqlite3.connect(engine_path) as connection:
        found = connection.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(found[0])


def sends(engine: sa.Engine, clock: FrozenClock, customers: list[str]) -> tuple[SendService, InMemoryChannel]:
    """The send service on the SQL ledger, contact history, lists and consent (what `serve` uses), consent granted
    for `customers`, to an in-memory in-app channel (the inbox addresses the customer by number)."""
    consent = ConsentService(SqlConsentStore(engine), clock)
    for customer in customers:
        consent.record(customer, ChannelKind.INAPP, Purpose.MARKETING, ConsentStatus.GRANTED, source="bench")
    policy = ContactPolicyService(
        SqlContactHistory(engine), SqlSuppressionLists(engine), consent, clock, policy=DEFAULT_POLICY
    )
    inapp = InMemoryChannel("inapp", ChannelKind.INAPP)
    registry = ChannelRegistry([ConfiguredChannel(name="inapp", kind=inapp.kind, channel=inapp, description="fake")])
    return SendService(registry, SqlDeliveryLedger(engine), policy, clock), inapp


def raw_rows(folder: Path, names: list[str]) -> float:
    """The floor: the same instance and outbox rows by hand-written executemany (seconds)."""
    path = folder / "raw.sqlite"
    engine = create_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    now = MORNING.isoformat(sep=" ")
    request = '{"idempotency_key":"k","customer":"c","channel":"push","message":{"text":"本月理财精选 {month}"}}'
    started = time.perf_counter()
    with sqlite3.connect(path) as connection:
        for start in range(0, len(names), 5000):
            chunk = names[start : start + 5000]
            connection.executemany(
                f"INSERT INTO {journey_instances.name} (journey_id, customer, run, version, step, status, due_at, "
                "entered_at, updated_at, data, cause) VALUES ('j', ?, 1, 1, 'push', 'sending', NULL, ?, ?, '{}', 'b')",
                [(name, now, now) for name in chunk],
            )
            connection.executemany(
                f"INSERT INTO {journey_outbox.name} (key, journey_id, version, customer, run, step, channel, request, "
                "status, not_before, attempts, outcome, created_at, updated_at) "
                "VALUES (?, 'j', 1, ?, 1, 'push', 'push', ?, 'queued', ?, 0, NULL, ?, ?)",
                [(f"j:v1:1:push:{name}", name, request, now, now, now) for name in chunk],
            )
            connection.commit()
    return time.perf_counter() - started


def run(customers: int, dispatch: int) -> dict[str, object]:
    clock = FrozenClock(MORNING)
    dw = warehouse(customers)
    with tempfile.TemporaryDirectory(prefix="marketloop-bench-") as name:
        folder = Path(name)
        path = folder / "state.sqlite"
        engine = create_engine(f"sqlite:///{path}")
        upgrade(engine)
        definitions = JourneyDefinitions(SqlJourneyStore(engine), clock)
        definitions.save(JOURNEY)
        definitions.publish("monthly_offer")
        SqlStreamStore(engine).commit(Commit(consumer="stream", fires=[schedule_fire(clock)]))
        timing: dict[str, float] = {}

        def members(segment_id: str) -> list[str]:
            started = time.perf_counter()
            found = audience(dw)
            timing["audience_s"] = time.perf_counter() - started
            return found

        runtime = JourneyRuntime(definitions, Walker(), clock, audience=members)
        started, cpu = time.perf_counter(), time.process_time()
        admitted = runtime.admit()
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        outbox = count(path, journey_outbox.name)
        instances = count(path, journey_instances.name)
        counts = definitions.counts("monthly_offer")
        result: dict[str, object] = {
            "benchmark": "journey_throughput",
            "customers": customers,
            "admitted": admitted,
            "seconds": round(seconds, 2),
            "cpu_s": round(cpu, 2),
            "audience_s": round(timing.get("audience_s", 0.0), 2),
            "customers_per_s": round(customers / seconds, 1),
            "outbox_rows": outbox,
            "verified": outbox == instances == admitted == customers == counts["entry"]["entered"],
            "target_customers_per_s": 20_000,
        }
        if dispatch:
            service, inapp = sends(engine, clock, audience(dw)[:dispatch])
            dispatcher = OutboxDispatcher(definitions.store, service.send_many, service.send, clock)
            started, taken = time.perf_counter(), 0
            while taken < dispatch and (done := dispatcher.dispatch_once()):
                taken += done
            sent_seconds = time.perf_counter() - started
            result["dispatched"] = taken
            result["sent"] = len(inapp.sent)  # the first customers have consent, as many as were dispatched
            result["dispatch_per_s"] = round(taken / sent_seconds, 1)
        engine.dispose()
        raw = raw_rows(folder, audience(dw))
    result["raw_rows_s"] = round(raw, 2)
    result["raw_customers_per_s"] = round(customers / raw, 1)
    result["ratio_to_raw"] = round(raw / seconds, 3)
    result["meets_target"] = bool(result["verified"]) and customers / seconds >= 20_000
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--dispatch", type=int, default=20_000, help="then send this many through the dispatcher")
    parser.add_argument("--quick", action="store_true", help="20,000 customers")
    args = parser.parse_args()
    print(json.dumps(run(20_000 if args.quick else args.customers, args.dispatch)))


if __name__ == "__main__":
    main()
