"""The contact policy's pure rules: quiet hours, caps by local calendar, priority, and properties under hypothesis."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta, timezone
from functools import partial

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marketloop.adapters.sql.channel_tables import ensure_channel_tables
from marketloop.adapters.sql.contact_policy import SqlContactHistory
from marketloop.adapters.sql.engine import create_engine
from marketloop.core.consent import Channel, Purpose
from marketloop.journeys.policy.rules import (
    DEFAULT_POLICY,
    Cap,
    ContactPolicy,
    ContactRequest,
    Gates,
    Period,
    QuietHours,
    decide,
    period_start,
    quiet_until,
)
from marketloop.ports.contact_policy import ContactRecord, Outcome
from marketloop.testing.channels import InMemoryContactHistory

SHANGHAI = timezone(timedelta(hours=8))
NIGHT = QuietHours(start=time(21), end=time(8), channels=frozenset({Channel.SMS, Channel.PUSH}))


def _request(at: datetime, channel: Channel = Channel.PUSH, **kw: object) -> ContactRequest:
    base: dict[str, object] = {
        "customer": "C1",
        "channel": channel,
        "purpose": Purpose.MARKETING,
        "campaign": "wealth",
        "at": at,
        "timezone": SHANGHAI,
    }
    return ContactRequest(**(base | kw))  # type: ignore[arg-type]


def _decide(history: InMemoryContactHistory, policy: ContactPolicy, request: ContactRequest) -> ContactRecord:
    since = request.at - timedelta(days=40)
    return history.decide(request.customer, since, lambda past: decide(policy, request, Gates(), past))


def test_quiet_hours_wrap_midnight_and_end_in_local_time() -> None:
    late = datetime(2026, 1, 5, 22, 30, tzinfo=SHANGHAI)
    assert quiet_until(late, SHANGHAI, NIGHT) == datetime(2026, 1, 6, 8, 0, tzinfo=SHANGHAI)
    early = datetime(2026, 1, 6, 7, 59, tzinfo=SHANGHAI)
    assert quiet_until(early, SHANGHAI, NIGHT) == datetime(2026, 1, 6, 8, 0, tzinfo=SHANGHAI)
    assert quiet_until(datetime(2026, 1, 6, 8, 0, tzinfo=SHANGHAI), SHANGHAI, NIGHT) is None
    assert quiet_until(datetime(2026, 1, 6, 20, 59, tzinfo=SHANGHAI), SHANGHAI, NIGHT) is None


def test_marketing_push_at_night_is_deferred_to_eight_but_a_risk_alert_goes_now() -> None:
    history = InMemoryContactHistory()
    at = datetime(2026, 1, 5, 14, 0, tzinfo=UTC)  # 22:00 in Shanghai
    deferred = _decide(history, DEFAULT_POLICY, _request(at))
    assert deferred.outcome is Outcome.DEFER
    assert deferred.code == "quiet-hours"
    assert deferred.effective_at == datetime(2026, 1, 6, 8, 0, tzinfo=SHANGHAI)
    alert = _decide(history, DEFAULT_POLICY, _request(at, purpose=Purpose.RISK))
    assert alert.outcome is Outcome.ALLOW
    assert alert.effective_at == at


def test_quiet_hours_may_suppress_instead_of_defer() -> None:
    policy = ContactPolicy(
        quiet_hours=(QuietHours(start=time(21), end=time(8), channels=frozenset({Channel.SMS}), defer=False),)
    )
    record = _decide(InMemoryContactHistory(), policy, _request(datetime(2026, 1, 5, 14, tzinfo=UTC), Channel.SMS))
    assert record.outcome is Outcome.SUPPRESS
    assert "quiet hours 21:00–08:00" in record.reason


def test_daily_sms_cap_counts_across_campaigns_and_resets_on_the_local_day() -> None:
    history = InMemoryContactHistory()
    morning = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)  # 10:00 Shanghai
    first = _decide(history, DEFAULT_POLICY, _request(morning, Channel.SMS, campaign="a"))
    second = _decide(history, DEFAULT_POLICY, _request(morning + timedelta(hours=1), Channel.SMS, campaign="b"))
    assert first.outcome is Outcome.ALLOW
    assert second.outcome is Outcome.SUPPRESS
    assert second.code == "cap"
    assert "sms cap 1 per day reached" in second.reason
    # 00:30 next day in Shanghai is still 2026-01-05 in UTC, but a new local day (no quiet hours in this policy)
    next_day = datetime(2026, 1, 5, 16, 30, tzinfo=UTC)
    assert (
        _decide(history, ContactPolicy(caps=DEFAULT_POLICY.caps), _request(next_day, Channel.SMS)).outcome
        is Outcome.ALLOW
    )


def test_weekly_cap_and_released_touches_do_not_count() -> None:
    policy = ContactPolicy(caps=(Cap(limit=2, period=Period.WEEK),))
    history = InMemoryContactHistory()
    monday = datetime(2026, 1, 5, 2, tzinfo=UTC)
    a = _decide(history, policy, _request(monday))
    _decide(history, policy, _request(monday + timedelta(days=1)))
    assert _decide(history, policy, _request(monday + timedelta(days=2))).outcome is Outcome.SUPPRESS
    assert a.id is not None
    history.deactivate(a.id, "not delivered")
    assert _decide(history, policy, _request(monday + timedelta(days=3))).outcome is Outcome.ALLOW
    assert _decide(history, policy, _request(monday + timedelta(days=7))).outcome is Outcome.ALLOW  # next ISO week


def test_a_higher_priority_campaign_takes_the_slot_of_a_deferred_lower_one() -> None:
    policy = ContactPolicy(caps=(Cap(limit=1, period=Period.DAY),), quiet_hours=(NIGHT,))
    history = InMemoryContactHistory()
    night = datetime(2026, 1, 5, 15, tzinfo=UTC)  # 23:00 Shanghai: both deferred to 08:00
    low = _decide(history, policy, _request(night, campaign="card", priority=1))
    high = _decide(history, policy, _request(night + timedelta(minutes=5), campaign="maturity", priority=5))
    lower_again = _decide(history, policy, _request(night + timedelta(minutes=6), campaign="loan", priority=0))
    assert low.outcome is Outcome.DEFER
    assert high.outcome is Outcome.DEFER
    assert "took the slot of card (priority 1" in high.reason
    assert low.id is not None
    revoked = history.get(low.id)
    assert revoked is not None
    assert not revoked.active
    assert "preempted by maturity (priority 5)" in revoked.reason
    assert lower_again.outcome is Outcome.SUPPRESS
    assert lower_again.code == "cap"


def test_a_gate_suppresses_before_timing() -> None:
    request = _request(datetime(2026, 1, 5, 2, tzinfo=UTC))
    update = decide(DEFAULT_POLICY, request, Gates(blocked_code="consent", blocked_reason="consent: withdrew"), [])
    assert update.record.outcome is Outcome.SUPPRESS
    assert update.record.code == "consent"
    assert not update.record.active


def test_period_start_uses_the_local_calendar() -> None:
    moment = datetime(2026, 1, 7, 17, tzinfo=UTC)  # Thursday 01:00 in Shanghai
    assert period_start(moment, SHANGHAI, Period.DAY) == datetime(2026, 1, 8, tzinfo=SHANGHAI)
    assert period_start(moment, SHANGHAI, Period.WEEK) == datetime(2026, 1, 5, tzinfo=SHANGHAI)
    assert period_start(moment, SHANGHAI, Period.MONTH) == datetime(2026, 1, 1, tzinfo=SHANGHAI)


# ---- properties ----------------------------------------------------------------------------------------------

CHANNELS = st.sampled_from([Channel.SMS, Channel.PUSH, Channel.WECHAT, Channel.INAPP])
OFFSETS = st.integers(min_value=-12 * 60, max_value=14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
START = datetime(2026, 3, 1, tzinfo=UTC)
STEP = st.tuples(
    st.integers(min_value=0, max_value=21 * 24 * 60),  # minutes after START
    CHANNELS,
    st.sampled_from(["a", "b", "c"]),
    st.integers(min_value=0, max_value=3),
    st.sampled_from([Purpose.MARKETING, Purpose.MARKETING, Purpose.SERVICE]),
)


@settings(max_examples=150, deadline=None)
@given(steps=st.lists(STEP, max_size=40), zone=OFFSETS)
def test_caps_are_never_exceeded_under_any_interleaving(
    steps: list[tuple[int, Channel, str, int, Purpose]], zone: timezone
) -> None:
    history = InMemoryContactHistory()
    for minute, channel, campaign, priority, purpose in sorted(steps, key=lambda s: s[0]):
        request = _request(
            START + timedelta(minutes=minute),
            channel,
            campaign=campaign,
            priority=priority,
            purpose=purpose,
            timezone=zone,
        )
        _decide(history, DEFAULT_POLICY, request)
    counted = [r for r in history.records if r.active and r.outcome is not Outcome.SUPPRESS]
    for cap in DEFAULT_POLICY.caps:
        periods: dict[datetime, int] = {}
        for r in counted:
            if r.purpose in cap.purposes and (cap.channel is None or r.channel == cap.channel):
                start = period_start(r.effective_at, zone, cap.period)
                periods[start] = periods.get(start, 0) + 1
        assert all(n <= cap.limit for n in periods.values()), (cap, periods)


@settings(max_examples=200, deadline=None)
@given(minute=st.integers(min_value=0, max_value=14 * 24 * 60), zone=OFFSETS, channel=CHANNELS)
def test_quiet_hours_are_respected_in_any_timezone_offset(minute: int, zone: timezone, channel: Channel) -> None:
    request = _request(START + timedelta(minutes=minute), channel, timezone=zone)
    record = _decide(InMemoryContactHistory(), ContactPolicy(quiet_hours=(NIGHT,)), request)
    assert record.outcome is not Outcome.SUPPRESS
    local = record.effective_at.astimezone(zone).time()
    if channel in NIGHT.channels:
        assert time(8) <= local < time(21)
        assert record.effective_at - request.at < timedelta(hours=11, minutes=1)
    else:
        assert record.effective_at == request.at


_BATCH_CUSTOMERS = itertools.count()


@pytest.fixture(scope="module")
def sql_history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqlContactHistory]:
    engine = create_engine(f"sqlite:///{tmp_path_factory.mktemp('caps') / 'state.sqlite'}")
    ensure_channel_tables(engine)
    yield SqlContactHistory(engine)
    engine.dispose()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(st.lists(STEP, min_size=1, max_size=8), min_size=1, max_size=5), zone=OFFSETS)
def test_caps_hold_for_batched_decisions_on_sql(
    sql_history: SqlContactHistory, batches: list[list[tuple[int, Channel, str, int, Purpose]]], zone: timezone
) -> None:
    """The set-based batch path (decide_many): several requests about one customer in one transaction."""
    customer = f"P{next(_BATCH_CUSTOMERS)}"
    clock_minutes = 0
    for batch in batches:
        clock_minutes += max(minute for minute, *_ in batch) % (3 * 24 * 60)
        at = START + timedelta(minutes=clock_minutes)
        items = []
        for _, channel, campaign, priority, purpose in sorted(batch, key=lambda s: -s[3]):
            request = _request(
                at, channel, customer=customer, campaign=campaign, priority=priority, purpose=purpose, timezone=zone
            )
            items.append((customer, at - timedelta(days=40), partial(decide, DEFAULT_POLICY, request, Gates())))
        sql_history.decide_many(items)
    counted = [r for r in sql_history.history(customer, limit=1000) if r.active and r.outcome is not Outcome.SUPPRESS]
    for cap in DEFAULT_POLICY.caps:
        periods: dict[datetime, int] = {}
        for r in counted:
            if r.purpose in cap.purposes and (cap.channel is None or r.channel == cap.channel):
                start = period_start(r.effective_at, zone, cap.period)
                periods[start] = periods.get(start, 0) + 1
        assert all(n <= cap.limit for n in periods.values()), (cap, periods)
