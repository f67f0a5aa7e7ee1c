"""Receipts (回执): a provider's status callback applied to the delivery ledger.

Statuses only move forward (a late "delivered" never hides an "opened").
A failure stops the touch counting against caps; an unsubscription (SMS
reply R / TD) withdraws the customer's marketing consent on that channel.
Opens and clicks feed the learned channel preference through the ledger.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from marketloop.core.consent import Channel as ChannelKind
from marketloop.core.consent import ConsentRecord, ConsentStatus, Purpose
from marketloop.core.events import Event, EventType
from marketloop.journeys.channels.registry import ChannelRegistry
from marketloop.journeys.policy.service import ContactPolicyService
from marketloop.ports.channels import DeliveryLedger, DeliveryStatus, Receipt
from marketloop.ports.clock import Clock


class ConsentWriter(Protocol):
    """What receipts need of consent (implemented by `marketloop.policy.consent.ConsentService`)."""

    def record(
        self,
        customer: str,
        channel: ChannelKind,
        purpose: Purpose,
        status: ConsentStatus,
        *,
        source: str,
        at: datetime | None = None,
        actor: str = "",
    ) -> ConsentRecord:
        """Store a grant or withdrawal."""
        ...


@dataclass(frozen=True, kw_only=True)
class AppliedReceipt:
    """A receipt that moved a touch forward, with what the journey engine needs to react to it."""

    customer: str
    kind: ChannelKind
    channel: str
    campaign: str
    idempotency_key: str
    provider_message_id: str
    status: DeliveryStatus
    at: datetime


@dataclass(frozen=True, kw_only=True)
class ReceiptReport:
    received: int
    applied: int  # moved a touch forward
    unknown: int  # no touch with that provider id
    stale: int  # the touch was already further along
    unsubscribed: int
    receipts: tuple[AppliedReceipt, ...] = ()  # applied ones, to publish as events (`receipt_event`)


RECEIPT_SOURCE = "marketloop:channels"


def receipt_event(applied: AppliedReceipt, received_at: datetime) -> Event:
    """The event a receipt becomes in the event log (`touch_delivered`, `touch_opened`, …), so waits,
    branches and tags react to it; its message id is stable, so a repeated callback is dropped downstream."""
    return Event(
        message_id=f"receipt:{applied.idempotency_key}:{applied.status.value}"[:200],
        type=EventType.TRACK.value,
        source_id=RECEIPT_SOURCE,
        received_at=received_at,
        timestamp=applied.at,
        event=f"touch_{applied.status.value}",
        user_id=applied.customer,
        properties={
            "channel": applied.kind.value,
            "channel_name": applied.channel,
            "campaign": applied.campaign,
            "idempotency_key": applied.idempotency_key,
            "provider_message_id": applied.provider_message_id,
        },
    )


class ReceiptService:
    def __init__(
        self,
        channels: ChannelRegistry,
        ledger: DeliveryLedger,
        policy: ContactPolicyService,
        clock: Clock,
        *,
        consent: ConsentWriter | None = None,
    ) -> None:
        self._channels = channels
        self._ledger = ledger
        self._policy = policy
        self._clock = clock
        self._consent = consent

    def apply_callback(self, channel: str, payload: bytes) -> ReceiptReport:
        """Parse a provider's callback body (`ChannelError` when it is not one) and apply its receipts."""
        configured = self._channels.get(channel)
        return self.apply(channel, configured.channel.parse_receipts(payload))

    def apply(self, channel: str, receipts: Sequence[Receipt]) -> ReceiptReport:
        counts = {"applied": 0, "unknown": 0, "stale": 0, "unsubscribed": 0}
        applied: list[AppliedReceipt] = []
        for receipt in receipts:
            counts[self._one(channel, receipt, applied)] += 1
        return ReceiptReport(received=len(receipts), **counts, receipts=tuple(applied))

    def _one(self, channel: str, receipt: Receipt, applied: list[AppliedReceipt]) -> str:
        delivery = self._ledger.by_provider_id(channel, receipt.provider_message_id)
        if delivery is None:
            return "unknown"
        at = receipt.at or self._clock.now()
        if not self._ledger.advance(delivery.idempotency_key, receipt.status, at):
            return "stale"
        applied.append(
            AppliedReceipt(
                customer=delivery.customer,
                kind=delivery.kind,
                channel=channel,
                campaign=delivery.campaign,
                idempotency_key=delivery.idempotency_key,
                provider_message_id=receipt.provider_message_id,
                status=receipt.status,
                at=at,
            )
        )
        if receipt.status is DeliveryStatus.FAILED:
            decision = self._policy.decision_for(delivery.customer, delivery.idempotency_key)
            if decision is not None and decision.id is not None:
                self._policy.release(decision.id, f"provider reported failure {receipt.detail}".strip())
        if receipt.status is DeliveryStatus.UNSUBSCRIBED and self._consent is not None:
            self._consent.record(
                delivery.customer,
                delivery.kind,
                Purpose.MARKETING,
                ConsentStatus.WITHDRAWN,
                source=f"{delivery.kind.value}_reply",
                at=at,
                actor=f"channel:{channel}",
            )
            return "unsubscribed"
        return "applied"
