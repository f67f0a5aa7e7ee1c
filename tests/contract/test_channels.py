"""The Channel contract suite, run against every channel adapter with its fake or local provider."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from marketloop.adapters.channels.email import SmtpEmailChannel, message_id
from marketloop.adapters.channels.http import new_client
from marketloop.adapters.channels.push import HttpPushChannel
from marketloop.adapters.channels.sms import HttpSmsChannel
from marketloop.adapters.channels.stored import InboxChannel, RmTaskChannel
from marketloop.adapters.channels.webhook import WebhookChannel
from marketloop.adapters.channels.wechat import WeChatTemplateChannel
from marketloop.adapters.channels.wecom import WeComChannel
from marketloop.adapters.sql.channel_tables import ensure_channel_tables, inbox_messages, rm_tasks
from marketloop.adapters.sql.engine import create_engine
from marketloop.core.consent import Channel as ChannelKind
from marketloop.testing.channels import InMemoryChannel
from marketloop.testing.clock import FrozenClock
from marketloop.testing.contracts.channels import *  # noqa: F403
from marketloop.testing.contracts.channels import ChannelCase
from marketloop.testing.gateways import FakePushGateway, FakeSmsGateway, FakeWebhookReceiver, FakeWeChat, FakeWeCom
from marketloop.testing.smtp import LocalSmtpServer

KINDS = ["memory", "sms", "push", "wecom", "wechat", "webhook", "email", "inapp", "rm"]


def _stored_key(engine: sa.Engine, table: sa.Table) -> object:
    def received(key: str) -> bool:
        with engine.connect() as connection:
            return connection.execute(sa.select(table.c.id).where(table.c.idempotency_key == key)).first() is not None

    return received


def _memory() -> ChannelCase:
    channel = InMemoryChannel("memory", ChannelKind.PUSH)
    return ChannelCase(
        channel=channel,
        address="token",
        outage=lambda: channel.fail_next(retryable=True),
        refusal=lambda: channel.fail_next(retryable=False),
        received=lambda key: any(t.idempotency_key == key for t in channel.sent),
    )


def _sms() -> ChannelCase:
    gateway = FakeSmsGateway()
    channel = HttpSmsChannel(
        name="sms",
        url="http://sms.local/send",
        account="bank",
        secret="secret",
        client=new_client(transport=gateway.transport()),
        clock=FrozenClock(),
    )
    return ChannelCase(
        channel=channel,
        address="13800001234",
        outage=gateway.time_out_next,
        refusal=lambda: gateway.fail_next(400),
        received=lambda key: key in gateway.messages,
    )


def _push() -> ChannelCase:
    gateway = FakePushGateway()
    channel = HttpPushChannel(
        name="push", url="http://push.local", api_key="push-key", client=new_client(transport=gateway.transport())
    )
    return ChannelCase(
        channel=channel,
        address="token",
        outage=lambda: gateway.fail_next(503),
        refusal=lambda: gateway.fail_next(400),
        received=lambda key: any(m["requestId"] == key for m in gateway.messages),
    )


def _wecom() -> ChannelCase:
    fake = FakeWeCom()
    fake.not_contacts.add("wmGONE")
    channel = WeComChannel(
        name="wecom",
        base_url="http://qyapi.local",
        corp_id="ww",
        secret="s",
        default_sender="rm",
        client=new_client(transport=fake.transport()),
        clock=FrozenClock(),
    )
    case = ChannelCase(channel=channel, address="wmEXT", outage=lambda: fake.fail_next(502))

    def refuse() -> None:
        case.address = "wmGONE"

    # WeCom's API has no idempotency field: the ledger guards sends, and a later attempt looks the message up
    # in WeCom's lists (tests/channels/test_wecom_resend.py)
    case.refusal = refuse
    return case


def _wechat() -> ChannelCase:
    fake = FakeWeChat()
    fake.unsubscribed.add("oGONE")
    channel = WeChatTemplateChannel(
        name="wechat",
        base_url="http://wx.local",
        app_id="wx",
        app_secret="s",
        default_template_id="T",
        client=new_client(transport=fake.transport()),
        clock=FrozenClock(),
    )
    case = ChannelCase(
        channel=channel, address="oOPEN", outage=fake.time_out_next, received=lambda k: k in fake.messages
    )

    def refuse() -> None:
        case.address = "oGONE"

    case.refusal = refuse
    return case


def _webhook() -> ChannelCase:
    receiver = FakeWebhookReceiver()
    channel = WebhookChannel(
        name="webhook",
        url="http://crm.local/hook",
        secret="hook-secret",
        client=new_client(transport=receiver.transport()),
        clock=FrozenClock(),
    )
    return ChannelCase(
        channel=channel,
        address="13800001234",
        outage=lambda: receiver.fail_next(500),
        refusal=lambda: receiver.fail_next(422),
        received=lambda key: any(b["idempotency_key"] == key for b in receiver.bodies),
    )


@pytest.fixture(params=KINDS)
def channel_case(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ChannelCase]:
    kind = request.param
    if kind == "email":
        with LocalSmtpServer() as smtp:
            smtp.reject_recipients.add("gone@example.com")
            channel = SmtpEmailChannel(
                name="email", host="127.0.0.1", port=smtp.port, sender="mkt@bank.example", timeout=5
            )
            case = ChannelCase(
                channel=channel,
                address="zhang@example.com",
                outage=lambda: smtp.answer_next(451),
                received=lambda key: any(m["Message-ID"] == message_id(key, "bank.example") for m in smtp.messages),
            )

            def refuse() -> None:
                case.address = "gone@example.com"

            case.refusal = refuse
            yield case
        return
    if kind in ("inapp", "rm"):
        engine = create_engine(f"sqlite:///{tmp_path / 'state.sqlite'}")
        ensure_channel_tables(engine)
        clock = FrozenClock()
        if kind == "inapp":
            yield ChannelCase(
                channel=InboxChannel(name="inapp", engine=engine, clock=clock),
                address="C1",
                received=_stored_key(engine, inbox_messages),  # type: ignore[arg-type]
            )
        else:
            yield ChannelCase(
                channel=RmTaskChannel(name="rm", engine=engine, clock=clock),
                address="C1",
                received=_stored_key(engine, rm_tasks),  # type: ignore[arg-type]
            )
        engine.dispose()
        return
    makers = {"memory": _memory, "sms": _sms, "push": _push, "wecom": _wecom, "wechat": _wechat, "webhook": _webhook}
    yield makers[kind]()
