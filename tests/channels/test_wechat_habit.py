"""The story "opened on WeChat → the customer is tagged WeChat-habit and WeChat is preferred next time", end to end:
a WeChat template message, its "opened" receipt posted to the receipts API (which applies it to the delivery
ledger and appends a `touch_opened` event to the event log), the loader, a tag refresh, and a "best" send."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import httpx
import orjson
import polars as pl
import pytest
from fastapi.testclient import TestClient

from marketloop.api.app import create_app
from marketloop.app.channels import open_channels
from marketloop.app.container import Container
from marketloop.app.settings import Settings
from marketloop.core.bank import CUSTOMERS
from marketloop.core.consent import Channel as ChannelKind
from marketloop.core.consent import ConsentStatus, Purpose
from marketloop.journeys.channels.preferences import best_channel
from marketloop.journeys.channels.sending import BEST, Message, SendRequest, SendStatus
from marketloop.ports.channels import DeliveryStatus
from marketloop.testing.access import grant
from marketloop.testing.gateways import FakePushGateway, FakeWeChat

CHANNELS = {
    "wechat": {"base_url": "http://wechat.local", "app_id": "wx1", "app_secret": "s", "template_id": "TPL_MATURITY"},
    "push": {"url": "http://push.local/send", "api_key": "push-key"},
}
ADDRESSES = {ChannelKind.WECHAT: "oC1-openid", ChannelKind.PUSH: "push-token-c1"}
CANDIDATES = ("push", "wechat")


@pytest.fixture
def wechat() -> FakeWeChat:
    return FakeWeChat()


@pytest.fixture
def container(tmp_path: Path, wechat: FakeWeChat) -> Iterator[Container]:
    settings = Settings.model_validate(
        {"data_dir": tmp_path / "data", "security": {"key_file": tmp_path / "k"}, "channels": CHANNELS}
    )
    opened = Container.open(settings)
    push = FakePushGateway(api_key="push-key")

    def transport(name: str) -> httpx.BaseTransport | None:
        return {"wechat": wechat.transport(), "push": push.transport()}.get(name)

    opened.__dict__["channels"] = open_channels(
        settings, opened.engine, opened.clock, opened.audit, transport=transport
    )
    opened.bank.merge(
        CUSTOMERS,
        pl.DataFrame({"cust_no": ["C1", "C2"], "branch_id": ["B01", "B01"], "open_date": [date(2020, 1, 2)] * 2}),
    )
    for customer in ("C1", "C2"):
        for kind in (ChannelKind.WECHAT, ChannelKind.PUSH):
            opened.channels.consent.record(customer, kind, Purpose.MARKETING, ConsentStatus.GRANTED, source="app")
    yield opened
    opened.close()


def _maturity(key: str, channel: str, customer: str = "C1") -> SendRequest:
    return SendRequest(
        idempotency_key=key,
        customer=customer,
        channel=channel,
        message=Message(
            text="您持有的{product}将于{days}日后到期",
            variables={"product": "稳享90天", "days": "3"},
            link="https://bank.example/w/90",
        ),
        addresses=ADDRESSES,
        campaign="maturity",
        candidates=CANDIDATES if channel == BEST else (),
    )


def test_opened_on_wechat_tags_the_customer_and_wechat_is_preferred_next_time(
    container: Container, wechat: FakeWeChat
) -> None:
    sends, ledger = container.channels.sends, container.channels.ledger
    sent = sends.send(_maturity("maturity:v1:C1", "wechat"))
    assert sent.status is SendStatus.SENT
    assert wechat.messages["maturity:v1:C1"]["template_id"] == "TPL_MATURITY"
    other = sends.send(_maturity("maturity:v1:C2", "wechat", customer="C2"))  # delivered, never opened
    kinds = [("push", ChannelKind.PUSH), ("wechat", ChannelKind.WECHAT)]
    assert best_channel(ledger.engagement("C1"), kinds) == "push", "sent on WeChat, not opened: no preference yet"

    client = TestClient(create_app(container), base_url="https://testserver", headers=grant(container.access, "admin"))
    delivered = (
        "<xml><Event><![CDATA[TEMPLATESENDJOBFINISH]]></Event>"
        f"<MsgID>{other.provider_message_id}</MsgID><Status><![CDATA[success]]></Status></xml>"
    )
    assert client.post("/v1/channels/wechat/receipts", content=delivered).json()["applied"] == 1
    opened = orjson.dumps([{"msgid": sent.provider_message_id, "event": "opened"}])
    report = client.post("/v1/channels/wechat/receipts", content=opened)
    assert report.status_code == 200, report.text
    assert report.json() == {"received": 1, "applied": 1, "unknown": 0, "stale": 0, "unsubscribed": 0}
    row = ledger.get("maturity:v1:C1")
    assert row is not None
    assert row.status is DeliveryStatus.OPENED

    # (a) the receipt is an event: loaded into the warehouse, it makes the tag true after a refresh
    container.loader.drain()
    container.tags.refresh(as_of=container.clock.now() + timedelta(seconds=1), only=["wechat_habit"])
    tagged = {v.tag: v.value for v in container.tags.values_of("C1")}
    assert tagged.get("wechat_habit") == "true"
    assert "wechat_habit" not in {v.tag for v in container.tags.values_of("C2")}, "delivered is not a habit"

    # (b) the learned preference picks WeChat for the next "best" send
    nxt = sends.send(_maturity("maturity:v2:C1", BEST))
    assert (nxt.status, nxt.channel) == (SendStatus.SENT, "wechat")
    assert "maturity:v2:C1" in wechat.messages
    # C2 did not open: "best" stays with the cheaper, untried push for them
    assert sends.send(_maturity("maturity:v2:C2", BEST, customer="C2")).channel == "push"


def test_a_bad_wechat_engagement_report_is_a_problem(container: Container) -> None:
    client = TestClient(create_app(container), base_url="https://testserver", headers=grant(container.access, "admin"))
    for body in (b'[{"msgid": "1", "event": "liked"}]', b"[]", b'{"event": "opened"}'):
        answer = client.post("/v1/channels/wechat/receipts", content=body)
        assert answer.status_code == 400, body
        assert answer.json()["type"].endswith("channels.bad-receipt")
