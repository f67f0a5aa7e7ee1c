"""Metric alerts: threshold and robust z-score verdicts by hand, the daily series, and webhook delivery."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

from marketloop.adapters.webhook_alerts import WebhookAlertSink
from marketloop.analytics.alerts import AlertRule, AlertService, baseline_of, detect, read_rule
from marketloop.analytics.parse import SpecError
from marketloop.ports.analytics import AlertMessage
from marketloop.testing.analytics import RecordingAlertSink
from marketloop.testing.clock import FrozenClock

LOGINS = {"model": "events", "event": "login", "measure": "count"}


def _rule(**changes: Any) -> AlertRule:
    found = {"name": "logins", "metric": LOGINS, "kind": "anomaly", "webhook": "https://hooks.example/alerts"}
    return read_rule(found | changes)


def test_threshold_verdicts() -> None:
    rule = _rule(kind="threshold", above=100, below=10)
    assert detect(rule, 101, []).alert
    assert "above the threshold 100" in detect(rule, 101, []).reason
    assert detect(rule, 9, []).alert
    assert "below" in detect(rule, 9, []).reason
    assert not detect(rule, 100, []).alert
    assert not detect(rule, 10, []).alert


def test_robust_z_score_against_the_non_seasonal_baseline() -> None:
    rule = _rule(seasonal=False, baseline_weeks=1, z=3.5)
    history = [10, 12, 11, 13, 9, 10, 12]  # median 11, absolute deviations 1,1,0,2,2,1,1 → MAD 1
    high = detect(rule, 17, history)  # 0.6745 · 6 / 1 = 4.047
    assert high.alert
    assert high.baseline == 11
    assert "4.05" in high.reason
    assert not detect(rule, 16, history).alert  # 0.6745 · 5 = 3.37
    assert detect(rule, 5, history).alert  # −4.047


def test_seasonal_baseline_compares_the_same_weekday() -> None:
    rule = _rule(baseline_weeks=3)
    history = [100, 5, 5, 5, 5, 5, 5] * 3  # a busy day every week, 7 days before the checked one
    assert baseline_of(rule, history) == [100, 100, 100]
    verdict = detect(rule, 100, history)  # as busy as the same weekday: MAD 0 and no change
    assert not verdict.alert
    assert verdict.baseline == 100
    assert detect(rule, 60, history).alert  # MAD 0: any change from the median is an anomaly
    flat = _rule(baseline_weeks=3, seasonal=False)
    assert detect(flat, 100, history).alert  # against every day, 100 is far above the median 5


def test_too_short_a_baseline_gives_no_verdict() -> None:
    verdict = detect(_rule(), 1000, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14])  # two weeks: 2 same weekdays
    assert not verdict.alert
    assert "only 2 baseline days" in verdict.reason


@pytest.mark.parametrize(
    ("changes", "pointer"),
    [
        ({"kind": "sometimes"}, "/kind"),
        ({"webhook": "ftp://x"}, "/webhook"),
        ({"metric": {"model": "funnel"}}, "/metric"),
        ({"metric": LOGINS | {"range": {"last": "7d"}}}, "/metric"),
        ({"metric": LOGINS | {"group_by": {"property": "x"}}}, "/metric/group_by"),
        ({"kind": "threshold"}, ""),
        ({"z": "high"}, "/z"),
        ({"baseline_weeks": 0}, "/baseline_weeks"),
        ({"colour": 1}, "/colour"),
    ],
)
def test_bad_rules_point_at_the_spot(changes: dict[str, Any], pointer: str) -> None:
    with pytest.raises(SpecError) as caught:
        _rule(**changes)
    assert caught.value.errors[0].pointer == pointer


class SeriesAnalytics:
    """The part of `AnalyticsService` the alert service calls, over a fixed daily series."""

    def __init__(self, values: dict[date, float]) -> None:
        self.values = values
        self.docs: list[dict[str, Any]] = []

    def query(self, doc: dict[str, Any]) -> Any:
        self.docs.append(doc)
        series = [{"bucket": day.isoformat(), "group": "all", "value": v} for day, v in sorted(self.values.items())]
        return type("Found", (), {"result": {"series": series}})()


def test_alert_service_checks_yesterday_and_delivers_once_it_fires() -> None:
    day = date(2026, 11, 23)
    values = {day - timedelta(days=i): 10.0 for i in range(1, 29)} | {day: 40.0}
    analytics = SeriesAnalytics(values)
    sink = RecordingAlertSink()
    clock = FrozenClock(datetime(2026, 11, 24, 8, 0, tzinfo=UTC))
    service = AlertService(analytics, sink, clock)  # type: ignore[arg-type]
    found = service.check(_rule(seasonal=False))
    assert found.day == day
    assert found.value == 40
    assert found.verdict.alert
    assert analytics.docs[0]["range"] == {"from": "2026-10-26T00:00:00+00:00", "to": "2026-11-24T00:00:00+00:00"}
    assert analytics.docs[0]["interval"] == "day"
    assert found.delivery is not None
    assert found.delivery.ok
    [(url, message)] = sink.sent
    assert url == "https://hooks.example/alerts"
    assert message.value == 40
    assert message.baseline == 10
    quiet = service.check(_rule(seasonal=False), day=day - timedelta(days=1))  # 10 among 10s (a missing day is 0)
    assert not quiet.verdict.alert
    assert quiet.delivery is None
    assert len(sink.sent) == 1
    sink.fail_with = "connection refused"
    failed = service.check(_rule(seasonal=False))
    assert failed.delivery is not None
    assert not failed.delivery.ok


MESSAGE = AlertMessage(
    rule="logins",
    metric="login",
    day=date(2026, 11, 23),
    value=40.0,
    reason="robust z-score 20.24",
    kind="anomaly",
    baseline=10.0,
    checked_at=datetime(2026, 11, 24, 8, 0, tzinfo=UTC),
)


def test_webhook_posts_json_and_retries_only_what_is_retryable() -> None:
    answers = [503, 200]
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(answers.pop(0))

    waits: list[float] = []
    sink = WebhookAlertSink(httpx.Client(transport=httpx.MockTransport(handler)), sleep=waits.append)
    delivered = sink.deliver("https://hooks.example/a", MESSAGE)
    assert delivered.ok
    assert delivered.status == 200
    assert waits == [0.5]
    body = orjson.loads(seen[0].content)
    assert body["rule"] == "logins"
    assert body["day"] == "2026-11-23"
    assert body["value"] == 40.0
    assert seen[0].headers["content-type"] == "application/json"

    refused = WebhookAlertSink(
        httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(404))), sleep=waits.append
    )
    answer = refused.deliver("https://hooks.example/a", MESSAGE)
    assert (answer.ok, answer.status, waits) == (False, 404, [0.5])  # a 404 is final: no retry

    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    down = WebhookAlertSink(httpx.Client(transport=httpx.MockTransport(unreachable)), attempts=3, sleep=waits.append)
    failure = down.deliver("https://hooks.example/a", MESSAGE)
    assert not failure.ok
    assert "ConnectError" in (failure.error or "")
    assert waits == [0.5, 0.5, 1.0]
