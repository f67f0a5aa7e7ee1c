"""Alerts by e-mail: through a real local SMTP server with the e-mail channel's settings, bad recipients refused."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from marketloop.adapters.channels.email import SmtpServer
from marketloop.adapters.email_alerts import EmailAlertSink
from marketloop.analytics.alerts import read_rule
from marketloop.analytics.parse import SpecError
from marketloop.api.app import create_app
from marketloop.app.channel_settings import ChannelsSettings, EmailChannelSettings
from marketloop.app.container import Container
from marketloop.app.settings import Settings
from marketloop.ports.analytics import AlertMessage
from marketloop.testing.access import grant
from marketloop.testing.cli import run_cli
from marketloop.testing.smtp import LocalSmtpServer

LOGINS = {"model": "events", "event": "login"}
RULE = {"name": "logins", "metric": LOGINS, "kind": "threshold", "above": 1, "email": ["ops@bank.example"]}
MESSAGE = AlertMessage(
    rule="logins",
    metric="login",
    day=date(2026, 11, 3),
    value=2.0,
    reason="2 is above the threshold 1",
    kind="threshold",
    baseline=None,
    checked_at=datetime(2026, 11, 4, 6, 0, tzinfo=UTC),
)


@pytest.fixture
def smtp() -> Iterator[LocalSmtpServer]:
    with LocalSmtpServer() as server:
        yield server


def _sink(port: int, waits: list[float]) -> EmailAlertSink:
    server = SmtpServer(host="127.0.0.1", port=port, timeout=5)
    return EmailAlertSink(server, sender="alerts@bank.example", sleep=waits.append)


def test_an_alert_is_one_e_mail_to_every_recipient(smtp: LocalSmtpServer) -> None:
    waits: list[float] = []
    delivered = _sink(smtp.port, waits).mail(["ops@bank.example", "li.si@bank.example"], MESSAGE)
    assert (delivered.ok, delivered.status, delivered.error) == (True, 250, None)
    assert delivered.to == "ops@bank.example, li.si@bank.example"
    [mail] = smtp.messages
    assert smtp.recipients == [["ops@bank.example", "li.si@bank.example"]]
    assert mail["From"] == "alerts@bank.example"
    assert mail["Subject"] == "【指标预警】logins 2026-11-03: 2"
    assert mail["Message-ID"].endswith("@bank.example>")
    body = mail.get_content().replace("\r\n", "\n")
    assert "数值 value: 2\n" in body
    assert "原因 reason: 2 is above the threshold 1" in body
    assert "类型 kind: 阈值 threshold" in body
    assert waits == []


def test_mail_failures_are_reported_and_only_retryable_ones_retried(smtp: LocalSmtpServer) -> None:
    waits: list[float] = []
    sink = _sink(smtp.port, waits)
    smtp.answer_next(451)  # busy: tried again, then taken
    assert sink.mail(["ops@bank.example"], MESSAGE).ok
    assert (waits, len(smtp.messages)) == ([0.5], 1)
    smtp.reject_recipients.add("gone@bank.example")
    partly = sink.mail(["ops@bank.example", "gone@bank.example"], MESSAGE)
    assert not partly.ok
    assert partly.error == "recipients refused: gone@bank.example (550)"
    assert smtp.recipients[-1] == ["ops@bank.example"]  # the other recipient has it; not sent again
    refused = sink.mail(["gone@bank.example"], MESSAGE)
    assert (refused.ok, refused.error) == (False, "recipient refused")
    smtp.answer_next(554)
    final = sink.mail(["ops@bank.example"], MESSAGE)
    assert (final.ok, final.status, final.error) == (False, 554, "SMTP 554")
    assert waits == [0.5]  # neither a refusal nor a 5xx is retried
    down = _sink(1, waits).mail(["ops@bank.example"], MESSAGE)
    assert not down.ok
    assert "SMTP server" in (down.error or "")
    assert waits == [0.5, 0.5, 1.0]


@pytest.mark.parametrize(
    ("changes", "pointer", "words"),
    [
        ({"email": ["ops@bank.example", "not-an-address"]}, "/email/1", "'not-an-address' is not an e-mail address"),
        ({"email": ["张三 <ops@bank.example>"]}, "/email/0", "is not an e-mail address"),
        ({"email": ["ops@localhost"]}, "/email/0", "is not an e-mail address"),
        ({"email": [7]}, "/email/0", "7 is not an e-mail address"),
        ({"email": "ops@bank.example"}, "/email", "a list of addresses"),
        ({"email": ["a@bank.example", "A@bank.example"]}, "/email/1", "listed twice"),
        ({"email": []}, "", "add 'webhook' or 'email'"),
        ({"email": [f"u{i}@bank.example" for i in range(51)]}, "/email", "at most 50"),
    ],
)
def test_bad_recipients_point_at_the_spot(changes: dict[str, Any], pointer: str, words: str) -> None:
    with pytest.raises(SpecError) as caught:
        read_rule(RULE | changes)
    assert caught.value.errors[0].pointer == pointer
    assert words in caught.value.errors[0].detail


def test_a_rule_may_go_to_a_webhook_and_e_mail() -> None:
    rule = read_rule(RULE | {"webhook": "https://hooks.example/a"})
    assert (rule.webhook, rule.email) == ("https://hooks.example/a", ("ops@bank.example",))
    assert read_rule(RULE).webhook is None


def _data(data_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "data"
    shutil.copytree(data_dir, copy)
    return copy


def _with_smtp(folder: Path, port: int) -> Settings:
    email = EmailChannelSettings(host="127.0.0.1", port=port, sender="alerts@bank.example", timeout_seconds=5)
    return Settings(data_dir=folder, channels=ChannelsSettings(email=email))


def test_kept_rules_e_mail_their_recipients_through_the_channels_smtp_settings(
    data_dir: Path, tmp_path: Path, smtp: LocalSmtpServer
) -> None:
    container = Container.open(_with_smtp(_data(data_dir, tmp_path), smtp.port))
    try:
        stored = container.alerts.add(RULE)
        container.alerts.add(RULE | {"name": "quiet", "above": 100})
        found = container.alerts.run(day=date(2026, 11, 3))  # 2 logins on the 3rd
        assert [(c.rule, c.verdict.alert) for c in found] == [("logins", True), ("quiet", False)]
        assert found[0].delivery is not None
        assert found[0].delivery.ok
        [mail] = smtp.messages
        assert mail["To"] == "ops@bank.example"
        assert mail["Subject"] == "【指标预警】logins 2026-11-03: 2"
        [check] = container.alerts.history(stored.rule_id)
        assert (check.day, check.alerted, check.delivered) == (date(2026, 11, 3), True, True)
        smtp.reject_recipients.add("ops@bank.example")
        container.alerts.change(stored.rule_id, RULE | {"above": 0})  # 1 login on the 2nd
        [failed, _] = container.alerts.run(day=date(2026, 11, 2))
        assert failed.delivery is not None
        assert failed.delivery.error == "ops@bank.example: recipient refused"
        days = [(c.day.day, c.delivered, c.error) for c in container.alerts.history(stored.rule_id)]
        assert days == [(3, True, None), (2, False, "ops@bank.example: recipient refused")]  # newest first
    finally:
        container.close()


def test_without_an_smtp_server_an_e_mail_rule_is_refused_clearly(data_dir: Path, tmp_path: Path) -> None:
    container = Container.open(Settings(data_dir=_data(data_dir, tmp_path)))
    try:
        client = TestClient(create_app(container), base_url="https://testserver")
        headers = grant(container.access, "analyst")
        answer = client.post("/v1/analytics/alerts", json=RULE, headers=headers)
        assert answer.status_code == 409
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["type"].endswith("/analytics.no-mailer")
        assert "[channels.email]" in answer.json()["detail"]
        bad = client.post("/v1/analytics/alerts", json=RULE | {"email": ["ops@"]}, headers=headers)
        assert bad.status_code == 400
        assert bad.json()["errors"][0]["pointer"] == "/email/0"
        assert client.get("/v1/analytics/alerts", headers=headers).json() == []
    finally:
        container.close()


def test_cli_checks_an_e_mail_rule_and_refuses_a_bad_address(
    data_dir: Path,
    tmp_path: Path,
    smtp: LocalSmtpServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder = _data(data_dir, tmp_path)
    config = tmp_path / "marketloop.toml"
    config.write_text(f'[channels.email]\nhost = "127.0.0.1"\nport = {smtp.port}\nsender = "alerts@bank.example"\n')
    rule = tmp_path / "rule.json"
    rule.write_text(json.dumps(RULE), encoding="utf-8")
    where = ("--data-dir", str(folder), "--config", str(config))
    code, out, _ = run_cli(
        monkeypatch, capsys, "analytics", "alerts", "check", str(rule), "--day", "2026-11-03", *where
    )
    assert code == 0
    assert "logins 2026-11-03: 2 — ALERT" in out
    assert smtp.recipients == [["ops@bank.example"]]
    rule.write_text(json.dumps(RULE | {"email": ["ops@bank.example", "ops at bank"]}), encoding="utf-8")
    for command in ("check", "add"):
        code, _, err = run_cli(monkeypatch, capsys, "analytics", "alerts", command, str(rule), *where)
        assert code == 2
        assert "/email/1: 'ops at bank' is not an e-mail address" in err
    rule.write_text(json.dumps(RULE), encoding="utf-8")
    code, _, err = run_cli(monkeypatch, capsys, "analytics", "alerts", "add", str(rule), "--data-dir", str(folder))
    assert code == 4  # no [channels.email] in this configuration
    assert "E-mail alerts need an SMTP server" in err
