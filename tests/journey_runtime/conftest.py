"""A journey-runtime world: SQLite operational store in a temp dir, a frozen clock, the in-memory channels."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import orjson
import pytest
import sqlalchemy as sa

from marketloop.adapters.sql.engine import create_engine, upgrade
from marketloop.adapters.sql.journeys import SqlJourneyStore
from marketloop.adapters.sql.realtime import SqlStreamStore
from marketloop.core.consent import Channel as ChannelKind
from marketloop.core.consent import ConsentStatus, Purpose
from marketloop.core.errors import ErrorKind, MarketloopError
from marketloop.core.events import Event
from marketloop.journeys.channels.registry import ChannelRegistry, ConfiguredChannel
from marketloop.journeys.channels.service import SendService
from marketloop.journeys.channels.touches import SmsDress
from marketloop.journeys.definitions import JourneyDefinitions
from marketloop.journeys.outbox import OutboxDispatcher
from marketloop.journeys.policy.rules import DEFAULT_POLICY
from marketloop.journeys.policy.service import ContactPolicyService
from marketloop.journeys.runner import JourneyEvents, JourneyRunner
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
from marketloop.testing.eventlog import MemoryEventLog

# 10:00 in Shanghai on a Monday: outside the default SMS quiet hours
MORNING = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
ADDRESSES = {"push": "token-{c}", "sms": "1380000{c}", "call": "1390000{c}"}


@dataclass
class Tags:
    """A `TagWriter` over a dict: the static tags `update` steps set (tag -> customer -> value)."""

    values: dict[str, dict[str, str]] = field(default_factory=dict)
    static: set[str] = field(default_factory=lambda: {"journey_vip", "follow_up"})
    writes: int = 0

    def assign(self, name: str, cust_no: str, value: str | None, *, at: datetime) -> bool:
        if name not in self.static:
            raise MarketloopError(kind=ErrorKind.NOT_FOUND, code="tags.not-found", title=f"No tag {name!r}")
        current = self.values.setdefault(name, {})
        if current.get(cust_no) == value:
            return False
        self.writes += 1
        if value is None:
            current.pop(cust_no, None)
        else:
            current[cust_no] = value
        return True


@dataclass
class Fields:
    """An `AttributeWriter` over a dict: the profile fields `update` steps set (customer -> name -> value)."""

    values: dict[str, dict[str, str]] = field(default_factory=dict)

    def set_attribute(self, name: str, cust_no: str, value: str | None, *, at: datetime) -> bool:
        current = self.values.setdefault(cust_no, {})
        if current.get(name) == value:
            return False
        if value is None:
            current.pop(name, None)
        else:
            current[name] = value
        return True


@dataclass
class Channels:
    """Sends outlive a runtime restart: the ledger and the channels are the bank's, not the process's."""

    clock: FrozenClock
    ledger: InMemoryDeliveryLedger = field(default_factory=InMemoryDeliveryLedger)
    history: InMemoryContactHistory = field(default_factory=InMemoryContactHistory)
    lists: InMemorySuppressionLists = field(default_factory=InMemorySuppressionLists)
    consent_store: InMemoryConsentStore = field(default_factory=InMemoryConsentStore)
    push: InMemoryChannel = field(default_factory=lambda: InMemoryChannel("push", ChannelKind.PUSH))
    sms: InMemoryChannel = field(default_factory=lambda: InMemoryChannel("sms", ChannelKind.SMS))
    rm: InMemoryChannel = field(default_factory=lambda: InMemoryChannel("rm", ChannelKind.RM))
    webhook: InMemoryChannel = field(default_factory=lambda: InMemoryChannel("webhook", ChannelKind.CALL))
    tags: Tags = field(default_factory=lambda: Tags())
    fields: Fields = field(default_factory=lambda: Fields())
    facts: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    segments: dict[str, list[str]] = field(default_factory=dict)  # segment id -> members (batch entries)

    def audience(self, segment_id: str) -> list[str]:
        return self.segments[segment_id]

    def sends(self) -> SendService:
        consent = ConsentService(self.consent_store, self.clock)
        policy = ContactPolicyService(self.history, self.lists, consent, self.clock, policy=DEFAULT_POLICY)
        registry = ChannelRegistry(
            [
                ConfiguredChannel(name=c.name, kind=c.kind, channel=c, description="fake")
                for c in (self.push, self.sms, self.rm, self.webhook)
            ]
        )
        return SendService(registry, self.ledger, policy, self.clock, sms=SmsDress(signature="【示例银行】"))

    def facts_of(self, customer: str) -> Mapping[str, Any]:
        """The profile and tags a branch sees (`journeys.facts` reads them from the profile service)."""
        return self.facts.get(customer, {})

    def grant(self, customer: str) -> None:
        consent = ConsentService(self.consent_store, self.clock)
        for kind in (ChannelKind.PUSH, ChannelKind.SMS, ChannelKind.CALL):
            consent.record(customer, kind, Purpose.MARKETING, ConsentStatus.GRANTED, source="app_settings")


@dataclass
class World:
    engine: sa.Engine
    clock: FrozenClock
    channels: Channels
    log: MemoryEventLog
    runner: JourneyRunner
    definitions: JourneyDefinitions

    def restart(self) -> World:
        """A new process: new services over the same database, ledger and channels."""
        return build(self.engine, self.clock, self.channels, self.log)

    def fire(self, fire_id: str, customer: str, trigger_id: str = "browse_wealth", **properties: Any) -> None:
        """A trigger fire as the stream processor commits it to `trigger_fires`."""
        addresses = {k: v.format(c=customer) for k, v in ADDRESSES.items()}
        context = {"event": "view_product", "properties": {"addresses": addresses} | properties}
        stored = StoredFire(
            fire_id=fire_id,
            trigger_id=trigger_id,
            customer=customer,
            partition=0,
            fired_at=self.clock.now(),
            recorded_at=self.clock.now(),
            reason="event",
            context=orjson.dumps(context),
        )
        SqlStreamStore(self.engine).commit(Commit(consumer="stream", fires=[stored]))

    def event(self, name: str, customer: str, **properties: Any) -> None:
        now = self.clock.now()
        record = Event(
            message_id=f"{customer}-{name}-{now.isoformat()}",
            type="track",
            source_id="src",
            received_at=now,
            timestamp=now,
            event=name,
            user_id=customer,
            properties=properties,
        )
        asyncio.run(self.log.append(0, [msgspec.json.encode(record)]))


def build(engine: sa.Engine, clock: FrozenClock, channels: Channels, log: MemoryEventLog) -> World:
    definitions = JourneyDefinitions(SqlJourneyStore(engine), clock)
    runtime = JourneyRuntime(definitions, Walker(channels.facts_of), clock, audience=channels.audience)
    events = JourneyEvents(runtime, log, SqlStreamStore(engine))
    sends = channels.sends()
    dispatcher = OutboxDispatcher(
        definitions.store, sends.send_many, sends.send, clock, tags=channels.tags, attributes=channels.fields
    )
    return World(
        engine=engine,
        clock=clock,
        channels=channels,
        log=log,
        runner=JourneyRunner(runtime, events, dispatcher),
        definitions=definitions,
    )


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    engine = create_engine(f"sqlite:///{tmp_path / 'state.sqlite'}")
    upgrade(engine)
    clock = FrozenClock(MORNING)
    made = build(engine, clock, Channels(clock=clock), MemoryEventLog())
    yield made
    engine.dispose()


def wealth_journey(journey_id: str = "wealth_browse", **entry: Any) -> dict[str, Any]:
    """Browsed a wealth product -> push; not opened in 2 days -> SMS; opened -> exit."""
    return {
        "id": journey_id,
        "name": "理财浏览未购买",
        "steps": [
            {
                "id": "entry",
                "type": "entry",
                "settings": {"source": "trigger", "trigger_id": "browse_wealth"} | entry,
                "next": {"next": "push"},
            },
            {
                "id": "push",
                "type": "send",
                "settings": {
                    "channel": "push",
                    "template": "您关注的{product}今日可购买",
                    "variables": {"product": "$properties.product"},
                },
                "next": {"sent": "wait_open", "suppressed": "sms", "failed": "sms"},
            },
            {
                "id": "wait_open",
                "type": "wait",
                "settings": {
                    "event": {"event": "touch_opened", "where": [{"property": "campaign", "value": journey_id}]},
                    "timeout": "P2D",
                },
                "next": {"event": "opened", "timeout": "sms"},
            },
            {
                "id": "sms",
                "type": "send",
                "settings": {
                    "channel": "sms",
                    "template": "您关注的{product}今日可购买",
                    "variables": {"product": "$properties.product"},
                },
                "next": {"sent": "done", "suppressed": "done", "failed": "done"},
            },
            {"id": "opened", "type": "exit", "settings": {"reason": "opened"}},
            {"id": "done", "type": "exit"},
        ],
    }
