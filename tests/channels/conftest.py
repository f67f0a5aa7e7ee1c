"""A send world over the public in-memory fakes: three channels, consent, policy, ledger, a frozen clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from marketloop.core.consent import Channel as ChannelKind
from marketloop.core.consent import ConsentStatus, Purpose
from marketloop.journeys.channels.receipts import ReceiptService
from marketloop.journeys.channels.registry import ChannelRegistry, ConfiguredChannel
from marketloop.journeys.channels.sending import Message, SendRequest
from marketloop.journeys.channels.service import SendService
from marketloop.journeys.channels.touches import SmsDress
from marketloop.journeys.channels.waves import FallbackRunner
from marketloop.journeys.policy.rules import DEFAULT_POLICY
from marketloop.journeys.policy.service import ContactPolicyService
from marketloop.policy.consent import ConsentService
from marketloop.testing.channels import (
    InMemoryBudgets,
    InMemoryChannel,
    InMemoryConsentStore,
    InMemoryContactHistory,
    InMemoryDeliveryLedger,
    InMemorySuppressionLists,
)
from marketloop.testing.clock import FrozenClock

# 10:00 in Shanghai on a Monday
MORNING = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
ADDRESSES = {
    ChannelKind.PUSH: "token-c1",
    ChannelKind.SMS: "13800001234",
    ChannelKind.WECHAT: "openid-c1",
}


@dataclass
class World:
    clock: FrozenClock
    history: InMemoryContactHistory
    lists: InMemorySuppressionLists
    consent: ConsentService
    policy: ContactPolicyService
    ledger: InMemoryDeliveryLedger
    push: InMemoryChannel
    sms: InMemoryChannel
    wechat: InMemoryChannel
    sends: SendService
    receipts: ReceiptService
    fallback: FallbackRunner
    budgets: InMemoryBudgets

    def grant(self, customer: str, *kinds: ChannelKind) -> None:
        for kind in kinds:
            self.consent.record(customer, kind, Purpose.MARKETING, ConsentStatus.GRANTED, source="app_settings")


@pytest.fixture
def world() -> World:
    clock = FrozenClock(MORNING)
    history, lists, ledger = InMemoryContactHistory(), InMemorySuppressionLists(), InMemoryDeliveryLedger()
    consent = ConsentService(InMemoryConsentStore(), clock)
    budgets = InMemoryBudgets()
    policy = ContactPolicyService(history, lists, consent, clock, policy=DEFAULT_POLICY, budgets=budgets)
    push = InMemoryChannel("push", ChannelKind.PUSH)
    sms = InMemoryChannel("sms", ChannelKind.SMS)
    wechat = InMemoryChannel("wechat", ChannelKind.WECHAT)
    registry = ChannelRegistry(
        [ConfiguredChannel(name=c.name, kind=c.kind, channel=c, description="fake") for c in (push, sms, wechat)]
    )
    costs = {ChannelKind.SMS: 4, ChannelKind.PUSH: 0, ChannelKind.WECHAT: 1}
    sends = SendService(registry, ledger, policy, clock, sms=SmsDress(signature="【示例银行】"), costs_fen=costs)
    made = World(
        clock=clock,
        history=history,
        lists=lists,
        consent=consent,
        policy=policy,
        ledger=ledger,
        push=push,
        sms=sms,
        wechat=wechat,
        sends=sends,
        receipts=ReceiptService(registry, ledger, policy, clock, consent=consent),
        fallback=FallbackRunner(sends, ledger, policy, clock),
        budgets=budgets,
    )
    made.grant("C1", ChannelKind.PUSH, ChannelKind.SMS, ChannelKind.WECHAT)
    return made


def request(key: str = "j1:v1:push:C1", channel: str = "push", **kw: object) -> SendRequest:
    base: dict[str, object] = {
        "idempotency_key": key,
        "customer": "C1",
        "channel": channel,
        "message": Message(text="{name}您好，您关注的存款产品今日可预约。", variables={"name": "张先生"}),
        "addresses": ADDRESSES,
        "campaign": "deposit-week",
    }
    return SendRequest(**(base | kw))  # type: ignore[arg-type]
