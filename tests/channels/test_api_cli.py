"""The channel API and CLI: list, test send, receipts, inbox, RM tasks, policy check; problem+json and exit codes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from marketloop.api.app import create_app
from marketloop.app.channels import open_channels
from marketloop.app.container import Container
from marketloop.app.settings import Settings
from marketloop.core.consent import Purpose
from marketloop.journeys.channels.sending import Message, SendRequest, SendStatus
from marketloop.ports.eventlog import START
from marketloop.testing.access import grant
from marketloop.testing.cli import run_cli
from marketloop.testing.gateways import FakeSmsGateway
from marketloop.testing.smtp import LocalSmtpServer

SMS = {"url": "http://sms.bank.local/send", "account": "bank", "secret": "s3cret", "signature": "【示例银行】"}


@pytest.fixture(scope="module")
def gateway() -> FakeSmsGateway:
    return FakeSmsGateway(account="bank", secret="s3cret")


@pytest.fixture(scope="module")
def container(tmp_path_factory: pytest.TempPathFactory, gateway: FakeSmsGateway) -> Iterator[Container]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("channels") / "data", channels={"sms": SMS})  # type: ignore[arg-type]
    opened = Container.open(settings)

    def transport(name: str) -> httpx.BaseTransport | None:
        return gateway.transport() if name == "sms" else None

    opened.__dict__["channels"] = open_channels(
        settings, opened.engine, opened.clock, opened.audit, transport=transport
    )
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def client(container: Container) -> TestClient:
    app: FastAPI = create_app(container)
    return TestClient(app, base_url="https://testserver", headers=grant(container.access, "admin"))


def test_channels_are_listed_with_secrets_masked(client: TestClient) -> None:
    response = client.get("/v1/channels")
    assert response.status_code == 200
    by_name = {c["name"]: c for c in response.json()}
    assert sorted(by_name) == ["inapp", "rm", "sms"]
    assert by_name["sms"]["settings"]["secret"] == "***"
    assert "s3cret" not in response.text


def test_a_test_send_goes_through_the_gateway_and_bad_content_is_a_problem(
    client: TestClient, gateway: FakeSmsGateway, container: Container
) -> None:
    sent = client.post("/v1/channels/sms/test", json={"to": "13800001234", "text": "测试短信"})
    assert sent.status_code == 200, sent.text
    assert sent.json()["status"] == "sent"
    body = next(iter(gateway.messages.values()))
    assert body["content"] == "【示例银行】测试短信拒收请回复R"
    banned = client.post("/v1/channels/sms/test", json={"to": "13800001234", "text": "稳赚不赔"})
    assert banned.status_code == 400
    assert banned.headers["content-type"] == "application/problem+json"
    assert banned.json()["type"].endswith("send.compliance")
    unknown = client.post("/v1/channels/fax/test", json={"to": "x", "text": "y"})
    assert unknown.status_code == 404
    assert container.audit.entries(action="channel.test_send")[0].target == "channel:sms"
    gateway.fail_next(500)
    retrying = client.post("/v1/channels/sms/test", json={"to": "13800001234", "text": "测试短信"})
    assert retrying.json()["status"] == "retrying"
    retries = client.get("/v1/channels/deliveries", params={"status": "retrying"}).json()
    assert [d["idempotency_key"] for d in retries] == [retrying.json()["idempotency_key"]]
    assert client.get("/v1/channels/deliveries", params={"status": "nonsense"}).status_code == 422


def test_receipts_are_applied_published_as_events_and_a_bad_callback_is_a_problem(
    client: TestClient, container: Container
) -> None:
    sent = client.post("/v1/channels/sms/test", json={"to": "13900001234", "text": "回执测试"}).json()
    report = client.post(
        "/v1/channels/sms/receipts",
        content=orjson.dumps(
            [{"msgId": sent["provider_message_id"], "status": "DELIVRD"}, {"msgId": "zz", "status": "DELIVRD"}]
        ),
    )
    assert report.status_code == 200
    assert report.json() == {"received": 2, "applied": 1, "unknown": 1, "stale": 0, "unsubscribed": 0}
    records = [r.value for r in container.log.read(0, after=START, max_records=100_000)]
    delivered = [orjson.loads(r) for r in records if b"touch_delivered" in r]
    assert [(e["event"], e["user_id"], e["properties"]["channel"]) for e in delivered] == [
        ("touch_delivered", "test", "sms")
    ]
    bad = client.post("/v1/channels/sms/receipts", content=b"not json")
    assert bad.status_code == 400
    assert bad.json()["type"].endswith("channels.bad-receipt")


def test_inbox_and_rm_tasks(client: TestClient, container: Container) -> None:
    sends = container.channels.sends
    inbox = sends.send(
        SendRequest(
            idempotency_key="coupon:C9",
            customer="C9",
            channel="inapp",
            message=Message(text="您有一张加息券", title="加息券"),
        )
    )
    assert inbox.status is SendStatus.SENT
    messages = client.get("/v1/inbox/C9")
    assert messages.status_code == 200
    assert [m["title"] for m in messages.json()] == ["加息券"]
    read = client.post(f"/v1/inbox/C9/{messages.json()[0]['id']}/read")
    assert read.json()["read_at"] is not None
    assert client.get("/v1/inbox/C9", params={"unread": "true"}).json() == []
    assert client.post("/v1/inbox/C9/nope/read").status_code == 404
    task = sends.send(
        SendRequest(
            idempotency_key="maturity:C9",
            customer="C9",
            channel="rm",
            purpose=Purpose.SERVICE,
            sender="RM7",
            message=Message(text="VIP 客户理财 7 日后到期，请联系续作", title="到期续作"),
        )
    )
    assert task.status is SendStatus.SENT
    tasks = client.get("/v1/rm-tasks", params={"relationship_manager": "RM7"}).json()
    assert [t["title"] for t in tasks] == ["到期续作"]
    closed = client.post(f"/v1/rm-tasks/{tasks[0]['id']}/close", json={"outcome": "已联系，客户续作"})
    assert closed.json()["status"] == "closed"
    assert client.post(f"/v1/rm-tasks/{tasks[0]['id']}/close", json={"outcome": ""}).status_code == 422
    events = [orjson.loads(r.value) for r in container.log.read(0, after=START, max_records=100_000)]
    reactions = [(e["event"], e["properties"]["channel"]) for e in events if e.get("user_id") == "C9"]
    assert reactions == [("touch_opened", "inapp"), ("touch_delivered", "rm")]
    history = client.get("/v1/customers/C9/contacts").json()
    assert [h["code"] for h in history] == ["allowed", "allowed"]
    summary = client.get("/v1/policy/summary", params={"campaign": ""})
    assert summary.status_code == 422
    assert client.get("/v1/policy/summary", params={"campaign": "x"}).json() == {"campaign": "x", "decisions": {}}


def test_policy_check_explains_and_needs_a_token(client: TestClient, container: Container) -> None:
    explained = client.post("/v1/policy/check", json={"customer": "C8", "channel": "sms", "purpose": "marketing"})
    assert explained.status_code == 200
    assert explained.json()["decision"]["code"] == "consent"
    bad = client.post("/v1/policy/check", json={"customer": "C8", "channel": "fax"})
    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"
    anonymous = TestClient(create_app(container), base_url="https://testserver")
    assert anonymous.get("/v1/channels").status_code == 401


def test_cli_lists_tests_email_through_a_local_smtp_server_and_explains(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = str(tmp_path / "data")
    with LocalSmtpServer() as smtp:
        config = tmp_path / "marketloop.toml"
        config.write_text(f'[channels.email]\nhost = "127.0.0.1"\nport = {smtp.port}\nsender = "mkt@bank.example"\n')
        code, out, _ = run_cli(
            monkeypatch, capsys, "channels", "list", "--data-dir", data, "--config", str(config), "--json"
        )
        assert code == 0
        assert [c["name"] for c in orjson.loads(out)] == ["email", "inapp", "rm"]
        args = ("channels", "test", "email", "--to", "zhang@example.com", "--text", "测试邮件", "--title", "测试")
        code, out, err = run_cli(monkeypatch, capsys, *args, "--data-dir", data, "--config", str(config))
        assert code == 0, err
        assert "z***@example.com" in out
        assert smtp.messages[0]["Subject"] == "测试"
    code, _, err = run_cli(
        monkeypatch, capsys, "channels", "test", "sms", "--to", "1", "--text", "x", "--data-dir", data
    )
    assert code == 3
    assert "No such channel" in err
    code, out, _ = run_cli(
        monkeypatch, capsys, "policy", "check", "--customer", "C1", "--channel", "inapp", "--data-dir", data, "--json"
    )
    assert code == 0
    assert orjson.loads(out)["decision"]["outcome"] == "allow"
    code, _, _ = run_cli(
        monkeypatch, capsys, "policy", "lists", "add", "holdout", "C1", "--reason", "2026Q1 对照组", "--data-dir", data
    )
    assert code == 0
    code, out, _ = run_cli(
        monkeypatch, capsys, "policy", "check", "--customer", "C1", "--channel", "inapp", "--data-dir", data, "--json"
    )
    assert orjson.loads(out)["decision"]["code"] == "lists"
    code, _, err = run_cli(monkeypatch, capsys, "policy", "lists", "add", "Bad List", "C1", "--data-dir", data)
    assert code == 2
    assert "list name" in err
