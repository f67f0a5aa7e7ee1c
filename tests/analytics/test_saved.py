"""Saved analyses and kept alert rules (migration 0009): save, list, run; a daily run checks each rule once a day."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from marketloop.adapters.sql.analytics import SqlAnalyticsRepository
from marketloop.adapters.sql.engine import create_engine, upgrade
from marketloop.analytics.alerts import AlertService
from marketloop.analytics.parse import SpecError
from marketloop.api.app import create_app
from marketloop.app.container import Container
from marketloop.app.settings import Settings
from marketloop.core.errors import MarketloopError
from marketloop.testing.access import grant
from marketloop.testing.analytics import RecordingAlertSink
from marketloop.testing.cli import run_cli
from marketloop.testing.clock import FrozenClock

FUNNEL = {
    "model": "funnel",
    "range": {"from": "2026-11-02", "to": "2026-11-09"},
    "steps": ["view_wealth", "use_yield_calculator", "buy_wealth"],
    "window": "1d",
}
# Logins per day in the shop: 11-02 1, 11-03 2, 11-05 1, 11-07 1.
LOGINS = {"model": "events", "event": "login"}


def _copy(data_dir: Path, tmp_path: Path) -> Path:
    """A copy of the shop's data directory, so kept rules and saved analyses do not leak into other tests."""
    copy = tmp_path / "data"
    shutil.copytree(data_dir, copy)
    return copy


@pytest.fixture
def container(data_dir: Path, tmp_path: Path) -> Iterator[Container]:
    opened = Container.open(Settings(data_dir=_copy(data_dir, tmp_path)))
    yield opened
    opened.close()


def test_saved_analyses_are_listed_and_run_again(container: Container) -> None:
    saved = container.analyses.save("wealth funnel", FUNNEL)
    assert saved.analysis_id.startswith("ana_")
    assert saved.spec == FUNNEL
    assert [a.name for a in container.analyses.list()] == ["wealth funnel"]
    result = container.analyses.run(saved.analysis_id).result
    assert [s["customers"] for s in result["groups"][0]["steps"]] == [4, 4, 2]
    with pytest.raises(SpecError) as bad:
        container.analyses.save("broken", FUNNEL | {"window": "0d"})
    assert bad.value.errors[0].pointer == "/window"
    with pytest.raises(MarketloopError) as missing:
        container.analyses.run("ana_nope")
    assert missing.value.kind == "not-found"
    client = TestClient(create_app(container), base_url="https://testserver")
    headers = grant(container.access, "analyst")
    listed = client.get("/v1/analytics/saved", headers=headers).json()
    assert [a["analysis_id"] for a in listed] == [saved.analysis_id]
    ran = client.post(f"/v1/analytics/saved/{saved.analysis_id}/query", headers=headers)
    assert ran.status_code == 200
    assert ran.json()["result"]["model"] == "funnel"
    assert client.post("/v1/analytics/saved/ana_nope/query", headers=headers).status_code == 404


def _alerts(container: Container, sink: RecordingAlertSink) -> AlertService:
    clock = FrozenClock(datetime(2026, 11, 8, 6, 0, tzinfo=UTC))
    repository = SqlAnalyticsRepository(container.engine)
    return AlertService(container.analytics, sink, clock, repository=repository)


def test_a_daily_run_checks_each_kept_rule_once_per_day(container: Container) -> None:
    sink = RecordingAlertSink()
    alerts = _alerts(container, sink)
    rule = {"name": "logins", "metric": LOGINS, "kind": "threshold", "above": 1, "webhook": "https://hooks.example/a"}
    stored = alerts.add(rule)
    alerts.add(rule | {"name": "quiet", "above": 100})
    assert [r.name for r in alerts.stored()] == ["logins", "quiet"]
    first = alerts.run(day=date(2026, 11, 3))  # 2 logins on the 3rd: above 1
    assert [(c.rule, c.value, c.verdict.alert) for c in first] == [("logins", 2, True), ("quiet", 2, False)]
    assert len(sink.sent) == 1
    assert sink.sent[0][1].day == date(2026, 11, 3)
    assert alerts.run(day=date(2026, 11, 3)) == []  # already checked: nothing posted twice
    assert len(sink.sent) == 1
    assert [(c.day, c.value) for c in alerts.run()] == [(date(2026, 11, 7), 1)] * 2  # default: yesterday
    history = SqlAnalyticsRepository(container.engine).checks(stored.rule_id, limit=10)
    assert [(c.day, c.alerted, c.delivered) for c in history][-1] == (date(2026, 11, 3), True, True)


def test_a_kept_rule_is_checked_like_a_spec(container: Container) -> None:
    alerts = _alerts(container, RecordingAlertSink())
    rule = {
        "name": "x",
        "metric": LOGINS | {"event": {"event": "login", "where": [{"property": "a", "op": ">", "value": "b"}]}},
    }
    with pytest.raises(SpecError) as caught:
        alerts.add(rule | {"kind": "anomaly", "webhook": "https://hooks.example/a"})
    assert caught.value.errors[0].pointer == "/metric/event/where/0/value"


def test_cli_saves_runs_and_keeps_rules(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = str(_copy(data_dir, tmp_path))
    spec = tmp_path / "funnel.json"
    spec.write_text(json.dumps(FUNNEL), encoding="utf-8")
    code, out, _ = run_cli(
        monkeypatch, capsys, "analytics", "save", str(spec), "--name", "f", "--json", "--data-dir", folder
    )
    assert code == 0
    analysis_id = json.loads(out)["analysis_id"]
    code, out, _ = run_cli(monkeypatch, capsys, "analytics", "list", "--data-dir", folder)
    assert code == 0
    assert analysis_id in out
    code, out, _ = run_cli(monkeypatch, capsys, "analytics", "run", analysis_id, "--json", "--data-dir", folder)
    assert code == 0
    assert json.loads(out)["result"]["model"] == "funnel"
    rule = tmp_path / "rule.json"
    quiet = {"name": "quiet", "metric": LOGINS, "kind": "threshold", "above": 100, "webhook": "https://hooks.example/a"}
    rule.write_text(json.dumps(quiet), encoding="utf-8")
    code, out, _ = run_cli(
        monkeypatch, capsys, "analytics", "alerts", "check", str(rule), "--day", "2026-11-03", "--data-dir", folder
    )
    assert code == 0
    assert "quiet 2026-11-03: 2 — ok" in out
    code, out, _ = run_cli(monkeypatch, capsys, "analytics", "alerts", "add", str(rule), "--data-dir", folder)
    assert code == 0
    assert "kept alr_" in out
    code, out, _ = run_cli(
        monkeypatch, capsys, "analytics", "alerts", "run", "--day", "2026-11-03", "--data-dir", folder
    )
    assert code == 0
    assert "quiet 2026-11-03" in out
    code, out, _ = run_cli(
        monkeypatch, capsys, "analytics", "alerts", "run", "--day", "2026-11-03", "--data-dir", folder
    )
    assert code == 0
    assert out == ""
    rule.write_text(json.dumps(quiet | {"metric": LOGINS | {"measure": "median"}}), encoding="utf-8")
    code, _, err = run_cli(monkeypatch, capsys, "analytics", "alerts", "check", str(rule), "--data-dir", folder)
    assert code == 2
    assert "/metric/measure" in err
    rule.write_text(json.dumps(quiet | {"kind": "sometimes"}), encoding="utf-8")
    code, _, err = run_cli(monkeypatch, capsys, "analytics", "alerts", "check", str(rule), "--data-dir", folder)
    assert code == 2
    assert "/kind" in err


def test_migration_0009_goes_up_and_down(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'state.sqlite'}")
    upgrade(engine)
    tables = set(sa.inspect(engine).get_table_names())
    assert {"saved_analyses", "alert_rules", "alert_checks"} <= tables
    engine.dispose()
