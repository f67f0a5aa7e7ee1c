"""Consent per customer, channel and purpose: defaults, newest record wins, history, audit."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from marketloop.adapters.sql.audit import SqlAuditStore
from marketloop.adapters.sql.consent import SqlConsentStore
from marketloop.adapters.sql.engine import create_engine, upgrade
from marketloop.core.consent import Channel, ConsentStatus, Purpose, defaults_from
from marketloop.core.errors import MarketloopError
from marketloop.policy.consent import ConsentService
from marketloop.security.audit import AuditLog
from marketloop.testing.clock import FrozenClock

GRANTED, WITHDRAWN = ConsentStatus.GRANTED, ConsentStatus.WITHDRAWN
MARKETING = Purpose.MARKETING


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[sa.Engine]:
    engine = create_engine(f"sqlite:///{tmp_path / 'state.sqlite'}")
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def audit(engine: sa.Engine, clock: FrozenClock) -> AuditLog:
    return AuditLog(SqlAuditStore(engine), clock)


@pytest.fixture
def consent(engine: sa.Engine, clock: FrozenClock, audit: AuditLog) -> ConsentService:
    return ConsentService(SqlConsentStore(engine), clock, audit=audit)


@pytest.mark.parametrize(
    ("channel", "purpose", "allowed"),
    [
        (Channel.SMS, MARKETING, False),
        (Channel.CALL, MARKETING, False),
        (Channel.PUSH, MARKETING, False),
        (Channel.INAPP, MARKETING, True),
        (Channel.SMS, Purpose.SERVICE, True),
        (Channel.CALL, Purpose.RISK, True),
    ],
)
def test_defaults_without_a_record(consent: ConsentService, channel: Channel, purpose: Purpose, allowed: bool) -> None:
    decision = consent.may_contact("C0001", channel, purpose)
    assert decision.allowed is allowed
    assert "no record" in decision.reason


def test_the_newest_record_wins_and_history_is_kept(consent: ConsentService, clock: FrozenClock) -> None:
    consent.record("C0001", Channel.SMS, MARKETING, GRANTED, source="counter")
    granted_at = clock.now()
    clock.advance(timedelta(days=3))
    consent.record("C0001", Channel.SMS, MARKETING, WITHDRAWN, source="sms_reply")
    decision = consent.may_contact("C0001", Channel.SMS, MARKETING)
    assert not decision.allowed
    assert "sms_reply" in decision.reason
    # At send time in the past, the record then in force decides.
    assert consent.may_contact("C0001", Channel.SMS, MARKETING, at=granted_at + timedelta(hours=1)).allowed
    assert [r.status for r in consent.history("C0001")] == [GRANTED, WITHDRAWN]
    # Other channels and purposes are not affected.
    assert not consent.may_contact("C0001", Channel.PUSH, MARKETING).allowed
    assert consent.may_contact("C0001", Channel.SMS, Purpose.SERVICE).allowed


def test_a_record_given_earlier_but_stored_later_does_not_override_a_newer_one(
    consent: ConsentService, clock: FrozenClock
) -> None:
    consent.record("C0001", Channel.PUSH, MARKETING, WITHDRAWN, source="app_settings")
    consent.record("C0001", Channel.PUSH, MARKETING, GRANTED, source="paper_form", at=clock.now() - timedelta(days=30))
    assert not consent.may_contact("C0001", Channel.PUSH, MARKETING).allowed


def test_changes_are_audited(consent: ConsentService, audit: AuditLog) -> None:
    consent.record("C0001", Channel.SMS, MARKETING, GRANTED, source="counter", actor="user:teller1")
    consent.record("C0001", Channel.SMS, MARKETING, WITHDRAWN, source="sms_reply")
    actions = [(e.action, e.actor) for e in audit.entries()]
    assert actions == [("consent.withdraw", "system"), ("consent.grant", "user:teller1")]
    assert audit.verify().ok


def test_configured_defaults(engine: sa.Engine, clock: FrozenClock) -> None:
    service = ConsentService(
        SqlConsentStore(engine), clock, defaults=defaults_from({"marketing": ["push", "inapp"], "service": []})
    )
    assert service.may_contact("C1", Channel.PUSH, MARKETING).allowed
    assert not service.may_contact("C1", Channel.SMS, Purpose.SERVICE).allowed
    assert not service.may_contact("C1", Channel.SMS, Purpose.RISK).allowed  # unnamed purpose: nothing by default


def test_show_lists_every_channel_and_purpose(consent: ConsentService) -> None:
    shown = consent.show("C0001")
    assert len(shown) == len(Channel) * len(Purpose)


@pytest.mark.parametrize(("customer", "source"), [("", "counter"), ("x" * 101, "counter"), ("C1", " ")])
def test_bad_input_is_refused(consent: ConsentService, customer: str, source: str) -> None:
    with pytest.raises(MarketloopError):
        consent.record(customer, Channel.SMS, MARKETING, GRANTED, source=source)
