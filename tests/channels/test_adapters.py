"""Each channel adapter against its fake provider: the wire format, errors mapped to retryable or permanent,
tokens, segmenting, signatures, and a real local SMTP server for e-mail."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import orjson
import pytest

from marketloop.adapters.channels.email import SmtpEmailChannel
from marketloop.adapters.channels.http import new_client
from marketloop.adapters.channels.push import HttpPushChannel
from marketloop.adapters.channels.sms import HttpSmsChannel, sms_parts, split_sms
from marketloop.adapters.channels.webhook import WebhookChannel, verify_signature
from marketloop.adapters.channels.wechat import WeChatTemplateChannel, client_msg_id
from marketloop.adapters.channels.wecom import WeComChannel
from marketloop.core.consent import Channel as ChannelKind
from marketloop.core.consent import Purpose
from marketloop.ports.channels import ChannelError, DeliveryStatus, Touch
from marketloop.testing.clock import FrozenClock
from marketloop.testing.gateways import FakePushGateway, FakeSmsGateway, FakeWebhookReceiver, FakeWeChat, FakeWeCom
from marketloop.testing.smtp import LocalSmtpServer


def touch(
    kind: ChannelKind, address: str, body: str = "【示例银行】您的理财将于3日后到期。拒收请回复R", **kw: object
) -> Touch:
    base: dict[str, object] = {
        "idempotency_key": "maturity:v1:C1",
        "customer": "C1",
        "channel": kind,
        "purpose": Purpose.MARKETING,
        "address": address,
        "body": body,
        "campaign": "maturity",
    }
    return Touch(**(base | kw))  # type: ignore[arg-type]


# ---- SMS -----------------------------------------------------------------------------------------------------


def test_sms_length_counts_chinese_as_70_then_67_per_part() -> None:
    assert sms_parts("a" * 160) == 1
    assert sms_parts("a" * 161) == 2
    assert sms_parts("中" * 70) == 1
    assert sms_parts("中" * 71) == 2
    assert sms_parts("中" * 134) == 2
    assert sms_parts("中" * 135) == 3
    assert [len(p) for p in split_sms("中" * 135)] == [67, 67, 1]
    assert sms_parts("") == 0


def _sms(gateway: FakeSmsGateway, **kw: object) -> HttpSmsChannel:
    return HttpSmsChannel(
        name="sms",
        url="http://sms.bank.local/send",
        account="bank",
        secret="secret",
        client=new_client(transport=gateway.transport()),
        clock=FrozenClock(),
        **kw,  # type: ignore[arg-type]
    )


def test_sms_gateway_gets_a_signed_request_with_the_key_and_deduplicates() -> None:
    gateway = FakeSmsGateway()
    channel = _sms(gateway)
    long_text = "【示例银行】" + "尊敬的客户" * 14 + "拒收请回复R"
    first = channel.send(touch(ChannelKind.SMS, "13800001234", long_text))
    again = channel.send(touch(ChannelKind.SMS, "13800001234", long_text))
    assert first.provider_message_id == again.provider_message_id == "sms-1"
    assert first.parts == 2
    sent = gateway.messages["maturity:v1:C1"]
    assert sent["mobile"] == "13800001234"
    assert sent["parts"] == 2
    assert sent["timestamp"] == "20260105170000"  # Beijing time of the frozen clock
    assert len(gateway.messages) == 1


def test_sms_errors_are_retryable_or_permanent() -> None:
    gateway = FakeSmsGateway()
    channel = _sms(gateway)
    gateway.fail_next(503)
    with pytest.raises(ChannelError) as busy:
        channel.send(touch(ChannelKind.SMS, "13800001234"))
    assert busy.value.retryable
    gateway.time_out_next()
    with pytest.raises(ChannelError) as slow:
        channel.send(touch(ChannelKind.SMS, "13800001234"))
    assert slow.value.retryable
    assert "timed out" in slow.value.message
    gateway.fail_next(400)
    with pytest.raises(ChannelError) as bad:
        channel.send(touch(ChannelKind.SMS, "13800001234"))
    assert not bad.value.retryable
    wrong_secret = _sms(FakeSmsGateway(secret="other"))
    with pytest.raises(ChannelError) as refused:
        wrong_secret.send(touch(ChannelKind.SMS, "13800001234"))
    assert refused.value.provider_code == "sign-error"
    assert not refused.value.retryable
    with pytest.raises(ChannelError, match="parts"):
        _sms(gateway, max_parts=1).send(touch(ChannelKind.SMS, "13800001234", "中" * 71))


def test_sms_status_reports_and_replies() -> None:
    channel = _sms(FakeSmsGateway())
    payload = orjson.dumps(
        [
            {"msgId": "sms-1", "status": "DELIVRD", "reportTime": "20260105170100"},
            {"msgId": "sms-2", "status": "MK:0001"},
            {"msgId": "sms-3", "type": "reply", "content": "r"},
        ]
    )
    receipts = channel.parse_receipts(payload)
    assert [r.status for r in receipts] == [
        DeliveryStatus.DELIVERED,
        DeliveryStatus.FAILED,
        DeliveryStatus.UNSUBSCRIBED,
    ]
    assert receipts[0].at == datetime(2026, 1, 5, 9, 1, tzinfo=UTC)
    with pytest.raises(ChannelError):
        channel.parse_receipts(b'{"not": "a list"}')


# ---- push ----------------------------------------------------------------------------------------------------


def test_push_gateway() -> None:
    gateway = FakePushGateway(api_key="k")
    channel = HttpPushChannel(
        name="push", url="http://push.local/v1/push", api_key="k", client=new_client(transport=gateway.transport())
    )
    result = channel.send(touch(ChannelKind.PUSH, "token-1", "理财到期提醒", title="到期提醒", link="bank://wealth/1"))
    assert result.provider_message_id == "push-1"
    assert gateway.messages[0]["requestId"] == "maturity:v1:C1"
    assert gateway.requests[0].headers["Idempotency-Key"] == "maturity:v1:C1"
    wrong_key = HttpPushChannel(
        name="push", url="http://push.local/v1/push", api_key="x", client=new_client(transport=gateway.transport())
    )
    with pytest.raises(ChannelError) as refused:
        wrong_key.send(touch(ChannelKind.PUSH, "token-1"))
    assert not refused.value.retryable
    receipts = channel.parse_receipts(
        b'[{"messageId": "push-1", "event": "opened", "time": "2026-01-05T10:00:00+08:00"}]'
    )
    assert receipts[0].status is DeliveryStatus.OPENED
    assert receipts[0].at == datetime(2026, 1, 5, 2, tzinfo=UTC)


# ---- WeCom and WeChat ----------------------------------------------------------------------------------------


def test_wecom_gets_a_token_refreshes_it_when_expired_and_reports_non_contacts() -> None:
    fake = FakeWeCom()
    clock = FrozenClock()
    channel = WeComChannel(
        name="wecom",
        base_url="http://qyapi.local",
        corp_id="ww1",
        secret="s",
        default_sender="rm_zhang",
        client=new_client(transport=fake.transport()),
        clock=clock,
    )
    first = channel.send(touch(ChannelKind.WECOM, "wmEXT1", "您好，您的理财即将到期", link="https://bank/w/1"))
    assert first.provider_message_id == "msgGCA1"
    assert fake.messages[0]["sender"] == "rm_zhang"
    assert fake.messages[0]["attachments"][0]["link"]["url"] == "https://bank/w/1"
    fake.expire_tokens()
    channel.send(touch(ChannelKind.WECOM, "wmEXT1", "第二条"))
    assert fake.tokens_issued == 2
    fake.not_contacts.add("wmGONE")
    with pytest.raises(ChannelError) as gone:
        channel.send(touch(ChannelKind.WECOM, "wmGONE"))
    assert not gone.value.retryable
    receipts = channel.parse_receipts(
        b'{"msgid": "msgGCA1", "detail_list": [{"external_userid": "wmEXT1", "status": 1}]}'
    )
    assert receipts[0].status is DeliveryStatus.DELIVERED


def test_wechat_client_msg_ids_of_long_keys_stay_distinct() -> None:
    prefix = "wealth_maturity_reminder_journey:v12:1:remind_by_wechat:"
    first, second = client_msg_id(prefix + "C0000000000000001"), client_msg_id(prefix + "C0000000000000002")
    assert len(first) == len(second) == 64
    assert first != second
    assert client_msg_id("maturity:v1:C1") == "maturity:v1:C1"


def test_wechat_template_message_with_client_msg_id_and_the_job_finish_event() -> None:
    fake = FakeWeChat()
    channel = WeChatTemplateChannel(
        name="wechat",
        base_url="http://api.weixin.local",
        app_id="wx1",
        app_secret="s",
        default_template_id="TPL1",
        client=new_client(transport=fake.transport()),
        clock=FrozenClock(),
    )
    result = channel.send(touch(ChannelKind.WECHAT, "oOPENID", "到期提醒", variables={"product": "稳享90天"}))
    again = channel.send(touch(ChannelKind.WECHAT, "oOPENID", "到期提醒", variables={"product": "稳享90天"}))
    assert result.provider_message_id == again.provider_message_id == "200228001"
    assert fake.messages["maturity:v1:C1"]["data"] == {"product": {"value": "稳享90天"}}
    fake.unsubscribed.add("oGONE")
    with pytest.raises(ChannelError) as unfollowed:
        channel.send(touch(ChannelKind.WECHAT, "oGONE", "x", idempotency_key="k2"))
    assert unfollowed.value.provider_code == "43004"
    assert not unfollowed.value.retryable
    event = (
        b"<xml><ToUserName><![CDATA[gh_1]]></ToUserName><MsgType><![CDATA[event]]></MsgType>"
        b"<Event><![CDATA[TEMPLATESENDJOBFINISH]]></Event><MsgID>200228001</MsgID>"
        b"<Status><![CDATA[failed:user block]]></Status></xml>"
    )
    receipts = channel.parse_receipts(event)
    assert receipts[0].provider_message_id == "200228001"
    assert receipts[0].status is DeliveryStatus.FAILED


# ---- webhook -------------------------------------------------------------------------------------------------


def test_webhook_is_signed_and_the_signature_verifies() -> None:
    receiver = FakeWebhookReceiver(secret="hook")
    clock = FrozenClock()
    channel = WebhookChannel(
        name="webhook",
        url="http://crm.local/hook",
        secret="hook",
        client=new_client(transport=receiver.transport()),
        clock=clock,
    )
    result = channel.send(touch(ChannelKind.CALL, "13800001234", "外呼：理财到期"))
    assert result.provider_message_id == "hook-1"
    request = receiver.requests[0]
    timestamp = request.headers["X-Marketloop-Timestamp"]
    assert verify_signature(
        "hook", timestamp, request.content, request.headers["X-Marketloop-Signature"], clock.now().timestamp()
    )
    assert not verify_signature(
        "hook", timestamp, request.content + b" ", request.headers["X-Marketloop-Signature"], clock.now().timestamp()
    )
    assert not verify_signature(
        "hook", timestamp, request.content, request.headers["X-Marketloop-Signature"], clock.now().timestamp() + 600
    )
    expected = "sha256=" + hmac.new(b"hook", f"{timestamp}.".encode() + request.content, hashlib.sha256).hexdigest()
    assert request.headers["X-Marketloop-Signature"] == expected
    wrong = WebhookChannel(
        name="webhook",
        url="http://crm.local/hook",
        secret="nope",
        client=new_client(transport=receiver.transport()),
        clock=clock,
    )
    with pytest.raises(ChannelError) as refused:
        wrong.send(touch(ChannelKind.CALL, "x"))
    assert not refused.value.retryable
    receiver.fail_next(502)
    with pytest.raises(ChannelError) as bad_gateway:
        channel.send(touch(ChannelKind.CALL, "x"))
    assert bad_gateway.value.retryable


# ---- e-mail over a real local SMTP server ---------------------------------------------------------------------


@pytest.fixture
def smtp() -> Iterator[LocalSmtpServer]:
    with LocalSmtpServer() as server:
        yield server


def test_email_through_a_local_smtp_server(smtp: LocalSmtpServer) -> None:
    channel = SmtpEmailChannel(name="email", host="127.0.0.1", port=smtp.port, sender="mkt@bank.example", timeout=5)
    result = channel.send(touch(ChannelKind.EMAIL, "zhang@example.com", "您的理财即将到期。", title="到期提醒"))
    message = smtp.messages[0]
    assert message["To"] == "zhang@example.com"
    assert message["Subject"] == "到期提醒"
    assert message["Message-ID"] == result.provider_message_id
    assert result.provider_message_id.endswith("@bank.example>")
    assert "您的理财即将到期" in message.get_content()
    smtp.reject_recipients.add("nobody@example.com")
    with pytest.raises(ChannelError) as refused:
        channel.send(touch(ChannelKind.EMAIL, "nobody@example.com"))
    assert not refused.value.retryable
    smtp.answer_next(451)
    with pytest.raises(ChannelError) as later:
        channel.send(touch(ChannelKind.EMAIL, "zhang@example.com"))
    assert later.value.retryable
    closed = SmtpEmailChannel(name="email", host="127.0.0.1", port=1, sender="mkt@bank.example", timeout=1)
    with pytest.raises(ChannelError) as unreachable:
        closed.send(touch(ChannelKind.EMAIL, "zhang@example.com"))
    assert unreachable.value.retryable


def test_a_gateway_with_its_own_field_names_and_success_code() -> None:
    seen: list[dict[str, object]] = []

    def gateway(request: httpx.Request) -> httpx.Response:
        body = orjson.loads(request.content)
        seen.append(body)
        if "phone" not in body:
            return httpx.Response(200, json={"status": "E01", "message": "no phone"})
        return httpx.Response(200, json={"status": "OK", "serial": "G-1"})

    channel = HttpSmsChannel(
        name="sms",
        url="http://gw.local/sms",
        account="bank",
        secret="s",
        client=new_client(transport=httpx.MockTransport(gateway)),
        clock=FrozenClock(),
        fields={"mobile": "phone", "content": "msg_text", "code": "status", "msg": "message", "id": "serial"},
        success_code="OK",
    )
    result = channel.send(touch(ChannelKind.SMS, "13800001234"))
    assert result.provider_message_id == "G-1"
    assert seen[0]["phone"] == "13800001234"
    assert "mobile" not in seen[0]
    assert seen[0]["msgId"] == "maturity:v1:C1"
    with pytest.raises(ValueError, match="unknown SMS gateway fields"):
        HttpSmsChannel(
            name="sms",
            url="u",
            account="a",
            secret="s",
            client=new_client(),
            clock=FrozenClock(),
            fields={"phone": "x"},
        )
