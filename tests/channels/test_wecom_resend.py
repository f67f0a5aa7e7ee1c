"""WeCom has no idempotency field: a touch whose first attempt reached WeCom but whose answer was lost (a timeout,
or a crash before the ledger recorded it) is found on the next attempt through WeCom's own lists and is not
created twice. Against the fake WeCom server of the adapter tests, through the send service and the SQL ledger."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from marketloop.adapters.channels.http import new_client
from marketloop.adapters.channels.wecom import WeComChannel
from marketloop.adapters.sql.channel_tables import ensure_channel_tables
from marketloop.adapters.sql.deliveries import SqlDeliveryLedger
from marketloop.adapters.sql.engine import create_engine
from marketloop.core.consent import Channel as ChannelKind
from marketloop.core.consent import ConsentStatus, Purpose
from marketloop.journeys.channels.registry import ChannelRegistry, ConfiguredChannel
from marketloop.journeys.channels.sending import Message, SendRequest, SendStatus
from marketloop.journeys.channels.service import SendService
from marketloop.journeys.policy.rules import DEFAULT_POLICY
from marketloop.journeys.policy.service import ContactPolicyService
from marketloop.policy.consent import ConsentService
from marketloop.ports.channels import DeliveryStatus, SendResult, Touch
from marketloop.testing.channels import InMemoryConsentStore, InMemoryContactHistory, InMemorySuppressionLists
from marketloop.testing.clock import FrozenClock
from marketloop.testing.gateways import FakeWeCom

MORNING = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
TEXT = "张先生您好，您的稳享90天将于3日后到期，如需续作请回复。"


class Killed(BaseException):
    """The process dying between WeCom's answer and the ledger's update."""


class DyingLedger(SqlDeliveryLedger):
    def complete(self, key: str, result: SendResult, at: datetime) -> None:
        raise Killed(key)


@dataclass
class Setup:
    clock: FrozenClock
    fake: FakeWeCom
    engine: sa.Engine
    channel: WeComChannel
    policy: ContactPolicyService

    def sends(self, ledger: SqlDeliveryLedger | None = None) -> SendService:
        """A send service as a (re)started process wires it."""
        registry = ChannelRegistry(
            [ConfiguredChannel(name="wecom", kind=ChannelKind.WECOM, channel=self.channel, description="fake")]
        )
        return SendService(registry, ledger or SqlDeliveryLedger(self.engine), self.policy, self.clock)

    def lookups(self) -> list[str]:
        return [r.url.path.rsplit("/", 1)[-1] for r in self.fake.requests if "get_groupmsg" in r.url.path]


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    clock = FrozenClock(MORNING)
    fake = FakeWeCom(now=clock.now)
    engine = create_engine(f"sqlite:///{tmp_path / 'state.sqlite'}")
    ensure_channel_tables(engine)
    consent = ConsentService(InMemoryConsentStore(), clock)
    for customer in ("C1", "C2"):
        consent.record(customer, ChannelKind.WECOM, Purpose.MARKETING, ConsentStatus.GRANTED, source="rm_visit")
    policy = ContactPolicyService(
        InMemoryContactHistory(), InMemorySuppressionLists(), consent, clock, policy=DEFAULT_POLICY
    )
    channel = WeComChannel(
        name="wecom",
        base_url="http://qyapi.local",
        corp_id="ww1",
        secret="s",
        default_sender="rm_zhang",
        client=new_client(transport=fake.transport()),
        clock=clock,
    )
    yield Setup(clock=clock, fake=fake, engine=engine, channel=channel, policy=policy)
    engine.dispose()


def request(key: str = "maturity:v1:C1", customer: str = "C1", text: str = TEXT) -> SendRequest:
    return SendRequest(
        idempotency_key=key,
        customer=customer,
        channel="wecom",
        message=Message(text=text, link="https://bank.example/w/90"),
        addresses={ChannelKind.WECOM: f"wm{customer}"},
        campaign="maturity",
    )


def test_an_answer_lost_after_wecom_took_the_message_is_found_on_the_retry(setup: Setup) -> None:
    sends = setup.sends()
    setup.fake.lose_answer_next()
    first = sends.send(request())
    assert first.status is SendStatus.RETRYING
    assert len(setup.fake.messages) == 1  # WeCom has it, we do not know its msgid
    assert first.retry_at is not None
    setup.clock.advance(first.retry_at - setup.clock.now())
    again = sends.send(request())
    assert again.status is SendStatus.SENT
    assert again.provider_message_id == "msgGCA1"
    assert len(setup.fake.messages) == 1, "not created twice"
    assert setup.lookups() == ["get_groupmsg_list_v2", "get_groupmsg_send_result"]
    row = SqlDeliveryLedger(setup.engine).get("maturity:v1:C1")
    assert row is not None
    assert (row.status, row.provider_message_id, row.attempts) == (DeliveryStatus.ACCEPTED, "msgGCA1", 2)


def test_a_crash_before_the_ledger_recorded_the_send_does_not_send_twice_after_restart(setup: Setup) -> None:
    with pytest.raises(Killed):
        setup.sends(DyingLedger(setup.engine)).send(request())
    assert len(setup.fake.messages) == 1
    restarted = setup.sends()
    assert restarted.send(request()).status is SendStatus.DUPLICATE  # the claim is held until it is stale
    setup.clock.advance(timedelta(minutes=11))
    taken_over = restarted.send(request())
    assert taken_over.status is SendStatus.SENT
    assert taken_over.provider_message_id == "msgGCA1"
    assert len(setup.fake.messages) == 1
    assert restarted.send(request()).status is SendStatus.DUPLICATE


def test_the_lookup_matches_text_link_and_customer_across_pages_and_sends_when_nothing_matches(setup: Setup) -> None:
    # The RM's other messages in the window: the same text to other customers (more than a page of them),
    # and another text to C1.
    for n in range(120):
        setup.channel.send(_touch(f"other:{n}", f"wmX{n}", TEXT))
    setup.channel.send(_touch("other:c1", "wmC1", "另一条消息"))
    before = len(setup.fake.messages)
    sends = setup.sends()
    setup.fake.fail_next(502)  # this attempt never reaches WeCom
    assert sends.send(request()).status is SendStatus.RETRYING
    setup.clock.advance(timedelta(minutes=1))
    sent = sends.send(request())
    assert sent.status is SendStatus.SENT
    assert len(setup.fake.messages) == before + 1  # searched (two pages), found nothing, sent once
    assert setup.fake.messages[-1]["external_userid"] == ["wmC1"]
    assert setup.lookups().count("get_groupmsg_list_v2") == 2
    assert sent.provider_message_id == f"msgGCA{before + 1}"


def test_a_failed_lookup_sends_nothing(setup: Setup) -> None:
    sends = setup.sends()
    setup.fake.lose_answer_next()
    sends.send(request())
    setup.clock.advance(timedelta(minutes=1))
    setup.fake.fail_next(503)  # the list lookup
    outcome = sends.send(request())
    assert outcome.status is SendStatus.RETRYING
    assert "look up" in outcome.reason or "503" in outcome.reason
    assert len(setup.fake.messages) == 1
    setup.clock.advance(timedelta(minutes=5))
    assert sends.send(request()).provider_message_id == "msgGCA1"
    assert len(setup.fake.messages) == 1


def test_a_first_attempt_does_not_look_anything_up(setup: Setup) -> None:
    assert setup.sends().send(request()).status is SendStatus.SENT
    assert setup.lookups() == []


def _touch(key: str, address: str, text: str) -> Touch:
    return Touch(
        idempotency_key=key,
        customer="CX",
        channel=ChannelKind.WECOM,
        purpose=Purpose.MARKETING,
        address=address,
        body=text,
        link="https://bank.example/w/90",
    )
