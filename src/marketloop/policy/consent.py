"""The consent service: record grants and withdrawals, and answer "may we contact this customer?" at send time.

Owns the check every send makes (`may_contact`), and putting each consent
change on the audit record. The rule itself is `marketloop.core.consent.decide`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from marketloop.core.consent import (
    DEFAULT_WITHOUT_RECORD,
    Channel,
    ConsentDefaults,
    ConsentRecord,
    ConsentStatus,
    Decision,
    Purpose,
    decide,
)
from marketloop.core.errors import ErrorKind, MarketloopError
from marketloop.ports.audit import AuditRecorder
from marketloop.ports.clock import Clock
from marketloop.ports.consent import ConsentStore

MAX_CUSTOMER_LENGTH = 100


@dataclass(frozen=True, kw_only=True)
class ChannelConsent:
    """The decision for one channel and purpose, as `show` lists it."""

    channel: Channel
    purpose: Purpose
    decision: Decision


class ConsentService:
    """Consent records per customer, channel and purpose; newest record wins, defaults otherwise."""

    def __init__(
        self,
        store: ConsentStore,
        clock: Clock,
        *,
        defaults: ConsentDefaults = DEFAULT_WITHOUT_RECORD,
        audit: AuditRecorder | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._defaults = defaults
        self._audit = audit

    def record(
        self,
        customer: str,
        channel: Channel,
        purpose: Purpose,
        status: ConsentStatus,
        *,
        source: str,
        at: datetime | None = None,
        actor: str = "",
    ) -> ConsentRecord:
        """Store a grant or withdrawal given at `at` (default now) and put it on the audit record."""
        customer = _customer(customer)
        if not source.strip():
            raise MarketloopError(
                kind=ErrorKind.INVALID, code="consent.no-source", title="Say where the consent came from (source)"
            )
        now = self._clock.now()
        record = self._store.add(
            ConsentRecord(
                customer=customer,
                channel=channel,
                purpose=purpose,
                status=status,
                source=source.strip()[:100],
                at=at or now,
                recorded_at=now,
                actor=actor,
            )
        )
        if self._audit is not None:
            verb = "grant" if status is ConsentStatus.GRANTED else "withdraw"
            details = {"channel": channel.value, "purpose": purpose.value, "source": record.source, "id": record.id}
            self._audit.record(f"consent.{verb}", f"customer:{customer}", details=details, actor=actor or None)
        return record

    def may_contact(self, customer: str, channel: Channel, purpose: Purpose, at: datetime | None = None) -> Decision:
        """Whether a send to `customer` on `channel` for `purpose` is allowed at `at` (default now), and why."""
        latest = self._store.latest(_customer(customer), channel, purpose, at or self._clock.now())
        return decide(latest, channel, purpose, self._defaults)

    def may_contact_many(
        self, asks: Sequence[tuple[str, Channel, Purpose]], at: datetime | None = None
    ) -> list[Decision]:
        """`may_contact` for many (customer, channel, purpose) at once (one read of the store)."""
        keys = [(_customer(customer), channel, purpose) for customer, channel, purpose in asks]
        latest = self._store.latest_many(keys, at or self._clock.now())
        return [decide(latest.get(key), key[1], key[2], self._defaults) for key in keys]

    def show(self, customer: str, at: datetime | None = None) -> list[ChannelConsent]:
        """The decision for every purpose and channel."""
        moment = at or self._clock.now()
        return [
            ChannelConsent(
                channel=channel, purpose=purpose, decision=self.may_contact(customer, channel, purpose, moment)
            )
            for purpose in Purpose
            for channel in Channel
        ]

    def history(self, customer: str) -> list[ConsentRecord]:
        """Every record of the customer, oldest first."""
        return self._store.history(_customer(customer))


def _customer(customer: str) -> str:
    value = customer.strip()
    if not value or len(value) > MAX_CUSTOMER_LENGTH:
        raise MarketloopError(
            kind=ErrorKind.INVALID,
            code="consent.invalid-customer",
            title="A customer number or OneID of 1 to 100 characters is needed",
            detail=repr(customer[:50]),
        )
    return value
