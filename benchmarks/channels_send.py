"""Send path speed: touches through `SendService` (policy → compliance → ledger → channel) on SQLite.

What it does: opens the real channel wiring (`open_channels_alone`) on a fresh
SQLite operational store, puts an in-memory channel under the name "push"
(no network), grants push consent to the customers, then

1. sends one touch to each of the first 500 customers one by one (`send`: the
   contact policy records a decision, the delivery ledger claims and completes
   the key, each in its own transaction);
2. sends one touch to each of N other customers in batches of 500
   (`send_many`: one transaction each for the decisions, claims and results);
3. sends the batches again (every touch a duplicate: nothing reaches the channel).

As a raw baseline it times the bare minimum the one-by-one path must write
per touch — one decision row and one ledger row, each committed — as plain
SQLAlchemy inserts in the same kind of store.

Prints one JSON line: sends_per_s (one by one), batch_sends_per_s,
duplicates_per_s, raw_rows_per_s, and checks that every touch was sent once.
`--customers` sets N (default 20,000; `--quick` 2,000).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from marketloop.adapters.sql.engine import create_engine
from marketloop.app.channel_settings import ChannelsSettings
from marketloop.app.channels import open_channels_alone
from marketloop.app.settings import Settings
from marketloop.core.consent import Channel as ChannelKind
from marketloop.core.consent import ConsentStatus, Purpose
from marketloop.journeys.channels.registry import ChannelRegistry, ConfiguredChannel
from marketloop.journeys.channels.sending import Message, SendRequest, SendStatus
from marketloop.testing.channels import InMemoryChannel


def _raw_baseline(path: Path, n: int) -> float:
    engine = create_engine(f"sqlite:///{path}")
    metadata = sa.MetaData()
    decisions = sa.Table(
        "raw_decisions", metadata, sa.Column("id", sa.Integer, primary_key=True), sa.Column("c", sa.String)
    )
    ledger = sa.Table("raw_ledger", metadata, sa.Column("k", sa.String, primary_key=True), sa.Column("c", sa.String))
    metadata.create_all(engine)
    started = time.perf_counter()
    for i in range(n):
        with engine.begin() as connection:
            connection.execute(decisions.insert().values(c=f"C{i}"))
        with engine.begin() as connection:
            connection.execute(ledger.insert().values(k=f"k{i}", c=f"C{i}"))
    elapsed = time.perf_counter() - started
    engine.dispose()
    return n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n = 2_000 if args.quick else args.customers
    single = 500
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp) / "data", channels=ChannelsSettings())
        opened = open_channels_alone(settings)
        push = InMemoryChannel("push", ChannelKind.PUSH)
        opened.sends.channels = ChannelRegistry(
            [ConfiguredChannel(name="push", kind=push.kind, channel=push, description="memory")]
        )
        for i in range(n + single):
            opened.consent.record(f"C{i}", ChannelKind.PUSH, Purpose.MARKETING, ConsentStatus.GRANTED, source="bench")
        requests = [
            SendRequest(
                idempotency_key=f"bench:{i}",
                customer=f"C{i}",
                channel="push",
                message=Message(text="{name}您好，您关注的存款产品今日可预约。", variables={"name": "客户"}),
                addresses={ChannelKind.PUSH: f"token-{i}"},
                purpose=Purpose.SERVICE,  # no quiet hours, so the run does not depend on the time of day
                campaign="bench",
            )
            for i in range(n + single)
        ]
        started = time.perf_counter()
        statuses = [opened.sends.send(r).status for r in requests[:single]]
        sends = time.perf_counter() - started
        batches = [requests[single + start : single + start + 500] for start in range(0, n, 500)]
        started = time.perf_counter()
        statuses += [o.status for batch in batches for o in opened.sends.send_many(batch)]
        batch_sends = time.perf_counter() - started
        started = time.perf_counter()
        again = [o.status for batch in batches for o in opened.sends.send_many(batch)]
        duplicates = time.perf_counter() - started
        opened.close()
        raw = _raw_baseline(Path(tmp) / "raw.sqlite", single)
    result = {
        "customers": n,
        "sends_per_s": round(single / sends, 1),
        "batch_sends_per_s": round(n / batch_sends, 1),
        "duplicates_per_s": round(n / duplicates, 1),
        "raw_rows_per_s": round(raw, 1),
        "ratio_sends_to_raw": round((single / sends) / raw, 3),
        "ratio_batch_to_raw": round((n / batch_sends) / raw, 3),
        "all_sent": statuses.count(SendStatus.SENT) == n + single,
        "all_duplicates": again.count(SendStatus.DUPLICATE) == n,
        "channel_received": len(push.sent),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
